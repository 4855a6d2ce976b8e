/* fuzz_realtime_event.c - libFuzzer driver for vs_rt_parse (src/api/realtime.h),
 * the client-event parser of realtime transcription sessions.
 *
 * DESIGN
 * The input is one WebSocket text message as a client sends it. Parsed
 * against the default session and the ASR model list the front accepts.
 * Beyond "no crash, no leak" it checks what the session relies on: an
 * append yields whole pcm16 samples (even length) no larger than the base64
 * could carry; an update yields a model from the list (or none), in-range
 * turn detection and a session object that renders; a failure yields a 400
 * whose error event renders (jansson refuses invalid UTF-8, so whatever
 * quotes the client was sanitized) and an event_id of valid UTF-8.
 */
#include "fuzz.h"
#include "api/realtime.h"

#include <errno.h>
#include <string.h>

static const char *const models[] = {"pocketsphinx", "whisper-1", "gpt-4o-transcribe", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct vs_rt_limits lim = {.models = models};
	struct vs_rt_session_cfg cur;
	struct vs_rt_event ev;
	struct vs_oai_err err;

	vs_rt_session_defaults(&cur);
	int rc = vs_rt_parse((const char *)data, size, &cur, &lim, &ev, &err);
	FUZZ_CHECK(vs_oai_utf8_valid(ev.event_id, strlen(ev.event_id)));
	if (rc == 0) {
		if (ev.kind == VS_RT_APPEND) {
			FUZZ_CHECK(ev.audio_len % 2 == 0);
			FUZZ_CHECK(ev.audio_len <= size);
		}
		if (ev.kind == VS_RT_SESSION_UPDATE || ev.kind == VS_RT_TRANSCRIPTION_UPDATE) {
			const struct vs_rt_vad *v = &ev.cfg.vad;
			FUZZ_CHECK(!ev.cfg.model[0] || fuzz_in_list(ev.cfg.model, models));
			FUZZ_CHECK(v->threshold >= 0 && v->threshold <= 1);
			FUZZ_CHECK(v->prefix_padding_ms >= 0 &&
			           v->prefix_padding_ms <= VS_RT_PREFIX_MAX_MS);
			FUZZ_CHECK(v->silence_duration_ms >= VS_RT_SILENCE_MIN_MS &&
			           v->silence_duration_ms <= VS_RT_SILENCE_MAX_MS);
			json_t *s = vs_rt_session_json(&ev.cfg, "sess_x", "pocketsphinx",
			                               ev.kind == VS_RT_TRANSCRIPTION_UPDATE);
			FUZZ_CHECK(s != NULL);
			json_decref(s);
		}
		vs_rt_event_free(&ev);
	} else {
		FUZZ_CHECK(rc == -EINVAL);
		FUZZ_CHECK(err.status == 400 || err.status == 500);
		FUZZ_CHECK(err.message[0] != '\0');
		FUZZ_CHECK(ev.audio == NULL);
		json_t *e = vs_rt_error_event("event_1", &err, ev.event_id);
		FUZZ_CHECK(e != NULL);
		char *text = json_dumps(e, JSON_COMPACT);
		FUZZ_CHECK(text != NULL);
		free(text);
		json_decref(e);
	}
	return 0;
}
