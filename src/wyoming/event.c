/* event.c - the Wyoming event parser and encoder (see event.h).
 *
 * DESIGN
 * Three states: the header line (bytes gathered until '\n', refused as soon
 * as they pass max_line), the data part (data_length bytes, a JSON object
 * merged over the header's "data"), the payload (payload_length bytes into
 * a buffer of exactly that size). Lengths are checked against the limits
 * when the header is parsed, before a byte of the part is buffered, so a
 * client's declared size never becomes an allocation past its limit.
 * JSON is jansson's (it also checks UTF-8).
 */
#include "wyoming/event.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_HEADER, S_DATA, S_PAYLOAD };

void vs_wy_event_clear(struct vs_wy_event *ev)
{
	json_decref(ev->data);
	free(ev->payload);
	memset(ev, 0, sizeof(*ev));
}

void vs_wy_parser_init(struct vs_wy_parser *p, const struct vs_wy_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->lim = *lim;
}

void vs_wy_parser_reset(struct vs_wy_parser *p)
{
	free(p->buf);
	vs_wy_event_clear(&p->cur);
	struct vs_wy_limits lim = p->lim;
	vs_wy_parser_init(p, &lim);
}

bool vs_wy_parser_idle(const struct vs_wy_parser *p)
{
	return p->state == S_HEADER && p->len == 0;
}

__attribute__((format(printf, 3, 4))) static int fail(struct vs_wy_parser *p, int rc,
                                                      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* *buf holds at least want bytes (capacity doubled from first) */
static int grow(uint8_t **buf, size_t *cap, size_t want, size_t first)
{
	if (want <= *cap)
		return 0;
	size_t n = *cap ? *cap : first;
	while (n < want)
		n *= 2;
	uint8_t *nb = realloc(*buf, n);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap = n;
	return 0;
}

static int reserve(struct vs_wy_parser *p, size_t want)
{
	return grow(&p->buf, &p->cap, want, 256);
}

/* A length field: absent or null = 0; otherwise a non-negative integer
 * within max. */
static int length_field(struct vs_wy_parser *p, json_t *head, const char *key, size_t max,
                        size_t *out)
{
	json_t *v = json_object_get(head, key);
	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return fail(p, -EBADMSG, "'%s' must be a non-negative integer", key);
	if ((unsigned long long)json_integer_value(v) > max)
		return fail(p, -EMSGSIZE, "'%s' of %lld bytes is over the limit of %zu", key,
		            (long long)json_integer_value(v), max);
	*out = (size_t)json_integer_value(v);
	return 0;
}

static bool blank(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* The header line is in p->buf[0..len): the event's type and data, and the
 * sizes of the parts that follow. */
static int parse_header(struct vs_wy_parser *p)
{
	json_error_t jerr;
	json_t *head = json_loadb((const char *)p->buf, p->len, 0, &jerr);
	size_t payload_len;
	int rc;

	if (!head) {
		if (json_error_code(&jerr) == json_error_numeric_overflow)
			return fail(p, -EMSGSIZE, "a number in the header is too large");
		return fail(p, -EBADMSG, "the header is not JSON: %.100s", jerr.text);
	}
	rc = -EBADMSG;
	json_t *type = json_object_get(head, "type");
	json_t *data = json_object_get(head, "data");
	if (!json_is_object(head))
		fail(p, rc, "the header is not a JSON object");
	else if (!json_is_string(type))
		fail(p, rc, "the header has no string 'type'");
	else if (data && !json_is_object(data) && !json_is_null(data))
		fail(p, rc, "'data' must be an object");
	else if ((rc = length_field(p, head, "data_length", p->lim.max_data, &p->data_len)) == 0 &&
	         (rc = length_field(p, head, "payload_length", p->lim.max_payload, &payload_len)) ==
	                 0) {
		if (json_string_length(type) < VS_WY_TYPE_MAX)
			memcpy(p->cur.type, json_string_value(type), json_string_length(type) + 1);
		p->cur.data = json_is_object(data) ? json_deep_copy(data) : json_object();
		p->cur.payload_len = payload_len;
		if (payload_len)
			p->cur.payload = malloc(payload_len);
		rc = !p->cur.data || (payload_len && !p->cur.payload) ? -ENOMEM : 0;
	}
	json_decref(head);
	return rc;
}

static int parse_data(struct vs_wy_parser *p)
{
	json_error_t jerr;
	json_t *d = json_loadb((const char *)p->buf, p->len, 0, &jerr);
	if (!d)
		return fail(p,
		            json_error_code(&jerr) == json_error_numeric_overflow ? -EMSGSIZE
		                                                                  : -EBADMSG,
		            "the data part is not JSON: %.100s", jerr.text);
	if (!json_is_object(d)) {
		json_decref(d);
		return fail(p, -EBADMSG, "the data part is not a JSON object");
	}
	int rc = json_object_update(p->cur.data, d) == 0 ? 0 : -ENOMEM;
	json_decref(d);
	return rc;
}

/* the part after the header (or after the data part) */
static int next_part(struct vs_wy_parser *p)
{
	p->len = 0;
	if (p->state == S_HEADER && p->data_len) {
		p->state = S_DATA;
		return reserve(p, p->data_len);
	}
	p->state = S_PAYLOAD;
	return 0;
}

int vs_wy_parse(struct vs_wy_parser *p, const uint8_t *in, size_t n, size_t *used,
                struct vs_wy_event *ev)
{
	size_t i = 0;
	int rc = 0;

	while (i < n || (p->state == S_PAYLOAD && p->len == p->cur.payload_len)) {
		if (p->state == S_HEADER) {
			const uint8_t *nl = memchr(in + i, '\n', n - i);
			size_t take = nl ? (size_t)(nl - (in + i)) : n - i;
			if (p->len + take > p->lim.max_line) {
				rc = fail(p, -EMSGSIZE, "header line over the limit of %zu bytes",
				          p->lim.max_line);
				break;
			}
			if ((rc = reserve(p, p->len + take + 1)) < 0)
				break;
			memcpy(p->buf + p->len, in + i, take);
			p->len += take;
			i += take + (nl ? 1 : 0);
			if (!nl)
				break;
			if (blank(p->buf, p->len)) {
				p->len = 0; /* an empty line between events */
				continue;
			}
			if ((rc = parse_header(p)) < 0 || (rc = next_part(p)) < 0)
				break;
		} else if (p->state == S_DATA) {
			size_t take = p->data_len - p->len < n - i ? p->data_len - p->len : n - i;
			memcpy(p->buf + p->len, in + i, take);
			p->len += take;
			i += take;
			if (p->len < p->data_len)
				break;
			if ((rc = parse_data(p)) < 0 || (rc = next_part(p)) < 0)
				break;
		} else {
			size_t want = p->cur.payload_len - p->len;
			size_t take = want < n - i ? want : n - i;
			if (take)
				memcpy(p->cur.payload + p->len, in + i, take);
			p->len += take;
			i += take;
			if (p->len < p->cur.payload_len)
				break;
			*ev = p->cur;
			memset(&p->cur, 0, sizeof(p->cur));
			p->state = S_HEADER;
			p->len = 0;
			p->data_len = 0;
			rc = 1;
			break;
		}
	}
	*used = i;
	return rc;
}

/* ---- encoding ---- */

int vs_wy_buf_append(struct vs_wy_buf *b, const void *data, size_t n)
{
	if (grow(&b->p, &b->cap, b->len + n, 4096) < 0)
		return -ENOMEM;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

void vs_wy_buf_compact(struct vs_wy_buf *b)
{
	if (b->off == b->len) {
		b->off = b->len = 0;
	} else if (b->off > 65536 && b->off > b->len / 2) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
}

void vs_wy_buf_free(struct vs_wy_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int vs_wy_encode(struct vs_wy_buf *out, const char *type, const json_t *data, const void *payload,
                 size_t payload_len)
{
	char *d = data && json_object_size(data) ? json_dumps(data, JSON_COMPACT) : NULL;
	json_t *head = json_pack("{s:s, s:s}", "type", type, "version", VS_WY_VERSION);
	char *h = NULL;
	int rc = -ENOMEM;

	if (head && d)
		json_object_set_new(head, "data_length", json_integer((json_int_t)strlen(d)));
	if (head && payload_len)
		json_object_set_new(head, "payload_length", json_integer((json_int_t)payload_len));
	if (head && (!data || !json_object_size(data) || d))
		h = json_dumps(head, JSON_COMPACT);
	if (h && vs_wy_buf_append(out, h, strlen(h)) == 0 && vs_wy_buf_append(out, "\n", 1) == 0 &&
	    (!d || vs_wy_buf_append(out, d, strlen(d)) == 0) &&
	    vs_wy_buf_append(out, payload, payload_len) == 0)
		rc = 0;
	free(h);
	free(d);
	json_decref(head);
	return rc;
}
