/* registry.c - the list of engines this build knows, looked up by name.
 *
 * DESIGN
 * One static NULL-terminated table. Start-up (src/engine_settings.c)
 * validates ASR_ENGINE / TTS_ENGINE against it and checks the other engine
 * settings against the engine's capability lists, the worker loads the named
 * engine, the HTTP layer checks a request's "model" with
 * vs_engine_accepts_model(). Also here: the names every engine shares (the
 * OpenAI voices) and the list helpers the capability checks use. Adding an engine
 * is one line here plus its file. The test engines are registered like the
 * real ones so integration tests can select them through ASR_ENGINE /
 * TTS_ENGINE without a special build.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "engine/engine_impl.h"

static const struct vs_engine_ops *const engines[] = {
        &vs_engine_pocketsphinx, /* ASR default: first ASR entry */
        &vs_engine_espeak_ng,    /* TTS default: first TTS entry */
        &vs_engine_test_asr,     &vs_engine_test_tts, NULL,
};

const struct vs_engine_ops *vs_engine_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; engines[i]; i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}

const struct vs_engine_ops *vs_engine_default(enum vs_engine_kind kind)
{
	size_t i;

	for (i = 0; engines[i]; i++)
		if (engines[i]->kind == kind)
			return engines[i];
	return NULL;
}

const struct vs_engine_ops *const *vs_engine_all(void)
{
	return engines;
}

const char *const vs_engine_cpu_only[] = {"cpu", NULL};

const char *const vs_openai_voices[VS_N_OPENAI_VOICES + 1] = {
        [VS_VOICE_ALLOY] = "alloy",     [VS_VOICE_ASH] = "ash",     [VS_VOICE_BALLAD] = "ballad",
        [VS_VOICE_CORAL] = "coral",     [VS_VOICE_ECHO] = "echo",   [VS_VOICE_FABLE] = "fable",
        [VS_VOICE_ONYX] = "onyx",       [VS_VOICE_NOVA] = "nova",   [VS_VOICE_SAGE] = "sage",
        [VS_VOICE_SHIMMER] = "shimmer", [VS_VOICE_VERSE] = "verse", NULL,
};

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

bool vs_engine_accepts_model(const struct vs_engine_ops *ops, const char *model)
{
	return ops && vs_engine_list_has(ops->model_names, model);
}

void vs_engine_model_list(const struct vs_engine_ops *ops, char *buf, size_t len)
{
	vs_engine_list_join(ops ? ops->model_names : NULL, buf, len);
}

/* One field of vs_engine_check_config(): what = "model", "device", ... */
static int check_one(const struct vs_engine_ops *ops, const char *what, const char *v,
                     const char *const *list, char *err, size_t errlen)
{
	char names[512];

	if (!v || !*v || vs_engine_list_has(list, v))
		return 0;
	vs_engine_list_join(list, names, sizeof(names));
	if (list)
		snprintf(err, errlen, "%s %s '%.64s' is not available (available: %s)", ops->name,
		         what, v, names);
	else
		snprintf(err, errlen, "%s has no choice of %s ('%.64s' given)", ops->name, what, v);
	return -EINVAL;
}

int vs_engine_check_config(const struct vs_engine_ops *ops, const struct vs_engine_config *cfg,
                           char *err, size_t errlen)
{
	int r;

	if (!cfg)
		return 0;
	r = check_one(ops, "model", cfg->model, ops->model_names, err, errlen);
	if (r == 0)
		r = check_one(ops, "device", cfg->device, ops->devices, err, errlen);
	if (r == 0)
		r = check_one(ops, "compute type", cfg->compute_type, ops->compute_types, err,
		              errlen);
	return r;
}
