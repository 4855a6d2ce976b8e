/* openai_stream.c - the events of OpenAI's streamed audio answers.
 *
 * DESIGN
 * The front turns worker frames into these events as they arrive (a decoded
 * utterance, a block of encoded audio) and hands them to the client as
 * server-sent events. The shapes are OpenAI's (CreateTranscriptionResponse-
 * StreamEvent, CreateSpeechResponseStreamEvent in its OpenAPI document);
 * each event is one `data:` line, never `event:` lines, because the
 * official SDKs read the type from the JSON and treat a named event as
 * something else. Pure functions, so unit tests check them byte for byte.
 */
#include "api/openai.h"

#include <stdlib.h>
#include <string.h>

json_t *vs_oai_transcript_delta(const char *delta, bool leading_space)
{
	size_t n = strlen(delta ? delta : "");
	char *s = malloc(n + 2);
	if (!s)
		return NULL;
	/* the done text joins utterances with one space: the deltas joined
	 * must give the same string */
	s[0] = ' ';
	memcpy(s + (leading_space ? 1 : 0), delta ? delta : "", n + 1);
	json_t *j = json_pack("{s:s, s:o}", "type", "transcript.text.delta", "delta",
	                      vs_oai_json_string(s));
	free(s);
	return j;
}

json_t *vs_oai_transcript_done(const char *text, double seconds)
{
	return json_pack("{s:s, s:o, s:{s:s, s:f}}", "type", "transcript.text.done", "text",
	                 vs_oai_json_string(text), "usage", "type", "duration", "seconds", seconds);
}

json_t *vs_oai_speech_delta(const char *audio_base64)
{
	return json_pack("{s:s, s:s}", "type", "speech.audio.delta", "audio",
	                 audio_base64 ? audio_base64 : "");
}

json_t *vs_oai_speech_done(void)
{
	return json_pack("{s:s, s:{s:i, s:i, s:i}}", "type", "speech.audio.done", "usage",
	                 "input_tokens", 0, "output_tokens", 0, "total_tokens", 0);
}

char *vs_sse_data(const json_t *ev, size_t *len)
{
	/* compact JSON escapes every line break, so the event is one line */
	char *j = ev ? json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	if (!j)
		return NULL;
	size_t n = strlen(j);
	char *out = malloc(n + 9);
	if (out) {
		memcpy(out, "data: ", 6);
		memcpy(out + 6, j, n);
		memcpy(out + 6 + n, "\n\n", 3);
		*len = n + 8;
	}
	free(j);
	return out;
}
