/* openai_realtime.c - client events of a realtime transcription session,
 * and the session object and error event sent back (api/realtime.h).
 *
 * DESIGN
 * One message in, one event out: JSON is parsed with jansson, the audio of
 * an append decoded with nettle's base64 (the front links nettle already);
 * nothing here keeps state between messages but the session config the
 * caller passes in. Errors mirror OpenAI's realtime error event: a code
 * (invalid_json, invalid_event, unknown_event, invalid_type, invalid_value,
 * invalid_base64, invalid_audio, unsupported_*), the param as a dotted path
 * into the event, and the client's event_id echoed. Model, language and
 * prompt go through vs_transcription_validate(), the HTTP endpoint's own
 * checks, so both ways in accept the same values.
 */
#include "api/realtime.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/base64.h>

void vs_rt_session_defaults(struct vs_rt_session_cfg *c)
{
	memset(c, 0, sizeof(*c));
	/* OpenAI's server_vad defaults */
	c->vad = (struct vs_rt_vad){
	        .on = true, .threshold = 0.5, .prefix_padding_ms = 300, .silence_duration_ms = 500};
}

void vs_rt_event_free(struct vs_rt_event *ev)
{
	free(ev->audio);
	ev->audio = NULL;
	ev->audio_len = 0;
}

/* ---- small checks ---- */

static int bad(struct vs_oai_err *err, const char *param, const char *code, const char *msg)
{
	vs_oai_err_set(err, 400, param, code, "%s", msg);
	return -EINVAL;
}

/* an optional object member: NULL (absent or JSON null, *is_null says
 * which) or an object; anything else is an invalid_type error */
static int opt_object(json_t *parent, const char *key, const char *param, json_t **out,
                      bool *is_null, struct vs_oai_err *err)
{
	json_t *v = json_object_get(parent, key);
	*out = NULL;
	if (is_null)
		*is_null = v && json_is_null(v);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v)) {
		vs_oai_err_set(err, 400, param, "invalid_type", "'%s' must be an object.", param);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* an optional string member: NULL when absent or null */
static int opt_string(json_t *parent, const char *key, const char *param, const char **out,
                      struct vs_oai_err *err)
{
	json_t *v = json_object_get(parent, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		vs_oai_err_set(err, 400, param, "invalid_type", "'%s' must be a string.", param);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

/* an optional number member within [lo, hi], kept in *out when absent */
static int opt_number(json_t *parent, const char *key, const char *param, double lo, double hi,
                      double *out, struct vs_oai_err *err)
{
	json_t *v = json_object_get(parent, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v)) {
		vs_oai_err_set(err, 400, param, "invalid_type", "'%s' must be a number.", param);
		return -EINVAL;
	}
	double d = json_number_value(v);
	if (!isfinite(d) || d < lo || d > hi) {
		vs_oai_err_set(err, 400, param, "invalid_value", "'%s' must be between %g and %g.",
		               param, lo, hi);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

/* ---- session updates ---- */

static int apply_vad(json_t *td, bool td_null, const char *param, struct vs_rt_vad *vad,
                     struct vs_oai_err *err)
{
	char p[96];
	if (td_null) {
		vad->on = false;
		return 0;
	}
	if (!td)
		return 0;
	const char *type = NULL;
	snprintf(p, sizeof(p), "%s.type", param);
	if (opt_string(td, "type", p, &type, err) < 0)
		return -EINVAL;
	if (type && strcmp(type, "server_vad") != 0) {
		vs_oai_err_set(err, 400, p, "unsupported_turn_detection",
		               "Turn detection '%.32s' is not supported; use 'server_vad' or null.",
		               type);
		return -EINVAL;
	}
	/* an object replaces the whole setting: what it leaves out is default */
	struct vs_rt_session_cfg d;
	vs_rt_session_defaults(&d);
	struct vs_rt_vad v = d.vad;
	double prefix = v.prefix_padding_ms, silence = v.silence_duration_ms;
	snprintf(p, sizeof(p), "%s.threshold", param);
	if (opt_number(td, "threshold", p, 0, 1, &v.threshold, err) < 0)
		return -EINVAL;
	snprintf(p, sizeof(p), "%s.prefix_padding_ms", param);
	if (opt_number(td, "prefix_padding_ms", p, 0, VS_RT_PREFIX_MAX_MS, &prefix, err) < 0)
		return -EINVAL;
	snprintf(p, sizeof(p), "%s.silence_duration_ms", param);
	if (opt_number(td, "silence_duration_ms", p, VS_RT_SILENCE_MIN_MS, VS_RT_SILENCE_MAX_MS,
	               &silence, err) < 0)
		return -EINVAL;
	v.prefix_padding_ms = (int)prefix;
	v.silence_duration_ms = (int)silence;
	*vad = v;
	return 0;
}

/* transcription {model, language, prompt}: checked by the HTTP endpoint's
 * own validation (which needs a model: the current one stands in when the
 * update names none) */
static int apply_transcription(json_t *tr, const char *param, const struct vs_rt_limits *lim,
                               struct vs_rt_session_cfg *c, struct vs_oai_err *err)
{
	const char *model = NULL, *lang = NULL, *prompt = NULL;
	char p[96];
	if (!tr)
		return 0;
	snprintf(p, sizeof(p), "%s.model", param);
	if (opt_string(tr, "model", p, &model, err) < 0)
		return -EINVAL;
	snprintf(p, sizeof(p), "%s.language", param);
	if (opt_string(tr, "language", p, &lang, err) < 0)
		return -EINVAL;
	snprintf(p, sizeof(p), "%s.prompt", param);
	if (opt_string(tr, "prompt", p, &prompt, err) < 0)
		return -EINVAL;
	const char *stand_in = c->model[0]                            ? c->model
	                       : lim && lim->models && lim->models[0] ? lim->models[0]
	                                                              : "default";
	struct vs_transcription_fields f = {
	        .model = model && *model ? model : stand_in,
	        .language = lang,
	        .prompt = prompt,
	        .has_file = true,
	        .file_bytes = 1,
	};
	struct vs_transcription_opts o = {0};
	if (vs_transcription_validate(&f, lim ? lim->models : NULL, lim ? lim->models_hint : NULL,
	                              &o, err) < 0) {
		/* the form field's name, as a path into this event */
		char path[160];
		int k = snprintf(path, sizeof(path), "%s.%s", param, err->param);
		if (k > 0 && (size_t)k < sizeof(err->param))
			memcpy(err->param, path, (size_t)k + 1);
		return -EINVAL;
	}
	if (model && *model)
		snprintf(c->model, sizeof(c->model), "%s", o.model);
	if (lang)
		snprintf(c->language, sizeof(c->language), "%s", o.language);
	if (prompt)
		snprintf(c->prompt, sizeof(c->prompt), "%s", o.prompt ? o.prompt : "");
	vs_transcription_opts_free(&o);
	return 0;
}

static int check_format(json_t *fmt, struct vs_oai_err *err)
{
	const char *type = NULL;
	double rate = VS_RT_RATE;
	if (!fmt)
		return 0;
	if (opt_string(fmt, "type", "session.audio.input.format.type", &type, err) < 0 ||
	    opt_number(fmt, "rate", "session.audio.input.format.rate", 0, 1e9, &rate, err) < 0)
		return -EINVAL;
	if ((type && strcmp(type, "audio/pcm") != 0) || rate != VS_RT_RATE)
		return bad(err,
		           type && strcmp(type, "audio/pcm") ? "session.audio.input.format.type"
		                                             : "session.audio.input.format.rate",
		           "unsupported_audio_format",
		           "Only audio/pcm at 24000 Hz (pcm16, mono, little-endian) is supported.");
	return 0;
}

/* session.update: {session: {type, audio: {input: {format, transcription,
 * turn_detection, noise_reduction}}, include}} */
static int parse_ga_update(json_t *s, const struct vs_rt_limits *lim, struct vs_rt_session_cfg *c,
                           struct vs_oai_err *err)
{
	const char *type = NULL;
	json_t *audio, *input, *fmt, *tr, *td;
	bool td_null = false;
	if (opt_string(s, "type", "session.type", &type, err) < 0)
		return -EINVAL;
	if (type && strcmp(type, "transcription") != 0)
		return bad(err, "session.type", "unsupported_session_type",
		           "This server runs transcription sessions only: session.type must be "
		           "'transcription'.");
	if (opt_object(s, "audio", "session.audio", &audio, NULL, err) < 0)
		return -EINVAL;
	if (!audio)
		return 0;
	if (opt_object(audio, "input", "session.audio.input", &input, NULL, err) < 0)
		return -EINVAL;
	if (!input)
		return 0;
	if (opt_object(input, "format", "session.audio.input.format", &fmt, NULL, err) < 0 ||
	    check_format(fmt, err) < 0 ||
	    opt_object(input, "transcription", "session.audio.input.transcription", &tr, NULL,
	               err) < 0 ||
	    apply_transcription(tr, "session.audio.input.transcription", lim, c, err) < 0 ||
	    opt_object(input, "turn_detection", "session.audio.input.turn_detection", &td, &td_null,
	               err) < 0 ||
	    apply_vad(td, td_null, "session.audio.input.turn_detection", &c->vad, err) < 0)
		return -EINVAL;
	return 0;
}

/* transcription_session.update (beta): {session: {input_audio_format,
 * input_audio_transcription, turn_detection, input_audio_noise_reduction}} */
static int parse_beta_update(json_t *s, const struct vs_rt_limits *lim, struct vs_rt_session_cfg *c,
                             struct vs_oai_err *err)
{
	const char *fmt = NULL;
	json_t *tr, *td;
	bool td_null = false;
	if (opt_string(s, "input_audio_format", "session.input_audio_format", &fmt, err) < 0)
		return -EINVAL;
	if (fmt && strcmp(fmt, "pcm16") != 0)
		return bad(err, "session.input_audio_format", "unsupported_audio_format",
		           "Only pcm16 (24000 Hz, mono, little-endian) is supported.");
	if (opt_object(s, "input_audio_transcription", "session.input_audio_transcription", &tr,
	               NULL, err) < 0 ||
	    apply_transcription(tr, "session.input_audio_transcription", lim, c, err) < 0 ||
	    opt_object(s, "turn_detection", "session.turn_detection", &td, &td_null, err) < 0 ||
	    apply_vad(td, td_null, "session.turn_detection", &c->vad, err) < 0)
		return -EINVAL;
	return 0;
}

/* ---- append ---- */

static int parse_append(json_t *root, struct vs_rt_event *ev, struct vs_oai_err *err)
{
	json_t *a = json_object_get(root, "audio");
	if (!a)
		return bad(err, "audio", "missing_required_parameter",
		           "input_audio_buffer.append needs 'audio' (base64 pcm16).");
	if (!json_is_string(a))
		return bad(err, "audio", "invalid_type", "'audio' must be a base64 string.");
	size_t n = json_string_length(a);
	const char *src = json_string_value(a);
	uint8_t *dst = malloc(BASE64_DECODE_LENGTH(n) + 1);
	if (!dst)
		return bad(err, "audio", "server_error", "Out of memory.");
	struct base64_decode_ctx ctx;
	size_t got = BASE64_DECODE_LENGTH(n) + 1;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &got, dst, n, src) || !base64_decode_final(&ctx)) {
		free(dst);
		return bad(err, "audio", "invalid_base64", "'audio' is not valid base64.");
	}
	if (got % 2) {
		free(dst);
		return bad(err, "audio", "invalid_audio",
		           "'audio' must be pcm16: a whole number of 2-byte samples.");
	}
	ev->audio = dst;
	ev->audio_len = got;
	return 0;
}

/* ---- one message ---- */

static const struct {
	const char *name;
	enum vs_rt_kind kind;
} kinds[] = {
        {"session.update", VS_RT_SESSION_UPDATE},
        {"transcription_session.update", VS_RT_TRANSCRIPTION_UPDATE},
        {"input_audio_buffer.append", VS_RT_APPEND},
        {"input_audio_buffer.commit", VS_RT_COMMIT},
        {"input_audio_buffer.clear", VS_RT_CLEAR},
};

static int parse_root(json_t *root, const struct vs_rt_session_cfg *cur,
                      const struct vs_rt_limits *lim, struct vs_rt_event *ev,
                      struct vs_oai_err *err)
{
	json_t *id = json_object_get(root, "event_id");
	if (id && json_is_string(id)) {
		snprintf(ev->event_id, sizeof(ev->event_id), "%s", json_string_value(id));
		vs_oai_utf8_trim_tail(ev->event_id);
	} else if (id && !json_is_null(id)) {
		return bad(err, "event_id", "invalid_type", "'event_id' must be a string.");
	}
	json_t *t = json_object_get(root, "type");
	if (!t || !json_is_string(t))
		return bad(err, "type", "invalid_event",
		           "The 'type' field is missing or not a string.");
	const char *type = json_string_value(t);
	size_t k = 0;
	while (k < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[k].name, type) != 0)
		k++;
	if (k == sizeof(kinds) / sizeof(kinds[0])) {
		char shown[68];
		snprintf(shown, sizeof(shown), "%.64s", type);
		vs_oai_utf8_trim_tail(shown);
		vs_oai_err_set(err, 400, "type", "unknown_event",
		               "Unknown event type '%s'. A transcription session takes "
		               "session.update, transcription_session.update, "
		               "input_audio_buffer.append, input_audio_buffer.commit and "
		               "input_audio_buffer.clear.",
		               shown);
		return -EINVAL;
	}
	ev->kind = kinds[k].kind;
	if (ev->kind == VS_RT_APPEND)
		return parse_append(root, ev, err);
	if (ev->kind != VS_RT_SESSION_UPDATE && ev->kind != VS_RT_TRANSCRIPTION_UPDATE)
		return 0;
	json_t *s = json_object_get(root, "session");
	if (!json_is_object(s))
		return bad(err, "session", "invalid_type", "'session' must be an object.");
	ev->cfg = *cur;
	return ev->kind == VS_RT_SESSION_UPDATE ? parse_ga_update(s, lim, &ev->cfg, err)
	                                        : parse_beta_update(s, lim, &ev->cfg, err);
}

int vs_rt_parse(const char *msg, size_t len, const struct vs_rt_session_cfg *cur,
                const struct vs_rt_limits *lim, struct vs_rt_event *ev, struct vs_oai_err *err)
{
	json_error_t je;
	memset(ev, 0, sizeof(*ev));
	json_t *root = json_loadb(msg, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root) {
		vs_oai_err_set(err, 400, NULL, "invalid_json",
		               "The event is not valid JSON: %.200s (line %d, column %d).", je.text,
		               je.line, je.column);
		return -EINVAL;
	}
	int rc = json_is_object(root)
	                 ? parse_root(root, cur, lim, ev, err)
	                 : bad(err, NULL, "invalid_event", "An event must be a JSON object.");
	json_decref(root);
	if (rc < 0)
		vs_rt_event_free(ev);
	return rc;
}

/* ---- server side ---- */

static json_t *vad_json(const struct vs_rt_vad *v)
{
	if (!v->on)
		return json_null();
	return json_pack("{s:s, s:f, s:i, s:i}", "type", "server_vad", "threshold", v->threshold,
	                 "prefix_padding_ms", v->prefix_padding_ms, "silence_duration_ms",
	                 v->silence_duration_ms);
}

json_t *vs_rt_session_json(const struct vs_rt_session_cfg *c, const char *id, const char *model,
                           bool beta)
{
	json_t *tr = json_pack("{s:s, s:s, s:s}", "model", model, "language", c->language, "prompt",
	                       c->prompt);
	if (beta)
		return json_pack("{s:s, s:s, s:s, s:o, s:o, s:n, s:[]}", "id", id, "object",
		                 "realtime.transcription_session", "input_audio_format", "pcm16",
		                 "input_audio_transcription", tr, "turn_detection",
		                 vad_json(&c->vad), "input_audio_noise_reduction", "include");
	return json_pack("{s:s, s:s, s:s, s:{s:{s:{s:s, s:i}, s:n, s:o, s:o}}, s:[]}", "id", id,
	                 "object", "realtime.transcription_session", "type", "transcription",
	                 "audio", "input", "format", "type", "audio/pcm", "rate", VS_RT_RATE,
	                 "noise_reduction", "transcription", tr, "turn_detection",
	                 vad_json(&c->vad), "include");
}

json_t *vs_rt_error_event(const char *server_event_id, const struct vs_oai_err *e,
                          const char *client_event_id)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:s?, s:s?}}", "type", "error", "event_id",
	                 server_event_id, "error", "type", vs_oai_error_type(e->status), "code",
	                 e->code[0] ? e->code : vs_oai_error_default_code(e->status), "message",
	                 vs_oai_json_string(e->message), "param", e->param[0] ? e->param : NULL,
	                 "event_id", client_event_id && *client_event_id ? client_event_id : NULL);
}
