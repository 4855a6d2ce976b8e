/* test_openai.c - unit tests for src/api/openai*.c (OpenAI wire shapes).
 *
 * DESIGN
 * Byte-exact checks of every rendered format from one hand-built transcript
 * (two segments, the second past one hour with a millisecond carry), the
 * error body for each status, and every rejection class of both request
 * validators. Transcripts are built on the stack and released with a local
 * helper so the test does not depend on the engine library.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "api/openai.h"

static const char *const tts_models[] = {"tts-1", "tts-1-hd", NULL};
static const char *const asr_models[] = {"whisper-1", NULL};

/* ---------------------------------------------------------------- helpers */

static void assert_near(double a, double b)
{
	if (fabs(a - b) > 1e-9) {
		print_error("%.12f != %.12f\n", a, b);
		fail();
	}
}

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		print_error("bad JSON: %s: %s\n", e.text, s);
	assert_non_null(j);
	return j;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Two segments; the second starts past one hour and ends on a value that
 * rounds up into the next second (3662.9996 -> 01:01:03.000). */
static void make_transcript(struct vs_transcript *t)
{
	static struct vs_word words[4];
	static struct vs_segment segs[2];

	words[0] = (struct vs_word){.word = "Hello", .start = 0.0, .end = 0.7, .probability = 0.9};
	words[1] = (struct vs_word){.word = "world.", .start = 0.8, .end = 1.5, .probability = 0.8};
	words[2] = (struct vs_word){
	        .word = "Second", .start = 3661.2346, .end = 3662.0, .probability = 1.0};
	words[3] = (struct vs_word){
	        .word = "line", .start = 3662.1, .end = 3662.9996, .probability = 0.5};
	segs[0] = (struct vs_segment){
	        .start = 0.0, .end = 1.5, .text = "Hello world.", .first_word = 0, .n_words = 2};
	segs[1] = (struct vs_segment){.start = 3661.2346,
	                              .end = 3662.9996,
	                              .text = "Second line",
	                              .first_word = 2,
	                              .n_words = 2};
	*t = (struct vs_transcript){
	        .text = "Hello world. Second line",
	        .language = "en",
	        .duration = 3663.0004,
	        .segments = segs,
	        .n_segments = 2,
	        .words = words,
	        .n_words = 4,
	};
}

static char *render(const json_t *v, const char *fmt, bool words, const char **ct)
{
	char *body = NULL;
	assert_int_equal(vs_transcript_render(v, fmt, words, &body, ct), 0);
	assert_non_null(body);
	return body;
}

static void assert_render(const json_t *v, const char *fmt, const char *want_ct, const char *want)
{
	const char *ct = NULL;
	char *body = render(v, fmt, false, &ct);
	assert_string_equal(body, want);
	assert_string_equal(ct, want_ct);
	free(body);
}

/* ---------------------------------------------------------------- errors */

static void check_error(int status, const char *param, const char *code, const char *want_type,
                        const char *want_code)
{
	char *body = vs_oai_error_body(status, "Something went wrong.", param, code);
	assert_non_null(body);
	json_t *j = parse(body);
	json_t *e = json_object_get(j, "error");
	assert_true(json_is_object(e));
	assert_int_equal(json_object_size(e), 4);
	assert_string_equal(jstr(e, "message"), "Something went wrong.");
	assert_string_equal(jstr(e, "type"), want_type);
	if (param && *param)
		assert_string_equal(jstr(e, "param"), param);
	else
		assert_true(json_is_null(json_object_get(e, "param")));
	if (want_code)
		assert_string_equal(jstr(e, "code"), want_code);
	else
		assert_true(json_is_null(json_object_get(e, "code")));
	json_decref(j);
	free(body);
}

static void test_error_bodies(void **state)
{
	(void)state;
	check_error(400, "model", "model_not_found", "invalid_request_error", "model_not_found");
	check_error(400, NULL, NULL, "invalid_request_error", NULL);
	check_error(404, NULL, "", "invalid_request_error", NULL);
	check_error(405, NULL, NULL, "invalid_request_error", NULL);
	check_error(413, "file", NULL, "invalid_request_error", NULL);
	check_error(415, NULL, NULL, "invalid_request_error", NULL);
	check_error(422, NULL, NULL, "invalid_request_error", NULL);
	check_error(429, NULL, NULL, "rate_limit_error", "rate_limit_exceeded");
	check_error(429, NULL, "queue_full", "rate_limit_error", "queue_full");
	check_error(500, NULL, NULL, "server_error", NULL);
	check_error(502, NULL, NULL, "server_error", NULL);
	check_error(503, NULL, NULL, "server_error", "service_unavailable");
	check_error(504, NULL, NULL, "timeout_error", "timeout");
}

static void test_error_object_and_sanitize(void **state)
{
	(void)state;
	json_t *e = vs_oai_error("bad \xff byte", "invalid_request_error", "", NULL);
	assert_non_null(e);
	json_t *in = json_object_get(e, "error");
	assert_string_equal(jstr(in, "message"), "bad ? byte");
	assert_true(json_is_null(json_object_get(in, "param")));
	assert_true(json_is_null(json_object_get(in, "code")));
	json_decref(e);

	struct vs_oai_err err;
	/* a 2-byte character straddling the 512-byte limit must be cut whole */
	char big[600];
	memset(big, 'a', sizeof(big));
	memcpy(big + 511, "\xc3\xa9", 2);
	big[599] = '\0';
	vs_oai_err_set(&err, 400, "input", "invalid_value", "%s", big + 1);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.param, "input");
	assert_true(vs_oai_utf8_valid(err.message, strlen(err.message)));
	assert_int_equal(strlen(err.message), 510);
	char *body = vs_oai_err_body(&err);
	assert_non_null(body);
	json_t *j = parse(body);
	assert_string_equal(jstr(json_object_get(j, "error"), "code"), "invalid_value");
	json_decref(j);
	free(body);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(vs_oai_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
	assert_int_equal(vs_oai_utf8_chars("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10), 4);
	assert_false(vs_oai_utf8_valid("\xc0\xaf", 2));         /* overlong */
	assert_false(vs_oai_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(vs_oai_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(vs_oai_utf8_valid("\xc3", 1));             /* truncated */
	char s[] = "ok\xe2\x82";
	vs_oai_utf8_trim_tail(s);
	assert_string_equal(s, "ok");
	char s2[] = "x\xff\xc3\xa9";
	vs_oai_utf8_sanitize(s2);
	assert_string_equal(s2, "x?\xc3\xa9");
}

/* ---------------------------------------------------------------- transcripts */

static void test_language_names(void **state)
{
	(void)state;
	assert_string_equal(vs_oai_language_name("en"), "english");
	assert_string_equal(vs_oai_language_name("EN-us"), "english");
	assert_string_equal(vs_oai_language_name("de_DE"), "german");
	assert_string_equal(vs_oai_language_name("yue"), "cantonese");
	assert_string_equal(vs_oai_language_name("French"), "french");
	assert_string_equal(vs_oai_language_name("xx"), "xx");
	assert_string_equal(vs_oai_language_name(NULL), "");
}

static void test_verbose_json(void **state)
{
	(void)state;
	struct vs_transcript t;
	make_transcript(&t);

	json_t *v = vs_transcript_to_verbose_json(&t, false);
	assert_non_null(v);
	assert_string_equal(jstr(v, "task"), "transcribe");
	assert_string_equal(jstr(v, "language"), "english");
	assert_near(json_real_value(json_object_get(v, "duration")), 3663.0);
	assert_string_equal(jstr(v, "text"), "Hello world. Second line");
	assert_null(json_object_get(v, "words"));
	json_t *segs = json_object_get(v, "segments");
	assert_int_equal(json_array_size(segs), 2);

	json_t *s0 = json_array_get(segs, 0), *s1 = json_array_get(segs, 1);
	assert_int_equal(json_integer_value(json_object_get(s0, "id")), 0);
	assert_int_equal(json_integer_value(json_object_get(s1, "id")), 1);
	assert_int_equal(json_integer_value(json_object_get(s1, "seek")), 0);
	assert_near(json_real_value(json_object_get(s0, "end")), 1.5);
	assert_near(json_real_value(json_object_get(s1, "start")), 3661.235);
	assert_near(json_real_value(json_object_get(s1, "end")), 3663.0);
	assert_string_equal(jstr(s0, "text"), " Hello world.");
	assert_string_equal(jstr(s1, "text"), " Second line");
	assert_true(json_is_array(json_object_get(s0, "tokens")));
	assert_true(json_is_real(json_object_get(s0, "temperature")));
	assert_true(json_is_real(json_object_get(s0, "compression_ratio")));
	assert_true(json_is_real(json_object_get(s0, "no_speech_prob")));
	/* mean natural log of the word probabilities, to 1e-6 */
	assert_true(fabs(json_real_value(json_object_get(s0, "avg_logprob")) -
	                 (log(0.9) + log(0.8)) / 2) < 1e-6);
	assert_true(fabs(json_real_value(json_object_get(s1, "avg_logprob")) - log(0.5) / 2) <
	            1e-6);
	json_decref(v);

	v = vs_transcript_to_verbose_json(&t, true);
	assert_non_null(v);
	json_t *w = json_object_get(v, "words");
	assert_int_equal(json_array_size(w), 4);
	assert_string_equal(jstr(json_array_get(w, 0), "word"), "Hello");
	assert_string_equal(jstr(json_array_get(w, 3), "word"), "line");
	assert_near(json_real_value(json_object_get(json_array_get(w, 1), "start")), 0.8);
	assert_near(json_real_value(json_object_get(json_array_get(w, 2), "start")), 3661.235);
	assert_near(json_real_value(json_object_get(json_array_get(w, 3), "end")), 3663.0);
	assert_int_equal(json_object_size(json_array_get(w, 0)), 3);
	json_decref(v);
}

static const char want_srt[] = "1\n00:00:00,000 --> 00:00:01,500\nHello world.\n\n"
                               "2\n01:01:01,235 --> 01:01:03,000\nSecond line\n\n";
static const char want_vtt[] = "WEBVTT\n\n"
                               "00:00:00.000 --> 00:00:01.500\nHello world.\n\n"
                               "01:01:01.235 --> 01:01:03.000\nSecond line\n\n";

static void check_all_formats(const json_t *v)
{
	assert_render(v, "json", "application/json", "{\"text\":\"Hello world. Second line\"}");
	assert_render(v, "text", "text/plain; charset=utf-8", "Hello world. Second line\n");
	assert_render(v, "srt", "text/plain; charset=utf-8", want_srt);
	assert_render(v, "vtt", "text/vtt; charset=utf-8", want_vtt);
}

static void test_render_formats(void **state)
{
	(void)state;
	struct vs_transcript t;
	make_transcript(&t);
	json_t *v = vs_transcript_to_verbose_json(&t, true);
	assert_non_null(v);
	check_all_formats(v);

	/* the worker ships the object as JSON text; rendering must not change */
	char *wire = json_dumps(v, 0);
	assert_non_null(wire);
	json_t *back = parse(wire);
	free(wire);
	check_all_formats(back);

	const char *ct = NULL;
	char *body = render(back, "verbose_json", false, &ct);
	assert_string_equal(ct, "application/json");
	/* reals print as written, not as 17-digit expansions */
	assert_non_null(strstr(body, "\"start\":3661.235,"));
	assert_non_null(strstr(body, "\"duration\":3663.0,"));
	json_t *r = parse(body);
	assert_null(json_object_get(r, "words"));
	assert_non_null(json_object_get(back, "words")); /* input left alone */
	json_object_del(back, "words");
	assert_true(json_equal(r, back));
	json_decref(r);
	free(body);

	json_t *nowords = vs_transcript_to_verbose_json(&t, false);
	body = render(nowords, "verbose_json", true, &ct);
	r = parse(body);
	assert_int_equal(json_array_size(json_object_get(r, "words")), 0);
	assert_true(json_is_array(json_object_get(r, "words")));
	json_decref(r);
	free(body);
	body = render(v, "verbose_json", true, &ct);
	r = parse(body);
	assert_true(json_equal(r, v));
	json_decref(r);
	free(body);

	char *junk = (char *)"x";
	assert_int_equal(vs_transcript_render(v, "mp3", false, &junk, &ct), -EINVAL);
	assert_null(junk);
	assert_int_equal(vs_transcript_render(v, "JSON", false, &junk, &ct), -EINVAL);
	json_t *arr = json_array();
	assert_int_equal(vs_transcript_render(arr, "json", false, &junk, &ct), -EINVAL);
	json_decref(arr);
	json_decref(nowords);
	json_decref(back);
	json_decref(v);
}

static void test_render_empty(void **state)
{
	(void)state;
	struct vs_transcript t = {.text = "", .language = "en", .duration = 2.0};
	json_t *v = vs_transcript_to_verbose_json(&t, true);
	assert_non_null(v);
	assert_int_equal(json_array_size(json_object_get(v, "segments")), 0);
	assert_int_equal(json_array_size(json_object_get(v, "words")), 0);
	assert_render(v, "json", "application/json", "{\"text\":\"\"}");
	assert_render(v, "text", "text/plain; charset=utf-8", "\n");
	assert_render(v, "srt", "text/plain; charset=utf-8", "");
	assert_render(v, "vtt", "text/vtt; charset=utf-8", "WEBVTT\n\n");
	json_decref(v);

	/* NULL strings from a half-built transcript do not crash */
	struct vs_transcript z = {0};
	v = vs_transcript_to_verbose_json(&z, false);
	assert_non_null(v);
	assert_string_equal(jstr(v, "text"), "");
	assert_string_equal(jstr(v, "language"), "");
	json_decref(v);
}

static void test_render_cue_text(void **state)
{
	(void)state;
	struct vs_segment segs[3] = {
	        {.start = 0, .end = 1, .text = "  a & <b>\r\n\n c --> d  "},
	        {.start = 1, .end = 2, .text = " \n "}, /* blank: dropped */
	        {.start = 2, .end = 3, .text = "e"},
	};
	struct vs_transcript t = {.text = "x", .segments = segs, .n_segments = 3};
	json_t *v = vs_transcript_to_verbose_json(&t, false);
	assert_non_null(v);
	assert_render(v, "srt", "text/plain; charset=utf-8",
	              "1\n00:00:00,000 --> 00:00:01,000\na & <b> c -> d\n\n"
	              "2\n00:00:02,000 --> 00:00:03,000\ne\n\n");
	assert_render(v, "vtt", "text/vtt; charset=utf-8",
	              "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na &amp; &lt;b&gt; c --&gt; d\n\n"
	              "00:00:02.000 --> 00:00:03.000\ne\n\n");
	json_decref(v);
}

static void test_timestamps(void **state)
{
	(void)state;
	char b[32];
	vs_oai_timestamp(0, ',', b, sizeof(b));
	assert_string_equal(b, "00:00:00,000");
	vs_oai_timestamp(59.9994, ',', b, sizeof(b));
	assert_string_equal(b, "00:00:59,999");
	vs_oai_timestamp(59.9996, '.', b, sizeof(b));
	assert_string_equal(b, "00:01:00.000");
	vs_oai_timestamp(3599.9996, ',', b, sizeof(b));
	assert_string_equal(b, "01:00:00,000");
	vs_oai_timestamp(3723.004, '.', b, sizeof(b));
	assert_string_equal(b, "01:02:03.004");
	vs_oai_timestamp(100 * 3600 + 0.25, ',', b, sizeof(b));
	assert_string_equal(b, "100:00:00,250");
	vs_oai_timestamp(-3, ',', b, sizeof(b));
	assert_string_equal(b, "00:00:00,000");
	vs_oai_timestamp(NAN, ',', b, sizeof(b));
	assert_string_equal(b, "00:00:00,000");
}

/* ---------------------------------------------------------------- speech */

static const struct vs_speech_limits tts_lim = {
        .max_input_chars = 4096,
        .accepted_models = tts_models,
        .models_hint = NULL,
};

static int speech(const char *body, struct vs_speech_req *r, struct vs_oai_err *e)
{
	return vs_speech_parse(body, strlen(body), &tts_lim, r, e);
}

static void expect_reject(const char *body, const char *param, const char *code)
{
	struct vs_speech_req r;
	struct vs_oai_err e;
	int rc = speech(body, &r, &e);
	if (rc != -EINVAL)
		print_error("accepted: %s\n", body);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.param, param);
	assert_string_equal(e.code, code);
	assert_true(strlen(e.message) > 0);
	assert_null(r.input);
}

static void test_speech_valid(void **state)
{
	(void)state;
	struct vs_speech_req r;
	struct vs_oai_err e;

	assert_int_equal(
	        speech("{\"model\":\"tts-1\",\"input\":\"Hi there\",\"voice\":\"alloy\"}", &r, &e),
	        0);
	assert_string_equal(r.model, "tts-1");
	assert_string_equal(r.input, "Hi there");
	assert_string_equal(r.voice, "alloy");
	assert_string_equal(r.response_format, "mp3");
	assert_near(r.speed, 1.0);
	vs_speech_req_free(&r);

	assert_int_equal(speech("{\"model\":\"tts-1-hd\",\"input\":\"x\",\"voice\":\"en-us+f3\","
	                        "\"response_format\":\"wav\",\"speed\":2,\"instructions\":\"calm\","
	                        "\"stream_format\":\"audio\",\"extra\":{\"a\":[1]}}",
	                        &r, &e),
	                 0);
	assert_string_equal(r.model, "tts-1-hd");
	assert_string_equal(r.voice, "en-us+f3");
	assert_string_equal(r.response_format, "wav");
	assert_near(r.speed, 2.0);
	vs_speech_req_free(&r);

	/* null optional fields take their defaults; range ends are inclusive */
	assert_int_equal(speech("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\","
	                        "\"response_format\":null,\"speed\":null}",
	                        &r, &e),
	                 0);
	assert_string_equal(r.response_format, "mp3");
	assert_near(r.speed, 1.0);
	vs_speech_req_free(&r);
	const char *fmts[] = {"mp3", "opus", "aac", "flac", "wav", "pcm"};
	for (size_t i = 0; i < 6; i++) {
		char body[160];
		snprintf(body, sizeof(body),
		         "{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\","
		         "\"response_format\":\"%s\",\"speed\":%s}",
		         fmts[i], i % 2 ? "0.25" : "4.0");
		assert_int_equal(speech(body, &r, &e), 0);
		assert_string_equal(r.response_format, fmts[i]);
		assert_near(r.speed, i % 2 ? 0.25 : 4.0);
		vs_speech_req_free(&r);
	}
	vs_speech_req_free(NULL);
}

/* C0 control characters other than tab, newline and carriage return are
 * replaced by a space: espeak-ng reads "\x01" + "750S" as a command (speak
 * at 750 wpm), "\x01" + "300A" as a volume change. */
static void test_speech_control_chars(void **state)
{
	(void)state;
	struct vs_speech_req r;
	struct vs_oai_err e;

	assert_int_equal(speech("{\"model\":\"tts-1\",\"input\":\"\\u0001750S hello\","
	                        "\"voice\":\"alloy\"}",
	                        &r, &e),
	                 0);
	assert_string_equal(r.input, " 750S hello");
	vs_speech_req_free(&r);

	/* every C0 code but \t \n \r, and DEL, become one space each */
	char body[1024], want[64];
	size_t n = (size_t)snprintf(body, sizeof(body),
	                            "{\"model\":\"tts-1\",\"voice\":\"v\","
	                            "\"input\":\"a");
	size_t k = 0;
	want[k++] = 'a';
	for (int c = 1; c < 0x20; c++) {
		n += (size_t)snprintf(body + n, sizeof(body) - n, "\\u%04x", c);
		want[k++] = (c == '\t' || c == '\n' || c == '\r') ? (char)c : ' ';
	}
	n += (size_t)snprintf(body + n, sizeof(body) - n, "\\u007fb\"}");
	want[k++] = ' ';
	want[k++] = 'b';
	want[k] = 0;
	assert_int_equal(speech(body, &r, &e), 0);
	assert_string_equal(r.input, want);
	vs_speech_req_free(&r);

	/* multi-byte UTF-8 is left alone */
	assert_int_equal(speech("{\"model\":\"tts-1\",\"input\":\"caf\u00e9 \u2014 ok\","
	                        "\"voice\":\"v\"}",
	                        &r, &e),
	                 0);
	assert_string_equal(r.input, "caf\xc3\xa9 \xe2\x80\x94 ok");
	vs_speech_req_free(&r);
}

static void test_speech_malformed(void **state)
{
	(void)state;
	struct vs_speech_req r;
	struct vs_oai_err e;

	assert_int_equal(speech("{\"model\": \"tts-1\",\n  \"input\": }", &r, &e), -EINVAL);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.code, "invalid_json");
	assert_string_equal(e.param, "");
	assert_non_null(strstr(e.message, "line 2, column"));
	assert_non_null(strstr(e.message, "unexpected token"));

	expect_reject("{\"model\":\"tts-1\",\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\"}",
	              "", "invalid_json");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\"} x", "",
	              "invalid_json");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"a\\u0000b\",\"voice\":\"v\"}", "",
	              "invalid_json");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"\xff\",\"voice\":\"v\"}", "",
	              "invalid_json");
	expect_reject("", "", "invalid_json");
	expect_reject("[1,2]", "", "invalid_type");
	assert_int_equal(vs_speech_parse(NULL, 0, &tts_lim, &r, &e), -EINVAL);
	assert_string_equal(e.code, "invalid_json");
	/* the message quotes client bytes; it must still make a valid body */
	assert_true(vs_oai_utf8_valid(e.message, strlen(e.message)));
}

static void test_speech_fields(void **state)
{
	(void)state;
	expect_reject("{\"input\":\"x\",\"voice\":\"v\"}", "model", "missing_required_parameter");
	expect_reject("{\"model\":\"tts-1\",\"voice\":\"v\"}", "input",
	              "missing_required_parameter");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\"}", "voice",
	              "missing_required_parameter");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"\",\"voice\":\"v\"}", "input",
	              "invalid_value");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"\"}", "voice",
	              "invalid_value");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\","
	              "\"response_format\":\"ogg\"}",
	              "response_format", "invalid_value");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\",\"speed\":0.24}",
	              "speed", "invalid_value");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\",\"speed\":4.01}",
	              "speed", "invalid_value");
	/* wrong JSON types name the field */
	expect_reject("{\"model\":1,\"input\":\"x\",\"voice\":\"v\"}", "model", "invalid_type");
	expect_reject("{\"model\":\"tts-1\",\"input\":[\"x\"],\"voice\":\"v\"}", "input",
	              "invalid_type");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":{}}", "voice",
	              "invalid_type");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\",\"response_format\":3}",
	              "response_format", "invalid_type");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\",\"speed\":\"fast\"}",
	              "speed", "invalid_type");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\",\"speed\":true}",
	              "speed", "invalid_type");
}

static void test_speech_models(void **state)
{
	(void)state;
	struct vs_speech_req r;
	struct vs_oai_err e;
	const char *body = "{\"model\":\"gpt-4o-mini-tts\",\"input\":\"x\",\"voice\":\"v\"}";

	assert_int_equal(speech(body, &r, &e), -EINVAL);
	assert_string_equal(e.param, "model");
	assert_string_equal(e.code, "model_not_found");
	assert_non_null(strstr(e.message, "gpt-4o-mini-tts"));
	assert_non_null(strstr(e.message, "tts-1, tts-1-hd"));

	struct vs_speech_limits hinted = tts_lim;
	hinted.models_hint = "tts-1 (espeak-ng)";
	assert_int_equal(vs_speech_parse(body, strlen(body), &hinted, &r, &e), -EINVAL);
	assert_non_null(strstr(e.message, "tts-1 (espeak-ng)"));

	/* no list: any reasonable name, but still bounded */
	struct vs_speech_limits any = {.max_input_chars = 10};
	assert_int_equal(vs_speech_parse(body, strlen(body), &any, &r, &e), 0);
	assert_string_equal(r.model, "gpt-4o-mini-tts");
	vs_speech_req_free(&r);
	char big[200];
	snprintf(big, sizeof(big), "{\"model\":\"%070d\",\"input\":\"x\",\"voice\":\"v\"}", 7);
	assert_int_equal(vs_speech_parse(big, strlen(big), &any, &r, &e), -EINVAL);
	assert_string_equal(e.code, "model_not_found");
}

/* {"model":"tts-1","input":"<n x s>","voice":"<v>"} */
static char *speech_body(const char *s, size_t n, const char *voice)
{
	size_t sl = strlen(s);
	char *b = malloc(n * sl + strlen(voice) + 64);
	assert_non_null(b);
	char *p = b + sprintf(b, "{\"model\":\"tts-1\",\"input\":\"");
	for (size_t i = 0; i < n; i++, p += sl)
		memcpy(p, s, sl);
	sprintf(p, "\",\"voice\":\"%s\"}", voice);
	return b;
}

static void test_speech_lengths(void **state)
{
	(void)state;
	struct vs_speech_req r;
	struct vs_oai_err e;

	/* 4096 x U+00E9 is 8192 bytes but 4096 characters: accepted */
	char *b = speech_body("\xc3\xa9", 4096, "v");
	assert_int_equal(speech(b, &r, &e), 0);
	assert_int_equal(strlen(r.input), 8192);
	vs_speech_req_free(&r);
	free(b);

	b = speech_body("\xc3\xa9", 4097, "v");
	assert_int_equal(speech(b, &r, &e), -EINVAL);
	assert_string_equal(e.param, "input");
	assert_string_equal(e.code, "string_above_max_length");
	assert_non_null(strstr(e.message, "4097"));
	assert_non_null(strstr(e.message, "4096"));
	free(b);

	/* escapes count as the character they encode */
	b = speech_body("\\u00e9", 4096, "v");
	assert_int_equal(speech(b, &r, &e), 0);
	vs_speech_req_free(&r);
	free(b);

	/* 0 = the OpenAI default of 4096 */
	struct vs_speech_limits dflt = {.accepted_models = tts_models};
	b = speech_body("a", 4097, "v");
	assert_int_equal(vs_speech_parse(b, strlen(b), &dflt, &r, &e), -EINVAL);
	assert_string_equal(e.code, "string_above_max_length");
	free(b);

	/* voice: 64 characters (multi-byte) fit, 65 do not */
	char voice[300] = "";
	for (int i = 0; i < 64; i++)
		strcat(voice, "\xe2\x82\xac");
	b = speech_body("a", 1, voice);
	assert_int_equal(speech(b, &r, &e), 0);
	assert_string_equal(r.voice, voice);
	vs_speech_req_free(&r);
	free(b);
	strcat(voice, "x");
	b = speech_body("a", 1, voice);
	assert_int_equal(speech(b, &r, &e), -EINVAL);
	assert_string_equal(e.param, "voice");
	free(b);
}

/* ---------------------------------------------------------------- transcription */

static struct vs_transcription_fields base_fields(void)
{
	return (struct vs_transcription_fields){
	        .model = "whisper-1",
	        .has_file = true,
	        .file_bytes = 1234,
	};
}

static void expect_asr_reject(const struct vs_transcription_fields *f, const char *param,
                              const char *code)
{
	struct vs_transcription_opts o;
	struct vs_oai_err e;
	int rc = vs_transcription_validate(f, asr_models, NULL, &o, &e);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.param, param);
	assert_string_equal(e.code, code);
	assert_true(vs_oai_utf8_valid(e.message, strlen(e.message)));
	assert_null(o.prompt);
}

static void test_transcription_valid(void **state)
{
	(void)state;
	struct vs_transcription_opts o;
	struct vs_oai_err e;
	struct vs_transcription_fields f = base_fields();

	assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
	assert_string_equal(o.model, "whisper-1");
	assert_string_equal(o.response_format, "json");
	assert_string_equal(o.language, "");
	assert_null(o.prompt);
	assert_near(o.temperature, 0.0);
	assert_false(o.want_words);
	vs_transcription_opts_free(&o);

	f.response_format = "verbose_json";
	f.temperature = "0.5";
	f.timestamp_granularities = " word , segment";
	f.language = "EN-us";
	f.prompt = "h\xc3\xa9llo";
	assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
	assert_string_equal(o.response_format, "verbose_json");
	assert_near(o.temperature, 0.5);
	assert_true(o.want_words);
	assert_string_equal(o.language, "en-us");
	assert_string_equal(o.prompt, "h\xc3\xa9llo");
	vs_transcription_opts_free(&o);

	/* empty optional fields are absent; segment works with any format */
	f = base_fields();
	f.language = "";
	f.response_format = "";
	f.prompt = "";
	f.temperature = "1";
	f.timestamp_granularities = "segment";
	assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
	assert_string_equal(o.response_format, "json");
	assert_near(o.temperature, 1.0);
	assert_false(o.want_words);
	assert_null(o.prompt);
	vs_transcription_opts_free(&o);

	const char *langs[] = {"en", "yue", "zh-Hans", "en_US", "sr-Latn-RS"};
	for (size_t i = 0; i < 5; i++) {
		f = base_fields();
		f.language = langs[i];
		assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
		vs_transcription_opts_free(&o);
	}
	const char *fmts[] = {"json", "text", "srt", "vtt", "verbose_json"};
	for (size_t i = 0; i < 5; i++) {
		f = base_fields();
		f.response_format = fmts[i];
		assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
		assert_string_equal(o.response_format, fmts[i]);
		vs_transcription_opts_free(&o);
	}
	vs_transcription_opts_free(NULL);
}

static void test_transcription_invalid(void **state)
{
	(void)state;
	struct vs_transcription_fields f = base_fields();

	f.has_file = false;
	expect_asr_reject(&f, "file", "missing_required_parameter");
	f = base_fields();
	f.file_bytes = 0;
	expect_asr_reject(&f, "file", "invalid_value");
	f = base_fields();
	f.model = NULL;
	expect_asr_reject(&f, "model", "missing_required_parameter");
	f.model = "";
	expect_asr_reject(&f, "model", "missing_required_parameter");
	f.model = "whisper-large-\xff";
	expect_asr_reject(&f, "model", "model_not_found");

	struct vs_transcription_opts o;
	struct vs_oai_err e;
	f.model = "gpt-4o-transcribe";
	assert_int_equal(
	        vs_transcription_validate(&f, asr_models, "whisper-1 (pocketsphinx)", &o, &e),
	        -EINVAL);
	assert_non_null(strstr(e.message, "whisper-1 (pocketsphinx)"));

	f = base_fields();
	f.response_format = "mp3";
	expect_asr_reject(&f, "response_format", "invalid_value");

	const char *bad_temps[] = {"abc", "nan", "inf", "0x1p-1", "0.5x", " 0.5", "1e400"};
	for (size_t i = 0; i < sizeof(bad_temps) / sizeof(bad_temps[0]); i++) {
		f = base_fields();
		f.temperature = bad_temps[i];
		expect_asr_reject(&f, "temperature", "invalid_type");
	}
	f.temperature = "1.5";
	expect_asr_reject(&f, "temperature", "invalid_value");
	f.temperature = "-0.1";
	expect_asr_reject(&f, "temperature", "invalid_value");

	f = base_fields();
	f.timestamp_granularities = "word"; /* word needs verbose_json */
	expect_asr_reject(&f, "timestamp_granularities", "invalid_value");
	f.response_format = "srt";
	expect_asr_reject(&f, "timestamp_granularities", "invalid_value");
	f.response_format = "verbose_json";
	f.timestamp_granularities = "segment,sentence";
	expect_asr_reject(&f, "timestamp_granularities", "invalid_value");

	const char *bad_langs[] = {"english",   "e",    "en-",       "e1",
	                           "en-US-x-y", "en-u", "\xc3\xa9n", "en-us-0123456789"};
	for (size_t i = 0; i < sizeof(bad_langs) / sizeof(bad_langs[0]); i++) {
		f = base_fields();
		f.language = bad_langs[i];
		expect_asr_reject(&f, "language", "invalid_value");
	}

	f = base_fields();
	f.prompt = "bad \xff";
	expect_asr_reject(&f, "prompt", "invalid_value");
	char *p = malloc(2 * (VS_TRANSCRIPTION_MAX_PROMPT_CHARS + 1) + 1);
	assert_non_null(p);
	for (int i = 0; i <= VS_TRANSCRIPTION_MAX_PROMPT_CHARS; i++)
		memcpy(p + 2 * i, "\xc3\xa9", 2);
	p[2 * (VS_TRANSCRIPTION_MAX_PROMPT_CHARS + 1)] = '\0';
	f.prompt = p;
	expect_asr_reject(&f, "prompt", "string_above_max_length");
	p[2 * VS_TRANSCRIPTION_MAX_PROMPT_CHARS] = '\0'; /* exactly the limit */
	assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
	vs_transcription_opts_free(&o);
	free(p);
}

/* stream: true/false in any case; only json and text formats stream */
static void test_transcription_stream(void **state)
{
	(void)state;
	struct vs_transcription_opts o;
	struct vs_oai_err e;
	struct vs_transcription_fields f = base_fields();
	const char *yes[] = {"true", "TRUE", "True"}, *no[] = {"false", "False", ""};

	for (size_t i = 0; i < 3; i++) {
		f.stream = yes[i];
		assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
		assert_true(o.stream);
		f.stream = no[i];
		assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
		assert_false(o.stream);
	}
	f.stream = "true";
	f.response_format = "text";
	assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
	assert_true(o.stream);
	const char *bad[] = {"1", "yes", "truee", " true", "\xff"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = base_fields();
		f.stream = bad[i];
		expect_asr_reject(&f, "stream", "invalid_value");
	}
	const char *fmts[] = {"srt", "vtt", "verbose_json"};
	for (size_t i = 0; i < 3; i++) {
		f = base_fields();
		f.stream = "true";
		f.response_format = fmts[i];
		expect_asr_reject(&f, "response_format", "invalid_value");
		f.stream = "false"; /* the same format without streaming is fine */
		assert_int_equal(vs_transcription_validate(&f, asr_models, NULL, &o, &e), 0);
	}
}

/* stream_format audio|sse; instructions a bounded string, not used */
static void test_speech_stream_format_and_instructions(void **state)
{
	(void)state;
	struct vs_speech_req r;
	struct vs_oai_err e;

	assert_int_equal(speech("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\","
	                        "\"stream_format\":\"sse\"}",
	                        &r, &e),
	                 0);
	assert_true(r.sse);
	vs_speech_req_free(&r);
	assert_int_equal(speech("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\","
	                        "\"stream_format\":null,\"instructions\":null}",
	                        &r, &e),
	                 0);
	assert_false(r.sse);
	vs_speech_req_free(&r);
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\","
	              "\"stream_format\":\"SSE\"}",
	              "stream_format", "invalid_value");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\","
	              "\"stream_format\":true}",
	              "stream_format", "invalid_type");
	expect_reject("{\"model\":\"tts-1\",\"input\":\"x\",\"voice\":\"v\","
	              "\"instructions\":[\"calm\"]}",
	              "instructions", "invalid_type");
	/* instructions are bounded like the input (TTS_MAX_INPUT_CHARS) */
	struct vs_speech_limits lim = {.max_input_chars = 3};
	const char *ok = "{\"model\":\"m\",\"input\":\"x\",\"voice\":\"v\",\"instructions\":"
	                 "\"\u00e9\u00e9\u00e9\"}";
	const char *long_ = "{\"model\":\"m\",\"input\":\"x\",\"voice\":\"v\",\"instructions\":"
	                    "\"abcd\"}";
	assert_int_equal(vs_speech_parse(ok, strlen(ok), &lim, &r, &e), 0);
	vs_speech_req_free(&r);
	assert_int_equal(vs_speech_parse(long_, strlen(long_), &lim, &r, &e), -EINVAL);
	assert_string_equal(e.param, "instructions");
	assert_string_equal(e.code, "string_above_max_length");
}

static void assert_event(json_t *ev, const char *want)
{
	size_t len = 0;
	char *line = vs_sse_data(ev, &len);
	json_decref(ev);
	assert_non_null(line);
	assert_string_equal(line, want);
	assert_int_equal(len, strlen(want));
	free(line);
}

/* the event shapes of OpenAI's streams, byte for byte, one data line each */
static void test_stream_events(void **state)
{
	(void)state;
	assert_event(vs_oai_transcript_delta("hello world", false),
	             "data: {\"type\":\"transcript.text.delta\",\"delta\":\"hello world\"}\n\n");
	assert_event(vs_oai_transcript_delta("again", true),
	             "data: {\"type\":\"transcript.text.delta\",\"delta\":\" again\"}\n\n");
	assert_event(vs_oai_transcript_delta("two\nlines \xff", false),
	             "data: {\"type\":\"transcript.text.delta\",\"delta\":\"two\\nlines ?\"}\n\n");
	assert_event(vs_oai_transcript_done("hello world again", 40.0),
	             "data: {\"type\":\"transcript.text.done\",\"text\":\"hello world again\","
	             "\"usage\":{\"type\":\"duration\",\"seconds\":40.0}}\n\n");
	assert_event(vs_oai_speech_delta("UklGRg=="),
	             "data: {\"type\":\"speech.audio.delta\",\"audio\":\"UklGRg==\"}\n\n");
	assert_event(vs_oai_speech_done(),
	             "data: {\"type\":\"speech.audio.done\",\"usage\":{\"input_tokens\":0,"
	             "\"output_tokens\":0,\"total_tokens\":0}}\n\n");
	assert_event(vs_oai_error("Worker crashed", "server_error", NULL, "worker_crashed"),
	             "data: {\"error\":{\"message\":\"Worker crashed\",\"type\":\"server_error\","
	             "\"param\":null,\"code\":\"worker_crashed\"}}\n\n");
	size_t len = 7;
	assert_null(vs_sse_data(NULL, &len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_error_bodies),
	        cmocka_unit_test(test_error_object_and_sanitize),
	        cmocka_unit_test(test_utf8),
	        cmocka_unit_test(test_language_names),
	        cmocka_unit_test(test_verbose_json),
	        cmocka_unit_test(test_render_formats),
	        cmocka_unit_test(test_render_empty),
	        cmocka_unit_test(test_render_cue_text),
	        cmocka_unit_test(test_timestamps),
	        cmocka_unit_test(test_speech_valid),
	        cmocka_unit_test(test_speech_malformed),
	        cmocka_unit_test(test_speech_fields),
	        cmocka_unit_test(test_speech_models),
	        cmocka_unit_test(test_speech_lengths),
	        cmocka_unit_test(test_speech_control_chars),
	        cmocka_unit_test(test_transcription_valid),
	        cmocka_unit_test(test_transcription_invalid),
	        cmocka_unit_test(test_transcription_stream),
	        cmocka_unit_test(test_speech_stream_format_and_instructions),
	        cmocka_unit_test(test_stream_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
