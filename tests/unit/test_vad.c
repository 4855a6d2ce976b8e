/* test_vad.c - the realtime session's energy VAD (src/media/vad.h) on
 * synthetic signals whose levels are known, and the WAV header of a turn,
 * read back by the worker's own decoder (FFmpeg resamples 24 -> 16 kHz).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "media/media.h"
#include "media/vad.h"

#define RATE 24000
#define FRAME (RATE * VS_VAD_FRAME_MS / 1000)

/* n samples of a 440 Hz sine whose RMS is db dBFS (db < -200: silence), s16le */
static uint8_t *tone(size_t n, double db)
{
	uint8_t *b = malloc(n * 2);
	double amp = db < -200 ? 0 : pow(10.0, db / 20.0) * sqrt(2.0) * 32767.0;
	for (size_t i = 0; i < n; i++) {
		int16_t s = (int16_t)lrint(amp * sin(2 * M_PI * 440.0 * (double)i / RATE));
		b[2 * i] = (uint8_t)s;
		b[2 * i + 1] = (uint8_t)((uint16_t)s >> 8);
	}
	return b;
}

/* feeds n samples in pieces the way the session does; returns the frame
 * (1-based, counted from `base`) of the first event of kind want, 0 if none */
static int first_event(struct vs_vad *v, const uint8_t *pcm, size_t n, enum vs_vad_event want)
{
	int frames = 0;
	for (size_t off = 0; off < n;) {
		size_t k = vs_vad_room(v);
		if (k > n - off)
			k = n - off;
		enum vs_vad_event ev = vs_vad_push(v, pcm + 2 * off, k);
		off += k;
		if (vs_vad_room(v) == (size_t)FRAME)
			frames++;
		if (ev == want)
			return frames;
	}
	return 0;
}

static void test_silence_and_speech_boundaries(void **state)
{
	(void)state;
	struct vs_vad v;
	vs_vad_init(&v, RATE, 0.5, 500);
	uint8_t *quiet = tone(RATE, -300), *loud = tone(RATE, -20);
	assert_int_equal(first_event(&v, quiet, RATE, VS_VAD_START), 0);
	assert_false(v.speech);
	/* speech starts on its 3rd loud frame */
	assert_int_equal(first_event(&v, loud, RATE, VS_VAD_START), VS_VAD_START_FRAMES);
	assert_true(v.speech);
	assert_int_equal(first_event(&v, loud + 2 * 3 * FRAME, RATE - 3 * FRAME, VS_VAD_STOP), 0);
	/* and stops after 500 ms of silence: 25 frames */
	assert_int_equal(first_event(&v, quiet, RATE, VS_VAD_STOP), 500 / VS_VAD_FRAME_MS);
	assert_false(v.speech);
	free(quiet);
	free(loud);
}

static void test_a_click_is_not_speech(void **state)
{
	(void)state;
	struct vs_vad v;
	vs_vad_init(&v, RATE, 0.5, 200);
	uint8_t *quiet = tone(RATE, -300), *loud = tone(2 * FRAME, -20);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(first_event(&v, loud, 2 * FRAME, VS_VAD_START), 0);
		assert_int_equal(first_event(&v, quiet, FRAME, VS_VAD_START), 0);
	}
	free(quiet);
	free(loud);
}

static void test_threshold_maps_to_level(void **state)
{
	(void)state;
	struct vs_vad v;
	uint8_t *mid = tone(RATE / 2, -50); /* room noise level */
	vs_vad_init(&v, RATE, 0.5, 500);    /* -40 dBFS */
	assert_int_equal(first_event(&v, mid, RATE / 2, VS_VAD_START), 0);
	vs_vad_init(&v, RATE, 0.1, 500); /* -56 dBFS */
	assert_int_equal(first_event(&v, mid, RATE / 2, VS_VAD_START), VS_VAD_START_FRAMES);
	free(mid);
}

static void test_wav_header_decodes_and_resamples(void **state)
{
	(void)state;
	const size_t n = RATE * 3 / 2; /* 1.5 s */
	uint8_t *pcm = tone(n, -20), head[VS_WAV_HEADER_BYTES];
	vs_wav_header(head, RATE, (uint32_t)(n * 2));
	assert_memory_equal(head, "RIFF", 4);
	assert_memory_equal(head + 8, "WAVEfmt ", 8);
	assert_memory_equal(head + 36, "data", 4);
	int fd = memfd_create("t", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	assert_int_equal(write(fd, pcm, n * 2), (ssize_t)(n * 2));
	int16_t *out = NULL;
	size_t got = 0;
	char err[256];
	assert_int_equal(vs_decode_fd(fd, 16000, 0, &out, &got, err, sizeof(err)), 0);
	/* 1.5 s at 16 kHz, give or take the resampler's edge */
	assert_true(got > 16000 * 3 / 2 - 200 && got < 16000 * 3 / 2 + 200);
	free(out);
	free(pcm);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_silence_and_speech_boundaries),
	        cmocka_unit_test(test_a_click_is_not_speech),
	        cmocka_unit_test(test_threshold_maps_to_level),
	        cmocka_unit_test(test_wav_header_decodes_and_resamples),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
