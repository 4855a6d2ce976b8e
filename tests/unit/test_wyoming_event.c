/* test_wyoming_event.c - the Wyoming event parser and encoder
 * (src/wyoming/event.h): events fed one byte at a time, the data part merged
 * over the header's data, every limit exactly at and one past its value,
 * malformed headers, and what the encoder writes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wyoming/event.h"

static const struct vs_wy_limits lim = {.max_line = 256, .max_data = 64, .max_payload = 16};

/* feeds s in pieces of `step` bytes; returns the parser's last result and
 * the first event, if any */
static int feed(const char *s, size_t len, size_t step, struct vs_wy_event *ev, char *err,
                size_t errlen)
{
	struct vs_wy_parser p;
	int rc = 0;
	size_t off = 0;

	vs_wy_parser_init(&p, &lim);
	while (off < len) {
		size_t n = len - off < step ? len - off : step, used = 0;
		rc = vs_wy_parse(&p, (const uint8_t *)s + off, n, &used, ev);
		off += used;
		if (rc != 0)
			break;
	}
	snprintf(err, errlen, "%s", p.err);
	vs_wy_parser_reset(&p);
	return rc;
}

static void test_byte_by_byte_with_merge(void **state)
{
	const char s[] = "{\"type\":\"audio-chunk\",\"data\":{\"rate\":1,\"x\":\"h\"},"
	                 "\"data_length\":11,\"payload_length\":3,\"version\":\"1.0\",\"k\":[]}\n"
	                 "{\"rate\":16}abc";
	char err[160];
	(void)state;
	for (size_t step = 1; step <= sizeof(s); step++) {
		struct vs_wy_event ev = {0};
		assert_int_equal(feed(s, sizeof(s) - 1, step, &ev, err, sizeof(err)), 1);
		assert_string_equal(ev.type, "audio-chunk");
		assert_int_equal(json_integer_value(json_object_get(ev.data, "rate")), 16);
		assert_string_equal(json_string_value(json_object_get(ev.data, "x")), "h");
		assert_int_equal(ev.payload_len, 3);
		assert_memory_equal(ev.payload, "abc", 3);
		vs_wy_event_clear(&ev);
	}
}

static void test_two_events_and_blank_lines(void **state)
{
	const char s[] = "\r\n{\"type\":\"ping\"}\n\n{\"type\":\"describe\"}\n";
	struct vs_wy_parser p;
	struct vs_wy_event ev = {0};
	size_t used, off = 0;
	(void)state;
	vs_wy_parser_init(&p, &lim);
	assert_int_equal(vs_wy_parse(&p, (const uint8_t *)s, sizeof(s) - 1, &used, &ev), 1);
	assert_string_equal(ev.type, "ping");
	assert_true(json_is_object(ev.data) && json_object_size(ev.data) == 0);
	assert_null(ev.payload);
	vs_wy_event_clear(&ev);
	off = used;
	assert_int_equal(vs_wy_parse(&p, (const uint8_t *)s + off, sizeof(s) - 1 - off, &used, &ev),
	                 1);
	assert_string_equal(ev.type, "describe");
	assert_int_equal(off + used, sizeof(s) - 1);
	assert_true(vs_wy_parser_idle(&p));
	vs_wy_event_clear(&ev);
	vs_wy_parser_reset(&p);
}

static void test_limits(void **state)
{
	char s[600], err[160];
	struct vs_wy_event ev = {0};
	(void)state;
	/* data and payload exactly at their limits, then one past */
	snprintf(s, sizeof(s),
	         "{\"type\":\"t\",\"data_length\":64,\"payload_length\":16}\n"
	         "{\"a\":\"%056d\"}0123456789abcdef",
	         0);
	assert_int_equal(strlen(s),
	                 strlen("{\"type\":\"t\",\"data_length\":64,\"payload_length\":16}\n") +
	                         64 + 16);
	assert_int_equal(feed(s, strlen(s), 7, &ev, err, sizeof(err)), 1);
	assert_int_equal(ev.payload_len, 16);
	vs_wy_event_clear(&ev);
	assert_int_equal(
	        feed("{\"type\":\"t\",\"data_length\":65}\n", 30, 100, &ev, err, sizeof(err)),
	        -EMSGSIZE);
	assert_non_null(strstr(err, "data_length"));
	assert_int_equal(
	        feed("{\"type\":\"t\",\"payload_length\":17}\n", 33, 100, &ev, err, sizeof(err)),
	        -EMSGSIZE);
	/* a header line over the limit is refused before its newline */
	memset(s, ' ', 300);
	assert_int_equal(feed(s, 300, 10, &ev, err, sizeof(err)), -EMSGSIZE);
	assert_int_equal(feed("{\"type\":\"t\",\"data_length\":1e400}\n", 33, 100, &ev, err,
	                      sizeof(err)) < 0,
	                 1);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	        "x\n",
	        "[]\n",
	        "{\"type\":1}\n",
	        "{\"type\":\"t\",\"data\":[]}\n",
	        "{\"type\":\"t\",\"data_length\":-2}\n",
	        "{\"type\":\"t\",\"payload_length\":2.0}\n",
	        "{\"type\":\"t\",\"data_length\":2}\n[]",
	        "{\"type\":\"t\"} x\n",
	};
	char err[160];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vs_wy_event ev = {0};
		assert_int_equal(feed(bad[i], strlen(bad[i]), 3, &ev, err, sizeof(err)), -EBADMSG);
		assert_true(err[0] != '\0');
	}
}

static void test_long_type_is_unknown(void **state)
{
	char s[200], err[160];
	struct vs_wy_event ev = {0};
	(void)state;
	snprintf(s, sizeof(s), "{\"type\":\"%0*d\"}\n", VS_WY_TYPE_MAX, 0);
	assert_int_equal(feed(s, strlen(s), 5, &ev, err, sizeof(err)), 1);
	assert_string_equal(ev.type, "");
	vs_wy_event_clear(&ev);
}

static void test_encode(void **state)
{
	struct vs_wy_buf b = {0};
	json_t *d = json_pack("{s:s}", "text", "hi");
	(void)state;
	assert_int_equal(vs_wy_encode(&b, "pong", d, "xyz", 3), 0);
	assert_int_equal(vs_wy_encode(&b, "describe", NULL, NULL, 0), 0);
	const char *want = "{\"type\":\"pong\",\"version\":\"" VS_WY_VERSION
	                   "\",\"data_length\":13,\"payload_length\":3}\n{\"text\":\"hi\"}xyz"
	                   "{\"type\":\"describe\",\"version\":\"" VS_WY_VERSION "\"}\n";
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.p, want, b.len);
	json_decref(d);
	vs_wy_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_byte_by_byte_with_merge),
	        cmocka_unit_test(test_two_events_and_blank_lines),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_long_type_is_unknown),
	        cmocka_unit_test(test_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
