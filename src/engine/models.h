/* models.h - the model catalogue: which models each service hosts.
 *
 * DESIGN
 * A model is an id, an engine, the engine's options and its own limits
 * (slots, idle timeout, fallback), plus the other names clients may send for
 * it (aliases). The catalogue is the one list of names a request's "model"
 * may use: validation, /v1/models, loading and `voicestack models` all read
 * it. It is data, like catalog.c: the front builds one worker pool and one
 * set of slots per model from it and links no engine.
 *
 * Built-in models cover the engines Debian gives us; MODELS_FILE replaces
 * them with the operator's, one model per line:
 *
 *     ID SERVICE ENGINE key=value...     # SERVICE is asr or tts
 *
 * Keys: slots (0 = the service's *_MAX_CONCURRENT_REQUESTS), idle_minutes
 * (the service's *_IDLE_TIMEOUT_MINUTES when absent), fallback (a model of
 * the same service that serves the request when this one cannot be admitted
 * and degradation is on), aliases (comma-separated names), and the engine's
 * own options (engine.h, vs_engine_info.options). A later key on a line
 * overrides an earlier one. `#` starts a comment. vs_models_print() writes
 * the effective catalogue in that format, so its output is a valid
 * MODELS_FILE.
 *
 * Names OpenAI's clients and the original specification send (whisper-1,
 * base, tts-1, ...) that no model claims as an alias become aliases of the
 * service's default model in vs_models_finish(), so such a client always
 * works; the default of a service is its first model (the caller orders the
 * catalogue from ASR_MODEL / ASR_ENGINE, see engine_settings.c).
 *
 * Parsing stops at the first error, with the line number and the reason in
 * err: the service does not start on a bad catalogue, like a bad setting.
 */
#ifndef VS_MODELS_H
#define VS_MODELS_H

#include <stdbool.h>
#include <stdio.h>

#include "engine/engine.h"

#define VS_MODELS_MAX 16   /* models in one catalogue, both services */
#define VS_MODEL_ID_MAX 48 /* longest id or alias + 1 */
#define VS_MODEL_OPTIONS_MAX 24
#define VS_MODEL_ALIASES_MAX 24
#define VS_MODELS_FILE_MAX (64 * 1024) /* bytes of MODELS_FILE read */
#define VS_MODEL_SLOTS_MAX 64          /* = VS_SLOTS_MAX */

struct vs_model {
	char id[VS_MODEL_ID_MAX];
	enum vs_engine_kind kind;
	const struct vs_engine_info *engine;
	/* engine options "key=value" (each key once, in first-given order),
	 * NULL-terminated: what vs_engine_config.options gets */
	char *options[VS_MODEL_OPTIONS_MAX + 1];
	int n_options;
	char *aliases[VS_MODEL_ALIASES_MAX + 1];
	int n_aliases;
	int slots;                      /* 0 = the service's max concurrent requests */
	double idle_minutes;            /* < 0 = the service's idle timeout */
	char fallback[VS_MODEL_ID_MAX]; /* "" = none */
	int fallback_index;             /* into the catalogue, -1 = none (vs_models_finish) */
};

struct vs_models {
	struct vs_model m[VS_MODELS_MAX];
	int n;
};

/* The built-in catalogue: pocketsphinx, pocketsphinx-accurate (fallback
 * pocketsphinx), espeak-ng, flite (fallback espeak-ng). Replaces ms. */
void vs_models_builtin(struct vs_models *ms);

/* Replaces ms with the models of `text` (MODELS_FILE's content; source names
 * it in errors). 0, or -EINVAL with "source:line: reason" in err. */
int vs_models_parse(struct vs_models *ms, const char *text, const char *source, char *err,
                    size_t errlen);

/* Appends a model with no options (a test engine selected by ASR_ENGINE);
 * 0, -ENOSPC when the catalogue is full, -EEXIST when the id is taken. */
int vs_models_add(struct vs_models *ms, const char *id, const struct vs_engine_info *engine);

/* Moves model i to the front of its service's models (its new default). */
void vs_models_make_default(struct vs_models *ms, int i);

/* Checks what a line alone cannot: ids and aliases unique within a service,
 * fallbacks of the same service and not the model itself, slots within the
 * service's (asr_slots / tts_slots), at least one model for each service in
 * `need` (bit VS_ENGINE_ASR | VS_ENGINE_TTS). Then resolves fallbacks and
 * gives unclaimed OpenAI / specification names to each default model.
 * 0, or -EINVAL with the reason in err. */
int vs_models_finish(struct vs_models *ms, unsigned need, int asr_slots, int tts_slots, char *err,
                     size_t errlen);

/* Index of the model of `kind` called `name` (id or alias, case-sensitive),
 * -1 if none. */
int vs_models_find(const struct vs_models *ms, enum vs_engine_kind kind, const char *name);
/* Index of the default (first) model of kind, -1 if none. */
int vs_models_default(const struct vs_models *ms, enum vs_engine_kind kind);

/* The catalogue in MODELS_FILE format (slots and idle_minutes resolved with
 * the service values given). */
void vs_models_print(const struct vs_models *ms, FILE *f, int asr_slots, int tts_slots,
                     double asr_idle_minutes, double tts_idle_minutes);

void vs_models_free(struct vs_models *ms);

#endif
