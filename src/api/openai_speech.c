/* openai_speech.c - validation of a POST /v1/audio/speech JSON body.
 *
 * DESIGN
 * The front calls vs_speech_parse() on the complete (size-capped) body before
 * it asks for a TTS slot, so a bad request never occupies a worker. Parsing is
 * strict (duplicate keys rejected, no trailing garbage) and every failure names
 * the offending field in "param", like OpenAI does, so SDK users see which
 * argument to fix. Lengths are counted in characters (code points), as
 * OpenAI documents its 4096 limit. Whether the voice exists is not known here:
 * the engine owns its voice list and the worker reports an unknown voice.
 * Control characters in "input" are replaced by spaces (controls_to_spaces).
 */
#include "api/openai.h"
#include "media/media.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Looks up key. Returns 1 with *val set if present (JSON null counts as
 * absent for optional fields: the value then is the default), 0 if absent
 * and optional, -EINVAL with *err filled if absent but required. */
static int field(const json_t *root, const char *key, bool required, const json_t **val,
                 struct vs_oai_err *err)
{
	*val = json_object_get(root, key);
	if (*val && !json_is_null(*val))
		return 1;
	if (!required)
		return 0;
	vs_oai_err_set(err, 400, key, "missing_required_parameter",
	               "You must provide the '%s' parameter.", key);
	return -EINVAL;
}

/* Optional string field: 1 with *val set, 0 if absent or null, -EINVAL (400
 * invalid_type) if it is not a string. */
static int opt_string(const json_t *root, const char *key, const json_t **val,
                      struct vs_oai_err *err)
{
	int rc = field(root, key, false, val, err);
	if (rc == 1 && !json_is_string(*val)) {
		vs_oai_err_set(err, 400, key, "invalid_type", "'%s' must be a string.", key);
		return -EINVAL;
	}
	return rc;
}

/* Required string field -> its value, or NULL with *err filled. */
static const char *req_string(const json_t *root, const char *key, struct vs_oai_err *err)
{
	const json_t *v;

	if (field(root, key, true, &v, err) < 0)
		return NULL;
	if (!json_is_string(v)) {
		vs_oai_err_set(err, 400, key, "invalid_type", "'%s' must be a string.", key);
		return NULL;
	}
	return json_string_value(v);
}

/* espeak-ng reads U+0001 followed by a number and a letter as an embedded
 * command ("\x01" "750S": 750 wpm, "\x01" "300A": volume), so no C0 control
 * character may reach it. They become a space rather than a 400: OpenAI
 * accepts them, text pasted from documents carries form feeds and vertical
 * tabs, and a space keeps the words on either side apart. Tab, newline and
 * carriage return are ordinary whitespace and stay; DEL goes too. Bytes >=
 * 0x80 are never control characters here (UTF-8 lead/continuation bytes). */
static void controls_to_spaces(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
			s[i] = ' ';
	}
}

static int parse_input(const json_t *root, size_t max, struct vs_speech_req *out,
                       struct vs_oai_err *err)
{
	const char *s = req_string(root, "input", err);
	if (!s)
		return -EINVAL;
	/* jansson guarantees valid UTF-8 without NUL bytes unless JSON_ALLOW_NUL */
	size_t bytes = json_string_length(json_object_get(root, "input"));
	size_t chars = vs_oai_utf8_chars(s, bytes);
	if (chars == 0) {
		vs_oai_err_set(err, 400, "input", "invalid_value", "'input' must not be empty.");
		return -EINVAL;
	}
	if (chars > max) {
		vs_oai_err_set(
		        err, 400, "input", "string_above_max_length",
		        "'input' is too long: %zu characters, the maximum is %zu characters.",
		        chars, max);
		return -EINVAL;
	}
	out->input = malloc(bytes + 1);
	if (!out->input) {
		vs_oai_err_set(err, 500, NULL, NULL, "Out of memory.");
		return -ENOMEM;
	}
	memcpy(out->input, s, bytes + 1);
	controls_to_spaces(out->input, bytes);
	return 0;
}

static int parse_voice(const json_t *root, struct vs_speech_req *out, struct vs_oai_err *err)
{
	const char *s = req_string(root, "voice", err);
	if (!s)
		return -EINVAL;
	size_t bytes = strlen(s);
	size_t chars = vs_oai_utf8_chars(s, bytes);
	/* 64 code points are at most 256 bytes: always fits out->voice */
	if (chars == 0 || chars > VS_SPEECH_MAX_VOICE_CHARS || bytes >= sizeof(out->voice)) {
		vs_oai_err_set(err, 400, "voice", "invalid_value",
		               "'voice' must be 1 to %d characters long.",
		               VS_SPEECH_MAX_VOICE_CHARS);
		return -EINVAL;
	}
	memcpy(out->voice, s, bytes + 1);
	return 0;
}

static int parse_format(const json_t *root, struct vs_speech_req *out, struct vs_oai_err *err)
{
	const json_t *v;
	int rc = opt_string(root, "response_format", &v, err);

	strcpy(out->response_format, "mp3");
	if (rc <= 0)
		return rc;
	const char *s = json_string_value(v);
	/* the formats are media's table (the encoder's), the one list of them */
	if (vs_format_valid(s) && strlen(s) < sizeof(out->response_format)) {
		strcpy(out->response_format, s);
		return 0;
	}
	char names[64] = "";
	for (size_t i = 0, w = 0; vs_format_name(i) && w < sizeof(names); i++)
		w += (size_t)snprintf(names + w, sizeof(names) - w, "%s%s", i ? ", " : "",
		                      vs_format_name(i));
	vs_oai_err_set(err, 400, "response_format", "invalid_value",
	               "'%.32s' is not a supported response_format. Supported: %s.", s, names);
	return -EINVAL;
}

static int parse_speed(const json_t *root, struct vs_speech_req *out, struct vs_oai_err *err)
{
	const json_t *v;

	out->speed = 1.0;
	if (field(root, "speed", false, &v, err) == 0)
		return 0;
	if (!json_is_number(v)) {
		vs_oai_err_set(err, 400, "speed", "invalid_type", "'speed' must be a number.");
		return -EINVAL;
	}
	double d = json_number_value(v);
	if (!(d >= 0.25 && d <= 4.0)) {
		vs_oai_err_set(err, 400, "speed", "invalid_value",
		               "'speed' must be between 0.25 and 4.0, got %g.", d);
		return -EINVAL;
	}
	out->speed = d;
	return 0;
}

/* stream_format: "audio" (the default: the encoded bytes as they come) or
 * "sse" (speech.audio.delta events); anything else is refused rather than
 * answered in a shape the client did not ask for */
static int parse_stream_format(const json_t *root, struct vs_speech_req *out,
                               struct vs_oai_err *err)
{
	const json_t *v;
	int rc = opt_string(root, "stream_format", &v, err);

	out->sse = false;
	if (rc <= 0)
		return rc;
	const char *s = json_string_value(v);
	if (strcmp(s, "sse") == 0 || strcmp(s, "audio") == 0) {
		out->sse = s[0] == 's';
		return 0;
	}
	vs_oai_err_set(err, 400, "stream_format", "invalid_value",
	               "'%.32s' is not a supported stream_format. Supported: audio, sse.", s);
	return -EINVAL;
}

/* instructions: accepted so that clients written for gpt-4o-mini-tts work,
 * but no engine here has style control, so it is checked and not used
 * (docs/API.md says so); bounded like the input */
static int check_instructions(const json_t *root, size_t max, struct vs_oai_err *err)
{
	const json_t *v;
	int rc = opt_string(root, "instructions", &v, err);

	if (rc <= 0)
		return rc;
	size_t chars = vs_oai_utf8_chars(json_string_value(v), json_string_length(v));
	if (chars > max) {
		vs_oai_err_set(err, 400, "instructions", "string_above_max_length",
		               "'instructions' is too long: %zu characters, the maximum is %zu "
		               "characters.",
		               chars, max);
		return -EINVAL;
	}
	return 0;
}

static int parse_fields(const json_t *root, const struct vs_speech_limits *lim,
                        struct vs_speech_req *out, struct vs_oai_err *err)
{
	const char *model = req_string(root, "model", err);
	if (!model)
		return -EINVAL;
	if (!vs_oai_check_model(model, lim->accepted_models, lim->models_hint, err))
		return -EINVAL;
	strcpy(out->model, model); /* check_model guarantees < 64 bytes */

	size_t max = lim->max_input_chars ? lim->max_input_chars : VS_SPEECH_MAX_INPUT_DEFAULT;
	int rc = parse_input(root, max, out, err);
	if (rc == 0)
		rc = parse_voice(root, out, err);
	if (rc == 0)
		rc = parse_format(root, out, err);
	if (rc == 0)
		rc = parse_speed(root, out, err);
	if (rc == 0)
		rc = parse_stream_format(root, out, err);
	if (rc == 0)
		rc = check_instructions(root, max, err);
	return rc;
}

int vs_speech_parse(const char *body, size_t len, const struct vs_speech_limits *lim,
                    struct vs_speech_req *out, struct vs_oai_err *err)
{
	static const struct vs_speech_limits defaults = {0};
	json_error_t jerr;

	if (!lim)
		lim = &defaults;
	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	json_t *root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		vs_oai_err_set(err, 400, NULL, "invalid_json",
		               "We could not parse the JSON body of your request: %s "
		               "(line %d, column %d).",
		               jerr.text, jerr.line, jerr.column);
		return -EINVAL;
	}
	int rc;
	if (!json_is_object(root)) {
		vs_oai_err_set(err, 400, NULL, "invalid_type",
		               "The request body must be a JSON object.");
		rc = -EINVAL;
	} else {
		rc = parse_fields(root, lim, out, err);
	}
	json_decref(root);
	if (rc < 0)
		vs_speech_req_free(out);
	return rc;
}

void vs_speech_req_free(struct vs_speech_req *r)
{
	if (!r)
		return;
	free(r->input);
	r->input = NULL;
}
