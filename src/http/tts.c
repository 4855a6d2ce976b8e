/* tts.c - POST /v1/audio/speech (streamed) and GET /v1/audio/voices.
 *
 * DESIGN
 * The worker encodes as it synthesizes and sends AUDIO frames; the reactor
 * appends them to the request's stream (stream.c), as raw bytes or, with
 * stream_format "sse", as speech.audio.delta events carrying them in
 * base64; END is the end of the stream (after speech.audio.done for sse).
 * The HTTP status is decided by the first frame: AUDIO means 200 and
 * streaming starts, ERROR (unknown voice, model load failure) means a
 * proper error reply; what a failure does after that is stream.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http/http.h"

void vs_tts_frame_seen_locked(struct vs_req *r, struct vs_frame *f)
{
	if (f->type == VS_MSG_AUDIO && !r->first_audio_ms) {
		r->first_audio_ms = vs_now_ms();
	} else if (f->type == VS_MSG_END) {
		json_t *j = vs_frame_json(f);
		json_t *s = json_object_get(j, "seconds");
		r->has_audio_out = json_is_number(s);
		r->audio_out_s = json_number_value(s);
		json_decref(j);
	}
}

static bool tts_on_frame(struct vs_job *job, struct vs_frame *f)
{
	struct vs_req *r = (struct vs_req *)job;
	bool keep = true;
	bool last = f->type == VS_MSG_END || f->type == VS_MSG_ERROR || f->type == VS_MSG_RESULT;

	pthread_mutex_lock(&r->mu);
	vs_tts_frame_seen_locked(r, f);
	switch (f->type) {
	case VS_MSG_AUDIO:
		keep = r->sse ? vs_sse_audio_locked(r, f->data, f->len)
		              : vs_stream_push_locked(r, f->data, f->len);
		break;
	case VS_MSG_END:
		/* no audio at all stays the 500 of server.c, in both shapes */
		if (r->sse && r->stream_started)
			vs_sse_event_locked(r, vs_oai_speech_done());
		r->stream_end = true;
		r->answered = true;
		r->reader_waiting = false;
		vs_req_resume_locked(r);
		break;
	case VS_MSG_ERROR: {
		json_t *j = vs_frame_json(f);
		int status = (int)json_integer_value(json_object_get(j, "status"));
		vs_oai_err_set(&r->err, status >= 400 ? status : 500,
		               json_string_value(json_object_get(j, "param")),
		               json_string_value(json_object_get(j, "code")), "%s",
		               json_string_value(json_object_get(j, "message")) ?: "engine error");
		json_decref(j);
		r->answered = true;
		if (r->stream_started)
			vs_stream_fail_locked(r);
		r->reader_waiting = false;
		vs_req_resume_locked(r);
		break;
	}
	case VS_MSG_RESULT:
		r->result = vs_frame_json(f);
		r->answered = true;
		vs_req_resume_locked(r);
		break;
	default: break;
	}
	/* the answer is over but a slow client still has audio to read: bounded */
	if (last && r->stream_started && r->slen > r->soff)
		vs_watcher_drain(r);
	pthread_mutex_unlock(&r->mu);
	/* the worker is idle now: its slot goes to the next request even while
	 * this client is still reading the buffered audio */
	if (last)
		vs_req_worker_done(r);
	return keep;
}

const struct vs_job_ops vs_tts_job_ops = {
        .on_frame = tts_on_frame,
        .on_fail = vs_job_on_fail,
};

/* Parsed before a slot is taken: a bad request never holds one. */
int vs_tts_parse(struct vs_req *r)
{
	struct vs_speech_limits lim = {
	        .max_input_chars = (size_t)r->svc->cfg->tts_max_input_chars,
	        .accepted_models = r->svc->model_names,
	        .models_hint = r->svc->models_hint,
	};
	struct vs_speech_req s = {0};
	struct vs_oai_err err = {0};

	if (vs_speech_parse(r->json ? r->json : "", r->json_len, &lim, &s, &err) < 0) {
		vs_req_set_body(r, err.status, vs_oai_err_body(&err), "application/json");
		return -EINVAL;
	}
	snprintf(r->response_format, sizeof(r->response_format), "%s", s.response_format);
	snprintf(r->model, sizeof(r->model), "%s", s.model);
	if (s.sse)
		vs_route_sse(r);
	r->asked = vs_service_model(r->svc, s.model);
	r->payload = json_pack("{s:s, s:s, s:f, s:s}", "input", s.input, "voice", s.voice, "speed",
	                       s.speed, "response_format", s.response_format);
	vs_speech_req_free(&s);
	if (!r->payload) {
		vs_req_set_error(r, 500, NULL, "internal_error", "Out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* the work could not reach a worker: 503 */
static void submit_failed(struct vs_req *r, int e)
{
	r->phase = P_REPLY;
	vs_req_set_error(r, 503, NULL, "worker_unavailable",
	                 "Could not start the worker of model %s (engine %s): %s", r->m->spec->id,
	                 r->m->spec->engine->name, strerror(-e));
}

void vs_tts_submit(struct vs_req *r)
{
	r->phase = P_WORKING;
	int e = vs_pool_submit(r->m->pool, r->mslot, &r->job, VS_MSG_SYNTHESIZE, r->payload, -1);
	json_decref(r->payload);
	r->payload = NULL;
	if (e < 0)
		submit_failed(r, e);
}

/* GET /v1/audio/voices[?model=ID]: the voices of one model (the default
 * when not given), cached after its worker first listed them */
int vs_tts_voices(struct vs_req *r)
{
	const char *name = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "model");
	struct vs_model_rt *m = vs_service_model(r->svc, name);
	if (!m) {
		vs_req_set_error(r, 400, "model", "model_not_found",
		                 "Unknown model '%.64s' (available: %s)", name,
		                 r->svc->models_hint);
		return -EINVAL;
	}
	r->asked = m;
	pthread_mutex_lock(&m->voices_mu);
	char *cached = m->voices_json ? strdup(m->voices_json) : NULL;
	pthread_mutex_unlock(&m->voices_mu);
	if (cached) {
		r->m = m;
		vs_req_set_body(r, 200, cached, "application/json");
		return -EALREADY;
	}
	return 0;
}

void vs_tts_voices_submit(struct vs_req *r)
{
	json_t *payload = json_object();
	r->phase = P_WORKING;
	int e = vs_pool_submit(r->m->pool, r->mslot, &r->job, VS_MSG_VOICES, payload, -1);
	json_decref(payload);
	if (e < 0)
		submit_failed(r, e);
}

/* OpenAI has no voices endpoint; ours lists the OpenAI names (mapped by the
 * engine) and every engine voice, and is cached after the first answer. */
void vs_tts_voices_render(struct vs_req *r)
{
	json_t *voices = json_object_get(r->result, "voices");
	if (!json_is_array(voices)) {
		vs_req_set_error(r, 500, NULL, "engine_error",
		                 "The engine did not list its voices");
		return;
	}
	/* Open WebUI reads {v["id"]: v["name"]} and falls back to OpenAI's
	 * six names if a voice lacks either: the id is what "voice" takes */
	size_t k;
	json_t *v;
	json_array_foreach(voices, k, v)
	{
		json_t *name = json_object_get(v, "name");
		if (json_is_string(name))
			json_object_set(v, "id", name);
	}
	json_t *names = json_array();
	for (int i = 0; vs_openai_voices[i]; i++)
		json_array_append_new(names, json_string(vs_openai_voices[i]));
	json_t *out = json_pack("{s:s, s:s, s:s, s:o, s:O}", "object", "list", "model",
	                        r->m->spec->id, "engine", r->m->spec->engine->name, "openai_voices",
	                        names, "voices", voices);
	char *body = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	pthread_mutex_lock(&r->m->voices_mu);
	if (!r->m->voices_json && body)
		r->m->voices_json = strdup(body);
	pthread_mutex_unlock(&r->m->voices_mu);
	vs_req_set_body(r, 200, body, "application/json");
}
