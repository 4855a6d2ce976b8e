/* registry.c - the engines' code, by catalog entry; worker binary only.
 *
 * DESIGN
 * Linking this file links every engine library (pocketsphinx, espeak-ng):
 * only the worker binary does. The front knows engines through catalog.c.
 */
#include "engine/engine_impl.h"

/* one line per engine (the comments keep clang-format from packing them) */
static const struct vs_engine_ops *const engines[] = {
        &vs_engine_pocketsphinx, /* ASR */
        &vs_engine_espeak_ng,    /* TTS */
        &vs_engine_test_asr,     /* ASR, tests */
        &vs_engine_test_tts,     /* TTS, tests */
        &vs_engine_flite,        /* TTS */
        NULL,
};

const struct vs_engine_ops *vs_engine_ops_of(const struct vs_engine_info *info)
{
	for (size_t i = 0; info && engines[i]; i++)
		if (engines[i]->info == info)
			return engines[i];
	return NULL;
}
