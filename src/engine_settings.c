/* engine_settings.c - engine names for config, and the settings an engine's
 * load() gets, checked against its capability lists; see engine_settings.h.
 *
 * DESIGN
 * Runs once at start-up (serve, transcribe, speak). The checks are plain
 * functions over vs_engine_all(), so config sees the registry only through
 * the answers. vs_engine_settings() is the one place that decides, for a
 * service, which model, device and compute type reach the engine; the
 * engine's load() checks the same lists again (vs_engine_check_config()), so
 * a value dropped here would be refused there, never silently misused.
 */
#include "engine_settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes "one of the ASR engines built in: a, b" into allowed; true if v is
 * an engine of kind. Valid names come from the registry, so a new engine
 * needs no change here. */
static bool check_engine(enum vs_engine_kind kind, const char *v, char *allowed, size_t len)
{
	const struct vs_engine_info *const *all = vs_engine_all();
	const struct vs_engine_info *ops;
	size_t n = 0;
	int w;

	w = snprintf(allowed, len,
	             "one of the %s engines built in:", kind == VS_ENGINE_ASR ? "ASR" : "TTS");
	for (; all && *all && w >= 0 && (size_t)w < len; all++)
		if ((*all)->kind == kind)
			w += snprintf(allowed + w, len - (size_t)w, "%s %s", n++ ? "," : "",
			              (*all)->name);
	ops = v ? vs_engine_find(v) : NULL;
	return ops && ops->kind == kind;
}

static bool check_asr_engine(const char *v, char *allowed, size_t len)
{
	return check_engine(VS_ENGINE_ASR, v, allowed, len);
}

static bool check_tts_engine(const char *v, char *allowed, size_t len)
{
	return check_engine(VS_ENGINE_TTS, v, allowed, len);
}

const struct vs_config_check *vs_engine_settings_checks(void)
{
	static struct vs_config_check checks[3];

	if (!checks[0].setting) { /* the registry is constant: fill once */
		const struct vs_engine_info *asr = vs_engine_default(VS_ENGINE_ASR);
		const struct vs_engine_info *tts = vs_engine_default(VS_ENGINE_TTS);

		checks[0] = (struct vs_config_check){"ASR_ENGINE", asr ? asr->name : NULL,
		                                     check_asr_engine};
		checks[1] = (struct vs_config_check){"TTS_ENGINE", tts ? tts->name : NULL,
		                                     check_tts_engine};
	}
	return checks;
}

struct warner {
	const struct vs_config *c;
	const struct vs_engine_info *ops;
	void (*fn)(const char *msg, void *opaque);
	void *opaque;
};

/* The value of setting `name` (text v, "" = not given) as the engine gets
 * it: v if `list` names it, else NULL with a warning, unless v is the
 * default. `uses` completes "(it ... )" in the warning. */
static const char *settle(const struct warner *w, const char *name, const char *v,
                          const char *const *list, const char *uses)
{
	char msg[640], names[256];

	if (!v || !*v)
		return NULL;
	if (vs_engine_list_has(list, v))
		return v;
	if (w->fn && vs_config_source_of(w->c, name) != VS_SRC_DEFAULT) {
		vs_engine_list_join(list, names, sizeof(names));
		if (list)
			snprintf(msg, sizeof(msg),
			         "%s=%s does not apply to engine %s (it %s %s); "
			         "ignored",
			         name, v, w->ops->name, uses, names);
		else
			snprintf(msg, sizeof(msg), "%s=%s does not apply to engine %s; ignored",
			         name, v, w->ops->name);
		w->fn(msg, w->opaque);
	}
	return NULL;
}

const struct vs_engine_info *vs_engine_settings(const struct vs_config *c, enum vs_engine_kind kind,
                                                struct vs_engine_config *ec,
                                                void (*warn)(const char *msg, void *opaque),
                                                void *opaque)
{
	bool asr = kind == VS_ENGINE_ASR;
	const struct vs_engine_info *ops = vs_engine_find(asr ? c->asr_engine : c->tts_engine);
	struct warner w = {c, ops, warn, opaque};

	memset(ec, 0, sizeof(*ec));
	if (!ops || ops->kind != kind)
		return NULL;
	ec->device = settle(&w, asr ? "ASR_DEVICE" : "TTS_DEVICE",
	                    asr ? c->asr_device : c->tts_device, ops->devices, "runs on");
	if (!asr)
		return ops; /* the TTS model, compute type and VAD are not settings */
	ec->compute_type =
	        settle(&w, "ASR_COMPUTE_TYPE", c->asr_compute_type, ops->compute_types, "uses");
	ec->vad = c->asr_vad_enabled;
	return ops;
}

/* MODELS_FILE's text, malloc'd; NULL with err set when it cannot be read */
static char *read_models_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t n = 0;

	if (!f) {
		snprintf(err, errlen, "MODELS_FILE=%s: %s", path, strerror(errno));
		return NULL;
	}
	text = malloc(VS_MODELS_FILE_MAX + 1);
	if (text) {
		n = fread(text, 1, VS_MODELS_FILE_MAX + 1, f);
		if (n > VS_MODELS_FILE_MAX) {
			snprintf(err, errlen, "MODELS_FILE=%s is larger than %d bytes", path,
			         VS_MODELS_FILE_MAX);
			free(text);
			text = NULL;
		} else {
			text[n] = '\0';
		}
	}
	fclose(f);
	return text;
}

/* Puts the default model of kind first: named by `setting` (ASR_MODEL), else
 * the first of `engine_setting`'s engine when that is set, which also adds
 * a model for an engine no model uses. */
static int order_service(const struct vs_config *c, struct vs_models *ms, enum vs_engine_kind kind,
                         void (*warn)(const char *msg, void *opaque), void *opaque)
{
	bool asr = kind == VS_ENGINE_ASR;
	const char *model = asr ? c->asr_model : c->tts_model;
	const char *engine_name = asr ? c->asr_engine : c->tts_engine;
	const char *ename = asr ? "ASR_ENGINE" : "TTS_ENGINE";
	const struct vs_engine_info *engine = vs_engine_find(engine_name);
	int i;

	if (engine && vs_config_source_of(c, ename) != VS_SRC_DEFAULT) {
		for (i = 0; i < ms->n && ms->m[i].engine != engine; i++)
			;
		if (i == ms->n && vs_models_add(ms, engine->name, engine) < 0)
			return -ENOSPC;
		vs_models_make_default(ms, i);
	}
	if (!*model)
		return 0;
	i = vs_models_find(ms, kind, model);
	if (i >= 0) {
		vs_models_make_default(ms, i);
	} else if (warn) {
		char msg[512];
		snprintf(msg, sizeof(msg),
		         "%s=%s names no %s model of the catalogue (voicestack models); ignored",
		         asr ? "ASR_MODEL" : "TTS_MODEL", model, asr ? "ASR" : "TTS");
		warn(msg, opaque);
	}
	return 0;
}

int vs_engine_settings_models(const struct vs_config *c, unsigned need, struct vs_models *ms,
                              void (*warn)(const char *msg, void *opaque), void *opaque, char *err,
                              size_t errlen)
{
	if (*c->models_file) {
		char *text = read_models_file(c->models_file, err, errlen);
		int r = text ? vs_models_parse(ms, text, c->models_file, err, errlen) : -EINVAL;
		free(text);
		if (r < 0)
			return r;
	} else {
		vs_models_builtin(ms);
	}
	if (order_service(c, ms, VS_ENGINE_ASR, warn, opaque) < 0 ||
	    order_service(c, ms, VS_ENGINE_TTS, warn, opaque) < 0) {
		snprintf(err, errlen, "more than %d models", VS_MODELS_MAX);
		return -EINVAL;
	}
	/* auto (0) is decided later, from the models: any count up to the cap */
	return vs_models_finish(ms, need,
	                        c->asr_max_concurrent_requests ? c->asr_max_concurrent_requests
	                                                       : VS_MODEL_SLOTS_MAX,
	                        c->tts_max_concurrent_requests ? c->tts_max_concurrent_requests
	                                                       : VS_MODEL_SLOTS_MAX,
	                        err, errlen);
}
