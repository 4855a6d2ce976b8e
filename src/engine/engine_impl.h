/* engine_impl.h - private to src/engine: the engine tables the registry lists,
 * and the transcript builder the ASR engines share.
 *
 * DESIGN
 * Nothing outside src/engine includes this file: the rest of the server sees
 * engines only through engine.h, the catalog and the registry. Each engine
 * file exports exactly one `const struct vs_engine_ops`, whose info is its
 * catalog entry; catalog.c and registry.c are the only places that name them
 * all.
 *
 * The transcript builder (transcript.c) grows the arrays of a vs_transcript
 * in place, so a half-built transcript is always valid input for
 * vs_transcript_free(): an engine that fails half way just returns and lets
 * the caller free what was built.
 */
#ifndef VS_ENGINE_IMPL_H
#define VS_ENGINE_IMPL_H

#include "engine/engine.h"

extern const struct vs_engine_info vs_engine_pocketsphinx_info;
extern const struct vs_engine_info vs_engine_espeak_ng_info;
extern const struct vs_engine_info vs_engine_test_asr_info;
extern const struct vs_engine_info vs_engine_test_tts_info;
extern const struct vs_engine_info vs_engine_flite_info;
/* devices list of an engine that runs on the CPU only: {"cpu", NULL} */
extern const char *const vs_engine_cpu_only[];

extern const struct vs_engine_ops vs_engine_pocketsphinx;
extern const struct vs_engine_ops vs_engine_espeak_ng;
extern const struct vs_engine_ops vs_engine_test_asr;
extern const struct vs_engine_ops vs_engine_test_tts;
extern const struct vs_engine_ops vs_engine_flite;

/* Append a word (len bytes of `word`, need not be NUL-terminated). 0 or
 * -ENOMEM. */
int vs_transcript_add_word(struct vs_transcript *t, const char *word, size_t len, double start,
                           double end, double probability);
/* Append a segment whose words are t->words[first_word .. t->n_words). 0 or
 * -ENOMEM. */
int vs_transcript_add_segment(struct vs_transcript *t, const char *text, double start, double end,
                              size_t first_word);
/* Set language and duration and build t->text: the segments' texts joined by
 * one space ("" when there are none). 0 or -ENOMEM. */
int vs_transcript_finish(struct vs_transcript *t, const char *language, double duration);

/* Fill v[*n] with copies of name, lang and gender and count it (also when
 * a copy failed, so vs_voices_free() frees what was copied). 0 or -ENOMEM.
 * v must have room for one more voice. */
int vs_voices_add(struct vs_voice *v, size_t *n, const char *name, const char *lang,
                  const char *gender);

#endif
