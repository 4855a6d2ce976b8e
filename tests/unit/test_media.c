/* test_media.c - encode every speech format and decode it back; decode real
 * files made by the ffmpeg CLI (skipped when it is missing); garbage, empty,
 * text, truncated and too-long inputs.
 *
 * Audio checks are on the signal, not only on sizes: the duration and the
 * frequency (zero crossings) of a 440 Hz sine must survive the round trip.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "media/media.h"

#define IN_RATE 22050 /* espeak-ng's rate */
#define DEC_RATE 16000
#define SECS 1.5
#define TONE 440.0

struct buf {
	uint8_t *d;
	size_t n, cap;
	int calls;
};

static int collect(void *opaque, const uint8_t *data, size_t len)
{
	struct buf *b = opaque;

	assert_true(len > 0);
	if (b->n + len > b->cap) {
		b->cap = (b->n + len) * 2;
		b->d = realloc(b->d, b->cap);
		assert_non_null(b->d);
	}
	memcpy(b->d + b->n, data, len);
	b->n += len;
	b->calls++;
	return 0;
}

static int16_t *sine(int rate, double secs, size_t *n)
{
	int16_t *p;

	*n = (size_t)(rate * secs);
	p = malloc(*n * sizeof(*p));
	assert_non_null(p);
	for (size_t i = 0; i < *n; i++)
		p[i] = (int16_t)lrint(12000.0 * sin(2 * M_PI * TONE * (double)i / rate));
	return p;
}

/* dominant frequency by zero crossings over the middle half (skips codec
 * delay and edges) */
static double zc_freq(const int16_t *p, size_t n, int rate)
{
	size_t a = n / 4, b = 3 * n / 4, cross = 0;

	for (size_t i = a + 1; i < b; i++)
		if ((p[i - 1] < 0) != (p[i] < 0))
			cross++;
	return (double)cross / 2.0 / ((double)(b - a) / rate);
}

static double rms(const int16_t *p, size_t n)
{
	double s = 0;

	for (size_t i = n / 4; i < 3 * n / 4; i++)
		s += (double)p[i] * p[i];
	return sqrt(s / (double)(n / 2));
}

/* memfd holding data; its offset is left at the end on purpose: the decoder
 * must read from byte 0 without relying on (or moving) the shared offset */
static int mem_fd(const void *data, size_t len)
{
	int fd = memfd_create("test_media", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static int decode_mem(const void *data, size_t len, double max_s, int16_t **pcm, size_t *n,
                      char *err, size_t errlen)
{
	int fd = mem_fd(data, len), ret;

	ret = vs_decode_fd(fd, DEC_RATE, max_s, pcm, n, err, errlen);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)len);
	close(fd);
	return ret;
}

/* Encode SECS of a 440 Hz sine in 1000-sample writes. */
static void encode_sine(const char *fmt, struct buf *out, size_t *at_new, size_t *at_finish)
{
	struct vs_encoder *e = NULL;
	char err[256] = "";
	size_t n;
	int16_t *p = sine(IN_RATE, SECS, &n);

	assert_int_equal(vs_encoder_new(fmt, IN_RATE, collect, out, &e, err, sizeof(err)), 0);
	assert_non_null(e);
	*at_new = out->n;
	for (size_t i = 0; i < n; i += 1000)
		assert_int_equal(vs_encoder_write(e, p + i, n - i < 1000 ? n - i : 1000), 0);
	*at_finish = out->n;
	assert_int_equal(vs_encoder_finish(e), 0);
	/* finished: further use is refused */
	assert_int_equal(vs_encoder_write(e, p, 10), -EINVAL);
	assert_int_equal(vs_encoder_finish(e), -EINVAL);
	vs_encoder_free(e);
	free(p);
}

static uint32_t rd32le(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_roundtrip(void **state)
{
	const char *fmt = *state;
	struct buf out = {0};
	size_t at_new, at_finish, n = 0;
	int16_t *pcm = NULL;
	char err[256] = "";

	encode_sine(fmt, &out, &at_new, &at_finish);
	assert_true(out.n > 0);
	/* audio (not just a header) left through the sink before finish() */
	assert_true(at_finish > at_new);
	assert_true(out.calls > 2);

	if (strcmp(fmt, "pcm") == 0) {
		size_t want = (size_t)(VS_SPEECH_RATE * SECS);

		assert_int_equal(out.n % 2, 0);
		assert_true(out.n / 2 + 64 >= want && out.n / 2 <= want + 64);
		pcm = (int16_t *)out.d; /* s16le, and the test host is little-endian */
		assert_true(fabs(zc_freq(pcm, out.n / 2, VS_SPEECH_RATE) - TONE) < 5);
		free(out.d);
		return;
	}
	if (strcmp(fmt, "wav") == 0) {
		/* canonical 44-byte header, sizes unknown (non-seekable stream) */
		assert_memory_equal(out.d, "RIFF", 4);
		assert_memory_equal(out.d + 8, "WAVEfmt ", 8);
		assert_memory_equal(out.d + 36, "data", 4);
		assert_int_equal(rd32le(out.d + 24), VS_SPEECH_RATE);
		assert_int_equal(rd32le(out.d + 40), 0xFFFFFFFFu);
		assert_int_equal((out.n - 44) / 2, (size_t)(VS_SPEECH_RATE * SECS));
	}
	assert_int_equal(decode_mem(out.d, out.n, 0, &pcm, &n, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	/* lossy codecs add their delay/padding (mp3 ~60 ms, aac ~80 ms) */
	assert_true(fabs((double)n / DEC_RATE - SECS) < 0.12);
	assert_true(fabs(zc_freq(pcm, n, DEC_RATE) - TONE) < 5);
	assert_true(rms(pcm, n) > 6000 && rms(pcm, n) < 11000); /* sine of 12000: 8485 */
	free(pcm);
	free(out.d);
}

static void test_format_table(void **state)
{
	static const char *const ok[] = {"mp3", "opus", "aac", "flac", "wav", "pcm"};

	for (size_t i = 0; i < 6; i++) {
		assert_true(vs_format_valid(ok[i]));
		assert_non_null(vs_format_mime(ok[i]));
	}
	assert_string_equal(vs_format_mime("mp3"), "audio/mpeg");
	assert_string_equal(vs_format_mime("opus"), "audio/ogg");
	assert_string_equal(vs_format_mime("aac"), "audio/aac");
	assert_string_equal(vs_format_mime("flac"), "audio/flac");
	assert_string_equal(vs_format_mime("wav"), "audio/wav");
	assert_string_equal(vs_format_mime("pcm"), "audio/pcm");
	assert_false(vs_format_valid("MP3"));
	assert_false(vs_format_valid("ogg"));
	assert_false(vs_format_valid(""));
	assert_false(vs_format_valid(NULL));
	assert_null(vs_format_mime("m4a"));
}

static void test_encoder_bad_args(void **state)
{
	struct vs_encoder *e = (struct vs_encoder *)1;
	struct buf out = {0};
	char err[256] = "";

	assert_int_equal(vs_encoder_new("ogg", IN_RATE, collect, &out, &e, err, sizeof(err)),
	                 -EINVAL);
	assert_null(e);
	assert_true(strlen(err) > 0);
	err[0] = '\0';
	assert_int_equal(vs_encoder_new("mp3", 0, collect, &out, &e, err, sizeof(err)), -EINVAL);
	assert_true(strlen(err) > 0);
	assert_int_equal(vs_encoder_new("mp3", IN_RATE, NULL, &out, &e, err, sizeof(err)), -EINVAL);
	assert_int_equal(out.n, 0);
	vs_encoder_free(NULL);
}

static int fail_after_first(void *opaque, const uint8_t *data, size_t len)
{
	int *calls = opaque;

	return (*calls)++ ? -EPIPE : 0;
}

/* a failing sink (client gone) stops the encoder with the sink's error */
static void test_encoder_sink_error(void **state)
{
	struct vs_encoder *e = NULL;
	char err[256];
	int calls = 0, ret = 0;
	size_t n;
	int16_t *p = sine(IN_RATE, 2.0, &n);

	assert_int_equal(
	        vs_encoder_new("wav", IN_RATE, fail_after_first, &calls, &e, err, sizeof(err)), 0);
	assert_int_equal(calls, 1); /* the header */
	for (size_t i = 0; i < n && ret == 0; i += 1000)
		ret = vs_encoder_write(e, p + i, n - i < 1000 ? n - i : 1000);
	assert_int_equal(ret, -EPIPE);
	assert_int_equal(vs_encoder_write(e, p, 1000), -EPIPE); /* sticky */
	assert_int_equal(vs_encoder_finish(e), -EPIPE);
	vs_encoder_free(e);
	free(p);
}

static void expect_einval(const void *data, size_t len)
{
	int16_t *pcm = (int16_t *)1;
	size_t n = 1;
	char err[256] = "";

	assert_int_equal(decode_mem(data, len, 0, &pcm, &n, err, sizeof(err)), -EINVAL);
	assert_null(pcm);
	assert_int_equal(n, 0);
	assert_true(strlen(err) > 0);
	assert_null(strchr(err, '\n'));
}

static void test_decode_garbage(void **state)
{
	static uint8_t junk[64 * 1024];
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32: reproducible */
		junk[i] = (uint8_t)x;
	}
	expect_einval(junk, sizeof(junk));
	expect_einval(junk, 1);
}

static void test_decode_empty_and_text(void **state)
{
	static const char text[] =
	        "Dear customer,\nthis is a plain text file and not an audio file at all.\n"
	        "1,2,3\n4,5,6\n<html><body>hello</body></html>\n";

	expect_einval("", 0);
	expect_einval(text, sizeof(text) - 1);
}

/* a wav with a header and no samples is audio, but empty */
static void test_decode_header_only(void **state)
{
	struct buf out = {0};
	size_t at_new, at_finish;

	encode_sine("wav", &out, &at_new, &at_finish);
	expect_einval(out.d, 44);
	free(out.d);
}

static void test_decode_not_seekable(void **state)
{
	int pfd[2];
	int16_t *pcm = NULL;
	size_t n;
	char err[256] = "";

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(write(pfd[1], "RIFF", 4), 4);
	assert_int_equal(vs_decode_fd(pfd[0], DEC_RATE, 0, &pcm, &n, err, sizeof(err)), -EINVAL);
	assert_true(strlen(err) > 0);
	close(pfd[0]);
	close(pfd[1]);
}

static void test_decode_max_seconds(void **state)
{
	struct buf out = {0};
	size_t at_new, at_finish, n;
	int16_t *pcm = NULL;
	char err[256] = "";

	encode_sine("flac", &out, &at_new, &at_finish);
	assert_int_equal(decode_mem(out.d, out.n, 1.0, &pcm, &n, err, sizeof(err)), -EFBIG);
	assert_null(pcm);
	assert_true(strlen(err) > 0);
	assert_int_equal(decode_mem(out.d, out.n, 1.6, &pcm, &n, err, sizeof(err)), 0);
	assert_true(fabs((double)n / DEC_RATE - SECS) < 0.01);
	free(pcm);
	free(out.d);
}

/* A minimal 16-bit mono PCM wav of n zero samples at rate (written by hand:
 * the encoder only writes 24 kHz). */
static uint8_t *pcm_wav(int rate, uint32_t n, size_t *len)
{
	uint32_t data = n * 2;
	uint8_t *w = calloc(1, 44 + data);
	assert_non_null(w);
	memcpy(w, "RIFF", 4);
	uint32_t v = 36 + data;
	memcpy(w + 4, &v, 4);
	memcpy(w + 8, "WAVEfmt ", 8);
	v = 16, memcpy(w + 16, &v, 4);
	uint16_t h = 1;
	memcpy(w + 20, &h, 2); /* PCM */
	memcpy(w + 22, &h, 2); /* mono */
	v = (uint32_t)rate, memcpy(w + 24, &v, 4);
	v = (uint32_t)rate * 2, memcpy(w + 28, &v, 4);
	h = 2, memcpy(w + 32, &h, 2);
	h = 16, memcpy(w + 34, &h, 2);
	memcpy(w + 36, "data", 4);
	memcpy(w + 40, &data, 4);
	*len = 44 + data;
	return w;
}

/* 3500 samples at 1 Hz would be an hour at 16 kHz: refused before decoding */
static void test_decode_sample_rate_range(void **state)
{
	static const int bad[] = {1, 100, VS_DECODE_MIN_RATE - 1};
	int16_t *pcm = NULL;
	size_t n, len;
	char err[256] = "", want[32];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *w = pcm_wav(bad[i], 3500, &len);
		assert_int_equal(decode_mem(w, len, 0, &pcm, &n, err, sizeof(err)), -ERANGE);
		assert_null(pcm);
		snprintf(want, sizeof(want), " %d Hz", bad[i]);
		assert_non_null(strstr(err, want));
		free(w);
	}
	uint8_t *w = pcm_wav(VS_DECODE_MIN_RATE, 800, &len);
	assert_int_equal(decode_mem(w, len, 0, &pcm, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1600); /* 0.1 s at 16 kHz */
	free(pcm);
	free(w);
}

/* The declared duration is refused before decoding: the message says it */
static void test_decode_declared_duration(void **state)
{
	int16_t *pcm = NULL;
	size_t n, len;
	char err[256] = "";
	uint8_t *w = pcm_wav(16000, 16000 * 3, &len); /* 3 s */

	assert_int_equal(decode_mem(w, len, 2.0, &pcm, &n, err, sizeof(err)), -EFBIG);
	assert_null(pcm);
	assert_non_null(strstr(err, "declares 3.0 seconds"));
	free(w);
}

/* Cut every encoded format at many points and flip bytes: never a crash;
 * either some audio (no longer than the whole) or -EINVAL with a reason. */
static void test_decode_damaged(void **state)
{
	static const char *const fmts[] = {"mp3", "opus", "aac", "flac", "wav"};

	for (size_t f = 0; f < 5; f++) {
		struct buf out = {0};
		size_t at_new, at_finish, n;
		int16_t *pcm;
		char err[256];
		int ret;

		encode_sine(fmts[f], &out, &at_new, &at_finish);
		for (size_t cut = 1; cut < out.n; cut += out.n / 13 + 1) {
			pcm = NULL;
			err[0] = '\0';
			ret = decode_mem(out.d, cut, 0, &pcm, &n, err, sizeof(err));
			assert_true(ret == 0 || ret == -EINVAL);
			if (ret == 0)
				assert_true((double)n / DEC_RATE < SECS + 0.12);
			else
				assert_true(strlen(err) > 0);
			free(pcm);
		}
		/* damage the middle: packets are dropped, the rest still decodes */
		for (size_t i = out.n / 3; i < out.n / 3 + 200 && i < out.n; i += 7)
			out.d[i] ^= 0x5a;
		pcm = NULL;
		ret = decode_mem(out.d, out.n, 0, &pcm, &n, err, sizeof(err));
		assert_int_equal(ret, 0);
		assert_true((double)n / DEC_RATE > 0.5);
		free(pcm);
		free(out.d);
	}
}

/* ---- real-world inputs made by the ffmpeg CLI ---- */

static char tmpdir[64];

static int have_ffmpeg(void)
{
	static int have = -1;

	if (have < 0)
		have = system("ffmpeg -version >/dev/null 2>&1") == 0;
	return have;
}

/* runs ffmpeg with SECS of a 440 Hz sine at 44.1 kHz (stereo unless args
 * say otherwise) into tmpdir/name */
static void make_file(const char *name, const char *args, char *path, size_t pathlen)
{
	char cmd[1024];

	snprintf(path, pathlen, "%s/%s", tmpdir, name);
	snprintf(cmd, sizeof(cmd),
	         "ffmpeg -nostdin -v error -y -f lavfi -i sine=frequency=440:sample_rate=44100:"
	         "duration=%.1f -ac 2 %s '%s'",
	         SECS, args, path);
	assert_int_equal(system(cmd), 0);
}

static int decode_path(const char *path, int16_t **pcm, size_t *n, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	assert_true(fd >= 0);
	ret = vs_decode_fd(fd, DEC_RATE, 60, pcm, n, err, errlen);
	close(fd);
	return ret;
}

/* offset of the first top-level MP4 box of this type, -1 if none */
static long mp4_box(const char *path, const char *type)
{
	FILE *f = fopen(path, "rb");
	uint8_t h[8];
	long off = 0, found = -1;

	assert_non_null(f);
	while (fseek(f, off, SEEK_SET) == 0 && fread(h, 1, 8, f) == 8) {
		uint32_t size = (uint32_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];

		if (memcmp(h + 4, type, 4) == 0) {
			found = off;
			break;
		}
		if (size < 8)
			break;
		off += size;
	}
	fclose(f);
	return found;
}

static void test_decode_ffmpeg_files(void **state)
{
	static const struct {
		const char *name, *args;
	} in[] = {
	        {"stereo.m4a", "-c:a aac"}, /* moov at the end: needs seeking */
	        {"stereo.mp3", "-c:a libmp3lame"},
	        {"vorbis.ogg", "-c:a libvorbis"},
	        {"opus.ogg", "-c:a libopus -ar 48000"},
	        {"opus.webm", "-c:a libopus -ar 48000"},
	        {"adts.aac", "-c:a aac -ar 32000 -f adts"},
	        {"s32_51.flac", "-af 'pan=5.1|c0=c0|c1=c1|c2=c0|c3=c1|c4=c0|c5=c1' -c:a flac "
	                        "-sample_fmt s32 -ar 96000"},
	        {"float.wav", "-c:a pcm_f32le -ar 48000"},
	        {"mono8k.wav", "-c:a pcm_u8 -ac 1 -ar 8000"},
	};
	char path[128], err[256];

	if (!have_ffmpeg())
		skip();
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		int16_t *pcm = NULL;
		size_t n = 0;

		make_file(in[i].name, in[i].args, path, sizeof(path));
		if (i == 0)
			assert_true(mp4_box(path, "moov") > mp4_box(path, "mdat"));
		err[0] = '\0';
		if (decode_path(path, &pcm, &n, err, sizeof(err)) != 0)
			fail_msg("%s: %s", in[i].name, err);
		if (fabs((double)n / DEC_RATE - SECS) > 0.1 ||
		    fabs(zc_freq(pcm, n, DEC_RATE) - TONE) > 5)
			fail_msg("%s: %.3f s, %.1f Hz", in[i].name, (double)n / DEC_RATE,
			         zc_freq(pcm, n, DEC_RATE));
		free(pcm);
		unlink(path);
	}
}

/* video first, audio second: the audio stream is found; video only: error */
static void test_decode_video_files(void **state)
{
	char path[128], err[256] = "", cmd[512];
	int16_t *pcm = NULL;
	size_t n = 0;

	if (!have_ffmpeg())
		skip();
	make_file("av.mp4",
	          "-f lavfi -i testsrc=size=32x32:rate=5:duration=1.5 -map 1:v -map 0:a "
	          "-c:v mpeg4 -c:a aac",
	          path, sizeof(path));
	assert_int_equal(decode_path(path, &pcm, &n, err, sizeof(err)), 0);
	assert_true(fabs((double)n / DEC_RATE - SECS) < 0.1);
	free(pcm);
	unlink(path);

	snprintf(path, sizeof(path), "%s/v.mp4", tmpdir);
	snprintf(cmd, sizeof(cmd),
	         "ffmpeg -nostdin -v error -y -f lavfi "
	         "-i testsrc=size=32x32:rate=5:duration=1 -c:v mpeg4 '%s'",
	         path);
	assert_int_equal(system(cmd), 0);
	pcm = NULL;
	assert_int_equal(decode_path(path, &pcm, &n, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "no audio stream found");
	assert_null(pcm);
	unlink(path);
}

/* two mp3 streams at different rates/channels back to back: the resampler is
 * rebuilt mid-stream and nothing is lost */
static void test_decode_format_change(void **state)
{
	char a[128], b[128], ab[128], cmd[512], err[256] = "";
	int16_t *pcm = NULL;
	size_t n = 0;

	if (!have_ffmpeg())
		skip();
	make_file("a.mp3", "-c:a libmp3lame", a, sizeof(a));
	make_file("b.mp3", "-c:a libmp3lame -ac 1 -ar 22050", b, sizeof(b));
	snprintf(ab, sizeof(ab), "%s/ab.mp3", tmpdir);
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", a, b, ab);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(decode_path(ab, &pcm, &n, err, sizeof(err)), 0);
	assert_true(fabs((double)n / DEC_RATE - 2 * SECS) < 0.15);
	/* each half on its own: the join holds codec delay/padding */
	assert_true(fabs(zc_freq(pcm, n / 2, DEC_RATE) - TONE) < 5);
	assert_true(fabs(zc_freq(pcm + n / 2, n / 2, DEC_RATE) - TONE) < 5);
	free(pcm);
	unlink(a);
	unlink(b);
	unlink(ab);
}

static int make_tmpdir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_media_XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

/* also removes what a failed test left behind */
static int remove_tmpdir(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	char path[512];

	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	return rmdir(tmpdir);
}

/* Headerless PCM (Wyoming's audio-chunks) in each width and several channel
 * counts and rates: FFmpeg's raw demuxers read it, the result is mono 16 kHz
 * of the right length and pitch; a format outside the ranges is refused. */
static void put_sample(uint8_t *p, int width, double v)
{
	long x = lrint(v * ((1L << (8 * width - 1)) - 1));
	if (width == 1) {
		p[0] = (uint8_t)(x + 128); /* unsigned 8-bit, as in WAV */
		return;
	}
	for (int b = 0; b < width; b++)
		p[b] = (uint8_t)((unsigned long)x >> (8 * b));
}

static void test_decode_raw_pcm(void **state)
{
	static const struct vs_raw_format fmts[] = {
	        {22050, 2, 2}, {16000, 1, 1}, {44100, 3, 2}, {48000, 4, 1}, {8000, 2, 6},
	};
	(void)state;
	for (size_t k = 0; k < sizeof(fmts) / sizeof(fmts[0]); k++) {
		const struct vs_raw_format *f = &fmts[k];
		size_t frames = (size_t)(f->rate * SECS), fsz = (size_t)(f->width * f->channels);
		uint8_t *raw = malloc(frames * fsz);
		int16_t *pcm = NULL;
		size_t n = 0;
		char err[256] = "";
		assert_non_null(raw);
		for (size_t i = 0; i < frames; i++)
			for (int ch = 0; ch < f->channels; ch++)
				put_sample(raw + i * fsz + (size_t)ch * (size_t)f->width, f->width,
				           0.4 * sin(2 * M_PI * TONE * (double)i / f->rate));
		int fd = mem_fd(raw, frames * fsz);
		assert_int_equal(vs_decode_fd_raw(fd, f, DEC_RATE, 60, &pcm, &n, err, sizeof(err)),
		                 0);
		close(fd);
		double want = SECS * DEC_RATE, hz = zc_freq(pcm, n, DEC_RATE);
		print_message("  raw %d Hz %d bytes %d ch: %zu samples, %.0f Hz, rms %.0f\n",
		              f->rate, f->width, f->channels, n, hz, rms(pcm, n));
		assert_true(fabs((double)n - want) < 0.01 * want);
		assert_true(fabs(hz - TONE) < 10);
		assert_true(rms(pcm, n) > 0.3 * 0.4 * 32767 / sqrt(2));
		free(pcm);
		free(raw);
	}
	static const struct {
		struct vs_raw_format f;
		int rc;
	} bad[] = {
	        {{16000, 5, 1}, -EINVAL}, {{16000, 0, 1}, -EINVAL},
	        {{16000, 2, 0}, -EINVAL}, {{16000, 2, VS_RAW_MAX_CHANNELS + 1}, -EINVAL},
	        {{100, 2, 1}, -ERANGE},   {{VS_DECODE_MAX_RATE + 1, 2, 1}, -ERANGE},
	};
	uint8_t zeros[3200] = {0};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		int16_t *pcm = NULL;
		size_t n = 0;
		char err[256] = "";
		int fd = mem_fd(zeros, sizeof(zeros));
		assert_int_equal(
		        vs_decode_fd_raw(fd, &bad[k].f, DEC_RATE, 60, &pcm, &n, err, sizeof(err)),
		        bad[k].rc);
		assert_true(err[0] != '\0');
		assert_null(pcm);
		close(fd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_prestate(test_roundtrip, "mp3"),
	        cmocka_unit_test_prestate(test_roundtrip, "opus"),
	        cmocka_unit_test_prestate(test_roundtrip, "aac"),
	        cmocka_unit_test_prestate(test_roundtrip, "flac"),
	        cmocka_unit_test_prestate(test_roundtrip, "wav"),
	        cmocka_unit_test_prestate(test_roundtrip, "pcm"),
	        cmocka_unit_test(test_format_table),
	        cmocka_unit_test(test_encoder_bad_args),
	        cmocka_unit_test(test_encoder_sink_error),
	        cmocka_unit_test(test_decode_garbage),
	        cmocka_unit_test(test_decode_empty_and_text),
	        cmocka_unit_test(test_decode_header_only),
	        cmocka_unit_test(test_decode_not_seekable),
	        cmocka_unit_test(test_decode_max_seconds),
	        cmocka_unit_test(test_decode_sample_rate_range),
	        cmocka_unit_test(test_decode_declared_duration),
	        cmocka_unit_test(test_decode_damaged),
	        cmocka_unit_test(test_decode_ffmpeg_files),
	        cmocka_unit_test(test_decode_video_files),
	        cmocka_unit_test(test_decode_format_change),
	        cmocka_unit_test(test_decode_raw_pcm),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
