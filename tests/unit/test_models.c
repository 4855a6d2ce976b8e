/* test_models.c - the model catalogue: MODELS_FILE parsing and its errors,
 * the built-in models, the default's standard names, and that
 * `voicestack models` output (vs_models_print) reads back as the same
 * catalogue.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/models.h"

static struct vs_models ms;
static char err[512];

static int parse(const char *text)
{
	err[0] = '\0';
	return vs_models_parse(&ms, text, "models.txt", err, sizeof(err));
}

static int finish(void)
{
	return vs_models_finish(&ms, VS_ENGINE_ASR | VS_ENGINE_TTS, 4, 4, err, sizeof(err));
}

static void teardown_each(void)
{
	vs_models_free(&ms);
}

static void test_builtin(void **state)
{
	(void)state;
	vs_models_builtin(&ms);
	assert_int_equal(finish(), 0);
	int ps = vs_models_find(&ms, VS_ENGINE_ASR, "pocketsphinx");
	int acc = vs_models_find(&ms, VS_ENGINE_ASR, "pocketsphinx-accurate");
	int es = vs_models_find(&ms, VS_ENGINE_TTS, "espeak-ng");
	int fl = vs_models_find(&ms, VS_ENGINE_TTS, "flite");
	assert_true(ps >= 0 && acc >= 0 && es >= 0 && fl >= 0);
	assert_int_equal(vs_models_default(&ms, VS_ENGINE_ASR), ps);
	assert_int_equal(vs_models_default(&ms, VS_ENGINE_TTS), es);
	/* OpenAI's names: recognizers to the default, tts-1 to the default
	 * (fastest), the hd names to flite */
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "whisper-1"), ps);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "gpt-4o-transcribe"), ps);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "gpt-4o-mini-transcribe"), ps);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "large-v3"), ps);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_TTS, "tts-1"), es);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_TTS, "tts-1-hd"), fl);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_TTS, "gpt-4o-mini-tts"), fl);
	/* names are per service */
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_TTS, "whisper-1"), -1);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "flite"), -1);
	assert_int_equal(ms.m[acc].fallback_index, ps);
	assert_int_equal(ms.m[fl].fallback_index, es);
	teardown_each();
}

static void test_parse_keys_comments_and_overrides(void **state)
{
	(void)state;
	assert_int_equal(parse("# my models\n"
	                       "\n"
	                       "fast asr pocketsphinx slots=1 slots=2   # later key wins\n"
	                       "  big asr pocketsphinx idle_minutes=0.5 fallback=fast "
	                       "aliases=a,b aliases=whisper-1\n"
	                       "voice tts espeak-ng\n"),
	                 0);
	assert_int_equal(finish(), 0);
	assert_int_equal(ms.n, 3);
	assert_string_equal(ms.m[0].id, "fast");
	assert_int_equal(ms.m[0].slots, 2);
	assert_true(ms.m[1].idle_minutes == 0.5);
	assert_int_equal(ms.m[1].fallback_index, 0);
	/* aliases= replaces the earlier list; whisper-1 claimed by "big" */
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "a"), -1);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "whisper-1"), 1);
	/* unclaimed standard names still go to the default */
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_ASR, "base"), 0);
	assert_int_equal(vs_models_find(&ms, VS_ENGINE_TTS, "tts-1-hd"), 2);
	teardown_each();
}

/* each refusal names the line and says why */
static void test_parse_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
	        {"a asr\n", "models.txt:1: expected ID SERVICE ENGINE"},
	        {"\n\na xyz pocketsphinx\n", "models.txt:3: service 'xyz'"},
	        {"a asr espeak-ng\n", "'espeak-ng' is not an asr engine"},
	        {"a asr nosuch\n", "'nosuch' is not an asr engine"},
	        {"a asr pocketsphinx\na asr pocketsphinx\n",
	         "models.txt:2: model 'a' is defined twice"},
	        {"a asr pocketsphinx slots=x\n", "slots=x is not a number"},
	        {"a asr pocketsphinx slots=65\n", "slots=65"},
	        {"a asr pocketsphinx idle_minutes=-1\n", "idle_minutes=-1"},
	        {"a asr pocketsphinx color=red\n", "unknown key 'color'"},
	        {"a asr pocketsphinx novalue\n", "'novalue' is not key=value"},
	        {"a/b asr pocketsphinx\n", "model id 'a/b' is not a name"},
	        {"a asr pocketsphinx aliases=x,y/z\n", "alias 'y/z'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(cases[i].text), -EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
		assert_int_equal(ms.n, 0);
	}
}

static void test_finish_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
	        {"a asr pocketsphinx\n", "no tts model"},
	        {"a asr pocketsphinx fallback=b\nt tts espeak-ng\n",
	         "fallback 'b' is not another asr"},
	        {"a asr pocketsphinx fallback=a\nt tts espeak-ng\n", "fallback 'a'"},
	        {"a asr pocketsphinx fallback=t\nt tts espeak-ng\n", "fallback 't'"},
	        {"a asr pocketsphinx slots=5\nt tts espeak-ng\n", "slots=5 is more than"},
	        {"a asr pocketsphinx aliases=b\nb asr pocketsphinx\nt tts espeak-ng\n",
	         "name 'b' belongs to both"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(cases[i].text), 0);
		assert_int_equal(finish(), -EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
		teardown_each();
	}
	/* the same name in two services is fine: they are different ports */
	assert_int_equal(parse("x asr pocketsphinx\nx tts espeak-ng\n"), 0);
	assert_int_equal(finish(), 0);
	teardown_each();
}

/* `voicestack models` output is a valid MODELS_FILE giving the same catalogue */
static void test_print_reads_back(void **state)
{
	(void)state;
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	FILE *f;

	vs_models_builtin(&ms);
	vs_models_make_default(&ms, vs_models_find(&ms, VS_ENGINE_TTS, "flite"));
	assert_int_equal(finish(), 0);
	f = open_memstream(&a, &alen);
	vs_models_print(&ms, f, 2, 3, 60, 5);
	fclose(f);
	assert_int_equal(parse(a), 0);
	assert_int_equal(finish(), 0);
	assert_int_equal(vs_models_default(&ms, VS_ENGINE_TTS),
	                 vs_models_find(&ms, VS_ENGINE_TTS, "flite"));
	f = open_memstream(&b, &blen);
	vs_models_print(&ms, f, 2, 3, 60, 5);
	fclose(f);
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "flite tts flite slots=3 idle_minutes=5"));
	free(a);
	free(b);
	teardown_each();
}

static void test_make_default_keeps_the_others_in_order(void **state)
{
	(void)state;
	assert_int_equal(parse("a asr pocketsphinx\nt tts espeak-ng\nb asr pocketsphinx\n"
	                       "c asr pocketsphinx\n"),
	                 0);
	vs_models_make_default(&ms, 3);
	assert_string_equal(ms.m[0].id, "c");
	assert_string_equal(ms.m[1].id, "a");
	assert_string_equal(ms.m[2].id, "t");
	assert_string_equal(ms.m[3].id, "b");
	assert_int_equal(vs_models_add(&ms, "a", ms.m[1].engine), -EEXIST);
	teardown_each();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_builtin),
	        cmocka_unit_test(test_parse_keys_comments_and_overrides),
	        cmocka_unit_test(test_parse_errors),
	        cmocka_unit_test(test_finish_errors),
	        cmocka_unit_test(test_print_reads_back),
	        cmocka_unit_test(test_make_default_keeps_the_others_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
