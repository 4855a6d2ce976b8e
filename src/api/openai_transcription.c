/* openai_transcription.c - validation of POST /v1/audio/transcriptions fields.
 *
 * DESIGN
 * The front collects multipart fields with libmicrohttpd's post processor
 * and hands the raw values here before the upload is decoded or a worker is
 * asked, so malformed requests cost nothing. Values are client bytes (not
 * necessarily UTF-8, not necessarily short), so each one is checked before it
 * is quoted or copied. An empty optional field is treated as absent because
 * `curl -F language=` and HTML forms send empty strings for "not set".
 * Language is checked for shape only; the engine knows what it supports.
 */
#include "api/openai.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const asr_formats[] = {"json", "text", "srt", "vtt", "verbose_json", NULL};

static bool present(const char *s)
{
	return s && *s;
}

static int check_format(const char *s, struct vs_transcription_opts *out, struct vs_oai_err *err)
{
	strcpy(out->response_format, "json");
	if (!present(s))
		return 0;
	for (size_t i = 0; asr_formats[i]; i++) {
		if (strcmp(s, asr_formats[i]) == 0) {
			strcpy(out->response_format, asr_formats[i]);
			return 0;
		}
	}
	vs_oai_err_set(err, 400, "response_format", "invalid_value",
	               "'%.32s' is not a supported response_format. "
	               "Supported: json, text, srt, vtt, verbose_json.",
	               s);
	return -EINVAL;
}

/* A plain decimal number only: strtod alone would also take "nan", "inf" and
 * hex floats. */
static int check_temperature(const char *s, struct vs_transcription_opts *out,
                             struct vs_oai_err *err)
{
	out->temperature = 0.0;
	if (!present(s))
		return 0;
	size_t n = strlen(s);
	bool ok = n <= 32 && strspn(s, "0123456789.eE+-") == n;
	char *end = NULL;
	double d = ok ? strtod(s, &end) : NAN;
	if (!ok || end != s + n || !isfinite(d)) {
		vs_oai_err_set(err, 400, "temperature", "invalid_type",
		               "'temperature' must be a number.");
		return -EINVAL;
	}
	if (d < 0.0 || d > 1.0) {
		vs_oai_err_set(err, 400, "temperature", "invalid_value",
		               "'temperature' must be between 0 and 1.");
		return -EINVAL;
	}
	out->temperature = d;
	return 0;
}

/* Comma-separated items, each "word" or "segment" (surrounding spaces and
 * empty items ignored). */
static int check_granularities(const char *s, struct vs_transcription_opts *out,
                               struct vs_oai_err *err)
{
	out->want_words = false;
	while (present(s)) {
		size_t n = strcspn(s, ",");
		const char *b = s, *e = s + n;
		while (b < e && *b == ' ')
			b++;
		while (e > b && e[-1] == ' ')
			e--;
		size_t l = (size_t)(e - b);
		if (l == 4 && strncmp(b, "word", 4) == 0) {
			out->want_words = true;
		} else if (l == 7 && strncmp(b, "segment", 7) == 0) {
			/* segments are always in verbose_json */
		} else if (l != 0) {
			vs_oai_err_set(err, 400, "timestamp_granularities", "invalid_value",
			               "'%.*s' is not a valid timestamp granularity: "
			               "use 'word' and/or 'segment'.",
			               (int)(l > 32 ? 32 : l), b);
			return -EINVAL;
		}
		s = s[n] ? s + n + 1 : NULL;
	}
	if (out->want_words && strcmp(out->response_format, "verbose_json") != 0) {
		vs_oai_err_set(err, 400, "timestamp_granularities", "invalid_value",
		               "timestamp_granularities 'word' requires "
		               "response_format 'verbose_json'.");
		return -EINVAL;
	}
	return 0;
}

/* ASCII only, whatever the locale says */
static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool alnum_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]) && !(s[i] >= '0' && s[i] <= '9'))
			return false;
	return true;
}

static bool alpha_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]))
			return false;
	return true;
}

/* xx | xxx, then up to two subtags of 2..8 alnum after '-' or '_' */
static bool language_syntax_ok(const char *s)
{
	size_t n = strcspn(s, "-_");
	if (n < 2 || n > 3 || !alpha_run(s, n))
		return false;
	for (int subtags = 0; s[n]; subtags++) {
		if (subtags == 2)
			return false;
		s += n + 1;
		n = strcspn(s, "-_");
		if (n < 2 || n > 8 || !alnum_run(s, n))
			return false;
	}
	return true;
}

static int check_language(const char *s, struct vs_transcription_opts *out, struct vs_oai_err *err)
{
	out->language[0] = '\0';
	if (!present(s))
		return 0;
	if (strlen(s) >= sizeof(out->language) || !language_syntax_ok(s)) {
		vs_oai_err_set(err, 400, "language", "invalid_value",
		               "'language' must be an ISO-639-1 code such as 'en' (got '%.16s').",
		               s);
		return -EINVAL;
	}
	strcpy(out->language, s);
	for (char *p = out->language; *p && *p != '-' && *p != '_'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

static int check_prompt(const char *s, struct vs_transcription_opts *out, struct vs_oai_err *err)
{
	out->prompt = NULL;
	if (!present(s))
		return 0;
	size_t bytes = strlen(s);
	if (!vs_oai_utf8_valid(s, bytes)) {
		vs_oai_err_set(err, 400, "prompt", "invalid_value", "'prompt' must be UTF-8 text.");
		return -EINVAL;
	}
	size_t chars = vs_oai_utf8_chars(s, bytes);
	if (chars > VS_TRANSCRIPTION_MAX_PROMPT_CHARS) {
		vs_oai_err_set(
		        err, 400, "prompt", "string_above_max_length",
		        "'prompt' is too long: %zu characters, the maximum is %d characters.",
		        chars, VS_TRANSCRIPTION_MAX_PROMPT_CHARS);
		return -EINVAL;
	}
	out->prompt = strdup(s);
	if (!out->prompt) {
		vs_oai_err_set(err, 500, NULL, NULL, "Out of memory.");
		return -ENOMEM;
	}
	return 0;
}

/* stream: true or false in any case (multipart carries text; the SDKs send
 * "true"/"false"). Events carry only text, so a format that would say more
 * (srt, vtt, verbose_json) is refused instead of being dropped. */
static int check_stream(const char *s, struct vs_transcription_opts *out, struct vs_oai_err *err)
{
	out->stream = false;
	if (!present(s))
		return 0;
	if (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0) {
		vs_oai_err_set(err, 400, "stream", "invalid_value",
		               "'stream' must be true or false (got '%.16s').", s);
		return -EINVAL;
	}
	out->stream = strcasecmp(s, "true") == 0;
	if (out->stream && strcmp(out->response_format, "json") != 0 &&
	    strcmp(out->response_format, "text") != 0) {
		vs_oai_err_set(
		        err, 400, "response_format", "invalid_value",
		        "stream=true answers transcript.text events: response_format must be "
		        "json or text (got '%s').",
		        out->response_format);
		return -EINVAL;
	}
	return 0;
}

int vs_transcription_validate(const struct vs_transcription_fields *f,
                              const char *const *accepted_models, const char *models_hint,
                              struct vs_transcription_opts *out, struct vs_oai_err *err)
{
	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	if (!f->has_file) {
		vs_oai_err_set(err, 400, "file", "missing_required_parameter",
		               "You must provide the 'file' parameter (the audio file).");
		return -EINVAL;
	}
	if (f->file_bytes == 0) {
		vs_oai_err_set(err, 400, "file", "invalid_value", "The uploaded file is empty.");
		return -EINVAL;
	}
	if (!present(f->model)) {
		vs_oai_err_set(err, 400, "model", "missing_required_parameter",
		               "You must provide the 'model' parameter.");
		return -EINVAL;
	}
	if (!vs_oai_check_model(f->model, accepted_models, models_hint, err))
		return -EINVAL;
	strcpy(out->model, f->model); /* check_model guarantees < 64 bytes */

	int rc = check_format(f->response_format, out, err);
	if (rc == 0)
		rc = check_temperature(f->temperature, out, err);
	if (rc == 0)
		rc = check_granularities(f->timestamp_granularities, out, err);
	if (rc == 0)
		rc = check_language(f->language, out, err);
	if (rc == 0)
		rc = check_prompt(f->prompt, out, err);
	if (rc == 0)
		rc = check_stream(f->stream, out, err);
	if (rc < 0)
		vs_transcription_opts_free(out);
	return rc;
}

void vs_transcription_opts_free(struct vs_transcription_opts *o)
{
	if (!o)
		return;
	free(o->prompt);
	o->prompt = NULL;
}
