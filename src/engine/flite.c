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
 * Models (the catalogue's engine options, catalog.c): by default the OpenAI
 * names spread over the four intelligible built-in voices, each name a voice
 * plus a pitch variant (openai_map[]). `voice=NAME` makes one built-in voice
 * the model's voice and `voice_file=PATH` one loaded from a .flitevox
 * (flite_voxfile.c, at load, never per request); then every OpenAI name is
 * a variant of that voice, alloy the voice itself. A voice file's voice is
 * also requestable by its file's name; the built-in names always work.
 *
 * Repeatability: the statistical voices mix noise from rand() into their
 * excitation, so synthesize() seeds it per request: the same request gives
 * the same audio, whatever the worker served before.
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
 * unless the global cst_errjmp points at a jmp_buf. vs_flite_guarded()
 * (flite_voxfile.c) sets one around each flite call, so an internal flite error becomes -EIO (a 500
 * for that request) instead of the worker exiting. What flite allocated for that utterance leaks
 * (flite has no way to unwind); flite keeps no lock or half-updated global across a synthesis, so
 * the worker goes on serving, and the leak is bounded by the number of such errors (idle unload
 * ends the process). A crash that is not a cst_error() still costs only that request: the worker
 * isolation is the second line of defence.
 *
 * Sample rate: the engine reports 16 kHz, the rate of every voice but kal
 * (an 8 kHz diphone voice, kept for completeness; the recognizer cannot
 * understand it). sample_rate() is asked before the request's voice is known
 * (the encoder is opened first), so kal's blocks are upsampled 2x here by
 * linear interpolation; the encoder resamples 16 kHz to the output rate.
 *
 * Size: past 600 lines because the voice table, its pitch variants and the
 * sentence-by-sentence streaming loop are one engine's one job; what can
 * stand alone (loading a voice file safely, flite's error guard) is in
 * flite_voxfile.c.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* flite's headers declare functions with empty parameter lists */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <flite/cst_cg.h>
#include <flite/flite.h>
#pragma GCC diagnostic pop

#include "engine/engine_impl.h"
#include "engine/flite_voxfile.h"

#define FLITE_RATE 16000
/* a "sentence" longer than this is cut at a comma or a space: bounds the
 * wait for the first audio (flite analyses a whole chunk first) */
#define CHUNK_MAX 300
/* rand() seed for every request (see synthesize()) */
#define NOISE_SEED 1
/* a voice file's name is a request's voice: no longer than the API allows */
#define VOICE_NAME_MAX 64
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

/* A voice a request can get. Its F0 targets are what the pitch variants
 * (below) scale: flite's statistical (clustergen) voices read them from
 * int_f0_target_mean / _stddev, falling back to their model's own, and the
 * diphone voices carry them as those features. rms, though, takes its F0
 * from a SPAM accent model that overwrites the targets' result (measured:
 * identical samples); its variants use `flat`, a copy of its model with
 * SPAM off, so that the targets apply (the F0 trees it keeps beside SPAM
 * then predict the contour; the recognizer gets 5.6% of 20 sentences' words
 * wrong either way). */
struct fvoice {
	const char *name, *gender, *lang;
	cst_voice *(*reg)(const char *voxdir);
	cst_voice *voice;              /* registered on first use */
	cst_audio_streaming_info *asi; /* owned by voice->features */
	float f0_mean, f0_stddev;      /* its own F0 targets (Hz), 0 = none */
	int rate;
	/* SPAM voices only: the voice's own model value and flat's, each with
	 * a reference held here so that swapping "cg_db" frees neither */
	cst_val *db_val, *flat_val;
	cst_cg_db flat;
	bool flat_on;
};

static struct fvoice builtin[N_BUILTIN] = {
        [V_SLT] = {"slt", "female", "en-us", register_cmu_us_slt},
        [V_RMS] = {"rms", "male", "en-us", register_cmu_us_rms},
        [V_AWB] = {"awb", "male", "en-gb-scotland", register_cmu_us_awb},
        [V_KAL16] = {"kal16", "male", "en-us", register_cmu_us_kal16},
        [V_KAL] = {"kal", "male", "en-us", register_cmu_us_kal},
};

/* Each OpenAI name is a voice and a pitch variant of it: a factor on its
 * mean F0 (pitch) and one on its F0 deviation (range: flatter or livelier
 * intonation). The (pitch, range) pairs are pairwise different, so names
 * that share a voice sound different. Pitch stays within +-12% (about two
 * semitones) and range within 0.7..1.4: measured on 20 everyday sentences,
 * pitch 0.88..1.12 with range 0.6..1.5 kept every voice as intelligible to
 * the recognizer as its plain self (slt 4.5-7.8% WER against 5.0%, rms
 * 5.0-6.1 / 5.6, awb 11.2-12.3 / 11.2, kal16 5.0-6.7 / 5.0). Female OpenAI
 * voices get slt, male ones rms, awb or kal16 (see docs/API.md); kal
 * (8 kHz, 89% of its words wrong) serves none. */
static const struct variant {
	int voice;
	float pitch, range;
} openai_map[VS_N_OPENAI_VOICES] = {
        [VS_VOICE_ALLOY] = {V_SLT, 1.0f, 1.0f},    [VS_VOICE_ASH] = {V_RMS, 0.94f, 1.0f},
        [VS_VOICE_BALLAD] = {V_AWB, 0.88f, 1.3f},  [VS_VOICE_CORAL] = {V_SLT, 1.06f, 1.0f},
        [VS_VOICE_ECHO] = {V_KAL16, 0.94f, 0.7f},  [VS_VOICE_FABLE] = {V_AWB, 1.0f, 1.4f},
        [VS_VOICE_ONYX] = {V_RMS, 0.88f, 0.8f},    [VS_VOICE_NOVA] = {V_SLT, 1.12f, 1.3f},
        [VS_VOICE_SAGE] = {V_SLT, 1.0f, 0.7f},     [VS_VOICE_SHIMMER] = {V_SLT, 1.12f, 1.0f},
        [VS_VOICE_VERSE] = {V_KAL16, 0.94f, 1.4f}, [VS_VOICE_MARIN] = {V_SLT, 1.06f, 1.4f},
        [VS_VOICE_CEDAR] = {V_RMS, 0.88f, 1.0f},
};

struct flite_engine {
	unsigned long errors; /* internal flite errors caught in this process */
	/* the model's voice (options voice= / voice_file=): every OpenAI name
	 * is a variant of it; NULL: the names spread over builtin[] */
	struct fvoice *voice;
	struct fvoice file; /* voice_file's voice; file.voice NULL if none */
	char file_name[VOICE_NAME_MAX + 1];
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

struct tts_call_args {
	cst_voice *voice;
	const char *text;
};

static void *tts_call(void *arg)
{
	const struct tts_call_args *a = arg;

	flite_text_to_speech(a->text, a->voice, "none");
	return arg; /* not NULL: no error */
}

/* Speak text with v: 0, or -EIO if flite raised an internal error
 * (cst_error()) instead of letting it exit the process. */
static int guarded_tts(cst_voice *v, const char *text)
{
	struct tts_call_args a = {v, text};

	return vs_flite_guarded(tts_call, &a) ? 0 : -EIO;
}

static void *register_call(void *fv)
{
	return ((const struct fvoice *)fv)->reg(NULL);
}

/* A SPAM voice's model without SPAM, for its variants (see struct fvoice). */
static int flat_model(struct fvoice *v)
{
	const cst_val *db = flite_get_param_val(v->voice->features, "cg_db", NULL);

	if (!db || !val_cg_db(db)->spamf0)
		return 0;
	v->flat = *val_cg_db(db);
	v->flat.spamf0 = 0;
	v->flat.freeable = 0; /* its arrays are the voice's own */
	v->db_val = val_inc_refcount(db);
	v->flat_val = val_inc_refcount(cg_db_val(&v->flat));
	return 0;
}

/* Takes cv as v's voice: checks its rate, reads its F0 targets, attaches
 * the streaming callback. */
static int voice_take(struct fvoice *v, cst_voice *cv, char *err, size_t errlen)
{
	const cst_val *db = flite_get_param_val(cv->features, "cg_db", NULL);
	float mean = db ? val_cg_db(db)->f0_mean : 0.0f, sd = db ? val_cg_db(db)->f0_stddev : 0.0f;
	cst_audio_streaming_info *asi;
	int rate = flite_get_param_int(cv->features, "sample_rate", FLITE_RATE);

	if (rate <= 0 || FLITE_RATE % rate != 0 || FLITE_RATE / rate > 4) {
		snprintf(err, errlen, "flite voice %s has an unsupported sample rate %d", v->name,
		         rate);
		return -EINVAL;
	}
	asi = new_audio_streaming_info();
	if (!asi) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	asi->asc = stream_cb;
	/* deliver small blocks: the sink (encoder) wants audio early */
	asi->min_buffsize = 256;
	flite_feat_set(cv->features, "streaming_info", audio_streaming_info_val(asi));
	v->voice = cv;
	v->asi = asi;
	v->rate = rate;
	v->f0_mean = flite_get_param_float(cv->features, "int_f0_target_mean", mean);
	v->f0_stddev = flite_get_param_float(cv->features, "int_f0_target_stddev", sd);
	return flat_model(v);
}

/* Register a built-in voice on first use. */
static int voice_ready(struct fvoice *v, char *err, size_t errlen)
{
	cst_voice *cv;

	if (v->voice)
		return 0;
	cv = vs_flite_guarded(register_call, v);
	if (!cv) {
		snprintf(err, errlen, "flite could not register voice %s", v->name);
		return -EIO;
	}
	return voice_take(v, cv, err, errlen);
}

/* Set v's features for one request: speed and the pitch variant. Set every
 * time, since an earlier request changed them. */
static void voice_tune(struct fvoice *v, double speed, float pitch, float range)
{
	cst_features *f = v->voice->features;
	bool flat = pitch != 1.0f || range != 1.0f;

	flite_feat_set_float(f, "duration_stretch", (float)(1.0 / speed));
	if (v->flat_val && flat != v->flat_on) {
		flite_feat_set(f, "cg_db", flat ? v->flat_val : v->db_val);
		v->flat_on = flat;
	}
	if (v->f0_mean > 0.0f) {
		flite_feat_set_float(f, "int_f0_target_mean", v->f0_mean * pitch);
		flite_feat_set_float(f, "int_f0_target_stddev", v->f0_stddev * range);
	}
}

/* The built-in voice named `name` (exact), NULL if none. */
static struct fvoice *find_builtin(const char *name)
{
	for (int i = 0; i < N_BUILTIN; i++)
		if (strcmp(builtin[i].name, name) == 0)
			return &builtin[i];
	return NULL;
}

/* voice_file=PATH: load it as e->file, the model's voice, named after the
 * file. Its name may not shadow a voice a request can already name. */
static int load_voice_file(struct flite_engine *e, const char *path, char *err, size_t errlen)
{
	cst_voice *cv;
	int rc;

	if (vs_flite_voxfile_name(path, e->file_name, sizeof(e->file_name)) < 0) {
		snprintf(err, errlen,
		         "voice_file '%s': its file name is not a voice name (1 to %d bytes before "
		         ".flitevox)",
		         path, VOICE_NAME_MAX);
		return -EINVAL;
	}
	if (vs_openai_voice_index(e->file_name) >= 0 || find_builtin(e->file_name)) {
		snprintf(err, errlen,
		         "voice_file '%s': its name '%s' is already a voice; rename the file", path,
		         e->file_name);
		return -EINVAL;
	}
	rc = vs_flite_voxfile_load(path, &cv, err, errlen);
	if (rc < 0)
		return rc;
	/* English: the only front end flite_voxfile.c gives flite */
	e->file = (struct fvoice){.name = e->file_name, .gender = "", .lang = "en"};
	rc = voice_take(&e->file, cv, err, errlen);
	if (rc < 0) {
		delete_voice(cv);
		e->file.voice = NULL;
		return rc;
	}
	e->voice = &e->file;
	return 0;
}

/* The options (catalog.c): voice=NAME or voice_file=PATH sets e->voice. */
static int apply_options(struct flite_engine *e, const struct vs_engine_config *cfg, char *err,
                         size_t errlen)
{
	const char *name = vs_engine_option(cfg, "voice");
	const char *path = vs_engine_option(cfg, "voice_file");

	if (name && path) {
		snprintf(
		        err, errlen,
		        "flite options voice and voice_file both name the model's voice; give one");
		return -EINVAL;
	}
	if (path)
		return load_voice_file(e, path, err, errlen);
	if (name) {
		/* kal (8 kHz) is not intelligible enough to be a model's voice */
		e->voice = find_builtin(name);
		if (!e->voice || e->voice == &builtin[V_KAL]) {
			snprintf(err, errlen,
			         "flite has no voice '%.64s' for option voice (available: slt, "
			         "rms, awb, kal16)",
			         name);
			return -EINVAL;
		}
		return voice_ready(e->voice, err, errlen);
	}
	/* prove the library works with the default voice, as espeak-ng's load does */
	return voice_ready(&builtin[openai_map[VS_VOICE_ALLOY].voice], err, errlen);
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
	rc = apply_options(e, cfg, err, errlen);
	if (rc < 0) {
		free(e);
		return rc;
	}
	loaded = true;
	*ctx = e;
	return 0;
}

/* Drops what voice_take() held and the voice itself (a file voice only:
 * flite's built-in voices live in their libraries' globals). */
static void file_voice_free(struct fvoice *v)
{
	if (!v->voice)
		return;
	if (v->flat_val) {
		if (v->flat_on)
			flite_feat_set(v->voice->features, "cg_db", v->db_val);
		delete_val(v->flat_val);
		delete_val(v->db_val);
	}
	delete_voice(v->voice);
	v->voice = NULL;
}

static void flite_engine_unload(void *ctx)
{
	struct flite_engine *e = ctx;

	/* Built-in voices stay registered: flite has no clean global teardown
	 * and the process exits right after unload (idle unload closes the
	 * worker); a later load in the same process reuses them. */
	if (!e)
		return;
	file_voice_free(&e->file);
	loaded = false;
	free(e);
}

static int flite_engine_sample_rate(void *ctx)
{
	return ctx ? FLITE_RATE : 0;
}

/* The voice a request names: an OpenAI name (any case), a built-in name or
 * the model's voice file's name (exact); *var is the pitch variant to speak
 * it with. With a model voice, every OpenAI name is a variant of it. */
static struct fvoice *find_voice(struct flite_engine *e, const char *name, struct variant *var)
{
	int ov;

	*var = (struct variant){0, 1.0f, 1.0f};
	if (!name || !*name)
		name = vs_openai_voices[VS_VOICE_ALLOY];
	ov = vs_openai_voice_index(name);
	if (ov >= 0) {
		*var = openai_map[ov];
		return e->voice ? e->voice : &builtin[openai_map[ov].voice];
	}
	if (e->file.voice && strcmp(e->file.name, name) == 0)
		return &e->file;
	return find_builtin(name);
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

static void unknown_voice(const struct flite_engine *e, const char *voice, char *err, size_t errlen)
{
	char names[256];
	const char *b[N_BUILTIN + 2];
	int n = 0;

	for (; n < N_BUILTIN; n++)
		b[n] = builtin[n].name;
	if (e->file.voice)
		b[n++] = e->file.name;
	b[n] = NULL;
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
	struct variant var;
	struct fvoice *b;
	int rc = 0;

	b = find_voice(e, p->voice, &var);
	if (!b) {
		unknown_voice(e, p->voice, err, errlen);
		return -EINVAL;
	}
	rc = voice_ready(b, err, errlen);
	if (rc < 0)
		return rc;
	if (!(speed > 0.0) || !isfinite(speed))
		speed = 1.0;
	speed = speed < SPEED_MIN ? SPEED_MIN : speed > SPEED_MAX ? SPEED_MAX : speed;
	voice_tune(b, speed, var.pitch, var.range);

	/* The statistical voices mix noise from rand() into their excitation:
	 * seeded per request, the same request gives the same audio (nothing
	 * else in a worker calls rand(); FFmpeg's encoders do not). */
	srand(NOISE_SEED);
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

/* The OpenAI names first, then the built-in voices by name, then the
 * model's voice file's. */
static int flite_engine_list_voices(void *ctx, struct vs_voice **out, size_t *n_out)
{
	const struct flite_engine *e = ctx;
	struct vs_voice *v = calloc(VS_N_OPENAI_VOICES + N_BUILTIN + 1, sizeof(*v));
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	if (!v)
		return -ENOMEM;
	for (int i = 0; i < VS_N_OPENAI_VOICES && rc == 0; i++) {
		const struct fvoice *b = e->voice ? e->voice : &builtin[openai_map[i].voice];

		rc = vs_voices_add(v, &n, vs_openai_voices[i], b->lang, b->gender);
	}
	for (int i = 0; i < N_BUILTIN && rc == 0; i++)
		rc = vs_voices_add(v, &n, builtin[i].name, builtin[i].lang, builtin[i].gender);
	if (e->file.voice && rc == 0)
		rc = vs_voices_add(v, &n, e->file.name, e->file.lang, e->file.gender);
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
