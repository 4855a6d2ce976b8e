/* openai_render.c - verbose_json object -> response body in any format.
 *
 * DESIGN
 * The front calls this once per finished transcription with the object the
 * worker sent (openai_transcript.c). It reads only that object, never engine
 * structs, so it works the same after the worker-protocol round trip. Output
 * follows whisper's writers (what OpenAI serves): srt cues "N\nA --> B\ntext\n\n",
 * vtt "WEBVTT\n\n" then "A --> B\ntext\n\n", text is the transcript plus a
 * newline. Cue text must not break the cue grammar, so it is trimmed, put on
 * one line and (vtt) entity-escaped; cues with no text are dropped because
 * an empty payload line would end the cue early in strict parsers.
 */
#include "api/openai.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reals: 15 significant digits round-trip the millisecond-rounded times as
 * written ("1.2", not jansson's default "1.1999999999999999"). */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

void vs_oai_timestamp(double seconds, char sep, char *buf, size_t len)
{
	long long ms = 0;

	if (isfinite(seconds) && seconds > 0) {
		/* clamp far beyond any audio we accept, to keep llround defined */
		if (seconds > 1e12)
			seconds = 1e12;
		ms = llround(seconds * 1000.0);
	}
	long long h = ms / 3600000;
	int m = (int)(ms / 60000 % 60);
	int s = (int)(ms / 1000 % 60);
	int f = (int)(ms % 1000);
	snprintf(buf, len, "%02lld:%02d:%02d%c%03d", h, m, s, sep, f);
}

static const char *str_field(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static bool blank(const char *s)
{
	while (*s && is_space(*s))
		s++;
	return *s == '\0';
}

/* Writes the cue payload: trimmed, whitespace runs containing a line break
 * folded to one space, "-->" never emitted, & < > escaped for vtt. The caller
 * has checked that text is not blank. */
static void write_cue_text(FILE *f, const char *text, bool vtt)
{
	const char *b = text, *e = text + strlen(text);

	while (b < e && is_space(*b))
		b++;
	while (e > b && is_space(e[-1]))
		e--;
	for (const char *p = b; p < e; p++) {
		if (*p == '\r' || *p == '\n') {
			while (p + 1 < e && is_space(p[1]))
				p++;
			fputc(' ', f);
		} else if (vtt && *p == '&') {
			fputs("&amp;", f);
		} else if (vtt && *p == '<') {
			fputs("&lt;", f);
		} else if (vtt && *p == '>') {
			fputs("&gt;", f);
		} else if (!vtt && *p == '-' && strncmp(p, "-->", 3) == 0) {
			fputs("->", f);
			p += 2;
		} else {
			fputc(*p, f);
		}
	}
}

static int render_cues(const json_t *v, bool vtt, char **body)
{
	size_t size = 0;
	FILE *f = open_memstream(body, &size);
	if (!f)
		return -ENOMEM;

	if (vtt)
		fputs("WEBVTT\n\n", f);
	const json_t *segs = json_object_get(v, "segments");
	size_t i, n = 0;
	const json_t *seg;
	json_array_foreach(segs, i, seg)
	{
		char a[32], b[32];
		const char *text = str_field(seg, "text");
		const char sep = vtt ? '.' : ',';

		if (blank(text))
			continue;
		vs_oai_timestamp(json_number_value(json_object_get(seg, "start")), sep, a,
		                 sizeof(a));
		vs_oai_timestamp(json_number_value(json_object_get(seg, "end")), sep, b, sizeof(b));
		if (!vtt)
			fprintf(f, "%zu\n", ++n);
		fprintf(f, "%s --> %s\n", a, b);
		write_cue_text(f, text, vtt);
		fputs("\n\n", f);
	}
	bool failed = ferror(f) != 0;
	if (fclose(f) != 0 || failed) {
		free(*body);
		*body = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int dump(const json_t *j, char **body)
{
	*body = json_dumps(j, DUMP_FLAGS);
	return *body ? 0 : -ENOMEM;
}

static int render_verbose(const json_t *v, bool with_words, char **body)
{
	bool has_words = json_object_get(v, "words") != NULL;

	if (has_words == with_words)
		return dump(v, body);
	/* jansson's API is not const-correct: json_copy only takes references
	 * to the members, v itself is not modified */
	json_t *c = json_copy((json_t *)v);
	if (!c)
		return -ENOMEM;
	int rc = with_words ? json_object_set_new(c, "words", json_array())
	                    : json_object_del(c, "words");
	rc = rc < 0 ? -ENOMEM : dump(c, body);
	json_decref(c);
	return rc;
}

static int render_text_json(const json_t *v, char **body)
{
	json_t *o = json_object();
	if (!o)
		return -ENOMEM;
	int rc = json_object_set_new(o, "text", vs_oai_json_string(str_field(v, "text")));
	rc = rc < 0 ? -ENOMEM : dump(o, body);
	json_decref(o);
	return rc;
}

static int render_text(const json_t *v, char **body)
{
	const char *text = str_field(v, "text");
	size_t len = strlen(text);

	*body = malloc(len + 2);
	if (!*body)
		return -ENOMEM;
	memcpy(*body, text, len);
	(*body)[len] = '\n';
	(*body)[len + 1] = '\0';
	return 0;
}

int vs_transcript_render(const json_t *verbose, const char *response_format, bool with_words,
                         char **body, const char **content_type)
{
	const char *fmt = response_format ? response_format : "json";

	*body = NULL;
	if (!json_is_object(verbose))
		return -EINVAL;
	if (strcmp(fmt, "json") == 0) {
		*content_type = "application/json";
		return render_text_json(verbose, body);
	}
	if (strcmp(fmt, "text") == 0) {
		*content_type = "text/plain; charset=utf-8";
		return render_text(verbose, body);
	}
	if (strcmp(fmt, "srt") == 0) {
		*content_type = "text/plain; charset=utf-8";
		return render_cues(verbose, false, body);
	}
	if (strcmp(fmt, "vtt") == 0) {
		*content_type = "text/vtt; charset=utf-8";
		return render_cues(verbose, true, body);
	}
	if (strcmp(fmt, "verbose_json") == 0) {
		*content_type = "application/json";
		return render_verbose(verbose, with_words, body);
	}
	return -EINVAL;
}
