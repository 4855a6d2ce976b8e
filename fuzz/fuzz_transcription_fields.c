/* fuzz_transcription_fields.c - libFuzzer driver for vs_transcription_validate.
 *
 * DESIGN
 * The input is split on '\0' into the multipart text fields the front
 * collects, in struct order: model, language, prompt, response_format,
 * temperature, timestamp_granularities, grammar, grammar_name, keywords,
 * keywords_name, stream. Fields beyond the last piece are
 * absent (NULL); "" is a present-but-empty field. A file is always attached
 * and its size is the input's length, so the empty input covers "empty
 * upload". Validated twice: against the ASR model list the front serves and
 * with no list (any model name). Checks: success means a known format, a
 * temperature in 0..1, a model < 64 bytes, a prompt in UTF-8, a language of
 * tag characters only, words only with verbose_json, stream only from a
 * true field and with json or text; failure means an error body that
 * renders. The prompt's raw bytes also go through the stream events
 * (transcript.text.delta and .done): each must be exactly one `data:` line
 * and a blank line, whatever the text holds. The grammar fields go through
 * vs_transcription_grammar() for an engine with and without the capability: success means at most
 * one chosen, a plain name or a text within the limit; none is accepted by an engine without the
 * capability.
 */
#include "fuzz.h"
#include "api/openai.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define N_FIELDS 11

static const char *const models[] = {"pocketsphinx-en-us", "whisper-1", "pocketsphinx", NULL};

static void validate(const struct vs_transcription_fields *f, const char *const *accepted)
{
	static const char *const formats[] = {"json", "text", "srt", "vtt", "verbose_json", NULL};
	struct vs_transcription_opts o;
	struct vs_oai_err err;
	int rc = vs_transcription_validate(f, accepted, NULL, &o, &err);

	if (rc == 0) {
		int known = 0;
		for (size_t i = 0; formats[i]; i++)
			known |= strcmp(o.response_format, formats[i]) == 0;
		FUZZ_CHECK(known);
		FUZZ_CHECK(o.temperature >= 0.0 && o.temperature <= 1.0);
		FUZZ_CHECK(o.model[0] != '\0' && strlen(o.model) < 64);
		FUZZ_CHECK(!o.prompt || vs_oai_utf8_valid(o.prompt, strlen(o.prompt)));
		FUZZ_CHECK(strspn(o.language, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                              "0123456789-_") == strlen(o.language));
		FUZZ_CHECK(!o.want_words || strcmp(o.response_format, "verbose_json") == 0);
		FUZZ_CHECK(!o.stream || (f->stream && strcasecmp(f->stream, "true") == 0));
		FUZZ_CHECK(!o.stream || strcmp(o.response_format, "json") == 0 ||
		           strcmp(o.response_format, "text") == 0);
		vs_transcription_opts_free(&o);
	} else {
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM);
		FUZZ_CHECK(err.status == 400 || err.status == 500);
		char *body = vs_oai_err_body(&err);
		FUZZ_CHECK(body != NULL);
		free(body);
	}
}

static void grammar(const struct vs_transcription_fields *f, bool supported)
{
	struct vs_grammar_limits lim = {.supported = supported, .engine = "x", .max_bytes = 256};
	struct vs_grammar_req g;
	struct vs_oai_err err;
	int rc = vs_transcription_grammar(f, &lim, &g, &err);

	if (rc == 0) {
		FUZZ_CHECK(supported || g.kind == VS_GRAMMAR_NONE);
		FUZZ_CHECK(g.kind == VS_GRAMMAR_NONE || (!g.text != !g.name));
		FUZZ_CHECK(!g.text || strlen(g.text) <= lim.max_bytes);
		FUZZ_CHECK(!g.name || (!strchr(g.name, '/') && !strchr(g.name, '.')));
	} else {
		FUZZ_CHECK(rc == -EINVAL);
		FUZZ_CHECK(err.status == 400 || err.status == 413);
		char *body = vs_oai_err_body(&err);
		FUZZ_CHECK(body != NULL);
		free(body);
	}
}

/* an event is one data line whatever its text: no line break but the end */
static void event_line(json_t *ev)
{
	size_t len = 0;
	char *line = vs_sse_data(ev, &len);
	json_decref(ev);
	if (!line)
		return; /* out of memory */
	FUZZ_CHECK(len == strlen(line) && len >= 8);
	FUZZ_CHECK(strncmp(line, "data: ", 6) == 0 && strcmp(line + len - 2, "\n\n") == 0);
	FUZZ_CHECK(memchr(line, '\n', len - 2) == NULL && !memchr(line, '\r', len));
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *field[N_FIELDS] = {NULL};
	char *buf = malloc(size + 1); /* the last piece needs a terminator too */
	size_t n = 0, start = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (size > 0) {
		for (size_t i = 0; i <= size && n < N_FIELDS; i++) {
			if (buf[i] == '\0') {
				field[n++] = buf + start;
				start = i + 1;
			}
		}
	}
	struct vs_transcription_fields f = {
	        .model = field[0],
	        .language = field[1],
	        .prompt = field[2],
	        .response_format = field[3],
	        .temperature = field[4],
	        .timestamp_granularities = field[5],
	        .grammar = field[6],
	        .grammar_name = field[7],
	        .keywords = field[8],
	        .keywords_name = field[9],
	        .stream = field[10],
	        .has_file = true,
	        .file_bytes = size,
	};
	validate(&f, models);
	validate(&f, NULL);
	grammar(&f, true);
	grammar(&f, false);
	event_line(vs_oai_transcript_delta(field[2], size % 2));
	event_line(vs_oai_transcript_done(field[2], (double)size));
	free(buf);
	return 0;
}
