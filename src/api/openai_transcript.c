/* openai_transcript.c - struct vs_transcript -> OpenAI verbose_json object.
 *
 * DESIGN
 * Called by the ASR worker right after the engine returns; the object it
 * builds is the only thing the worker sends back for a transcription, and the
 * front renders every response_format from it (openai_render.c). So this is
 * the single place that decides OpenAI's field names, whisper-isms (leading
 * space on segment text, language as a full name) and number rounding.
 * Fields whisper has but our engines do not produce get fixed neutral values
 * (documented in openai.h) so strict clients still find them.
 */
#include "api/openai.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

/* seconds rounded to the millisecond; junk (NaN, negative) becomes 0 */
static double ms_round(double s)
{
	if (!isfinite(s) || s < 0)
		return 0.0;
	return round(s * 1000.0) / 1000.0;
}

/* json_object_set_new that remembers a failure instead of making every call
 * site branch; set_new always consumes val, also when it fails */
static void put(json_t *obj, const char *key, json_t *val, bool *ok)
{
	if (json_object_set_new(obj, key, val) < 0)
		*ok = false;
}

static double avg_logprob(const struct vs_transcript *t, const struct vs_segment *seg)
{
	if (!t->words || seg->first_word >= t->n_words || seg->n_words == 0)
		return 0.0;
	size_t n = seg->n_words;
	if (n > t->n_words - seg->first_word)
		n = t->n_words - seg->first_word;
	double sum = 0.0;
	for (size_t i = 0; i < n; i++) {
		double p = t->words[seg->first_word + i].probability;
		if (!isfinite(p) || p < 1e-10)
			p = 1e-10; /* log(0) would be -inf, which JSON cannot carry */
		if (p > 1.0)
			p = 1.0;
		sum += log(p);
	}
	return round(sum / (double)n * 1e6) / 1e6;
}

/* whisper segment text starts with a space (" Hello."); keep that shape */
static json_t *segment_text(const char *text)
{
	if (!text || !*text || *text == ' ')
		return vs_oai_json_string(text);
	size_t len = strlen(text);
	char *buf = malloc(len + 2);
	if (!buf)
		return NULL;
	buf[0] = ' ';
	memcpy(buf + 1, text, len + 1);
	json_t *j = vs_oai_json_string(buf);
	free(buf);
	return j;
}

static json_t *segment_json(const struct vs_transcript *t, size_t i)
{
	const struct vs_segment *seg = &t->segments[i];
	json_t *o = json_object();
	bool ok = o != NULL;

	if (!o)
		return NULL;
	put(o, "id", json_integer((json_int_t)i), &ok);
	put(o, "seek", json_integer(0), &ok);
	put(o, "start", json_real(ms_round(seg->start)), &ok);
	put(o, "end", json_real(ms_round(seg->end)), &ok);
	put(o, "text", segment_text(seg->text), &ok);
	put(o, "tokens", json_array(), &ok);
	put(o, "temperature", json_real(0.0), &ok);
	put(o, "avg_logprob", json_real(avg_logprob(t, seg)), &ok);
	put(o, "compression_ratio", json_real(1.0), &ok);
	put(o, "no_speech_prob", json_real(0.0), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *word_json(const struct vs_word *w)
{
	json_t *o = json_object();
	bool ok = o != NULL;

	if (!o)
		return NULL;
	put(o, "word", vs_oai_json_string(w->word), &ok);
	put(o, "start", json_real(ms_round(w->start)), &ok);
	put(o, "end", json_real(ms_round(w->end)), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *vs_transcript_to_verbose_json(const struct vs_transcript *t, bool with_words)
{
	json_t *o = json_object();
	json_t *segs = json_array();
	json_t *words = with_words ? json_array() : NULL;
	bool ok = o && segs && (words || !with_words);

	if (!ok)
		goto fail;
	for (size_t i = 0; t->segments && i < t->n_segments && ok; i++)
		if (json_array_append_new(segs, segment_json(t, i)) < 0)
			ok = false;
	for (size_t i = 0; words && t->words && i < t->n_words && ok; i++)
		if (json_array_append_new(words, word_json(&t->words[i])) < 0)
			ok = false;
	if (!ok)
		goto fail;

	put(o, "task", json_string("transcribe"), &ok);
	put(o, "language", vs_oai_json_string(vs_oai_language_name(t->language)), &ok);
	put(o, "duration", json_real(ms_round(t->duration)), &ok);
	put(o, "text", vs_oai_json_string(t->text), &ok);
	put(o, "segments", segs, &ok);
	segs = NULL;
	if (words) {
		put(o, "words", words, &ok);
		words = NULL;
	}
	if (!ok)
		goto fail;
	return o;
fail:
	json_decref(o);
	json_decref(segs);
	json_decref(words);
	return NULL;
}
