/* engine.h - the engine interface: one small versioned vtable per engine.
 *
 * DESIGN
 * An engine is a table of function pointers (PipeWire style) filled with
 * designated initializers. The server never includes an engine's own header:
 * HTTP, admission and worker code see only `struct vs_engine_ops`, looked up by
 * name in the registry (registry.c). Adding flite or whisper.cpp means adding
 * one file here and one line in the registry; nothing else changes.
 *
 * Engines run only inside worker processes (src/worker/), one loaded instance
 * per process. So an engine may keep process-global state (espeak-ng does),
 * may call exit() on fatal errors (pocketsphinx does) and need not be
 * thread-safe: the worker calls it from one thread, one request at a time.
 *
 * Contract for every function: return 0 or a negative errno; on failure write
 * a one-line human reason into err (errlen bytes) and do not log: the worker
 * that decides what to do with the failure logs it once.
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

/* Settings an engine may use; a field that does not apply is ignored (the
 * config layer warns about it once at start-up). */
struct vs_engine_config {
	const char *model;  /* ASR_MODEL; NULL or "" = engine default */
	const char *device; /* ASR_DEVICE / TTS_DEVICE */
	const char *compute_type;
	bool vad; /* ASR_VAD_ENABLED */
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

struct vs_voice {
	char *name;
	char *language;
	char *gender; /* "male", "female" or "" */
};

void vs_voices_free(struct vs_voice *v, size_t n);

struct vs_engine_ops {
	uint32_t version; /* VS_ENGINE_API_VERSION */
	const char *name;
	enum vs_engine_kind kind;
	/* model names a client may send in "model" (NULL-terminated); the first is
	 * the engine's own model name as reported by /health/detailed */
	const char *const *model_names;

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

/* ---- registry (registry.c) ---- */

/* Engine by name, NULL if unknown. */
const struct vs_engine_ops *vs_engine_find(const char *name);
/* Default engine for a kind ("pocketsphinx", "espeak-ng"). */
const struct vs_engine_ops *vs_engine_default(enum vs_engine_kind kind);
/* All registered engines, NULL-terminated. */
const struct vs_engine_ops *const *vs_engine_all(void);
/* true if `model` is one of ops->model_names (case-sensitive). */
bool vs_engine_accepts_model(const struct vs_engine_ops *ops, const char *model);
/* Writes "a, b, c" of accepted model names into buf (for 400 messages). */
void vs_engine_model_list(const struct vs_engine_ops *ops, char *buf, size_t len);

#endif
