/* realtime.h - OpenAI's realtime transcription session on the wire: the
 * client events it takes, the session object and the error event it sends.
 *
 * DESIGN
 * Pure functions, no WebSocket and no HTTP knowledge (src/http/realtime*.c
 * runs the session): one client message (a WebSocket text message) in, a
 * parsed event or an OpenAI-style error out. A transcription session
 * (GET /v1/realtime?intent=transcription) takes:
 *   session.update                 {session: {type: "transcription",
 *                                   audio: {input: {format, transcription,
 *                                   turn_detection, noise_reduction}}}} (GA)
 *   transcription_session.update   {session: {input_audio_format,
 *                                   input_audio_transcription, turn_detection,
 *                                   input_audio_noise_reduction}}     (beta)
 *   input_audio_buffer.append      {audio: base64 pcm16, 24 kHz, mono, LE}
 *   input_audio_buffer.commit, input_audio_buffer.clear
 * Only the fields present in an update change the session (a turn_detection
 * object replaces the whole VAD setting, null turns it off), as OpenAI does.
 * What the server cannot do is refused by name (other audio formats, a
 * "realtime" conversation session, semantic_vad), never silently ignored;
 * noise_reduction and include are accepted and not applied (the session
 * object then shows noise_reduction null). Model, language and prompt are
 * checked by the same code as the HTTP endpoint's form fields. Base64 is
 * decoded with nettle. Every client string is bounded before it is copied.
 */
#ifndef VS_API_REALTIME_H
#define VS_API_REALTIME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/openai.h"

/* the only input format: pcm16 (s16le), 24 kHz, mono */
#define VS_RT_RATE 24000
#define VS_RT_EVENT_ID_MAX 64
/* turn detection bounds (OpenAI documents no bounds; these keep a turn and
 * its padding within what a buffer may hold) */
#define VS_RT_PREFIX_MAX_MS 5000
#define VS_RT_SILENCE_MIN_MS 100
#define VS_RT_SILENCE_MAX_MS 10000

enum vs_rt_kind {
	VS_RT_SESSION_UPDATE,       /* session.update (GA shape) */
	VS_RT_TRANSCRIPTION_UPDATE, /* transcription_session.update (beta shape) */
	VS_RT_APPEND,
	VS_RT_COMMIT,
	VS_RT_CLEAR,
};

struct vs_rt_vad {
	bool on; /* false: turn_detection null, the client commits */
	double threshold;
	int prefix_padding_ms, silence_duration_ms;
};

struct vs_rt_session_cfg {
	char model[64];    /* "" = the service's default model */
	char language[16]; /* "" = the engine's default */
	char prompt[VS_TRANSCRIPTION_MAX_PROMPT_CHARS * 4 + 1];
	struct vs_rt_vad vad;
};

struct vs_rt_limits {
	const char *const *models; /* accepted model names, NULL-terminated; NULL = any */
	const char *models_hint;   /* for the refusal; NULL = the list */
};

struct vs_rt_event {
	enum vs_rt_kind kind;
	char event_id[VS_RT_EVENT_ID_MAX + 1]; /* the client's, "" = none */
	uint8_t *audio;                        /* APPEND: decoded pcm16 bytes (malloc'd) */
	size_t audio_len;
	struct vs_rt_session_cfg cfg; /* updates: the session's config with the update applied */
};

/* The default session: server VAD on (threshold 0.5, 300 ms prefix padding,
 * 500 ms of silence ends a turn), default model and language, no prompt. */
void vs_rt_session_defaults(struct vs_rt_session_cfg *c);

/* Parses one client message. 0 with *ev filled (free with vs_rt_event_free),
 * or -EINVAL with *err filled (status 400; code, param, message) and
 * ev->event_id set when the message had one. cur: the session's config,
 * which an update starts from. */
int vs_rt_parse(const char *msg, size_t len, const struct vs_rt_session_cfg *cur,
                const struct vs_rt_limits *lim, struct vs_rt_event *ev, struct vs_oai_err *err);
void vs_rt_event_free(struct vs_rt_event *ev); /* accepts an event never filled (zeroed) */

/* The session object of session.created / session.updated (GA), or of
 * transcription_session.updated (beta). model: the name the session uses. */
json_t *vs_rt_session_json(const struct vs_rt_session_cfg *c, const char *id, const char *model,
                           bool beta);

/* {"type":"error","event_id":server_event_id,"error":{type, code, message,
 * param, event_id: the client's or null}} */
json_t *vs_rt_error_event(const char *server_event_id, const struct vs_oai_err *e,
                          const char *client_event_id);

#endif
