/* catalog.c - the engines this build knows: names, kinds, model names.
 *
 * DESIGN
 * Data only, no engine code: the front validates ASR_ENGINE / TTS_ENGINE and
 * a request's "model" against this table, lists /v1/models from it, and so
 * never links pocketsphinx, espeak-ng or FFmpeg (they load in workers only;
 * registry.c maps an entry to its code in the worker binary). The test
 * engines are listed like the real ones so integration tests can select them
 * through ASR_ENGINE / TTS_ENGINE without a special build.
 */
#include <stdio.h>
#include <string.h>

#include "engine/engine_impl.h"

/* pocketsphinx here has one model, US English; every name is an alias of it */
static const char *const ps_models[] = {"pocketsphinx-en-us", "pocketsphinx", "en-us",
                                        VS_ASR_MODEL_ALIASES, NULL};
/* espeak-ng has one "model" (its voice data); every name is an alias of it */
static const char *const espeak_models[] = {"espeak-ng", VS_TTS_MODEL_ALIASES, NULL};
static const char *const test_asr_models[] = {"test-asr", VS_ASR_MODEL_ALIASES, NULL};
static const char *const test_tts_models[] = {"test-tts", VS_TTS_MODEL_ALIASES, NULL};

const struct vs_engine_info vs_engine_pocketsphinx_info = {
        .name = "pocketsphinx", .kind = VS_ENGINE_ASR, .model_names = ps_models};
const struct vs_engine_info vs_engine_espeak_ng_info = {
        .name = "espeak-ng", .kind = VS_ENGINE_TTS, .model_names = espeak_models};
const struct vs_engine_info vs_engine_test_asr_info = {
        .name = "test-asr", .kind = VS_ENGINE_ASR, .model_names = test_asr_models};
const struct vs_engine_info vs_engine_test_tts_info = {
        .name = "test-tts", .kind = VS_ENGINE_TTS, .model_names = test_tts_models};

static const struct vs_engine_info *const engines[] = {
        &vs_engine_pocketsphinx_info, /* ASR default: first ASR entry */
        &vs_engine_espeak_ng_info,    /* TTS default: first TTS entry */
        &vs_engine_test_asr_info,     &vs_engine_test_tts_info, NULL,
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

bool vs_engine_accepts_model(const struct vs_engine_info *info, const char *model)
{
	if (!info || !model || !info->model_names)
		return false;
	for (size_t i = 0; info->model_names[i]; i++)
		if (strcmp(info->model_names[i], model) == 0)
			return true;
	return false;
}

void vs_engine_model_list(const struct vs_engine_info *info, char *buf, size_t len)
{
	size_t used = 0;

	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	if (!info || !info->model_names)
		return;
	for (size_t i = 0; info->model_names[i] && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
		                 info->model_names[i]);

		if (n < 0)
			break;
		used += (size_t)n; /* may pass len: snprintf truncated, loop ends */
	}
}
