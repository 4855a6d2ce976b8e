/* fuzz_transcript_render.c - libFuzzer driver for vs_transcript_render.
 *
 * DESIGN
 * The input is the JSON the front receives from an ASR worker (the
 * verbose_json object, after the worker-protocol round trip). A compromised
 * or buggy worker controls it entirely, so the front must render any object
 * in every response_format, with and without words, without crashing. Checks:
 * a non-object or unknown format is -EINVAL; a success has a body and a
 * content type, and the JSON formats render as parseable JSON.
 */
#include "fuzz.h"
#include "api/openai.h"

#include <errno.h>
#include <string.h>

static void render(const json_t *v, const char *format, bool words)
{
	char *body = NULL;
	const char *ctype = NULL;
	int rc = vs_transcript_render(v, format, words, &body, &ctype);

	if (!json_is_object(v)) {
		FUZZ_CHECK(rc == -EINVAL);
		free(body);
		return;
	}
	FUZZ_CHECK(rc == 0 || rc == -ENOMEM);
	if (rc < 0)
		return;
	FUZZ_CHECK(body != NULL && ctype != NULL);
	if (strcmp(format, "json") == 0 || strcmp(format, "verbose_json") == 0) {
		json_t *back = json_loads(body, 0, NULL);
		FUZZ_CHECK(json_is_object(back));
		json_decref(back);
	}
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const formats[] = {"json", "text", "srt", "vtt", "verbose_json", NULL};
	json_t *v = json_loadb((const char *)data, size, 0, NULL);

	if (!v)
		return 0;
	for (size_t i = 0; formats[i]; i++) {
		render(v, formats[i], false);
		render(v, formats[i], true);
	}
	if (json_is_object(v)) {
		char *body = NULL;
		const char *ctype = NULL;
		FUZZ_CHECK(vs_transcript_render(v, "xml", false, &body, &ctype) == -EINVAL);
		free(body);
	}
	json_decref(v);
	return 0;
}
