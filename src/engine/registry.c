/* registry.c - the list of engines this build knows, looked up by name.
 *
 * DESIGN
 * One static NULL-terminated table. The config layer validates ASR_ENGINE /
 * TTS_ENGINE against it, the worker loads the named engine, the HTTP layer
 * checks a request's "model" with vs_engine_accepts_model(). Adding an engine
 * is one line here plus its file. The test engines are registered like the
 * real ones so integration tests can select them through ASR_ENGINE /
 * TTS_ENGINE without a special build.
 */
#include <stdio.h>
#include <string.h>

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

bool vs_engine_accepts_model(const struct vs_engine_ops *ops, const char *model)
{
	size_t i;

	if (!ops || !model || !ops->model_names)
		return false;
	for (i = 0; ops->model_names[i]; i++)
		if (strcmp(ops->model_names[i], model) == 0)
			return true;
	return false;
}

void vs_engine_model_list(const struct vs_engine_ops *ops, char *buf, size_t len)
{
	size_t used = 0, i;

	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	if (!ops || !ops->model_names)
		return;
	for (i = 0; ops->model_names[i] && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
		                 ops->model_names[i]);

		if (n < 0)
			break;
		used += (size_t)n; /* may pass len: snprintf truncated, loop ends */
	}
}
