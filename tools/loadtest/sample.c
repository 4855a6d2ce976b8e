/* sample.c - the default upload of voicestack-loadtest: a WAV made in memory.
 *
 * DESIGN
 * Owns: lt_sample_wav(), called by main.c when --file is not given.
 *
 * Why it is shaped so:
 * - Generated, not shipped and not looked up on disk: the tool then works on
 *   any machine, installed anywhere, with no data file to lose.
 * - Speech-like rather than silence or a pure tone: voiced "syllables" (a
 *   gliding pitch with harmonics shaped by two vowel formants) separated by
 *   short noise bursts and pauses. A voice-activity detector keeps it and the
 *   recogniser does real work on it, so the load resembles real requests
 *   (silence can be skipped by VAD and would make ASR look cheap).
 * - 16 kHz mono 16-bit PCM, the recogniser's native format: the server
 *   decodes it without resampling. 1.5 s keeps the upload (48 KB) under the
 *   64 KiB a server refusing with 429 still reads and discards (see
 *   docs/LOAD_TESTING.md on large uploads), so the default run measures
 *   admission, not connection resets.
 * - Deterministic (fixed formant table, fixed-seed LCG): every run uploads
 *   the same bytes, so runs are comparable.
 */
#include "loadtest.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RATE 16000
#define SECONDS 1.5
#define NSAMP ((int)(RATE * SECONDS))

/* F1/F2 of a few vowels (Hz), roughly /a/ /i/ /u/ /e/ /o/ */
static const double formants[][2] = {
        {730, 1090}, {270, 2290}, {300, 870}, {530, 1840}, {570, 840},
};

static void put16(unsigned char *p, unsigned v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
}

static void put32(unsigned char *p, unsigned long v)
{
	put16(p, v & 0xffff);
	put16(p + 2, (v >> 16) & 0xffff);
}

static double gauss_gain(double f, double centre, double bw)
{
	double d = (f - centre) / bw;

	return exp(-d * d);
}

/* One sample of the voiced part: harmonics of f0 weighted by the formants. */
static double voiced(double phase, double f0, const double *fm)
{
	double y = 0.0;

	for (int k = 1; k * f0 < 4000.0; k++) {
		double f = k * f0;
		double a = gauss_gain(f, fm[0], 120.0) + 0.6 * gauss_gain(f, fm[1], 180.0);

		y += a * sin(phase * k);
	}
	return y;
}

int lt_sample_wav(unsigned char **out, size_t *len)
{
	size_t data = (size_t)NSAMP * 2, total = 44 + data;
	unsigned char *w = malloc(total);
	double *x = malloc(NSAMP * sizeof(*x));
	double phase = 0.0, peak = 1e-9;
	unsigned long seed = 12345;

	if (!w || !x) {
		free(w);
		free(x);
		return -ENOMEM;
	}
	/* syllable = 220 ms voiced + 40 ms noise burst + 60 ms pause (320 ms) */
	for (int i = 0; i < NSAMP; i++) {
		double t = (double)i / RATE;
		int syl = (int)(t / 0.32);
		double ts = t - syl * 0.32, y = 0.0;

		if (t < 0.2 || t > SECONDS - 0.2) {
			y = 0.0; /* lead-in / tail silence */
		} else if (ts < 0.22) {
			double f0 = 120.0 + 40.0 * sin(2 * M_PI * 0.7 * t) + 60.0 * ts;
			double env = sin(M_PI * ts / 0.22);

			phase += 2 * M_PI * f0 / RATE;
			y = env * voiced(phase, f0, formants[syl % 5]);
		} else if (ts < 0.26) {
			seed = seed * 1103515245UL + 12345UL;
			y = 0.15 * (((double)((seed >> 16) & 0x7fff) / 16384.0) - 1.0);
		}
		x[i] = y;
		if (fabs(y) > peak)
			peak = fabs(y);
	}
	memcpy(w, "RIFF", 4);
	put32(w + 4, (unsigned long)(total - 8));
	memcpy(w + 8, "WAVEfmt ", 8);
	put32(w + 16, 16);
	put16(w + 20, 1); /* PCM */
	put16(w + 22, 1); /* mono */
	put32(w + 24, RATE);
	put32(w + 28, RATE * 2);
	put16(w + 32, 2);
	put16(w + 34, 16);
	memcpy(w + 36, "data", 4);
	put32(w + 40, (unsigned long)data);
	for (int i = 0; i < NSAMP; i++) {
		long v = lround(x[i] / peak * 0.5 * 32767.0);

		put16(w + 44 + 2 * i, (unsigned)(v & 0xffff));
	}
	free(x);
	*out = w;
	*len = total;
	return 0;
}
