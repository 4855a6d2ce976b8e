/* test_engines.c - "test-asr" and "test-tts": deterministic fake engines that
 * exist FOR TESTS ONLY (integration tests of timing, admission control,
 * timeouts and crash isolation). Never use them in production: they do not
 * look at the audio or the text.
 *
 * DESIGN
 * A real engine's latency depends on the machine; these make it a setting, so
 * a test can hold a worker busy for a known time and assert on queueing,
 * 503s and timeouts without flakiness. Both read, at each request:
 *   VS_TEST_ENGINE_SLEEP_MS  how long a request takes (default 1000, 0..600000)
 *   VS_TEST_ENGINE_CRASH=1   abort() in the middle of the request, to prove a
 *                            crashing engine costs one request, not the server
 * The variables reach the engine through the worker's inherited environment.
 *
 * test-asr: sleeps, then returns "test transcript of N samples" as one segment
 * spanning the whole audio, with five evenly spaced words.
 * test-tts: sleeps, then emits 1 s of a 440 Hz tone at 22050 Hz in ten blocks
 * with sleep/10 between blocks (so streaming is observable). Speed is ignored.
 * Voices: the OpenAI names and "test"; anything else is -EINVAL.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_impl.h"

#define TEST_RATE 22050
#define TONE_HZ 440.0
#define TONE_BLOCKS 10
#define SLEEP_DEFAULT_MS 1000
#define SLEEP_MAX_MS 600000

/* the voice test-tts has besides the OpenAI names */
#define TEST_VOICE "test"

static long sleep_ms(void)
{
	const char *s = getenv("VS_TEST_ENGINE_SLEEP_MS");
	char *end;
	long v;

	if (!s || !*s)
		return SLEEP_DEFAULT_MS;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		return SLEEP_DEFAULT_MS;
	return v > SLEEP_MAX_MS ? SLEEP_MAX_MS : v;
}

static void crash_if_asked(void)
{
	const char *s = getenv("VS_TEST_ENGINE_CRASH");

	if (s && strcmp(s, "1") == 0)
		abort();
}

static void sleep_for(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* one static object: load() hands out its address, there is no state */
static int test_ctx;

static int test_load(const struct vs_engine_info *info, const struct vs_engine_config *cfg,
                     void **ctx, char *err, size_t errlen)
{
	int rc = vs_engine_check_config(info, cfg, err, errlen);

	*ctx = rc < 0 ? NULL : &test_ctx;
	return rc;
}

static int test_asr_load(const struct vs_engine_config *cfg, void **ctx, char *err, size_t errlen)
{
	return test_load(&vs_engine_test_asr_info, cfg, ctx, err, errlen);
}

static int test_tts_load(const struct vs_engine_config *cfg, void **ctx, char *err, size_t errlen)
{
	return test_load(&vs_engine_test_tts_info, cfg, ctx, err, errlen);
}

static void test_unload(void *ctx)
{
}

/* ---- test-asr ---- */

static int test_transcribe(void *ctx, const int16_t *pcm, size_t n_samples,
                           const struct vs_asr_params *p, struct vs_transcript *out, char *err,
                           size_t errlen)
{
	static const char *const words[] = {"test", "transcript", "of", "N", "samples"};
	double duration = (double)n_samples / 16000.0, step = duration / 5.0;
	char text[64], num[24];
	long ms = sleep_ms();
	size_t i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	sleep_for(ms / 2);
	crash_if_asked();
	sleep_for(ms - ms / 2);
	snprintf(num, sizeof(num), "%zu", n_samples);
	snprintf(text, sizeof(text), "test transcript of %s samples", num);
	for (i = 0; i < 5 && rc == 0 && p && p->want_words; i++) {
		const char *w = i == 3 ? num : words[i];

		rc = vs_transcript_add_word(out, w, strlen(w), step * (double)i,
		                            step * (double)(i + 1), 1.0);
	}
	if (rc == 0)
		rc = vs_transcript_add_segment(out, text, 0.0, duration, 0);
	if (rc == 0)
		rc = vs_transcript_finish(
		        out, p && p->language && *p->language ? p->language : "en", duration);
	if (rc < 0)
		snprintf(err, errlen, "out of memory");
	return rc;
}

/* ---- test-tts ---- */

static int test_synthesize(void *ctx, const struct vs_tts_params *p, vs_pcm_sink_fn sink,
                           void *opaque, char *err, size_t errlen)
{
	int16_t block[TEST_RATE / TONE_BLOCKS];
	size_t i, b, k = 0;
	long ms = sleep_ms();
	int rc;

	if (vs_openai_voice_index(p->voice) < 0 && (!p->voice || strcmp(p->voice, TEST_VOICE))) {
		snprintf(err, errlen,
		         "unknown voice '%.64s' (test-tts knows the OpenAI voice "
		         "names and 'test')",
		         p->voice ? p->voice : "");
		return -EINVAL;
	}
	sleep_for(ms);
	for (b = 0; b < TONE_BLOCKS; b++) {
		if (b == TONE_BLOCKS / 2)
			crash_if_asked();
		for (i = 0; i < sizeof(block) / sizeof(block[0]); i++, k++)
			block[i] = (int16_t)(8000.0 *
			                     sin(2.0 * M_PI * TONE_HZ * (double)k / TEST_RATE));
		rc = sink(opaque, block, sizeof(block) / sizeof(block[0]));
		if (rc < 0)
			return rc;
		if (b + 1 < TONE_BLOCKS)
			sleep_for(ms / TONE_BLOCKS);
	}
	return 0;
}

static int test_list_voices(void *ctx, struct vs_voice **out, size_t *n)
{
	struct vs_voice *v;
	size_t i, count = VS_N_OPENAI_VOICES + 1; /* the OpenAI names and TEST_VOICE */

	*out = NULL;
	*n = 0;
	v = calloc(count, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		v[i].name = strdup(i < VS_N_OPENAI_VOICES ? vs_openai_voices[i] : TEST_VOICE);
		v[i].language = strdup("en");
		v[i].gender = strdup("");
		if (!v[i].name || !v[i].language || !v[i].gender) {
			vs_voices_free(v, i + 1);
			return -ENOMEM;
		}
	}
	*out = v;
	*n = count;
	return 0;
}

static int test_sample_rate(void *ctx)
{
	return TEST_RATE;
}

const struct vs_engine_ops vs_engine_test_asr = {
        .version = VS_ENGINE_API_VERSION,
        .info = &vs_engine_test_asr_info,
        .load = test_asr_load,
        .unload = test_unload,
        .transcribe = test_transcribe,
};

const struct vs_engine_ops vs_engine_test_tts = {
        .version = VS_ENGINE_API_VERSION,
        .info = &vs_engine_test_tts_info,
        .load = test_tts_load,
        .unload = test_unload,
        .synthesize = test_synthesize,
        .list_voices = test_list_voices,
        .sample_rate = test_sample_rate,
};
