/* proto.h - the frame protocol between the front and its engine workers.
 *
 * DESIGN
 * One SOCK_STREAM socketpair per worker. Every message is a frame:
 *
 *   +--------+--------+--------+--------+--------------------+
 *   | magic "VS" + version (u32 BE)     | type u16 | flags u16 | length u32 | payload |
 *
 * 12-byte header in network byte order, payload of `length` bytes (at most
 * VS_FRAME_MAX). Control payloads are JSON objects (jansson); AUDIO payloads
 * are raw encoded bytes. A request that carries an upload passes the spooled
 * file's descriptor with SCM_RIGHTS on the header's first byte, so a 100 MB
 * upload is never copied through the socket or held in memory twice.
 *
 *   front -> worker                     worker -> front
 *   TRANSCRIBE {params} + fd            LOADED {engine, model, load_ms}   (once, after load)
 *     (params.pcm {rate, width, channels}: the file is headerless PCM)
 *   SYNTHESIZE {params}                 RESULT {verbose_json | voices}
 *   VOICES {}                           AUDIO  <bytes> ... END {stats}
 *                                       SEGMENT {text, start, end} ... (TRANSCRIBE
 *                                         with "stream": each utterance once decoded)
 *                                       ERROR  {status, message, param, code}
 *
 * A worker handles one request at a time; every request ends with exactly one
 * RESULT, END or ERROR. Closing the socket tells a worker to exit.
 *
 * Large requests. The front sends from HTTP threads on a non-blocking socket
 * and must never wait for a worker, yet a TTS input may be megabytes, far
 * more than the socket buffer. So the front posts (vs_frame_post): a payload
 * over VS_FRAME_INLINE_MAX is written to a sealed memfd whose descriptor
 * travels with the header (flag VS_FRAME_F_PAYLOAD_FD, length = its size, no
 * inline bytes), as the ASR upload does; what remains inline always fits an
 * idle worker's empty socket buffer, so a post never blocks and never writes
 * half a frame. vs_frame_recv reads such a payload back transparently.
 *
 * The worker reads with vs_frame_recv() (blocking). The front reads with the
 * incremental vs_frame_reader (non-blocking, from its reactor thread) and
 * never receives descriptors (a frame flagged VS_FRAME_F_PAYLOAD_FD is a
 * protocol error there).
 */
#ifndef VS_PROTO_H
#define VS_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define VS_FRAME_MAGIC 0x56530001u /* "VS", protocol version 1 */
#define VS_FRAME_HDR 12
#define VS_FRAME_MAX (16u << 20)
/* largest payload vs_frame_post sends inline; far below the ~200 KiB an
 * AF_UNIX socket buffers */
#define VS_FRAME_INLINE_MAX (32u << 10)
#define VS_FRAME_F_PAYLOAD_FD 0x0001u /* payload is in the first SCM_RIGHTS fd */

enum vs_msg_type {
	VS_MSG_TRANSCRIBE = 1,
	VS_MSG_SYNTHESIZE = 2,
	VS_MSG_VOICES = 3,
	VS_MSG_LOADED = 10,
	VS_MSG_RESULT = 11,
	VS_MSG_AUDIO = 12,
	VS_MSG_END = 13,
	VS_MSG_ERROR = 14,
	VS_MSG_SEGMENT = 15, /* a streamed transcription's next segment, before RESULT */
	/* front <-> spawner (spawner.c): SPAWN {argv:[...]} + the worker's end
	 * of its socketpair; SPAWNED {pid} or ERROR */
	VS_MSG_SPAWN = 20,
	VS_MSG_SPAWNED = 21,
};

struct vs_frame {
	uint16_t type;
	uint16_t flags;
	uint32_t len;
	uint8_t *data; /* malloc'd, NUL-terminated for convenience; NULL if len == 0 */
	int fd;        /* received descriptor (O_CLOEXEC) or -1 */
};

void vs_frame_clear(struct vs_frame *f); /* frees data, closes fd */

/* Sends one frame, looping over partial writes; pass_fd >= 0 is sent with
 * SCM_RIGHTS. Blocks on a blocking socket (workers). On a non-blocking one
 * an EAGAIN is returned as is, possibly after part of the frame: the front
 * uses vs_frame_post, which only sends what fits an idle worker's buffer.
 * Returns 0, -EMSGSIZE, -EPIPE (peer gone) or another -errno. Never raises SIGPIPE. */
int vs_frame_send(int sock, uint16_t type, const void *data, uint32_t len, int pass_fd);
/* Same with a JSON payload (compact encoding). */
int vs_frame_send_json(int sock, uint16_t type, const json_t *j, int pass_fd);

/* Non-blocking send for the front, to a worker that has read everything sent
 * to it before (an idle worker): a payload over VS_FRAME_INLINE_MAX goes in a
 * memfd (see above). Never blocks. Returns 0, -EPIPE (worker gone), -EAGAIN
 * (the socket buffer was not empty: the stream may hold part of a frame, so
 * the worker must not be used again) or another -errno. */
int vs_frame_post(int sock, uint16_t type, const void *data, uint32_t len, int pass_fd);
int vs_frame_post_json(int sock, uint16_t type, const json_t *j, int pass_fd);

/* Blocking receive of one whole frame (a payload in a memfd is read back).
 * Returns 0, -EPIPE on EOF at a frame boundary, -EPROTO on a bad
 * header/truncated frame, or another -errno. */
int vs_frame_recv(int sock, struct vs_frame *f);

/* Incremental reader for a non-blocking socket. */
struct vs_frame_reader {
	uint8_t hdr[VS_FRAME_HDR];
	size_t have; /* bytes of header+payload read so far */
	struct vs_frame cur;
};

void vs_frame_reader_init(struct vs_frame_reader *r);
void vs_frame_reader_reset(struct vs_frame_reader *r); /* frees a partial frame */
/* Reads what is available. Returns 1 with *out filled (caller owns it, clear
 * with vs_frame_clear), 0 when more bytes are needed (EAGAIN), -EPIPE on EOF,
 * -EPROTO on a bad header, or another -errno. */
int vs_frame_read(struct vs_frame_reader *r, int sock, struct vs_frame *out);

/* Parse a frame's JSON payload (NULL if not a JSON object). */
json_t *vs_frame_json(const struct vs_frame *f);

#endif
