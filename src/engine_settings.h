/* engine_settings.h - where the settings meet the engine registry.
 *
 * DESIGN
 * config/ and engine/ are peers that may not include each other, so the
 * start-up code that needs both lives here, beside main.c: the checks that
 * give ASR_ENGINE / TTS_ENGINE their valid names and defaults (from the
 * registry, handed to config as vs_config_check entries), and the step that
 * turns the settings into the vs_engine_config an engine's load() gets,
 * dropping with one warning each value the engine's capability lists
 * (model_names, devices, compute_types) do not name. Nothing here names an
 * engine: a new engine is still one file and one registry line.
 */
#ifndef VS_ENGINE_SETTINGS_H
#define VS_ENGINE_SETTINGS_H

#include "config/config.h"
#include "engine/engine.h"
#include "engine/models.h"

/* The registry's answers for vs_config_load() and the printers (static,
 * NULL-setting-terminated). */
const struct vs_config_check *vs_engine_settings_checks(void);

/* The engine the settings choose for kind, and in *ec the settings its
 * load() gets: a model, device or compute type the engine does not list is
 * NULL (the engine's own), reported through warn(msg, opaque) once each when
 * warn is not NULL. A value left at its default is dropped without a word
 * (the defaults are the original's faster-whisper values and say nothing
 * about the user). Returns NULL only if c names no engine of kind, which
 * vs_config_load() with vs_engine_settings_checks() rules out. */
const struct vs_engine_info *vs_engine_settings(const struct vs_config *c, enum vs_engine_kind kind,
                                                struct vs_engine_config *ec,
                                                void (*warn)(const char *msg, void *opaque),
                                                void *opaque);

/* The model catalogue the settings give (need: VS_ENGINE_ASR | VS_ENGINE_TTS,
 * the services that will run): MODELS_FILE or the built-in models; a model
 * named after ASR_ENGINE / TTS_ENGINE added when that setting names an
 * engine no model uses (the test engines); each service's default first:
 * the model ASR_MODEL / TTS_MODEL names, else the first model of
 * ASR_ENGINE / TTS_ENGINE when set. A name matching no model is ignored
 * with one warning. 0, or -EINVAL with the reason in err. */
int vs_engine_settings_models(const struct vs_config *c, unsigned need, struct vs_models *ms,
                              void (*warn)(const char *msg, void *opaque), void *opaque, char *err,
                              size_t errlen);

#endif
