/* engine.h - the engine interface: one small versioned vtable per engine.
 *
 * DESIGN
 * An engine is a table of function pointers (PipeWire style) filled with
 * designated initializers, plus a description (name, kind, model names) kept
 * apart from the code: the front sees only `struct vs_engine_info`, looked up
 * by name in the catalog (catalog.c), and so links no engine library; the
 * worker binary maps an info to its code through the registry (registry.c).
 * Adding an engine means one file here, one entry in the catalog and one
 * line in the registry (plus its two externs in engine_impl.h and its
 * library in meson.build); nothing else changes (flite was added so).
 *
 * Engines run only inside worker processes (src/worker/), one loaded instance
 * per process. So an engine may keep process-global state (espeak-ng does),
 * may call exit() on fatal errors (pocketsphinx does) and need not be
 * thread-safe: the worker calls it from one thread, one request at a time.
 *
 * Contract for every function: return 0 or a negative errno; on failure write
 * a one-line human reason into err (errlen bytes) and do not log: the worker
 * that decides what to do with the failure logs it once. -EINVAL: the client
 * asked for something this engine cannot do (a 400); -EBADMSG: the request's
 * grammar or keyword list was refused (does not compile, unknown word; a 400
 * on that field).
 */
#ifndef VS_ENGINE_H
#define VS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_ENGINE_API_VERSION 1

enum vs_engine_kind {
	VS_ENGINE_ASR = 1,
	VS_ENGINE_TTS = 2,
};

/* Settings an engine may use. Start-up (src/engine_settings.c) fills them
 * from the settings and drops, with one warning, a value the engine's
 * capability lists below do not name; load() refuses one that still does not
 * apply (vs_engine_check_config()), so a value either works or is refused. */
struct vs_engine_config {
	const char *model;        /* ASR_MODEL; NULL or "" = engine default */
	const char *device;       /* ASR_DEVICE / TTS_DEVICE; NULL = devices[0] */
	const char *compute_type; /* ASR_COMPUTE_TYPE; NULL = the engine's own */
	bool vad;                 /* ASR_VAD_ENABLED */
	/* the model's engine options ("key=value", NULL-terminated; NULL = none),
	 * from the model catalogue (MODELS_FILE); a key may repeat, the last
	 * one wins. Every key is one of info->options (checked at start-up and
	 * by vs_engine_check_config()); read them with vs_engine_option(). */
	const char *const *options;
};

/* What an option's value must be; vs_engine_check_config() refuses any
 * other, so a bad value is a clear error at start-up and at load, never a
 * value the engine's library half-parses (or exit()s on). */
enum vs_engine_option_type {
	VS_OPT_TEXT = 0, /* any value; the engine checks it */
	VS_OPT_NUMBER,   /* a decimal number within [min, max] */
	VS_OPT_INTEGER,  /* a whole number within [min, max] */
	VS_OPT_BOOL,     /* yes|no|true|false|1|0 */
	VS_OPT_PATH,     /* a file or directory; load() checks that it can be read */
};

/* One engine option a model of the catalogue may set (MODELS_FILE key). */
struct vs_engine_option {
	const char *key;
	const char *help; /* one line, for docs and for `voicestack models --help` */
	enum vs_engine_option_type type;
	double min, max; /* VS_OPT_NUMBER / VS_OPT_INTEGER */
};

/* ---- ASR ---- */

struct vs_word {
	char *word;
	double start, end;  /* seconds from the start of the audio */
	double probability; /* 0..1 */
};

struct vs_segment {
	double start, end;
	char *text;
	size_t first_word, n_words; /* slice of vs_transcript.words */
};

struct vs_transcript {
	char *text; /* whole transcript, segments joined by one space */
	char *language;
	double duration; /* seconds of audio */
	struct vs_segment *segments;
	size_t n_segments;
	struct vs_word *words;
	size_t n_words;
};

void vs_transcript_free(struct vs_transcript *t); /* accepts NULL / half-built */

struct vs_asr_params {
	const char *language; /* NULL = engine default */
	const char *prompt;
	double temperature;
	bool want_words;
	/* at most one, only for an engine with info->grammars; applies to this
	 * request only. A grammar that does not compile, or names a word the
	 * engine does not know, is -EINVAL with the reason (line, word) in err. */
	const char *grammar;  /* JSGF text */
	const char *keywords; /* keyword list, pocketsphinx kws format */
	/* Optional streaming (NULL = not wanted): an engine that decodes
	 * utterance by utterance calls on_segment with each segment as soon as
	 * it is in the transcript (in order, before transcribe() returns), so a
	 * client hears of it at once; a negative return stops the
	 * transcription, which then returns that value. An engine may leave it
	 * uncalled: the pipeline (src/worker/pipeline.c) then reports every
	 * segment after transcribe() returns, so each is reported exactly once
	 * either way. */
	int (*on_segment)(void *opaque, const struct vs_segment *seg);
	void *segment_opaque;
};

/* ---- TTS ---- */

/* Called by synthesize() each time a block of PCM is ready (mono s16 at
 * ops->sample_rate(ctx) after load). Return 0 to continue, negative errno to
 * abort synthesis (synthesize() then returns that value). */
typedef int (*vs_pcm_sink_fn)(void *opaque, const int16_t *pcm, size_t n_samples);

struct vs_tts_params {
	const char *text;  /* UTF-8, validated length */
	const char *voice; /* engine voice name (OpenAI names mapped by the engine) */
	double speed;      /* 0.25 .. 4.0 */
};

/* The voice names of OpenAI's speech API (its reference lists them in this
 * order, marin and cedar last as the newest), the one table of them: every TTS
 * engine accepts each (mapping it to a voice of its own) and lists them
 * first in list_voices(); GET /v1/audio/voices shows them as openai_voices.
 * The enum indexes vs_openai_voices[] so an engine's mapping table can be
 * written with designated initializers and checked for completeness. */
enum vs_openai_voice {
	VS_VOICE_ALLOY,
	VS_VOICE_ASH,
	VS_VOICE_BALLAD,
	VS_VOICE_CORAL,
	VS_VOICE_ECHO,
	VS_VOICE_FABLE,
	VS_VOICE_ONYX,
	VS_VOICE_NOVA,
	VS_VOICE_SAGE,
	VS_VOICE_SHIMMER,
	VS_VOICE_VERSE,
	VS_VOICE_MARIN,
	VS_VOICE_CEDAR,
	VS_N_OPENAI_VOICES
};
/* NULL-terminated; [VS_VOICE_ALLOY] is the default voice (OpenAI's first) */
extern const char *const vs_openai_voices[VS_N_OPENAI_VOICES + 1];
/* index of an OpenAI voice name, -1 if it is not one; any case ("Alloy"),
 * as the espeak-ng engine has always accepted */
int vs_openai_voice_index(const char *name);

struct vs_voice {
	char *name;
	char *language;
	char *gender; /* "male", "female" or "" */
};

void vs_voices_free(struct vs_voice *v, size_t n);

/* What the front knows of an engine: data, no code, so the front process
 * links and maps no engine library (catalog.c lists them all). */
struct vs_engine_info {
	const char *name;
	enum vs_engine_kind kind;
	/* the engine's own names for the data it loads (the worker's --model,
	 * the CLI), NULL-terminated; [0] is reported as its model name. The names
	 * clients send are the model catalogue's (models.h), not these. */
	const char *const *model_names;
	/* Capabilities, NULL-terminated lists of the values the settings may
	 * give (checked at start-up, where a value not listed is dropped with one
	 * warning, and again by load()):
	 * devices: where it runs (ASR_DEVICE / TTS_DEVICE), [0] the default;
	 * compute_types: numeric precisions (ASR_COMPUTE_TYPE), NULL when the
	 *   engine has no choice (then any value given is ignored);
	 * voices: TTS voice names always accepted, [0] the default voice
	 *   (vs_openai_voices for every engine so far); list_voices() may add
	 *   the engine's own after load. NULL for ASR. */
	const char *const *devices;
	const char *const *compute_types;
	const char *const *voices;
	/* ASR: a request may carry a JSGF grammar or a keyword list
	 * (vs_asr_params.grammar / .keywords); the front refuses those fields
	 * with 400 for an engine without it, so none is ignored silently */
	bool grammars;
	/* the engine's own options (MODELS_FILE keys), {NULL}-terminated; NULL
	 * when it has none */
	const struct vs_engine_option *options;
	/* resident MB of a worker with the engine loaded, as measured here
	 * (docs/MODELS.md): what `auto` slots assume before a load measures it */
	double typical_rss_mb;
	/* where the engine comes from (Wyoming's attribution); "" if nowhere */
	const char *url;
	/* ASR: the languages it transcribes (codes, NULL-terminated), which the
	 * front reports without asking a worker (Wyoming's info); TTS engines
	 * report theirs per voice (list_voices) */
	const char *const *languages;
};

/* The engine's code; linked into the worker binary only (registry.c). */
struct vs_engine_ops {
	uint32_t version; /* VS_ENGINE_API_VERSION */
	const struct vs_engine_info *info;

	int (*load)(const struct vs_engine_config *cfg, void **ctx, char *err, size_t errlen);
	void (*unload)(void *ctx); /* accepts NULL */

	/* ASR: pcm is mono s16 at 16 kHz. Fills *out (caller frees with
	 * vs_transcript_free). -EINVAL + err for an unsupported language etc. */
	int (*transcribe)(void *ctx, const int16_t *pcm, size_t n_samples,
	                  const struct vs_asr_params *p, struct vs_transcript *out, char *err,
	                  size_t errlen);

	/* TTS */
	int (*synthesize)(void *ctx, const struct vs_tts_params *p, vs_pcm_sink_fn sink,
	                  void *opaque, char *err, size_t errlen);
	int (*list_voices)(void *ctx, struct vs_voice **out, size_t *n);
	/* output sample rate of synthesize(); valid after load */
	int (*sample_rate)(void *ctx);
};

/* ---- catalog (catalog.c): front and worker ---- */

/* Engine by name, NULL if unknown. */
const struct vs_engine_info *vs_engine_find(const char *name);
/* Default engine for a kind ("pocketsphinx", "espeak-ng"). */
const struct vs_engine_info *vs_engine_default(enum vs_engine_kind kind);
/* All engines of this build, NULL-terminated. */
const struct vs_engine_info *const *vs_engine_all(void);
/* true if `model` is one of info->model_names (case-sensitive). */
bool vs_engine_accepts_model(const struct vs_engine_info *info, const char *model);
/* Writes "a, b, c" of accepted model names into buf (for 400 messages). */
void vs_engine_model_list(const struct vs_engine_info *info, char *buf, size_t len);
/* true if v is one of the NULL-terminated list (case-sensitive; false for a
 * NULL list or v). */
bool vs_engine_list_has(const char *const *list, const char *v);
/* Writes "a, b, c" of a NULL-terminated list into buf ("" for NULL). */
void vs_engine_list_join(const char *const *list, char *buf, size_t len);
/* What every load() checks first: each non-empty field of cfg is one that
 * info lists (model_names, devices, compute_types), and every option's key
 * is one of info->options. 0, or -EINVAL with the
 * reason in err naming the value and what the engine accepts. */
int vs_engine_check_config(const struct vs_engine_info *info, const struct vs_engine_config *cfg,
                           char *err, size_t errlen);

/* The value of option `key` in cfg->options (the last "key=value"), NULL
 * when absent. */
const char *vs_engine_option(const struct vs_engine_config *cfg, const char *key);
/* true if `key` is one of info->options. */
bool vs_engine_has_option(const struct vs_engine_info *info, const char *key);
/* A VS_OPT_BOOL value: 1 (yes, true, 1), 0 (no, false, 0), -1 otherwise. */
int vs_engine_option_bool(const char *v);

/* pocketsphinx-accurate's decoder options ("key=value", NULL-terminated):
 * the settings bench/tune_asr.py chose on human speech (catalog.c has the
 * figures; docs/MODELS.md how they were chosen). */
extern const char *const vs_ps_accurate_options[];

/* The engine options of the built-in model pocketsphinx-accurate: decoder
 * settings tuned on human speech (catalog.c says how). NULL-terminated. */
extern const char *const vs_ps_accurate_options[];

/* ---- registry (registry.c): the worker binary only ---- */

/* The code of the engine `info` describes; NULL if this binary has none. */
const struct vs_engine_ops *vs_engine_ops_of(const struct vs_engine_info *info);

#endif
