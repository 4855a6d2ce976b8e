/* test_tts_pipeline.c - the TTS worker's synthesis pipeline
 * (src/worker/tts_pipeline.c): engine PCM -> encoder -> byte sink.
 *
 * The engine is wrapped so the test sees, from the byte sink, how far the
 * engine has got. Overlap is shown without timing: the byte sink refuses to
 * return until the engine has delivered more blocks, which a pipeline that
 * encodes on the engine's own thread can never do (its sink call is still on
 * the stack); the wait has a generous bound so such a pipeline fails instead
 * of hanging. Shown with a fake engine and with real espeak-ng.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "worker/tts_pipeline.h"

#define BLOCK 2205 /* 100 ms at 22050 Hz: what espeak-ng delivers */

/* ---- an engine wrapper that counts what the engine delivered ---- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	const struct vs_engine_ops *inner;
	void *inner_ctx;
	vs_pcm_sink_fn sink; /* the pipeline's */
	void *opaque;
	size_t blocks, samples; /* delivered to the pipeline (its sink returned) */
	bool engine_done;
	/* fake engine */
	size_t fake_blocks;
	int fake_fail_at; /* block index at which the fake fails, -1: never */
	/* byte sink */
	size_t wait_blocks;     /* first call waits until this many blocks (0: no wait) */
	int wait_s;             /* for at most this long */
	bool waited, timed_out; /* the wait happened / ran out */
	size_t samples_at_wait; /* samples delivered when the wait ended */
	int out_err;            /* returned by every call after the first, 0: none */
	size_t out_calls, out_bytes;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void reset(const struct vs_engine_ops *inner, void *inner_ctx)
{
	W.inner = inner;
	W.inner_ctx = inner_ctx;
	W.blocks = W.samples = 0;
	W.engine_done = false;
	W.fake_blocks = 40;
	W.fake_fail_at = -1;
	W.wait_blocks = 0;
	W.wait_s = 20; /* only a pipeline without overlap waits that long */
	W.waited = W.timed_out = false;
	W.samples_at_wait = 0;
	W.out_err = 0;
	W.out_calls = W.out_bytes = 0;
}

static int counting_sink(void *opaque, const int16_t *pcm, size_t n)
{
	int r = W.sink(W.opaque, pcm, n);

	pthread_mutex_lock(&W.mu);
	if (r == 0) {
		W.blocks++;
		W.samples += n;
	}
	pthread_cond_broadcast(&W.cond);
	pthread_mutex_unlock(&W.mu);
	return r;
}

static int wrap_synthesize(void *ctx, const struct vs_tts_params *p, vs_pcm_sink_fn sink,
                           void *opaque, char *err, size_t errlen)
{
	int r;

	W.sink = sink;
	W.opaque = opaque;
	r = W.inner->synthesize(W.inner_ctx, p, counting_sink, NULL, err, errlen);
	pthread_mutex_lock(&W.mu);
	W.engine_done = true;
	pthread_cond_broadcast(&W.cond);
	pthread_mutex_unlock(&W.mu);
	return r;
}

static int wrap_sample_rate(void *ctx)
{
	return W.inner->sample_rate(W.inner_ctx);
}

static const struct vs_engine_info wrapped_info = {.name = "wrapped", .kind = VS_ENGINE_TTS};
static const struct vs_engine_ops wrapped = {
        .version = VS_ENGINE_API_VERSION,
        .info = &wrapped_info,
        .synthesize = wrap_synthesize,
        .sample_rate = wrap_sample_rate,
};

/* the fake engine: fake_blocks blocks of a ramp, as fast as it can */
static int fake_synthesize(void *ctx, const struct vs_tts_params *p, vs_pcm_sink_fn sink,
                           void *opaque, char *err, size_t errlen)
{
	int16_t block[BLOCK];

	if (strcmp(p->voice, "nobody") == 0) {
		snprintf(err, errlen, "unknown voice");
		return -EINVAL;
	}
	for (size_t b = 0; b < W.fake_blocks; b++) {
		if ((int)b == W.fake_fail_at) {
			snprintf(err, errlen, "engine broke");
			return -EIO;
		}
		for (size_t i = 0; i < BLOCK; i++)
			block[i] = (int16_t)((b * BLOCK + i) % 2000);
		int r = sink(opaque, block, BLOCK);
		if (r < 0)
			return r;
	}
	return 0;
}

static int fake_sample_rate(void *ctx)
{
	return 22050;
}

static const struct vs_engine_info fake_info = {.name = "fake", .kind = VS_ENGINE_TTS};
static const struct vs_engine_ops fake = {
        .version = VS_ENGINE_API_VERSION,
        .info = &fake_info,
        .synthesize = fake_synthesize,
        .sample_rate = fake_sample_rate,
};

/* The byte sink. Its first call waits (bounded) for the engine to deliver
 * wait_blocks blocks; the engine delivers on another thread, or not at all
 * while this call is on its stack. */
static int out(void *opaque, const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&W.mu);
	W.out_calls++;
	W.out_bytes += len;
	if (W.out_calls > 1 && W.out_err) {
		pthread_mutex_unlock(&W.mu);
		return W.out_err;
	}
	if (W.out_calls == 1 && W.wait_blocks) {
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += W.wait_s;
		while (W.blocks < W.wait_blocks && !W.engine_done && !W.timed_out)
			W.timed_out = pthread_cond_timedwait(&W.cond, &W.mu, &dl) == ETIMEDOUT;
		W.waited = true;
		W.samples_at_wait = W.samples;
	}
	pthread_mutex_unlock(&W.mu);
	return 0;
}

static int run(const char *format, const char *voice, const char *text, struct vs_tts_result *res,
               char *err, size_t errlen)
{
	struct vs_tts_params p = {.text = text, .voice = voice, .speed = 1.0};

	return vs_tts_synthesize(&wrapped, NULL, &p, format, out, NULL, res, err, errlen);
}

/* ---- tests ---- */

/* The encoder's output is being written while the engine keeps going: the
 * first bytes' write waits for three more blocks and gets them. */
static void test_overlap_fake(void **state)
{
	struct vs_tts_result res;
	char err[256] = "";

	reset(&fake, NULL);
	W.wait_blocks = 4;
	assert_int_equal(run("mp3", "alloy", "x", &res, err, sizeof(err)), 0);
	assert_true(W.waited);
	assert_false(W.timed_out);
	assert_true(W.samples_at_wait >= 4 * BLOCK);
	assert_int_equal(res.samples, W.fake_blocks * BLOCK);
	assert_int_equal(res.bytes, W.out_bytes);
	assert_true(res.bytes > 0);
}

/* The same with real espeak-ng and a few sentences. */
static void test_overlap_espeak(void **state)
{
	const struct vs_engine_ops *es = vs_engine_ops_of(vs_engine_find("espeak-ng"));
	struct vs_engine_config cfg = {0};
	struct vs_tts_result res;
	char err[256] = "";
	void *ctx = NULL;

	assert_non_null(es);
	assert_int_equal(es->load(&cfg, &ctx, err, sizeof(err)), 0);
	reset(es, ctx);
	W.wait_blocks = 4;
	assert_int_equal(run("opus", "alloy",
	                     "The family of Dashwood had long been settled in Sussex. Their "
	                     "estate was large, and their residence was at Norland Park.",
	                     &res, err, sizeof(err)),
	                 0);
	assert_true(W.waited);
	assert_false(W.timed_out);
	assert_true(W.samples_at_wait >= 4 * (size_t)BLOCK / 2); /* blocks may be short */
	assert_int_equal(res.samples, W.samples);
	assert_true(res.bytes > 0);
	es->unload(ctx);
}

/* A reader that stops reading stops the engine: while the byte sink is
 * blocked, the engine delivers at most the queue's worth of samples. */
static void test_backpressure_bounds_the_queue(void **state)
{
	struct vs_tts_result res;
	char err[256] = "";

	reset(&fake, NULL);
	W.fake_blocks = 400; /* 40 s of audio, far more than the queue */
	W.wait_blocks = W.fake_blocks;
	W.wait_s = 1; /* ample for an unbounded queue to take all 400 blocks */
	/* the wait ends by its bound: the engine must not get everything through */
	assert_int_equal(run("pcm", "alloy", "x", &res, err, sizeof(err)), 0);
	assert_true(W.waited);
	assert_true(W.samples_at_wait < W.fake_blocks * BLOCK);
	assert_true(W.samples_at_wait <= VS_TTS_QUEUE_SAMPLES + 2 * BLOCK);
	assert_int_equal(res.samples, W.fake_blocks * BLOCK);
	/* pcm at 24 kHz: every sample arrived, resampled */
	assert_true(res.bytes > 2 * (W.fake_blocks * BLOCK * 24000 / 22050) - 200);
}

/* An engine that refuses the request before any sample: no byte leaves, so
 * the front can still answer 400 (the wav header is held back). */
static void test_refusal_sends_nothing(void **state)
{
	struct vs_tts_result res;
	char err[256] = "";

	reset(&fake, NULL);
	assert_int_equal(run("wav", "nobody", "x", &res, err, sizeof(err)), -EINVAL);
	assert_int_equal(res.stage, VS_TTS_SYNTH);
	assert_string_equal(err, "unknown voice");
	assert_int_equal(W.out_calls, 0);
}

static void test_bad_format(void **state)
{
	struct vs_tts_result res;
	char err[256] = "";

	reset(&fake, NULL);
	assert_int_equal(run("xyz", "alloy", "x", &res, err, sizeof(err)), -EINVAL);
	assert_int_equal(res.stage, VS_TTS_FORMAT);
	assert_int_equal(W.out_calls, 0);
}

/* An engine failing half-way: its error is returned, and the stream is not
 * finished (no flush after the error). */
static void test_engine_error_midway(void **state)
{
	struct vs_tts_result res;
	char err[256] = "";

	reset(&fake, NULL);
	W.fake_fail_at = 10;
	assert_int_equal(run("wav", "alloy", "x", &res, err, sizeof(err)), -EIO);
	assert_int_equal(res.stage, VS_TTS_SYNTH);
	assert_string_equal(err, "engine broke");
	assert_int_equal(W.samples, 10 * BLOCK);
}

/* The reader went away (the sink fails): the engine is stopped early and the
 * sink's error is returned. */
static void test_sink_error_stops_engine(void **state)
{
	struct vs_tts_result res;
	char err[256] = "";

	reset(&fake, NULL);
	W.fake_blocks = 400;
	W.out_err = -EPIPE;
	assert_int_equal(run("pcm", "alloy", "x", &res, err, sizeof(err)), -EPIPE);
	assert_true(W.samples < W.fake_blocks * BLOCK);
}

/* Every format through the pipeline, with the test-tts engine (no sleep). */
static void test_all_formats(void **state)
{
	static const char *const formats[] = {"mp3", "opus", "aac", "flac", "wav", "pcm"};
	const struct vs_engine_ops *tt = vs_engine_ops_of(vs_engine_find("test-tts"));
	struct vs_engine_config cfg = {0};
	char err[256] = "";
	void *ctx = NULL;

	setenv("VS_TEST_ENGINE_SLEEP_MS", "0", 1);
	assert_non_null(tt);
	assert_int_equal(tt->load(&cfg, &ctx, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct vs_tts_result res;

		reset(tt, ctx);
		assert_int_equal(run(formats[i], "alloy", "x", &res, err, sizeof(err)), 0);
		assert_int_equal(res.samples, 22050);
		assert_true(res.bytes > 1000);
		assert_int_equal(res.bytes, W.out_bytes);
	}
	tt->unload(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_overlap_fake),
	        cmocka_unit_test(test_overlap_espeak),
	        cmocka_unit_test(test_backpressure_bounds_the_queue),
	        cmocka_unit_test(test_refusal_sends_nothing),
	        cmocka_unit_test(test_bad_format),
	        cmocka_unit_test(test_engine_error_midway),
	        cmocka_unit_test(test_sink_error_stops_engine),
	        cmocka_unit_test(test_all_formats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
