/* test_proto.c - the front/worker frame protocol. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "worker/proto.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_json_frame_round_trips(void **state)
{
	int sv[2];
	struct vs_frame f;
	(void)state;
	pair(sv);
	json_t *j = json_pack("{s:s, s:i}", "language", "en", "n", 42);
	assert_int_equal(vs_frame_send_json(sv[0], VS_MSG_TRANSCRIBE, j, -1), 0);
	json_decref(j);
	assert_int_equal(vs_frame_recv(sv[1], &f), 0);
	assert_int_equal(f.type, VS_MSG_TRANSCRIBE);
	assert_int_equal(f.fd, -1);
	json_t *got = vs_frame_json(&f);
	assert_non_null(got);
	assert_string_equal(json_string_value(json_object_get(got, "language")), "en");
	assert_int_equal(json_integer_value(json_object_get(got, "n")), 42);
	json_decref(got);
	vs_frame_clear(&f);
	close(sv[0]);
	close(sv[1]);
}

static void test_descriptor_is_passed_and_cloexec(void **state)
{
	int sv[2], p[2];
	struct vs_frame f;
	(void)state;
	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(vs_frame_send(sv[0], VS_MSG_TRANSCRIBE, "{}", 2, p[0]), 0);
	assert_int_equal(vs_frame_recv(sv[1], &f), 0);
	assert_true(f.fd >= 0);
	assert_int_not_equal(f.fd, p[0]);
	assert_true(fcntl(f.fd, F_GETFD) & FD_CLOEXEC);
	/* the received descriptor reads what the original's pipe carries */
	assert_int_equal(write(p[1], "hi", 2), 2);
	char buf[4] = {0};
	assert_int_equal(read(f.fd, buf, 2), 2);
	assert_string_equal(buf, "hi");
	vs_frame_clear(&f);
	assert_int_equal(f.fd, -1);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void test_incremental_reader_reassembles_split_frames(void **state)
{
	int sv[2];
	struct vs_frame_reader rd;
	struct vs_frame f;
	uint8_t payload[70000];
	(void)state;
	pair(sv);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	vs_frame_reader_init(&rd);
	/* nothing yet: need more */
	assert_int_equal(vs_frame_read(&rd, sv[1], &f), 0);
	/* a frame sent in a separate thread-free way: write header+payload in pieces */
	int wsv[2];
	pair(wsv);
	assert_int_equal(vs_frame_send(wsv[0], VS_MSG_AUDIO, payload, sizeof(payload), -1), 0);
	uint8_t raw[VS_FRAME_HDR + sizeof(payload)];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = read(wsv[1], raw + got, sizeof(raw) - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	/* feed 5 bytes, then the rest in two parts */
	assert_int_equal(write(sv[0], raw, 5), 5);
	assert_int_equal(vs_frame_read(&rd, sv[1], &f), 0);
	assert_int_equal(write(sv[0], raw + 5, 30000), 30000);
	assert_int_equal(vs_frame_read(&rd, sv[1], &f), 0);
	size_t rest = sizeof(raw) - 30005;
	size_t off = 30005;
	int r = 0;
	while (off < sizeof(raw)) {
		size_t chunk = sizeof(raw) - off > 20000 ? 20000 : sizeof(raw) - off;
		assert_int_equal(write(sv[0], raw + off, chunk), (ssize_t)chunk);
		off += chunk;
		r = vs_frame_read(&rd, sv[1], &f);
		if (r == 1)
			break;
	}
	(void)rest;
	assert_int_equal(r, 1);
	assert_int_equal(f.type, VS_MSG_AUDIO);
	assert_int_equal(f.len, sizeof(payload));
	assert_memory_equal(f.data, payload, sizeof(payload));
	vs_frame_clear(&f);
	close(sv[0]);
	assert_int_equal(vs_frame_read(&rd, sv[1], &f), -EPIPE);
	close(sv[1]);
	close(wsv[0]);
	close(wsv[1]);
}

static void test_bad_magic_is_a_protocol_error(void **state)
{
	int sv[2];
	struct vs_frame f;
	struct vs_frame_reader rd;
	(void)state;
	pair(sv);
	uint8_t junk[VS_FRAME_HDR] = "GET / HTTP/";
	assert_int_equal(write(sv[0], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	assert_int_equal(vs_frame_recv(sv[1], &f), -EPROTO);
	assert_int_equal(write(sv[0], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	vs_frame_reader_init(&rd);
	assert_int_equal(vs_frame_read(&rd, sv[1], &f), -EPROTO);
	vs_frame_reader_reset(&rd);
	close(sv[0]);
	close(sv[1]);
}

static void test_oversized_frame_is_refused(void **state)
{
	int sv[2];
	(void)state;
	pair(sv);
	assert_int_equal(vs_frame_send(sv[0], VS_MSG_AUDIO, "", VS_FRAME_MAX + 1, -1), -EMSGSIZE);
	close(sv[0]);
	close(sv[1]);
}

static void test_eof_mid_frame_is_protocol_error_and_clean_eof_is_epipe(void **state)
{
	int sv[2];
	struct vs_frame f;
	(void)state;
	pair(sv);
	uint8_t raw[VS_FRAME_HDR + 4];
	int wsv[2];
	pair(wsv);
	assert_int_equal(vs_frame_send(wsv[0], VS_MSG_AUDIO, "abcd", 4, -1), 0);
	assert_int_equal(read(wsv[1], raw, sizeof(raw)), (ssize_t)sizeof(raw));
	assert_int_equal(write(sv[0], raw, VS_FRAME_HDR + 2), VS_FRAME_HDR + 2);
	shutdown(sv[0], SHUT_WR);
	assert_int_equal(vs_frame_recv(sv[1], &f), -EPROTO);
	close(sv[0]);
	close(sv[1]);
	pair(sv);
	close(sv[0]);
	assert_int_equal(vs_frame_recv(sv[1], &f), -EPIPE);
	close(sv[1]);
	close(wsv[0]);
	close(wsv[1]);
}

/* A payload bigger than the socket buffer is posted without blocking (memfd),
 * with a passed descriptor beside it; the worker's reader gets both back.
 * The front's reader refuses such a frame (it takes no descriptors). */
static void test_large_post_never_blocks_and_round_trips(void **state)
{
	int sv[2], p[2];
	struct vs_frame f;
	size_t len = 1u << 20; /* 1 MiB: about five socket buffers */
	char *big = malloc(len);
	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* nobody reads yet: a blocking or partial send would hang or fail here */
	assert_int_equal(vs_frame_post(sv[0], VS_MSG_SYNTHESIZE, big, (uint32_t)len, p[0]), 0);
	assert_int_equal(vs_frame_post(sv[0], VS_MSG_VOICES, "{}", 2, -1), 0); /* inline */
	fcntl(sv[1], F_SETFL, 0);
	assert_int_equal(vs_frame_recv(sv[1], &f), 0);
	assert_int_equal(f.type, VS_MSG_SYNTHESIZE);
	assert_int_equal(f.len, len);
	assert_memory_equal(f.data, big, len);
	assert_true(f.fd >= 0 && (fcntl(f.fd, F_GETFD) & FD_CLOEXEC));
	assert_int_equal(write(p[1], "x", 1), 1);
	char c = 0;
	assert_int_equal(read(f.fd, &c, 1), 1);
	assert_int_equal(c, 'x');
	vs_frame_clear(&f);
	assert_int_equal(vs_frame_recv(sv[1], &f), 0);
	assert_int_equal(f.type, VS_MSG_VOICES);
	assert_int_equal(f.fd, -1);
	vs_frame_clear(&f);

	/* the front's incremental reader: protocol error, nothing leaked */
	struct vs_frame_reader r;
	vs_frame_reader_init(&r);
	assert_int_equal(vs_frame_post(sv[1], VS_MSG_AUDIO, big, (uint32_t)len, -1), 0);
	assert_int_equal(vs_frame_read(&r, sv[0], &f), -EPROTO);
	vs_frame_reader_reset(&r);
	free(big);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_json_frame_round_trips),
	        cmocka_unit_test(test_descriptor_is_passed_and_cloexec),
	        cmocka_unit_test(test_incremental_reader_reassembles_split_frames),
	        cmocka_unit_test(test_bad_magic_is_a_protocol_error),
	        cmocka_unit_test(test_oversized_frame_is_refused),
	        cmocka_unit_test(test_eof_mid_frame_is_protocol_error_and_clean_eof_is_epipe),
	        cmocka_unit_test(test_large_post_never_blocks_and_round_trips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
