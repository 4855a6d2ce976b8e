/* fuzz_speech_json.c - libFuzzer driver for vs_speech_parse (src/api/openai.h).
 *
 * DESIGN
 * The input is a POST /v1/audio/speech body as a client sends it. Parsed with
 * the default limits and the TTS model list the front accepts. Beyond "no
 * crash, no leak" it checks what the front relies on: a success yields a
 * model from the list, valid UTF-8 input within the character limit, a known
 * format and a speed in range, and streams as events only when the body's
 * stream_format is "sse"; a failure yields a 400/500 whose OpenAI error
 * body can always be rendered (jansson refuses invalid UTF-8, so a message
 * quoting client bytes must have been sanitized).
 */
#include "fuzz.h"
#include "api/openai.h"

#include <errno.h>
#include <string.h>

static const char *const models[] = {"tts-1", "tts-1-hd", "espeak-ng", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const formats[] = {"mp3", "opus", "aac", "flac", "wav", "pcm", NULL};
	const struct vs_speech_limits lim = {.accepted_models = models};
	struct vs_speech_req req;
	struct vs_oai_err err;

	int rc = vs_speech_parse((const char *)data, size, &lim, &req, &err);
	if (rc == 0) {
		size_t n = strlen(req.input);
		FUZZ_CHECK(fuzz_in_list(req.model, models));
		FUZZ_CHECK(vs_oai_utf8_valid(req.input, n));
		FUZZ_CHECK(vs_oai_utf8_chars(req.input, n) <= VS_SPEECH_MAX_INPUT_DEFAULT);
		FUZZ_CHECK(vs_oai_utf8_valid(req.voice, strlen(req.voice)));
		FUZZ_CHECK(fuzz_in_list(req.response_format, formats));
		FUZZ_CHECK(req.speed >= 0.25 && req.speed <= 4.0);
		json_t *root = json_loadb((const char *)data, size, 0, NULL);
		const char *sf = json_string_value(json_object_get(root, "stream_format"));
		FUZZ_CHECK(req.sse == (sf && strcmp(sf, "sse") == 0));
		json_decref(root);
		vs_speech_req_free(&req);
	} else {
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM);
		FUZZ_CHECK(err.status == (rc == -EINVAL ? 400 : 500));
		FUZZ_CHECK(err.message[0] != '\0');
		char *body = vs_oai_err_body(&err);
		FUZZ_CHECK(body != NULL);
		free(body);
	}
	return 0;
}
