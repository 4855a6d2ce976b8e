/* fuzz_frame.c - libFuzzer driver for the worker frame readers (src/worker/proto.h).
 *
 * DESIGN
 * The input is the byte stream a worker writes to the front (or the front to
 * a worker). Both readers see it through a real socketpair, as in production:
 *  - vs_frame_read (the front's incremental reader, non-blocking): the stream
 *    is written in chunks whose size comes from the first input byte (1..256),
 *    and after each chunk the reader runs until it wants more, so frames
 *    split at every possible offset are covered; then the write end is closed
 *    and the reader runs to EOF;
 *  - vs_frame_recv (the worker's blocking reader) on the whole stream with
 *    the write end closed, until it fails.
 * Frames are checked (payload NUL-terminated, no descriptor appears out of
 * nowhere), parsed as JSON and freed. The stream is capped at 64 KiB so it
 * always fits the socket buffer and the driver never blocks.
 */
#include "fuzz.h"
#include "worker/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STREAM_MAX (64u * 1024)

static void check_frame(struct vs_frame *f)
{
	FUZZ_CHECK(f->len <= VS_FRAME_MAX);
	FUZZ_CHECK(f->fd == -1);
	FUZZ_CHECK(f->len == 0 || (f->data && f->data[f->len] == 0));
	json_decref(vs_frame_json(f));
	vs_frame_clear(f);
}

/* Writes what fits; returns bytes written (the write end is non-blocking). */
static size_t put(int sock, const uint8_t *p, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = send(sock, p + done, n - done, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return done;
}

/* Runs the incremental reader until it wants more or fails; returns its last result. */
static int drain(struct vs_frame_reader *r, int sock)
{
	for (;;) {
		struct vs_frame f = {.fd = -1};
		int rc = vs_frame_read(r, sock, &f);
		if (rc <= 0)
			return rc;
		FUZZ_CHECK(rc == 1);
		check_frame(&f);
	}
}

static void incremental(const uint8_t *data, size_t size)
{
	struct vs_frame_reader r;
	int sv[2];
	size_t chunk = size ? (size_t)data[0] + 1 : 1, off = 0;
	int rc = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	vs_frame_reader_init(&r);
	while (off < size && rc >= 0) {
		size_t n = size - off < chunk ? size - off : chunk;
		size_t w = put(sv[1], data + off, n);
		FUZZ_CHECK(w == n); /* drained after every chunk: there is always room */
		off += n;
		rc = drain(&r, sv[0]);
	}
	if (rc >= 0) {
		close(sv[1]);
		sv[1] = -1;
		rc = drain(&r, sv[0]);
		/* at EOF the reader must not ask for more: it ends or fails */
		FUZZ_CHECK(rc < 0);
	}
	FUZZ_CHECK(rc == 0 || rc == -EPIPE || rc == -EPROTO);
	vs_frame_reader_reset(&r);
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

static void blocking(const uint8_t *data, size_t size)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	fcntl(sv[1], F_SETFL, O_NONBLOCK); /* a short write truncates, never blocks */
	put(sv[1], data, size);
	close(sv[1]);
	for (;;) {
		struct vs_frame f;
		int rc = vs_frame_recv(sv[0], &f);
		if (rc < 0) {
			FUZZ_CHECK(rc == -EPIPE || rc == -EPROTO);
			FUZZ_CHECK(f.data == NULL && f.fd == -1);
			break;
		}
		check_frame(&f);
	}
	close(sv[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > STREAM_MAX)
		size = STREAM_MAX;
	incremental(data, size);
	blocking(data, size);
	return 0;
}
