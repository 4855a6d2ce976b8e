/* event.h - the Wyoming wire format: an incremental event parser and the
 * event encoder. Pure: no I/O, no server state (fuzz/fuzz_wyoming.c drives it).
 *
 * DESIGN
 * An event on the wire (the protocol's README, OHF-Voice/wyoming):
 *
 *   {"type": "...", "data": {...}, "data_length": N, "payload_length": M, "version": "..."}\n
 *   <N bytes: a JSON object merged over the header's "data">
 *   <M bytes: binary payload, typically PCM>
 *
 * The parser is fed whatever the socket gave and hands back whole events.
 * Every size a client controls is bounded by vs_wy_limits (settings
 * WYOMING_MAX_DATA_KB bounds the header line and data_length,
 * WYOMING_MAX_PAYLOAD_KB the payload), checked before anything is buffered:
 * a header line longer than the limit is refused before its newline comes.
 * As the reference does, unknown keys are ignored, and an event of any type
 * is returned (the caller ignores types it does not know); a type longer than
 * VS_WY_TYPE_MAX - 1 cannot be a known one and comes back as "". A blank
 * line is skipped. Malformed input (not a JSON object, type not a string,
 * data not an object, a length not a non-negative integer, invalid UTF-8)
 * is -EBADMSG; a size over its limit (or a number JSON cannot hold) is
 * -EMSGSIZE; either way p->err says why and the stream cannot be resynced.
 */
#ifndef VS_WY_EVENT_H
#define VS_WY_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the protocol version we write in every header (the description followed) */
#define VS_WY_VERSION "1.9.0"
#define VS_WY_TYPE_MAX 48

struct vs_wy_limits {
	size_t max_line;    /* header line, without its newline */
	size_t max_data;    /* data_length */
	size_t max_payload; /* payload_length */
};

struct vs_wy_event {
	char type[VS_WY_TYPE_MAX]; /* "" when too long to be a known type */
	json_t *data;              /* always an object: header data, data part merged over it */
	uint8_t *payload;          /* malloc'd; NULL when payload_len == 0 */
	size_t payload_len;
};

void vs_wy_event_clear(struct vs_wy_event *ev);

struct vs_wy_parser {
	struct vs_wy_limits lim;
	int state; /* header line, data part, payload */
	uint8_t *buf;
	size_t len, cap;
	size_t data_len;
	struct vs_wy_event cur;
	char err[160];
};

void vs_wy_parser_init(struct vs_wy_parser *p, const struct vs_wy_limits *lim);
/* frees what a partial event holds; the parser may be used again */
void vs_wy_parser_reset(struct vs_wy_parser *p);
/* true when no part of an event is buffered (between events) */
bool vs_wy_parser_idle(const struct vs_wy_parser *p);

/* Consumes bytes of in[0..n), *used says how many. Returns 1 with *ev filled
 * (the caller clears it; bytes after the event are left unconsumed), 0 when
 * every byte was consumed and the event is not complete, -EBADMSG or
 * -EMSGSIZE (p->err says why; do not feed the parser again), -ENOMEM. */
int vs_wy_parse(struct vs_wy_parser *p, const uint8_t *in, size_t n, size_t *used,
                struct vs_wy_event *ev);

/* A growing byte buffer the encoder appends to; off = bytes already taken
 * from the front (written to a socket). */
struct vs_wy_buf {
	uint8_t *p;
	size_t len, off, cap;
};

static inline size_t vs_wy_buf_pending(const struct vs_wy_buf *b)
{
	return b->len - b->off;
}
int vs_wy_buf_append(struct vs_wy_buf *b, const void *data, size_t n);
/* after taking bytes: moves the rest to the front when worth it */
void vs_wy_buf_compact(struct vs_wy_buf *b);
void vs_wy_buf_free(struct vs_wy_buf *b);

/* Appends one event: the header line (type, version, data_length,
 * payload_length), data (NULL or an empty object: none) as the data part,
 * then the payload. 0 or -ENOMEM. */
int vs_wy_encode(struct vs_wy_buf *out, const char *type, const json_t *data, const void *payload,
                 size_t payload_len);

#endif
