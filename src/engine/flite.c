/* flite.c - the "flite" TTS engine (CMU flite 2.2, Debian libflite1).
 *
 * DESIGN
 * flite's built-in English voices are compiled into libraries
 * (libflite_cmu_us_slt.so, ...), each with a register_cmu_us_<name>()
 * function that builds its cst_voice. A voice is registered on first use and
 * kept for the life of the worker process: registering costs a few ms and
 * the voice is reusable across requests. Clients pick voices from a fixed
 * table (builtin[] below, plus the OpenAI names mapped onto it): no client
 * string ever reaches flite_voice_select(), which would also load a voice
 * from any file path or URL it is given.
 *
 * Streaming: flite delivers audio through the "streaming_info" feature of
 * the voice, a callback (stream_cb) called with each block as it is
 * synthesised, on the caller's thread; the block goes straight to the sink.
 * flite analyses a whole text before it produces the first sample (0.23 s
 * for 20 sentences here), so synthesize() splits the input into sentences
 * of at most CHUNK_MAX bytes (next_chunk()) and synthesises them one after
 * another: the first audio waits for the first sentence only. A sink error
 * makes stream_cb return CST_AUDIO_STREAM_STOP, and no further sentence is
 * started.
 *
 * Safety: flite keeps global state (one synthesis at a time per process,
 * which the worker model guarantees) and its cst_error() calls exit(-1)
 * unless the global cst_errjmp points at a jmp_buf. synth_one() sets one
 * around each flite call, so an internal flite error becomes -EIO (a 500 for
 * that request) instead of the worker exiting. What flite allocated for
 * that utterance leaks (flite has no way to unwind); flite keeps no lock or
 * half-updated global across a synthesis, so the worker goes on serving, and
 * the leak is bounded by the number of such errors (idle unload ends the
 * process). A crash that is not a cst_error() still costs only that request:
 * the worker isolation is the second line of defence.
 *
 * Sample rate: the engine reports 16 kHz, the rate of every voice but kal
 * (an 8 kHz diphone voice, kept for completeness; the recognizer cannot
 * understand it). sample_rate() is asked before the request's voice is known
 * (the encoder is opened first), so kal's blocks are upsampled 2x here by
 * linear interpolation; the encoder resamples 16 kHz to the output rate.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* flite's headers declare functions with empty parameter lists */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <flite/flite.h>
#pragma GCC diagnostic pop

#include "engine/engine_impl.h"

#define FLITE_RATE 16000
/* a "sentence" longer than this is cut at a comma or a space: bounds the
 * wait for the first audio (flite analyses a whole chunk first) */
#define CHUNK_MAX 300
/* upsampling buffer (samples at FLITE_RATE) */
#define UP_BUF 4096

/* duration_stretch = 1 / speed. flite takes any positive stretch; the API
 * range 0.25..4.0 maps to 4.0..0.25 and is clamped there (an engine caller
 * outside the API could pass anything). */
#define SPEED_MIN 0.25
#define SPEED_MAX 4.0

/* The register functions of the voice libraries (no header declares them). */
cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);
cst_voice *register_cmu_us_kal16(const char *voxdir);
cst_voice *register_cmu_us_kal(const char *voxdir);

enum { V_SLT, V_RMS, V_AWB, V_KAL16, V_KAL, N_BUILTIN };

static struct builtin {
	const char *name, *gender, *lang;
	cst_voice *(*reg)(const char *voxdir);
	cst_voice *voice;              /* registered on first use */
	cst_audio_streaming_info *asi; /* owned by voice->features */
	float f0_mean;                 /* the voice's own int_f0_target_mean, 0 = none */
	int rate;
} builtin[N_BUILTIN] = {
        [V_SLT] = {"slt", "female", "en-us", register_cmu_us_slt},
        [V_RMS] = {"rms", "male", "en-us", register_cmu_us_rms},
        [V_AWB] = {"awb", "male", "en-gb-scotland", register_cmu_us_awb},
        [V_KAL16] = {"kal16", "male", "en-us", register_cmu_us_kal16},
        [V_KAL] = {"kal", "male", "en-us", register_cmu_us_kal},
};

/* OpenAI names onto the four voices the recognizer understands (see
 * docs/API.md): more names than voices, so several share a voice and differ
 * in pitch (a factor on the voice's mean F0). rms ignores both pitch
 * features (measured: identical samples), so it serves one name only; kal
 * (8 kHz, the recognizer gets 89% of its words wrong) serves none. */
static const struct {
	int voice;
	float pitch;
} openai_map[VS_N_OPENAI_VOICES] = {
        [VS_VOICE_ALLOY] = {V_SLT, 1.0f},    [VS_VOICE_ASH] = {V_RMS, 1.0f},
        [VS_VOICE_BALLAD] = {V_AWB, 1.0f},   [VS_VOICE_CORAL] = {V_SLT, 1.15f},
        [VS_VOICE_ECHO] = {V_KAL16, 1.0f},   [VS_VOICE_FABLE] = {V_AWB, 1.12f},
        [VS_VOICE_ONYX] = {V_KAL16, 0.88f},  [VS_VOICE_NOVA] = {V_SLT, 1.3f},
        [VS_VOICE_SAGE] = {V_SLT, 0.9f},     [VS_VOICE_SHIMMER] = {V_SLT, 1.22f},
        [VS_VOICE_VERSE] = {V_KAL16, 1.15f},
};

struct flite_engine {
	unsigned long errors; /* internal flite errors caught in this process */
};

static bool loaded; /* flite's state is per process: one engine instance */

/* the request in flight: valid only inside synthesize() */
static struct {
	vs_pcm_sink_fn sink;
	void *opaque;
	int rc;
	int factor;   /* FLITE_RATE / voice rate: 1, or 2 for kal */
	int16_t last; /* previous sample, for interpolation across blocks */
} cur;

/* Upsample by cur.factor (linear interpolation) and pass to the sink. */
static int deliver(const short *pcm, size_t n)
{
	int16_t up[UP_BUF];
	size_t i, k, used = 0;
	int f = cur.factor, rc;

	if (f <= 1)
		return cur.sink(cur.opaque, pcm, n);
	for (i = 0; i < n; i++) {
		for (k = 1; k <= (size_t)f; k++)
			up[used++] = (int16_t)(cur.last + ((int)pcm[i] - cur.last) * (int)k / f);
		cur.last = pcm[i];
		if (used + (size_t)f > UP_BUF || i + 1 == n) {
			rc = cur.sink(cur.opaque, up, used);
			if (rc < 0)
				return rc;
			used = 0;
		}
	}
	return 0;
}

static int stream_cb(const cst_wave *w, int start, int size, int last,
                     cst_audio_streaming_info *asi)
{
	int rc;

	(void)last;
	(void)asi;
	if (cur.rc < 0 || !cur.sink)
		return CST_AUDIO_STREAM_STOP;
	if (size <= 0) /* kal16 sends empty blocks */
		return CST_AUDIO_STREAM_CONT;
	rc = deliver(w->samples + start, (size_t)size);
	if (rc < 0) {
		cur.rc = rc;
		return CST_AUDIO_STREAM_STOP;
	}
	return CST_AUDIO_STREAM_CONT;
}

/* Run one flite call with cst_errjmp set: 0, or -EIO if flite raised an
 * internal error (cst_error()) instead of letting it exit the process. */
static int guarded_tts(cst_voice *v, const char *text)
{
	jmp_buf jb;

	cst_errjmp = &jb;
	if (setjmp(jb)) {
		cst_errjmp = NULL;
		return -EIO;
	}
	flite_text_to_speech(text, v, "none");
	cst_errjmp = NULL;
	return 0;
}

static int guarded_register(struct builtin *b)
{
	jmp_buf jb;

	cst_errjmp = &jb;
	if (setjmp(jb)) {
		cst_errjmp = NULL;
		return -EIO;
	}
	b->voice = b->reg(NULL);
	cst_errjmp = NULL;
	return b->voice ? 0 : -EIO;
}

/* Register a built-in voice on first use and attach the streaming callback. */
static int voice_ready(struct builtin *b, char *err, size_t errlen)
{
	if (b->voice)
		return 0;
	if (guarded_register(b) < 0) {
		snprintf(err, errlen, "flite could not register voice %s", b->name);
		return -EIO;
	}
	b->rate = flite_get_param_int(b->voice->features, "sample_rate", FLITE_RATE);
	if (b->rate <= 0 || FLITE_RATE % b->rate != 0 || FLITE_RATE / b->rate > 4) {
		snprintf(err, errlen, "flite voice %s has an unsupported sample rate %d", b->name,
		         b->rate);
		return -EIO;
	}
	b->f0_mean = flite_get_param_float(b->voice->features, "int_f0_target_mean", 0.0f);
	b->asi = new_audio_streaming_info();
	if (!b->asi) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	b->asi->asc = stream_cb;
	/* deliver small blocks: the sink (encoder) wants audio early */
	b->asi->min_buffsize = 256;
	flite_feat_set(b->voice->features, "streaming_info", audio_streaming_info_val(b->asi));
	return 0;
}

static int flite_engine_load(const struct vs_engine_config *cfg, void **ctx, char *err,
                             size_t errlen)
{
	struct flite_engine *e;
	int rc;

	*ctx = NULL;
	rc = vs_engine_check_config(&vs_engine_flite_info, cfg, err, errlen);
	if (rc < 0)
		return rc;
	if (loaded) {
		snprintf(err, errlen, "flite is already loaded in this process");
		return -EBUSY;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	flite_init();
	/* prove the library works with the default voice, as espeak-ng's load does */
	rc = voice_ready(&builtin[openai_map[VS_VOICE_ALLOY].voice], err, errlen);
	if (rc < 0) {
		free(e);
		return rc;
	}
	loaded = true;
	*ctx = e;
	return 0;
}

static void flite_engine_unload(void *ctx)
{
	/* Voices stay registered: flite has no clean global teardown and the
	 * process exits right after unload (idle unload closes the worker). */
	if (!ctx)
		return;
	loaded = false;
	free(ctx);
}

static int flite_engine_sample_rate(void *ctx)
{
	return ctx ? FLITE_RATE : 0;
}

/* The voice a request names: an OpenAI name (any case) or a built-in name
 * (exact, lower case); *pitch is the factor on its mean F0. */
static struct builtin *find_voice(const char *name, float *pitch)
{
	int ov;

	*pitch = 1.0f;
	if (!name || !*name)
		name = vs_openai_voices[VS_VOICE_ALLOY];
	ov = vs_openai_voice_index(name);
	if (ov >= 0) {
		*pitch = openai_map[ov].pitch;
		return &builtin[openai_map[ov].voice];
	}
	for (int i = 0; i < N_BUILTIN; i++)
		if (strcmp(builtin[i].name, name) == 0)
			return &builtin[i];
	return NULL;
}

/* Length of the next chunk of text at p (len bytes left, no leading
 * space): up to and including the end of a sentence (.!? followed by space,
 * or a newline), else, past CHUNK_MAX, up to the last comma/semicolon/colon,
 * else the last space, else CHUNK_MAX bytes cut at a UTF-8 character
 * boundary. */
static size_t next_chunk(const char *p, size_t len)
{
	size_t i, lim = len < CHUNK_MAX ? len : CHUNK_MAX, comma = 0, space = 0;

	for (i = 0; i < lim; i++) {
		char c = p[i];

		if (c == '\n')
			return i + 1;
		if ((c == '.' || c == '!' || c == '?') &&
		    (i + 1 == len || p[i + 1] == ' ' || p[i + 1] == '\n' || p[i + 1] == '\t' ||
		     p[i + 1] == '\r'))
			return i + 1;
		if (c == ',' || c == ';' || c == ':')
			comma = i + 1;
		else if (c == ' ' || c == '\t' || c == '\r')
			space = i + 1;
	}
	if (lim == len)
		return len;
	if (comma)
		return comma;
	if (space)
		return space;
	while (lim > 1 && ((unsigned char)p[lim] & 0xC0) == 0x80)
		lim--; /* never split a UTF-8 sequence */
	return lim;
}

static bool only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return false;
	return true;
}

static void unknown_voice(const char *voice, char *err, size_t errlen)
{
	char names[256];
	const char *b[N_BUILTIN + 1];

	for (int i = 0; i < N_BUILTIN; i++)
		b[i] = builtin[i].name;
	b[N_BUILTIN] = NULL;
	vs_engine_list_join(b, names, sizeof(names));
	snprintf(err, errlen,
	         "unknown voice '%.64s' (use an OpenAI voice name, or a flite voice: %s)", voice,
	         names);
}

static int flite_engine_synthesize(void *ctx, const struct vs_tts_params *p, vs_pcm_sink_fn sink,
                                   void *opaque, char *err, size_t errlen)
{
	struct flite_engine *e = ctx;
	const char *text = p->text ? p->text : "";
	size_t left = strlen(text), n;
	double speed = p->speed;
	char chunk[CHUNK_MAX + 1];
	struct builtin *b;
	float pitch;
	int rc = 0;

	b = find_voice(p->voice, &pitch);
	if (!b) {
		unknown_voice(p->voice, err, errlen);
		return -EINVAL;
	}
	rc = voice_ready(b, err, errlen);
	if (rc < 0)
		return rc;
	if (!(speed > 0.0) || !isfinite(speed))
		speed = 1.0;
	speed = speed < SPEED_MIN ? SPEED_MIN : speed > SPEED_MAX ? SPEED_MAX : speed;
	flite_feat_set_float(b->voice->features, "duration_stretch", (float)(1.0 / speed));
	/* set every time: an earlier request changed them. Statistical (cg)
	 * voices scale F0 by f0_shift, diphone voices take a target mean. */
	flite_feat_set_float(b->voice->features, "f0_shift", pitch);
	if (b->f0_mean > 0.0f)
		flite_feat_set_float(b->voice->features, "int_f0_target_mean", b->f0_mean * pitch);

	cur.sink = sink;
	cur.opaque = opaque;
	cur.rc = 0;
	cur.factor = FLITE_RATE / b->rate;
	cur.last = 0;
	while (left > 0 && rc == 0 && cur.rc == 0) {
		while (left > 0 &&
		       (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r'))
			text++, left--;
		if (!left)
			break;
		n = next_chunk(text, left);
		if (!only_space(text, n)) {
			memcpy(chunk, text, n);
			chunk[n] = '\0';
			rc = guarded_tts(b->voice, chunk);
		}
		text += n;
		left -= n;
	}
	if (cur.rc < 0)
		rc = cur.rc; /* the sink's own error: it knows why */
	memset(&cur, 0, sizeof(cur));
	if (rc == -EIO) {
		e->errors++;
		snprintf(err, errlen, "flite failed with an internal error (%lu in this worker)",
		         e->errors);
	}
	return rc;
}

/* The OpenAI names first, then the built-in voices by name. */
static int flite_engine_list_voices(void *ctx, struct vs_voice **out, size_t *n_out)
{
	struct vs_voice *v = calloc(VS_N_OPENAI_VOICES + N_BUILTIN, sizeof(*v));
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	if (!v)
		return -ENOMEM;
	for (int i = 0; i < VS_N_OPENAI_VOICES && rc == 0; i++) {
		const struct builtin *b = &builtin[openai_map[i].voice];

		rc = vs_voices_add(v, &n, vs_openai_voices[i], b->lang, b->gender);
	}
	for (int i = 0; i < N_BUILTIN && rc == 0; i++)
		rc = vs_voices_add(v, &n, builtin[i].name, builtin[i].lang, builtin[i].gender);
	if (rc < 0) {
		vs_voices_free(v, n);
		return rc;
	}
	*out = v;
	*n_out = n;
	return 0;
}

const struct vs_engine_ops vs_engine_flite = {
        .version = VS_ENGINE_API_VERSION,
        .info = &vs_engine_flite_info,
        .load = flite_engine_load,
        .unload = flite_engine_unload,
        .synthesize = flite_engine_synthesize,
        .list_voices = flite_engine_list_voices,
        .sample_rate = flite_engine_sample_rate,
};
