/* test_keys.c - the API key file parser, the check, reloads (admit/keys.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "admit/keys.h"

#define KA "sk-alpha-0123456789abcdef"
#define KB "sk-bravo-!#$%&'*+-./:;<=>?@[]^_`{|}~"

static struct vs_keyset *parse_ok(const char *text)
{
	struct vs_keyset *s = NULL;
	char err[256] = "";
	int r = vs_keyset_parse(text, strlen(text), &s, err, sizeof(err));
	if (r != 0)
		fail_msg("parse failed: %s", err);
	return s;
}

/* the error of a text that must not parse; never quotes a token */
static const char *parse_err(const char *text, size_t len)
{
	static char err[256];
	struct vs_keyset *s = (struct vs_keyset *)1;
	assert_int_equal(vs_keyset_parse(text, len, &s, err, sizeof(err)), -EINVAL);
	assert_null(s);
	assert_null(strstr(err, "sk-"));
	assert_null(strstr(err, "secret"));
	return err;
}

static void test_fields_comments_blanks_and_lanes(void **state)
{
	(void)state;
	struct vs_keyset *s = parse_ok("# the keys\n"
	                               "\n"
	                               "   \t\n" KA " alice high\r\n"
	                               "\t" KB "\tbob   # no lane: normal\n"
	                               "sk-c carol LOW # a comment\n"
	                               "sk-d dave normal");
	assert_int_equal(vs_keyset_count(s), 4);
	assert_string_equal(vs_keyset_key(s, 0)->name, "alice");
	assert_int_equal(vs_keyset_key(s, 0)->lane, VS_LANE_HIGH);
	assert_string_equal(vs_keyset_key(s, 1)->name, "bob");
	assert_int_equal(vs_keyset_key(s, 1)->lane, VS_LANE_NORMAL);
	assert_int_equal(vs_keyset_key(s, 2)->lane, VS_LANE_LOW);
	assert_string_equal(vs_keyset_key(s, 3)->name, "dave");
	assert_null(vs_keyset_key(s, 4));
	assert_string_equal(vs_lane_name(vs_keyset_key(s, 2)->lane), "low");
	vs_keyset_put(s);
}

static void test_match_is_exact(void **state)
{
	(void)state;
	struct vs_keyset *s = parse_ok(KA " alice high\n" KB " bob\n");
	assert_ptr_equal(vs_keyset_match(s, KA, strlen(KA)), vs_keyset_key(s, 0));
	assert_ptr_equal(vs_keyset_match(s, KB, strlen(KB)), vs_keyset_key(s, 1));
	/* a prefix, a longer key, another case, a name, nothing */
	assert_null(vs_keyset_match(s, KA, strlen(KA) - 1));
	assert_null(vs_keyset_match(s, KA "x", strlen(KA) + 1));
	assert_null(vs_keyset_match(s, "SK-ALPHA-0123456789ABCDEF", strlen(KA)));
	assert_null(vs_keyset_match(s, "alice", 5));
	assert_null(vs_keyset_match(s, "", 0));
	assert_null(vs_keyset_match(NULL, KA, strlen(KA)));
	/* the key is not kept: only its digest */
	for (int i = 0; i < vs_keyset_count(s); i++)
		assert_null(memmem(vs_keyset_key(s, i), sizeof(struct vs_api_key), "sk-", 3));
	vs_keyset_put(s);
}

static void test_errors_name_the_line_not_the_key(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} bad[] = {
	        {"sk-secret1\n", "line 1: a key needs a name"},
	        {"# c\nsk-secret1 # no name\n", "line 2: a key needs a name"},
	        {"sk-secret1 alice urgent\n", "line 1: the lane"},
	        {"sk-secret1 al/ice\n", "line 1: the name"},
	        {"sk-secret1 alice high extra\n", "line 1: more than three fields"},
	        {"sk-secret1 alice\nsk-secret1 bob\n", "line 2: this key is already"},
	        {"sk-secret1\x01"
	         " alice\n",
	         "line 1: a control character"},
	        {"sk-s\xc3\xa9"
	         "cret alice\n",
	         "line 1: the key must be"},
	        {"", "no key"},
	        {"# only\n\n  # comments\n", "no key"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = parse_err(bad[i].text, strlen(bad[i].text));
		if (strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, bad[i].want);
	}
	/* a NUL byte inside the text */
	static const char nul[] = "sk-secret1 alice\0high\n";
	assert_string_equal(parse_err(nul, sizeof(nul) - 1),
	                    "line 1: a control character (or NUL byte) in the line");
}

static void test_limits(void **state)
{
	(void)state;
	char key[VS_API_KEY_MAX + 2], name[VS_API_KEY_NAME_MAX + 2], line[512];
	memset(key, 'k', sizeof(key));
	memset(name, 'n', sizeof(name));
	/* the longest key and name parse; one more byte does not */
	snprintf(line, sizeof(line), "%.*s %.*s\n", VS_API_KEY_MAX, key, VS_API_KEY_NAME_MAX, name);
	vs_keyset_put(parse_ok(line));
	snprintf(line, sizeof(line), "%.*s n\n", VS_API_KEY_MAX + 1, key);
	assert_non_null(strstr(parse_err(line, strlen(line)), "the key must be"));
	snprintf(line, sizeof(line), "k %.*s\n", VS_API_KEY_NAME_MAX + 1, name);
	assert_non_null(strstr(parse_err(line, strlen(line)), "the name must be"));
	/* VS_API_KEYS_MAX keys, then one more */
	size_t cap = (VS_API_KEYS_MAX + 1) * 24;
	char *text = malloc(cap);
	size_t n = 0;
	for (int i = 0; i < VS_API_KEYS_MAX; i++)
		n += (size_t)snprintf(text + n, cap - n, "k%d name%d\n", i, i % 7);
	text[n] = 0;
	struct vs_keyset *s = parse_ok(text);
	assert_int_equal(vs_keyset_count(s), VS_API_KEYS_MAX);
	assert_non_null(vs_keyset_match(s, "k999", 4));
	vs_keyset_put(s);
	n += (size_t)snprintf(text + n, cap - n, "one-more x\n");
	assert_non_null(strstr(parse_err(text, n), "more than 1000 keys"));
	free(text);
}

static void test_single_key(void **state)
{
	(void)state;
	struct vs_keyset *s;
	char err[128];
	assert_int_equal(vs_keyset_single(KA, &s, err, sizeof(err)), 0);
	assert_string_equal(vs_keyset_key(s, 0)->name, "default");
	assert_int_equal(vs_keyset_key(s, 0)->lane, VS_LANE_NORMAL);
	assert_non_null(vs_keyset_match(s, KA, strlen(KA)));
	vs_keyset_put(s);
	assert_int_equal(vs_keyset_single("two words", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(vs_keyset_single("", &s, err, sizeof(err)), -EINVAL);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A key a request holds stays valid across a reload that removes it; a
 * file that does not parse changes nothing. */
static void test_reload_swaps_and_keeps_held_keys(void **state)
{
	(void)state;
	char path[] = "/tmp/vs-test-keys-XXXXXX", err[512];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct vs_keys k;
	write_file(path, KA " alice high\n");
	assert_int_equal(vs_keys_init(&k, path, "", err, sizeof(err)), 0);
	assert_true(k.on && k.from_file);
	const struct vs_api_key *held = vs_keys_check(&k, KA, strlen(KA));
	assert_non_null(held);
	assert_null(vs_keys_check(&k, KB, strlen(KB)));

	write_file(path, KB " bob low\n");
	assert_int_equal(vs_keys_reload(&k, err, sizeof(err)), 0);
	assert_null(vs_keys_check(&k, KA, strlen(KA)));
	const struct vs_api_key *b = vs_keys_check(&k, KB, strlen(KB));
	assert_non_null(b);
	assert_string_equal(held->name, "alice"); /* still readable: the old set lives */
	assert_int_equal(held->lane, VS_LANE_HIGH);
	vs_api_key_release(held);

	write_file(path, KA " alice nope\n");
	assert_true(vs_keys_reload(&k, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "line 1: the lane"));
	assert_non_null(strstr(err, path));
	assert_null(strstr(err, KA));
	assert_int_equal(vs_keys_count(&k), 1);
	unlink(path);
	assert_int_equal(vs_keys_reload(&k, err, sizeof(err)), -ENOENT);
	const struct vs_api_key *b2 = vs_keys_check(&k, KB, strlen(KB));
	assert_ptr_equal(b2, b);
	vs_api_key_release(b2);
	vs_api_key_release(b);
	vs_keys_destroy(&k);

	/* off, and API_KEY: not reloadable */
	assert_int_equal(vs_keys_init(&k, "", "", err, sizeof(err)), 0);
	assert_false(k.on);
	vs_keys_destroy(&k);
	assert_int_equal(vs_keys_init(&k, NULL, KA, err, sizeof(err)), 0);
	assert_true(k.on && !k.from_file);
	assert_int_equal(vs_keys_reload(&k, err, sizeof(err)), -ENOTSUP);
	vs_keys_destroy(&k);
	assert_int_equal(vs_keys_init(&k, "/nonexistent/keys", NULL, err, sizeof(err)), -ENOENT);
	vs_keys_destroy(&k);
}

static void test_lane_names(void **state)
{
	(void)state;
	enum vs_lane l;
	assert_true(vs_lane_parse("High", 4, &l) && l == VS_LANE_HIGH);
	assert_true(vs_lane_parse("normal", 6, &l) && l == VS_LANE_NORMAL);
	assert_false(vs_lane_parse("lo", 2, &l));
	assert_false(vs_lane_parse("lowest", 6, &l));
	assert_string_equal(vs_lane_name(VS_LANE_HIGH), "high");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fields_comments_blanks_and_lanes),
	        cmocka_unit_test(test_match_is_exact),
	        cmocka_unit_test(test_errors_name_the_line_not_the_key),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_single_key),
	        cmocka_unit_test(test_reload_swaps_and_keeps_held_keys),
	        cmocka_unit_test(test_lane_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
