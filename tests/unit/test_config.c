/* test_config.c - settings table, .env parsing, precedence, errors, docs.
 *
 * DESIGN
 * Every test starts from a clean slate: all setting environment variables
 * unset and an empty temporary working directory (so no stray ./.env from
 * the build tree can leak in). The last test compares docs/CONFIG.md with
 * vs_config_print_markdown() byte for byte so the document cannot drift; the
 * source root comes from $VS_SOURCE_ROOT, else -DVS_SOURCE_ROOT, else
 * __FILE__ (relative to the build directory, where meson runs the test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/dotenv.h"
#include "engine/engine.h"
#include "engine_settings.h"

static char docs_path[PATH_MAX]; /* absolute, resolved before the chdir */
static char start_dir[PATH_MAX];
static char tmp_dir[PATH_MAX];

/* ---- helpers ---- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int reset(void **state)
{
	(void)state;
	for (size_t i = 0; vs_config_setting_name(i); i++)
		unsetenv(vs_config_setting_name(i));
	unlink(".env");
	unlink("other.env");
	return 0;
}

/* vs_config_load with argv = {"voicestack", args..., NULL}. */
#define MAX_ARGS 32
static char *argv_buf[MAX_ARGS + 2];
static int rest;

static int load_argv(struct vs_config *c, char *err, size_t errlen, const char *const *args)
{
	int argc = 0;

	argv_buf[argc++] = (char *)"voicestack";
	for (; args && *args; args++) {
		assert_true(argc < MAX_ARGS);
		argv_buf[argc++] = (char *)*args;
	}
	argv_buf[argc] = NULL;
	rest = -1;
	return vs_config_load(c, vs_engine_settings_checks(), argc, argv_buf, &rest, err, errlen);
}

#define LOAD(c, err, ...) load_argv(c, err, sizeof(err), (const char *const[]){__VA_ARGS__, NULL})

static void load_ok(struct vs_config *c, const char *const *args)
{
	char err[512] = "";
	int r = load_argv(c, err, sizeof(err), args);
	if (r != 0)
		fail_msg("vs_config_load failed: %d %s", r, err);
}

#define LOAD_OK(c, ...) load_ok(c, (const char *const[]){__VA_ARGS__, NULL})

/* ---- defaults and precedence ---- */

static void test_defaults_are_the_original_specs(void **state)
{
	struct vs_config c, d;

	LOAD_OK(&c, NULL);
	/* the original specification's settings and defaults */
	assert_int_equal(c.memory_threshold_percent, 90);
	assert_int_equal(c.swap_threshold_percent, 80);
	assert_int_equal(c.max_upload_size_mb, 100);
	assert_true(c.asr_idle_timeout_minutes == 60.0);
	assert_true(c.tts_idle_timeout_minutes == 60.0);
	assert_int_equal(c.asr_max_concurrent_requests, 2);
	assert_int_equal(c.tts_max_concurrent_requests, 2);
	assert_string_equal(c.asr_device, "cpu");
	assert_string_equal(c.tts_device, "cpu");
	assert_true(c.asr_vad_enabled);
	/* settings new in Voice Stack in C */
	assert_string_equal(c.env, "dev");
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.asr_port, 5001);
	assert_int_equal(c.tts_port, 5002);
	assert_true(c.idle_check_interval_seconds == 60.0);
	assert_int_equal(c.asr_max_queue, 0); /* original: 429 at once */
	assert_int_equal(c.tts_max_queue, 0);
	assert_true(c.asr_queue_timeout_seconds == 30.0);
	assert_true(c.tts_queue_timeout_seconds == 30.0);
	assert_true(c.request_timeout_seconds == 300.0);
	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.asr_engine, "pocketsphinx");
	assert_string_equal(c.tts_engine, "espeak-ng");
	assert_string_equal(c.asr_model, "");
	assert_int_equal(c.tts_max_input_chars, 4096);
	assert_int_equal(c.max_json_body_kb, 64);
	assert_true(c.asr_max_audio_seconds == 600.0); /* fits REQUEST_TIMEOUT_SECONDS */
	assert_int_equal(c.worker_nice, 10);
	assert_int_equal(c.http_threads, 2);
	for (size_t i = 0; vs_config_setting_name(i); i++)
		assert_int_equal(vs_config_source_of(&c, vs_config_setting_name(i)),
		                 VS_SRC_DEFAULT);
	/* vs_config_defaults gives the same struct when nothing is set */
	assert_int_equal(vs_config_defaults(&d, vs_engine_settings_checks()), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	assert_int_equal(rest, 1);
}

static void test_env_overrides_default(void **state)
{
	struct vs_config c;

	setenv("MEMORY_THRESHOLD_PERCENT", "70", 1);
	setenv("ASR_ENGINE", "pocketsphinx", 1);
	LOAD_OK(&c, NULL);
	assert_int_equal(c.memory_threshold_percent, 70);
	assert_int_equal(vs_config_source_of(&c, "MEMORY_THRESHOLD_PERCENT"), VS_SRC_ENV);
	assert_int_equal(vs_config_source_of(&c, "ASR_ENGINE"), VS_SRC_ENV);
	assert_int_equal(vs_config_source_of(&c, "SWAP_THRESHOLD_PERCENT"), VS_SRC_DEFAULT);
}

static void test_flag_overrides_env_in_both_spellings(void **state)
{
	struct vs_config c;

	setenv("MEMORY_THRESHOLD_PERCENT", "70", 1);
	setenv("MAX_UPLOAD_SIZE_MB", "7", 1);
	LOAD_OK(&c, "--memory-threshold-percent", "60", "--max-upload-size-mb=250");
	assert_int_equal(c.memory_threshold_percent, 60);
	assert_int_equal(c.max_upload_size_mb, 250);
	assert_int_equal(vs_config_source_of(&c, "MEMORY_THRESHOLD_PERCENT"), VS_SRC_FLAG);
	assert_int_equal(vs_config_source_of(&c, "MAX_UPLOAD_SIZE_MB"), VS_SRC_FLAG);
	assert_int_equal(rest, 1);
	/* the last of repeated flags wins */
	LOAD_OK(&c, "--asr-port", "6000", "--asr-port=6001");
	assert_int_equal(c.asr_port, 6001);
}

static void test_dotenv_overrides_default_and_env_overrides_dotenv(void **state)
{
	struct vs_config c;

	write_file("other.env", "MAX_UPLOAD_SIZE_MB=50\nSWAP_THRESHOLD_PERCENT=70\n"
	                        "ASR_PORT=6001\n");
	setenv("SWAP_THRESHOLD_PERCENT", "75", 1);
	LOAD_OK(&c, "--env-file", "other.env", "--asr-port=6002");
	assert_int_equal(c.max_upload_size_mb, 50);
	assert_int_equal(vs_config_source_of(&c, "MAX_UPLOAD_SIZE_MB"), VS_SRC_DOTENV);
	assert_int_equal(c.swap_threshold_percent, 75);
	assert_int_equal(vs_config_source_of(&c, "SWAP_THRESHOLD_PERCENT"), VS_SRC_ENV);
	assert_int_equal(c.asr_port, 6002);
	assert_int_equal(vs_config_source_of(&c, "ASR_PORT"), VS_SRC_FLAG);
	assert_int_equal(rest, 1); /* --env-file and its value are consumed */

	LOAD_OK(&c, "--env-file=other.env");
	assert_int_equal(c.max_upload_size_mb, 50);
}

static void test_dotenv_in_working_directory_is_read_without_flag(void **state)
{
	struct vs_config c;

	write_file(".env", "TTS_PORT=7002\n");
	LOAD_OK(&c, NULL);
	assert_int_equal(c.tts_port, 7002);
	assert_int_equal(vs_config_source_of(&c, "TTS_PORT"), VS_SRC_DOTENV);
	/* --env-file replaces ./.env rather than adding to it */
	write_file("other.env", "ASR_PORT=7001\n");
	LOAD_OK(&c, "--env-file", "other.env");
	assert_int_equal(c.tts_port, 5002);
	assert_int_equal(c.asr_port, 7001);
}

static void test_missing_named_env_file_is_an_error(void **state)
{
	struct vs_config c;
	char err[512] = "";

	assert_true(LOAD(&c, err, "--env-file", "no-such.env") < 0);
	assert_non_null(strstr(err, "no-such.env"));
	assert_int_equal(LOAD(&c, err, "--env-file"), -EINVAL);
	assert_non_null(strstr(err, "--env-file"));
	assert_int_equal(LOAD(&c, err, "--env-file="), -EINVAL);
}

/* ---- .env syntax ---- */

static void test_dotenv_quotes_comments_export(void **state)
{
	struct vs_config c;

	write_file(".env", "# a comment line\n"
	                   "\n"
	                   "   \t\n"
	                   "export ASR_MODEL='my model # not a comment'\n"
	                   "ENV=\"say \\\"hi\\\" \\\\ now\"   # comment after quotes\n"
	                   "LOG_LEVEL = warning   # trailing comment\n"
	                   "HOST=0.0.0.0\r\n"
	                   "TTS_DEVICE=cpu#part-of-value-is-invalid-device\n"
	                   "OTHER_PROGRAM_SETTING=anything at all\n"
	                   "lower.case-key=ignored\n"
	                   "MAX_UPLOAD_SIZE_MB=  12  \n"
	                   "ASR_DEVICE=# only a comment\n");
	char err[512] = "";
	/* '#' not preceded by a blank belongs to the value: here an invalid device */
	assert_int_equal(LOAD(&c, err, NULL), -EINVAL);
	assert_non_null(strstr(err, "TTS_DEVICE=cpu#part-of-value-is-invalid-device"));
	assert_non_null(strstr(err, ".env line 8"));

	write_file(".env", "# a comment line\n"
	                   "\n"
	                   "   \t\n"
	                   "export ASR_MODEL='my model # not a comment'\n"
	                   "ENV=\"say \\\"hi\\\" \\\\ now\"   # comment after quotes\n"
	                   "LOG_LEVEL = warning   # trailing comment\n"
	                   "HOST=0.0.0.0\r\n"
	                   "ASR_COMPUTE_TYPE=a#b\n"
	                   "OTHER_PROGRAM_SETTING=anything at all\n"
	                   "lower.case-key=ignored\n"
	                   "MAX_UPLOAD_SIZE_MB=  12  \n"
	                   "TTS_DEVICE=\"cuda\"\n"
	                   "TTS_DEVICE='cpu'\n");
	assert_int_equal(LOAD(&c, err, NULL), -EINVAL); /* a#b is one value */
	assert_non_null(strstr(err, "ASR_COMPUTE_TYPE=a#b (from .env line 8)"));

	write_file(".env", "# a comment line\n"
	                   "\n"
	                   "   \t\n"
	                   "export ASR_MODEL='my model # not a comment'\n"
	                   "ENV=\"say \\\"hi\\\" \\\\ now\"   # comment after quotes\n"
	                   "LOG_LEVEL = warning   # trailing comment\n"
	                   "HOST=0.0.0.0\r\n"
	                   "OTHER_PROGRAM_SETTING=anything at all\n"
	                   "lower.case-key=ignored\n"
	                   "MAX_UPLOAD_SIZE_MB=  12  \n"
	                   "TTS_DEVICE=\"cuda\"\n"
	                   "TTS_DEVICE='cpu'");
	LOAD_OK(&c, NULL);
	assert_string_equal(c.asr_model, "my model # not a comment");
	assert_string_equal(c.env, "say \"hi\" \\ now");
	assert_string_equal(c.log_level, "warning");
	assert_string_equal(c.host, "0.0.0.0");
	assert_int_equal(c.max_upload_size_mb, 12);
	assert_string_equal(c.tts_device, "cpu"); /* last line wins, no final newline */
	assert_int_equal(vs_config_source_of(&c, "HOST"), VS_SRC_DOTENV);
}

struct collected {
	char text[1024];
};

static int collect(const char *key, const char *value, int line, void *opaque)
{
	struct collected *col = opaque;
	size_t n = strlen(col->text);
	snprintf(col->text + n, sizeof(col->text) - n, "%d:%s=[%s];", line, key, value);
	return 0;
}

static void test_dotenv_parser_on_buffers(void **state)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
	        {"A=1", "1:A=[1];"},
	        {"A=\"x\\ny\\tz\\q\"", "1:A=[x\ny\tz\\q];"},
	        {"A='x\\ny'", "1:A=[x\\ny];"},
	        {"A=\n\nB= # c", "1:A=[];3:B=[];"},
	        {"  export   A = v v  ", "1:A=[v v];"},
	        {"exportA=1", "1:exportA=[1];"},
	        {"A=\"q\" # c\r\nB=2\r\n", "1:A=[q];2:B=[2];"},
	};
	static const struct {
		const char *in, *why;
	} bad[] = {
	        {"A", "line 1: expected KEY=VALUE"},
	        {"\nA 1", "line 2: expected KEY=VALUE"},
	        {"=1", "line 1: expected KEY=VALUE"},
	        {"A=\"open", "line 1: unterminated double quote"},
	        {"A='open", "line 1: unterminated single quote"},
	        {"A=\"x\" y", "line 1: unexpected text after closing quote"},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct collected col = {""};
		assert_int_equal(vs_dotenv_parse(ok[i].in, strlen(ok[i].in), collect, &col, err,
		                                 sizeof(err)),
		                 0);
		assert_string_equal(col.text, ok[i].out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct collected col = {""};
		err[0] = '\0';
		assert_int_equal(vs_dotenv_parse(bad[i].in, strlen(bad[i].in), collect, &col, err,
		                                 sizeof(err)),
		                 -EINVAL);
		assert_string_equal(err, bad[i].why);
	}
	/* a NUL byte and an over-long line are refused, not truncated */
	struct collected col = {""};
	assert_int_equal(vs_dotenv_parse("A=1\0x", 5, collect, &col, err, sizeof(err)), -EINVAL);
	char *longline = malloc(VS_DOTENV_LINE_MAX + 8);
	assert_non_null(longline);
	memset(longline, 'a', VS_DOTENV_LINE_MAX + 7);
	longline[0] = 'A', longline[1] = '=';
	assert_int_equal(
	        vs_dotenv_parse(longline, VS_DOTENV_LINE_MAX + 7, collect, &col, err, sizeof(err)),
	        -EINVAL);
	assert_string_equal(col.text, "");
	free(longline);
}

static void test_malformed_dotenv_names_file_and_line(void **state)
{
	struct vs_config c;
	char err[512] = "";

	write_file("other.env", "ASR_PORT=6001\nASR_PORT 6002\n");
	assert_int_equal(LOAD(&c, err, "--env-file", "other.env"), -EINVAL);
	assert_string_equal(err, "other.env line 2: expected KEY=VALUE");
}

/* ---- bad values ---- */

static void test_error_message_format(void **state)
{
	struct vs_config c;
	char err[512] = "";

	setenv("MEMORY_THRESHOLD_PERCENT", "150", 1);
	assert_int_equal(LOAD(&c, err, NULL), -EINVAL);
	assert_string_equal(err, "MEMORY_THRESHOLD_PERCENT=150 (from environment): "
	                         "must be an integer from 1 to 100");
	unsetenv("MEMORY_THRESHOLD_PERCENT");
	assert_int_equal(LOAD(&c, err, "--swap-threshold-percent=0"), -EINVAL);
	assert_string_equal(err, "SWAP_THRESHOLD_PERCENT=0 (from flag --swap-threshold-percent): "
	                         "must be an integer from 1 to 100");
	write_file(".env", "\nLOG_LEVEL=verbose\n");
	assert_int_equal(LOAD(&c, err, NULL), -EINVAL);
	assert_string_equal(err, "LOG_LEVEL=verbose (from .env line 2): "
	                         "must be one of debug, info, warning, error");
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			return true;
	return false;
}

static void test_each_bad_value_class_is_rejected_naming_setting_and_value(void **state)
{
	static const struct {
		const char *name, *value, *allowed;
	} bad[] = {
	        {"MEMORY_THRESHOLD_PERCENT", "150", "an integer from 1 to 100"}, /* range */
	        {"WORKER_NICE", "20", "an integer from 0 to 19"},
	        {"WORKER_NICE", "-1", "an integer from 0 to 19"},
	        {"HTTP_THREADS", "65", "an integer from 1 to 64"},
	        {"ASR_PORT", "abc", "an integer"},                  /* not a number */
	        {"MAX_UPLOAD_SIZE_MB", "10MB", "an integer"},       /* trailing junk */
	        {"MAX_UPLOAD_SIZE_MB", " 10", "an integer"},        /* leading blank */
	        {"HTTP_THREADS", "1.5", "an integer"},              /* fraction for an int */
	        {"ASR_PORT", "99999999999999999999", "an integer"}, /* overflow */
	        {"TTS_MAX_QUEUE", "", "an integer"},                /* empty */
	        {"ASR_MAX_QUEUE", "0x10", "an integer"},            /* hex */
	        {"ASR_IDLE_TIMEOUT_MINUTES", "-1", "a number from 0"},
	        {"ASR_IDLE_TIMEOUT_MINUTES", "nan", "a number from 0"},
	        {"TTS_IDLE_TIMEOUT_MINUTES", "inf", "a number from 0"},
	        {"REQUEST_TIMEOUT_SECONDS", "5s", "a number from 0"},
	        {"IDLE_CHECK_INTERVAL_SECONDS", "0.05", "a number from 0.1 to 3600"},
	        {"ASR_QUEUE_TIMEOUT_SECONDS", "1e9", "a number from 0.1"},
	        {"LOG_LEVEL", "verbose", "one of debug, info, warning, error"}, /* enum */
	        {"ASR_DEVICE", "gpu", "one of cpu, cuda, auto"},
	        {"ASR_VAD_ENABLED", "maybe", "true or false"},   /* bool */
	        {"ASR_ENGINE", "fasterwhisper", "pocketsphinx"}, /* registry */
	        {"TTS_ENGINE", "pocketsphinx", "espeak-ng"},     /* wrong kind */
	        {"HOST", "example.com", "numeric IPv4 or IPv6"},
	        {"ENV", "a\tb", "without control characters"},
	        {"ASR_MODEL", "x\ny", "without control characters"},
	};
	struct vs_config c;
	char err[512], want[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reset(NULL);
		setenv(bad[i].name, bad[i].value, 1);
		err[0] = '\0';
		assert_int_equal(LOAD(&c, err, NULL), -EINVAL);
		/* "NAME=value (from environment): must be ..."; an empty value or one
		 * with blanks is shown in quotes, a control character as '?' */
		if (!bad[i].value[0] || strchr(bad[i].value, ' '))
			snprintf(want, sizeof(want), "%s=\"%s\" (from environment): must be ",
			         bad[i].name, bad[i].value);
		else if (!has_control(bad[i].value))
			snprintf(want, sizeof(want), "%s=%s (from environment): must be ",
			         bad[i].name, bad[i].value);
		else
			snprintf(want, sizeof(want), "%s=", bad[i].name);
		if (strncmp(err, want, strlen(want)) != 0 || has_control(err) ||
		    !strstr(err, " (from environment): must be "))
			fail_msg("%s=%s: got \"%s\"", bad[i].name, bad[i].value, err);
		if (!strstr(err, bad[i].allowed))
			fail_msg("%s=%s: \"%s\" lacks \"%s\"", bad[i].name, bad[i].value, err,
			         bad[i].allowed);
		/* the same value as a flag is rejected too and named as a flag */
		unsetenv(bad[i].name);
		char flag[96];
		snprintf(flag, sizeof(flag), "--%s=%s", bad[i].name, bad[i].value);
		for (char *p = flag + 2; *p && *p != '='; p++)
			*p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
		assert_int_equal(LOAD(&c, err, flag), -EINVAL);
		assert_non_null(strstr(err, "(from flag --"));
		assert_non_null(strstr(err, bad[i].name));
	}
}

static void test_overlong_value_is_rejected_and_shortened_in_message(void **state)
{
	struct vs_config c;
	char err[512], big[VS_STR_MAX + 10];

	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv("ASR_MODEL", big, 1);
	assert_int_equal(LOAD(&c, err, NULL), -EINVAL);
	assert_non_null(strstr(err, "ASR_MODEL=mmmm"));
	assert_non_null(strstr(err, "...")); /* not the whole value */
	assert_true(strlen(err) < 200);
	big[VS_STR_MAX - 1] = '\0'; /* the longest that fits */
	setenv("ASR_MODEL", big, 1);
	LOAD_OK(&c, NULL);
	assert_string_equal(c.asr_model, big);
}

static void test_overridden_bad_value_is_still_an_error(void **state)
{
	struct vs_config c;
	char err[512];

	write_file(".env", "ASR_PORT=http\n");
	setenv("ASR_PORT", "6001", 1);
	assert_int_equal(LOAD(&c, err, NULL), -EINVAL);
	assert_non_null(strstr(err, "ASR_PORT=http (from .env line 1)"));
}

static void test_flag_without_value_is_an_error(void **state)
{
	struct vs_config c;
	char err[512];

	assert_int_equal(LOAD(&c, err, "--asr-port"), -EINVAL);
	assert_string_equal(err, "--asr-port: missing value");
}

static void test_ports_must_differ(void **state)
{
	struct vs_config c;
	char err[512];

	setenv("TTS_PORT", "5001", 1);
	assert_int_equal(LOAD(&c, err, NULL), -EINVAL);
	assert_non_null(strstr(err, "ASR_PORT=5001"));
	assert_non_null(strstr(err, "TTS_PORT=5001 (from environment)"));
}

/* ---- value syntax ---- */

static void test_idle_timeout_takes_fractions(void **state)
{
	struct vs_config c;

	setenv("ASR_IDLE_TIMEOUT_MINUTES", "0.05", 1);
	setenv("TTS_IDLE_TIMEOUT_MINUTES", "0", 1);
	setenv("IDLE_CHECK_INTERVAL_SECONDS", "1e-1", 1);
	LOAD_OK(&c, "--request-timeout-seconds", "2.5");
	assert_true(fabs(c.asr_idle_timeout_minutes - 0.05) < 1e-12);
	assert_true(c.tts_idle_timeout_minutes == 0.0);
	assert_true(fabs(c.idle_check_interval_seconds - 0.1) < 1e-12);
	assert_true(c.request_timeout_seconds == 2.5);
}

static void test_bools_in_every_spelling(void **state)
{
	static const struct {
		const char *v;
		bool b;
	} cases[] = {{"true", true}, {"false", false}, {"1", true},  {"0", false},
	             {"yes", true},  {"no", false},    {"on", true}, {"off", false},
	             {"TRUE", true}, {"Off", false},   {"YeS", true}};
	struct vs_config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv("ASR_VAD_ENABLED", cases[i].v, 1);
		LOAD_OK(&c, NULL);
		assert_int_equal(c.asr_vad_enabled, cases[i].b);
	}
	unsetenv("ASR_VAD_ENABLED");
	LOAD_OK(&c, "--asr-vad-enabled", "no");
	assert_false(c.asr_vad_enabled);
	assert_int_equal(rest, 1);
	LOAD_OK(&c, "--asr-vad-enabled=off");
	assert_false(c.asr_vad_enabled);
	/* alone, a boolean flag means true and does not eat the next word */
	setenv("ASR_VAD_ENABLED", "false", 1);
	LOAD_OK(&c, "--asr-vad-enabled", "worker");
	assert_true(c.asr_vad_enabled);
	assert_int_equal(rest, 2);
	assert_string_equal(argv_buf[1], "worker");
}

static void test_choices_match_any_case_and_are_stored_canonically(void **state)
{
	struct vs_config c;

	setenv("LOG_LEVEL", "WARNING", 1);
	setenv("ASR_DEVICE", "Cuda", 1);
	LOAD_OK(&c, NULL);
	assert_string_equal(c.log_level, "warning");
	assert_string_equal(c.asr_device, "cuda");
}

static void test_unknown_args_are_left_in_argv_in_order(void **state)
{
	struct vs_config c;

	write_file("other.env", "SWAP_THRESHOLD_PERCENT=55\n");
	LOAD_OK(&c, "worker", "--kind", "asr", "--asr-port", "6001", "--fd=3", "--env-file",
	        "other.env", "--log-level=debug", "-v", "--tts-port", "6002", "--", "--tts-port",
	        "7000", "x");
	static const char *const want[] = {"voicestack", "worker", "--kind",     "asr",  "--fd=3",
	                                   "-v",         "--",     "--tts-port", "7000", "x"};
	assert_int_equal(rest, sizeof(want) / sizeof(want[0]));
	for (int i = 0; i < rest; i++)
		assert_string_equal(argv_buf[i], want[i]);
	assert_null(argv_buf[rest]);
	assert_int_equal(c.asr_port, 6001);
	assert_int_equal(c.tts_port, 6002); /* not 7000: after "--" */
	assert_string_equal(c.log_level, "debug");
	assert_int_equal(c.swap_threshold_percent, 55);
}

/* ---- warnings ---- */

struct warnings {
	int n;
	char text[2048];
};

static void on_warning(const char *msg, void *opaque)
{
	struct warnings *w = opaque;
	size_t len = strlen(w->text);
	w->n++;
	snprintf(w->text + len, sizeof(w->text) - len, "%s\n", msg);
}

/* Settings an engine cannot use are checked at start-up by
 * vs_engine_settings() (src/engine_settings.c) against the engine's
 * capability lists; returns what the engines' load() would get. */
static void all_engine_settings(const struct vs_config *c, struct warnings *w)
{
	struct vs_engine_config ec;

	struct vs_models ms = {0};
	char err[256];

	assert_non_null(vs_engine_settings(c, VS_ENGINE_ASR, &ec, on_warning, w));
	assert_non_null(vs_engine_settings(c, VS_ENGINE_TTS, &ec, on_warning, w));
	assert_int_equal(vs_engine_settings_models(c, VS_ENGINE_ASR | VS_ENGINE_TTS, &ms,
	                                           on_warning, w, err, sizeof(err)),
	                 0);
	vs_models_free(&ms);
}

static void test_no_warnings_for_defaults(void **state)
{
	struct vs_config c;
	struct warnings w = {0, ""};

	LOAD_OK(&c, NULL);
	vs_config_warnings(&c, on_warning, &w);
	all_engine_settings(&c, &w);
	assert_int_equal(w.n, 0);
}

static void test_warnings_for_settings_the_engine_ignores(void **state)
{
	struct vs_config c;
	struct vs_engine_config ec;
	struct warnings w = {0, ""};

	setenv("ASR_COMPUTE_TYPE", "int8", 1); /* the default value, but set explicitly */
	setenv("ASR_DEVICE", "cuda", 1);
	setenv("TTS_DEVICE", "cuda", 1);
	setenv("ASR_MODEL", "my-finetune", 1);
	LOAD_OK(&c, NULL);
	all_engine_settings(&c, &w);
	assert_int_equal(w.n, 4);
	assert_non_null(strstr(w.text, "ASR_COMPUTE_TYPE=int8 does not apply to engine "
	                               "pocketsphinx; ignored\n"));
	assert_non_null(strstr(w.text, "ASR_DEVICE=cuda does not apply to engine pocketsphinx"));
	assert_non_null(strstr(w.text, "TTS_DEVICE=cuda does not apply to engine espeak-ng"));
	assert_non_null(strstr(w.text, "ASR_MODEL=my-finetune names no ASR model of the "
	                               "catalogue"));
	/* and none of them reaches the engine */
	assert_non_null(vs_engine_settings(&c, VS_ENGINE_ASR, &ec, NULL, NULL));
	assert_null(ec.model);
	assert_null(ec.device);
	assert_null(ec.compute_type);
	assert_true(ec.vad);

	/* values the engine does use are not warned about, and reach it; a
	 * catalogue model named by ASR_MODEL becomes the default */
	reset(NULL);
	const struct vs_engine_info *ps = vs_engine_find("pocketsphinx");
	struct vs_models ms = {0};
	char err[256];
	assert_non_null(ps);
	setenv("ASR_MODEL", "pocketsphinx-accurate", 1);
	setenv("ASR_DEVICE", "cpu", 1);
	LOAD_OK(&c, NULL);
	w.n = 0;
	all_engine_settings(&c, &w);
	assert_int_equal(w.n, 0);
	vs_engine_settings(&c, VS_ENGINE_ASR, &ec, NULL, NULL);
	assert_null(ec.model); /* models are the catalogue's, not the engine's */
	assert_string_equal(ec.device, "cpu");
	assert_int_equal(vs_engine_settings_models(&c, VS_ENGINE_ASR | VS_ENGINE_TTS, &ms, NULL,
	                                           NULL, err, sizeof(err)),
	                 0);
	assert_string_equal(ms.m[vs_models_default(&ms, VS_ENGINE_ASR)].id,
	                    "pocketsphinx-accurate");
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "whisper-1"),
	                 vs_models_default(&ms, VS_ENGINE_ASR));
	vs_models_free(&ms);
	assert_int_equal(vs_engine_check_config(ps, &ec, (char[64]){0}, 64), 0);
}

/* Config knows no engine: without the registry's checks an engine name is
 * plain text with no default (layering: config may not include engine). */
static void test_engine_names_come_from_the_callers_checks(void **state)
{
	struct vs_config c;
	char err[256] = "";
	char *argv[] = {"voicestack", "--asr-engine", "no-such-engine", NULL};
	int n = 0;

	assert_int_equal(vs_config_defaults(&c, NULL), 0);
	assert_string_equal(c.asr_engine, "");
	assert_int_equal(vs_config_load(&c, NULL, 3, argv, &n, err, sizeof(err)), 0);
	assert_string_equal(c.asr_engine, "no-such-engine");
	/* with them, the same name is an error naming what is built in */
	assert_int_equal(LOAD(&c, err, "--asr-engine", "no-such-engine"), -EINVAL);
	assert_non_null(strstr(err, "ASR_ENGINE=no-such-engine (from flag --asr-engine): must be "
	                            "one of the ASR engines built in: pocketsphinx"));
}

static void test_warnings_for_settings_that_contradict(void **state)
{
	struct vs_config c;
	struct warnings w = {0, ""};

	LOAD_OK(&c, "--max-json-body-kb", "1", "--tts-queue-timeout-seconds", "5");
	vs_config_warnings(&c, on_warning, &w);
	assert_int_equal(w.n, 2);
	assert_non_null(strstr(w.text, "MAX_JSON_BODY_KB=1 is too small"));
	assert_non_null(strstr(w.text, "TTS_QUEUE_TIMEOUT_SECONDS has no effect"));
	/* with a queue, the timeout matters */
	LOAD_OK(&c, "--tts-max-queue", "4", "--tts-queue-timeout-seconds", "5");
	w.n = 0;
	vs_config_warnings(&c, on_warning, &w);
	assert_int_equal(w.n, 0);
	/* API keys do not cover the Wyoming ports: said once at start-up */
	LOAD_OK(&c, "--api-key", "s3cret", "--wyoming-asr-port", "10300");
	w.n = 0;
	w.text[0] = '\0';
	vs_config_warnings(&c, on_warning, &w);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.text, "Wyoming protocol has no authentication"));
	assert_null(strstr(w.text, "s3cret"));
}

/* Reserved slots leave one for normal requests (an error otherwise), and
 * are warned about while nothing can make a request high. */
static void test_reserved_slots_checked_against_slots_and_lanes(void **state)
{
	struct vs_config c;
	struct warnings w = {0, ""};
	char err[256] = "";

	assert_int_equal(LOAD(&c, err, "--asr-reserved-slots", "2"), -EINVAL);
	assert_non_null(strstr(err, "ASR_RESERVED_SLOTS=2: must be less than "
	                            "ASR_MAX_CONCURRENT_REQUESTS=2"));
	assert_int_equal(
	        LOAD(&c, err, "--tts-max-concurrent-requests", "3", "--tts-reserved-slots", "3"),
	        -EINVAL);
	assert_non_null(strstr(err, "TTS_RESERVED_SLOTS=3"));
	LOAD_OK(&c, "--asr-reserved-slots", "1");
	assert_int_equal(c.asr_reserved_slots, 1);
	assert_int_equal(c.low_lane_max_skips, 8);
	assert_false(c.allow_client_priority);
	vs_config_warnings(&c, on_warning, &w);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.text, "ASR_RESERVED_SLOTS=1 are kept for high-priority"));
	LOAD_OK(&c, "--asr-reserved-slots", "1", "--allow-client-priority");
	w.n = 0;
	vs_config_warnings(&c, on_warning, &w);
	assert_int_equal(w.n, 0);
	/* a key file may give keys the high lane */
	LOAD_OK(&c, "--asr-reserved-slots", "1", "--api-keys-file", "/etc/voicestack/keys");
	vs_config_warnings(&c, on_warning, &w);
	assert_int_equal(w.n, 0);
	assert_int_equal(LOAD(&c, err, "--low-lane-max-skips", "0"), -EINVAL);
}

/* A clip of ASR_MAX_AUDIO_SECONDS must be able to finish within
 * REQUEST_TIMEOUT_SECONDS at a conservative real-time factor: the defaults
 * agree (no warning above), and a setting that breaks it is warned about. */
static void test_warning_when_max_audio_cannot_finish_in_time(void **state)
{
	/* args for LOAD_OK, and the warnings they must give */
	static const struct {
		const char *timeout;
		int n;
	} cases[] = {
	        {"300", 1},  /* the default timeout: 3600 x 0.5 s does not fit */
	        {"0", 0},    /* no timeout, nothing to contradict */
	        {"3600", 0}, /* a raised timeout makes room */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vs_config c;
		struct warnings w = {0, ""};
		LOAD_OK(&c, "--asr-max-audio-seconds", "3600", "--request-timeout-seconds",
		        cases[i].timeout);
		vs_config_warnings(&c, on_warning, &w);
		assert_int_equal(w.n, cases[i].n);
		if (cases[i].n) {
			assert_non_null(strstr(w.text, "ASR_MAX_AUDIO_SECONDS=3600"));
			assert_non_null(strstr(w.text, "REQUEST_TIMEOUT_SECONDS=300"));
		}
	}
}

/* ---- printing ---- */

static char *capture(void (*print)(FILE *, const struct vs_config_check *),
                     const struct vs_config *c, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	if (c)
		vs_config_print_effective(c, f);
	else
		print(f, vs_engine_settings_checks());
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_effective_config_shows_value_and_source(void **state)
{
	struct vs_config c;
	size_t len, lines = 0, n;

	write_file(".env", "ASR_MODEL=\"two words\"\n");
	setenv("MEMORY_THRESHOLD_PERCENT", "70", 1);
	setenv("ASR_IDLE_TIMEOUT_MINUTES", "0.05", 1);
	LOAD_OK(&c, "--asr-port", "6001");
	char *out = capture(NULL, &c, &len);
	assert_non_null(strstr(out, "\nASR_PORT=6001  (flag)\n"));
	assert_non_null(strstr(out, "\nMEMORY_THRESHOLD_PERCENT=70  (environment)\n"));
	assert_non_null(strstr(out, "\nSWAP_THRESHOLD_PERCENT=80  (default)\n"));
	assert_non_null(strstr(out, "\nASR_MODEL=two words  (.env)\n"));
	assert_non_null(strstr(out, "\nASR_IDLE_TIMEOUT_MINUTES=0.05  (environment)\n"));
	assert_non_null(strstr(out, "\nASR_VAD_ENABLED=true  (default)\n"));
	for (size_t i = 0; i < len; i++)
		lines += out[i] == '\n';
	for (n = 0; vs_config_setting_name(n); n++)
		;
	assert_int_equal(lines, n);
	free(out);
}

static void test_help_and_markdown_list_every_setting(void **state)
{
	size_t len;
	char *help = capture(vs_config_print_help, NULL, &len);
	char *md = capture(vs_config_print_markdown, NULL, &len);

	for (size_t i = 0; vs_config_setting_name(i); i++) {
		const char *name = vs_config_setting_name(i);
		char flag[96], row[128];
		size_t k;

		snprintf(flag, sizeof(flag), "--");
		for (k = 0; name[k]; k++)
			flag[k + 2] = name[k] == '_' ? '-' : (char)(name[k] | 0x20);
		flag[k + 2] = '\0';
		assert_non_null(strstr(help, name));
		assert_non_null(strstr(help, flag));
		snprintf(row, sizeof(row), "| `%s` | `%s` |", name, flag);
		if (!strstr(md, row))
			fail_msg("markdown lacks row %s", row);
	}
	assert_non_null(strstr(help, "--env-file PATH"));
	free(help);
	free(md);
}

/* The man page's SETTINGS section (voicestack(1), built by meson from
 * `voicestack config --man`): one .TP item per setting with its flag and name,
 * every '-' escaped (a bare one may render as a hyphen, not copyable into a
 * shell), every backslash an escape we wrote, no text line that groff would
 * take for a request, and no bold left open. groff -ww checks the whole page
 * in tests/integration/test_package.py. */
static void test_man_section_lists_every_setting_escaped(void **state)
{
	size_t len, items = 0, n;
	char *man = capture(vs_config_print_man, NULL, &len);

	assert_true(strncmp(man, ".SH SETTINGS\n", 13) == 0);
	for (n = 0; vs_config_setting_name(n); n++) {
		const char *name = vs_config_setting_name(n);
		char want[256], *w = want;

		w += sprintf(w, ".TP\n\\fB\\-\\-");
		for (size_t k = 0; name[k]; k++)
			w += name[k] == '_' ? sprintf(w, "\\-") : sprintf(w, "%c", name[k] | 0x20);
		sprintf(w, "\\fR \\fI");
		if (!strstr(man, want))
			fail_msg("man page lacks the item of %s (%s)", name, want);
		snprintf(want, sizeof(want), "(\\fB%s\\fR)\n", name);
		assert_non_null(strstr(man, want));
	}
	for (const char *line = man; *line; line = strchr(line, '\n') + 1) {
		size_t l = strcspn(line, "\n");
		if (strncmp(line, ".TP\n", 4) == 0)
			items++;
		else if (line[0] == '.' || line[0] == '\'')
			assert_true(strncmp(line, ".SH ", 4) == 0 ||
			            strncmp(line, ".br\n", 4) == 0);
		int bold = 0;
		for (size_t i = 0; i < l; i++) {
			if (line[i] == '-')
				assert_true(i > 0 && line[i - 1] == '\\');
			if (line[i] != '\\')
				continue;
			/* our escapes only: \- \e \& \fB \fI \fR */
			char e = line[++i];
			assert_non_null(strchr("-e&f", e));
			if (e == 'f') {
				char font = line[++i];
				assert_non_null(strchr("BIR", font));
				bold = font == 'B' || font == 'I';
			}
		}
		if (bold)
			fail_msg("font left open on: %.*s", (int)l, line);
	}
	assert_int_equal(items, n + 1); /* + --env-file */
	free(man);
}

static void test_docs_config_md_is_generated_from_the_table(void **state)
{
	size_t len;
	char *md = capture(vs_config_print_markdown, NULL, &len);
	FILE *f = fopen(docs_path, "re");
	char *doc = NULL;
	size_t cap = 0, got = 0;

	if (!f)
		fail_msg("cannot open %s (set VS_SOURCE_ROOT to the source tree)", docs_path);
	do {
		cap += 65536;
		doc = realloc(doc, cap);
		assert_non_null(doc);
		got += fread(doc + got, 1, cap - got, f);
	} while (got == cap);
	fclose(f);
	if (got != len || memcmp(doc, md, len) != 0) {
		char out[PATH_MAX + 32];
		snprintf(out, sizeof(out), "%s/CONFIG.md.generated", start_dir);
		FILE *g = fopen(out, "we");
		if (g) {
			fwrite(md, 1, len, g);
			fclose(g);
		}
		fail_msg("%s differs from vs_config_print_markdown(); review and copy %s over it "
		         "(or run `voicestack config --markdown > docs/CONFIG.md`)",
		         docs_path, out);
	}
	free(doc);
	free(md);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
	const char *root = getenv("VS_SOURCE_ROOT");
	char rel[PATH_MAX];

	(void)state;
#ifdef VS_SOURCE_ROOT
	if (!root)
		root = VS_SOURCE_ROOT;
#endif
	if (root) {
		snprintf(rel, sizeof(rel), "%s/docs/CONFIG.md", root);
	} else {
		/* __FILE__ is ".../tests/unit/test_config.c" as the compiler saw it */
		const char *tail = strstr(__FILE__, "tests/unit/test_config.c");
		int n = tail ? (int)(tail - __FILE__) : 0;
		snprintf(rel, sizeof(rel), "%.*sdocs/CONFIG.md", n, __FILE__);
	}
	if (!realpath(rel, docs_path))
		snprintf(docs_path, sizeof(docs_path), "%s", rel); /* the test reports it */
	if (!getcwd(start_dir, sizeof(start_dir)))
		return -1;
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/test_config.XXXXXX");
	if (!mkdtemp(tmp_dir) || chdir(tmp_dir) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	reset(NULL);
	if (chdir(start_dir) < 0)
		return -1;
	return rmdir(tmp_dir);
}

#define T(f) cmocka_unit_test_setup(f, reset)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_defaults_are_the_original_specs),
	        T(test_env_overrides_default),
	        T(test_flag_overrides_env_in_both_spellings),
	        T(test_dotenv_overrides_default_and_env_overrides_dotenv),
	        T(test_dotenv_in_working_directory_is_read_without_flag),
	        T(test_missing_named_env_file_is_an_error),
	        T(test_dotenv_quotes_comments_export),
	        T(test_dotenv_parser_on_buffers),
	        T(test_malformed_dotenv_names_file_and_line),
	        T(test_error_message_format),
	        T(test_each_bad_value_class_is_rejected_naming_setting_and_value),
	        T(test_overlong_value_is_rejected_and_shortened_in_message),
	        T(test_overridden_bad_value_is_still_an_error),
	        T(test_flag_without_value_is_an_error),
	        T(test_ports_must_differ),
	        T(test_idle_timeout_takes_fractions),
	        T(test_bools_in_every_spelling),
	        T(test_choices_match_any_case_and_are_stored_canonically),
	        T(test_unknown_args_are_left_in_argv_in_order),
	        T(test_no_warnings_for_defaults),
	        T(test_warnings_for_settings_the_engine_ignores),
	        T(test_engine_names_come_from_the_callers_checks),
	        T(test_warnings_for_settings_that_contradict),
	        T(test_reserved_slots_checked_against_slots_and_lanes),
	        T(test_warning_when_max_audio_cannot_finish_in_time),
	        T(test_effective_config_shows_value_and_source),
	        T(test_help_and_markdown_list_every_setting),
	        T(test_docs_config_md_is_generated_from_the_table),
	        T(test_man_section_lists_every_setting_escaped),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
