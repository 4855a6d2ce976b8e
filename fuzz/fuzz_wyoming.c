/* fuzz_wyoming.c - libFuzzer driver for the Wyoming event parser
 * (src/wyoming/event.h).
 *
 * DESIGN
 * The input is the byte stream a Wyoming client sends. It is fed to the
 * parser in pieces whose size comes from the first input byte (1..256), so
 * events split at every offset are covered, with small limits (header line
 * and data 512 bytes, payload 1024) so the limit paths are reached. Checked,
 * beyond "no crash": a call consumes at most what it was given and, when it
 * asks for more, all of it; an event's type is NUL-terminated and shorter
 * than VS_WY_TYPE_MAX, its data an object, its payload exactly
 * payload_len bytes within the limit; after an error the reason is set;
 * and every event, encoded again with vs_wy_encode, parses back to the
 * same type, data and payload (the server's writer and reader agree).
 */
#include "fuzz.h"
#include "wyoming/event.h"

#include <errno.h>
#include <string.h>

static const struct vs_wy_limits lim = {.max_line = 512, .max_data = 512, .max_payload = 1024};

/* ev encoded and parsed back (whole) must be ev */
static void round_trip(const struct vs_wy_event *ev)
{
	struct vs_wy_buf b = {0};
	struct vs_wy_parser p;
	struct vs_wy_event back = {0};
	struct vs_wy_limits big = {1u << 20, 1u << 20, 1u << 20};
	size_t used;

	if (!ev->type[0] ||
	    vs_wy_encode(&b, ev->type, ev->data, ev->payload, ev->payload_len) < 0) {
		vs_wy_buf_free(&b);
		return;
	}
	vs_wy_parser_init(&p, &big);
	int rc = vs_wy_parse(&p, b.p, b.len, &used, &back);
	FUZZ_CHECK(rc == 1 && used == b.len);
	FUZZ_CHECK(strcmp(back.type, ev->type) == 0);
	FUZZ_CHECK(json_equal(back.data, ev->data));
	FUZZ_CHECK(back.payload_len == ev->payload_len);
	FUZZ_CHECK(ev->payload_len == 0 || memcmp(back.payload, ev->payload, ev->payload_len) == 0);
	vs_wy_event_clear(&back);
	vs_wy_parser_reset(&p);
	vs_wy_buf_free(&b);
}

static void check_event(const struct vs_wy_event *ev)
{
	FUZZ_CHECK(memchr(ev->type, 0, sizeof(ev->type)) != NULL);
	FUZZ_CHECK(json_is_object(ev->data));
	FUZZ_CHECK(ev->payload_len <= lim.max_payload);
	FUZZ_CHECK((ev->payload_len == 0) == (ev->payload == NULL));
	round_trip(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_wy_parser p;
	size_t chunk = size ? (size_t)data[0] + 1 : 1, off = 0;
	int rc = 0;

	vs_wy_parser_init(&p, &lim);
	while (off < size && rc >= 0) {
		size_t n = size - off < chunk ? size - off : chunk;
		const uint8_t *in = data + off;
		while (n > 0) {
			struct vs_wy_event ev = {0};
			size_t used = 0;
			rc = vs_wy_parse(&p, in, n, &used, &ev);
			FUZZ_CHECK(used <= n);
			if (rc == 1) {
				check_event(&ev);
				vs_wy_event_clear(&ev);
			} else if (rc == 0) {
				FUZZ_CHECK(used == n);
			} else {
				FUZZ_CHECK(rc == -EBADMSG || rc == -EMSGSIZE || rc == -ENOMEM);
				FUZZ_CHECK(rc == -ENOMEM || p.err[0] != '\0');
				break;
			}
			in += used;
			n -= used;
			off += used;
		}
		if (rc < 0)
			break;
	}
	vs_wy_parser_reset(&p);
	return 0;
}
