/* transcript.c - building and freeing engine results (vs_transcript,
 * vs_voice lists).
 *
 * DESIGN
 * ASR engines fill a vs_transcript with the helpers below; the worker frees
 * it with vs_transcript_free() after serialising it. vs_transcript carries no
 * capacity fields (it is a plain result struct), so the arrays grow to the
 * next power of two whenever their count reaches one: amortised O(1) appends
 * without a hidden field. Every step leaves the struct consistent, so a
 * failure half way only needs vs_transcript_free().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"

/* Make room for one more element in an array holding n elements whose
 * capacity is implied by n (0, 8, 16, 32, ...). */
static int grow(void **arr, size_t n, size_t elem)
{
	size_t cap;
	void *p;

	if (n != 0 && (n < 8 || (n & (n - 1)) != 0))
		return 0; /* still room below the implied capacity */
	cap = n == 0 ? 8 : n * 2;
	if (cap > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*arr, cap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

int vs_transcript_add_word(struct vs_transcript *t, const char *word, size_t len, double start,
                           double end, double probability)
{
	struct vs_word *w;
	char *s;

	if (grow((void **)&t->words, t->n_words, sizeof(*t->words)) < 0)
		return -ENOMEM;
	s = strndup(word, len);
	if (!s)
		return -ENOMEM;
	w = &t->words[t->n_words++];
	w->word = s;
	w->start = start;
	w->end = end;
	w->probability = probability;
	return 0;
}

int vs_transcript_add_segment(struct vs_transcript *t, const char *text, double start, double end,
                              size_t first_word)
{
	struct vs_segment *s;
	char *dup;

	if (grow((void **)&t->segments, t->n_segments, sizeof(*t->segments)) < 0)
		return -ENOMEM;
	dup = strdup(text);
	if (!dup)
		return -ENOMEM;
	s = &t->segments[t->n_segments++];
	s->text = dup;
	s->start = start;
	s->end = end;
	s->first_word = first_word <= t->n_words ? first_word : t->n_words;
	s->n_words = t->n_words - s->first_word;
	return 0;
}

int vs_transcript_finish(struct vs_transcript *t, const char *language, double duration)
{
	size_t len = 0, i;
	char *p;

	for (i = 0; i < t->n_segments; i++)
		len += strlen(t->segments[i].text) + 1;
	free(t->text);
	t->text = malloc(len + 1);
	if (!t->text)
		return -ENOMEM;
	p = t->text;
	for (i = 0; i < t->n_segments; i++) {
		size_t n = strlen(t->segments[i].text);

		if (p != t->text)
			*p++ = ' ';
		memcpy(p, t->segments[i].text, n);
		p += n;
	}
	*p = '\0';
	free(t->language);
	t->language = strdup(language ? language : "");
	if (!t->language)
		return -ENOMEM;
	t->duration = duration;
	return 0;
}

void vs_transcript_free(struct vs_transcript *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_segments; i++)
		free(t->segments[i].text);
	for (i = 0; i < t->n_words; i++)
		free(t->words[i].word);
	free(t->segments);
	free(t->words);
	free(t->text);
	free(t->language);
	memset(t, 0, sizeof(*t));
}

void vs_voices_free(struct vs_voice *v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].language);
		free(v[i].gender);
	}
	free(v);
}

int vs_voices_add(struct vs_voice *v, size_t *n, const char *name, const char *lang,
                  const char *gender)
{
	struct vs_voice *x = &v[*n];

	x->name = strdup(name);
	x->language = strdup(lang);
	x->gender = strdup(gender);
	(*n)++; /* counted even if half-built: vs_voices_free handles NULLs */
	return x->name && x->language && x->gender ? 0 : -ENOMEM;
}
