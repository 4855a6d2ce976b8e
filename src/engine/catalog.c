/* catalog.c - the engines this build knows: names, kinds, model names.
 *
 * DESIGN
 * Data only, no engine code: the front validates ASR_ENGINE / TTS_ENGINE and
 * a request's "model" against this table, lists /v1/models from it, and so
 * never links pocketsphinx, espeak-ng or FFmpeg (they load in workers only;
 * registry.c maps an entry to its code in the worker binary). The test
 * engines are listed like the real ones so integration tests can select them
 * through ASR_ENGINE / TTS_ENGINE without a special build. Also here, for the
 * same reason: each engine's capabilities (devices, compute types, voices),
 * the names every engine shares (the OpenAI voices) and the list helpers
 * that start-up (src/engine_settings.c) and every load() check them with.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "engine/engine_impl.h"

/* pocketsphinx here has one model, US English; every name is an alias of it */
static const char *const ps_models[] = {"pocketsphinx-en-us", "pocketsphinx", "en-us",
                                        VS_ASR_MODEL_ALIASES, NULL};
/* espeak-ng has one "model" (its voice data); every name is an alias of it */
static const char *const espeak_models[] = {"espeak-ng", VS_TTS_MODEL_ALIASES, NULL};
/* flite's voices are its "models"; one name, chosen per request by the
 * model catalogue (tts-1-hd) once it exists */
static const char *const flite_models[] = {"flite", VS_TTS_MODEL_ALIASES, NULL};
static const char *const test_asr_models[] = {"test-asr", VS_ASR_MODEL_ALIASES, NULL};
static const char *const test_tts_models[] = {"test-tts", VS_TTS_MODEL_ALIASES, NULL};

const char *const vs_engine_cpu_only[] = {"cpu", NULL};
/* the bundled pocketsphinx model is US English (language_ok() in
 * pocketsphinx.c); the test engine answers "en" whatever it is given */
static const char *const english[] = {"en", NULL};

/* the decoder settings of the built-in model pocketsphinx-accurate (models.c) */
const char *const vs_ps_accurate_options[] = {NULL};

const char *const vs_openai_voices[VS_N_OPENAI_VOICES + 1] = {
        [VS_VOICE_ALLOY] = "alloy",   [VS_VOICE_ASH] = "ash",
        [VS_VOICE_BALLAD] = "ballad", [VS_VOICE_CORAL] = "coral",
        [VS_VOICE_ECHO] = "echo",     [VS_VOICE_FABLE] = "fable",
        [VS_VOICE_ONYX] = "onyx",     [VS_VOICE_NOVA] = "nova",
        [VS_VOICE_SAGE] = "sage",     [VS_VOICE_SHIMMER] = "shimmer",
        [VS_VOICE_VERSE] = "verse",   [VS_VOICE_MARIN] = "marin",
        [VS_VOICE_CEDAR] = "cedar",   NULL,
};

const struct vs_engine_info vs_engine_pocketsphinx_info = {
        .name = "pocketsphinx",
        .kind = VS_ENGINE_ASR,
        .typical_rss_mb = 110, /* 101 MB after load, 131 MB after decoding 40 s */
        .model_names = ps_models,
        .devices = vs_engine_cpu_only,
        .grammars = true,
        .url = "https://github.com/cmusphinx/pocketsphinx",
        .languages = english,
};
const struct vs_engine_info vs_engine_espeak_ng_info = {
        .name = "espeak-ng",
        .kind = VS_ENGINE_TTS,
        .typical_rss_mb = 35,
        .model_names = espeak_models,
        .devices = vs_engine_cpu_only,
        .voices = vs_openai_voices,
        .url = "https://github.com/espeak-ng/espeak-ng",
};
const struct vs_engine_info vs_engine_test_asr_info = {
        .name = "test-asr",
        .kind = VS_ENGINE_ASR,
        .typical_rss_mb = 10,
        .model_names = test_asr_models,
        .devices = vs_engine_cpu_only,
        .url = "",
        .languages = english,
};
const struct vs_engine_info vs_engine_test_tts_info = {
        .name = "test-tts",
        .kind = VS_ENGINE_TTS,
        .typical_rss_mb = 10,
        .model_names = test_tts_models,
        .devices = vs_engine_cpu_only,
        .voices = vs_openai_voices,
        .url = "",
};

static const struct vs_engine_option flite_options[] = {
        {"voice", "the model's voice, a built-in one: slt, rms, awb or kal16; every OpenAI voice "
                  "name is a pitch variant of it (default: the names spread over all four)"},
        {"voice_file", "path of a clustergen .flitevox voice file, loaded with the model: the "
                       "model's voice (as voice=), also requestable by its file name without "
                       ".flitevox"},
        {NULL, NULL},
};

const struct vs_engine_info vs_engine_flite_info = {
        .name = "flite",
        .kind = VS_ENGINE_TTS,
        .typical_rss_mb = 30,
        .model_names = flite_models,
        .devices = vs_engine_cpu_only,
        .voices = vs_openai_voices,
        .options = flite_options,
        .url = "http://cmuflite.org",
};

static const struct vs_engine_info *const engines[] = {
        &vs_engine_pocketsphinx_info, /* ASR default: first ASR entry */
        &vs_engine_espeak_ng_info,    /* TTS default: first TTS entry */
        &vs_engine_test_asr_info,     &vs_engine_test_tts_info, &vs_engine_flite_info, NULL,
};

const struct vs_engine_info *vs_engine_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; engines[i]; i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}

const struct vs_engine_info *vs_engine_default(enum vs_engine_kind kind)
{
	for (size_t i = 0; engines[i]; i++)
		if (engines[i]->kind == kind)
			return engines[i];
	return NULL;
}

const struct vs_engine_info *const *vs_engine_all(void)
{
	return engines;
}

int vs_openai_voice_index(const char *name)
{
	for (int i = 0; name && i < VS_N_OPENAI_VOICES; i++)
		if (strcasecmp(vs_openai_voices[i], name) == 0)
			return i;
	return -1;
}

bool vs_engine_list_has(const char *const *list, const char *v)
{
	if (!list || !v)
		return false;
	for (; *list; list++)
		if (strcmp(*list, v) == 0)
			return true;
	return false;
}

void vs_engine_list_join(const char *const *list, char *buf, size_t len)
{
	size_t used = 0;

	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; list && list[i] && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", list[i]);

		if (n < 0)
			break;
		used += (size_t)n; /* may pass len: snprintf truncated, loop ends */
	}
}

bool vs_engine_accepts_model(const struct vs_engine_info *info, const char *model)
{
	return info && vs_engine_list_has(info->model_names, model);
}

void vs_engine_model_list(const struct vs_engine_info *info, char *buf, size_t len)
{
	vs_engine_list_join(info ? info->model_names : NULL, buf, len);
}

/* One field of vs_engine_check_config(): what = "model", "device", ... */
static int check_one(const struct vs_engine_info *info, const char *what, const char *v,
                     const char *const *list, char *err, size_t errlen)
{
	char names[512];

	if (!v || !*v || vs_engine_list_has(list, v))
		return 0;
	vs_engine_list_join(list, names, sizeof(names));
	if (list)
		snprintf(err, errlen, "%s %s '%.64s' is not available (available: %s)", info->name,
		         what, v, names);
	else
		snprintf(err, errlen, "%s has no choice of %s ('%.64s' given)", info->name, what,
		         v);
	return -EINVAL;
}

bool vs_engine_has_option(const struct vs_engine_info *info, const char *key)
{
	for (const struct vs_engine_option *o = info ? info->options : NULL; o && o->key; o++)
		if (strcmp(o->key, key) == 0)
			return true;
	return false;
}

const char *vs_engine_option(const struct vs_engine_config *cfg, const char *key)
{
	const char *v = NULL;
	size_t kl = strlen(key);

	for (const char *const *o = cfg ? cfg->options : NULL; o && *o; o++)
		if (strncmp(*o, key, kl) == 0 && (*o)[kl] == '=')
			v = *o + kl + 1;
	return v;
}

/* every "key=value" of cfg->options names an option of the engine */
static int check_options(const struct vs_engine_info *info, const struct vs_engine_config *cfg,
                         char *err, size_t errlen)
{
	for (const char *const *o = cfg->options; o && *o; o++) {
		const char *eq = strchr(*o, '=');
		char key[64];

		snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - *o) : 63, *o);
		if (!eq || !vs_engine_has_option(info, key)) {
			snprintf(err, errlen, "%s has no option '%.64s'", info->name, key);
			return -EINVAL;
		}
	}
	return 0;
}

int vs_engine_check_config(const struct vs_engine_info *info, const struct vs_engine_config *cfg,
                           char *err, size_t errlen)
{
	int r;

	if (!cfg)
		return 0;
	r = check_options(info, cfg, err, errlen);
	if (r < 0)
		return r;
	r = check_one(info, "model", cfg->model, info->model_names, err, errlen);
	if (r == 0)
		r = check_one(info, "device", cfg->device, info->devices, err, errlen);
	if (r == 0)
		r = check_one(info, "compute type", cfg->compute_type, info->compute_types, err,
		              errlen);
	return r;
}
