/* tts.c - POST /v1/audio/speech (streamed) and GET /v1/audio/voices.
 *
 * DESIGN
 * The worker encodes as it synthesizes and sends AUDIO frames; the reactor
 * appends them to the request's buffer and the MHD content reader hands them
 * to the client with chunked encoding. The HTTP status is decided by the
 * first frame: AUDIO means 200 and streaming starts, ERROR (unknown voice,
 * model load failure) means a proper error reply. After the first byte a
 * failure can only cut the stream short (the chunked body ends without its
 * terminating chunk, so clients see an incomplete transfer).
 *
 * Backpressure: when a slow client lets more than STREAM_HIGH bytes pile up,
 * the reactor stops reading that worker until the reader drains below
 * STREAM_LOW; the worker then blocks on its socket and synthesis pauses.
 * When the reader has nothing to send it suspends the connection and the
 * next frame resumes it, so no HTTP thread waits on a worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http/http.h"
#include "media/media.h"

#define STREAM_HIGH (512 * 1024)
#define STREAM_LOW (128 * 1024)

static bool tts_on_frame(struct vs_job *job, struct vs_frame *f)
{
	struct vs_req *r = (struct vs_req *)job;
	bool keep = true;
	bool last = f->type == VS_MSG_END || f->type == VS_MSG_ERROR || f->type == VS_MSG_RESULT;

	pthread_mutex_lock(&r->mu);
	switch (f->type) {
	case VS_MSG_AUDIO: {
		size_t pending = r->slen - r->soff;
		uint8_t *nb = realloc(r->sbuf, r->slen + f->len);
		if (!nb) {
			r->stream_failed = true;
			break;
		}
		r->sbuf = nb;
		memcpy(r->sbuf + r->slen, f->data, f->len);
		r->slen += f->len;
		r->stream_bytes += f->len;
		if (pending + f->len > STREAM_HIGH) {
			r->worker_paused = true;
			keep = false;
		}
		if (!r->stream_started) {
			r->stream_started = true;
			r->answered = true;
		}
		r->reader_waiting = false;
		vs_req_resume_locked(r);
		break;
	}
	case VS_MSG_END:
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
		if (r->stream_started) {
			r->stream_failed = true;
			vs_warn("event=stream_failed service=tts msg=\"%s\"", r->err.message);
		}
		r->answered = true;
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

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct vs_req *r = cls;
	bool resume_worker = false, finished = false;
	int slot;
	ssize_t n;
	(void)pos;

	pthread_mutex_lock(&r->mu);
	slot = r->mslot;
	if (r->client_gone) {
		/* the watcher saw the hang-up while we waited for a frame */
		n = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (r->soff < r->slen) {
		size_t avail = r->slen - r->soff;
		n = (ssize_t)(avail < max ? avail : max);
		memcpy(buf, r->sbuf + r->soff, (size_t)n);
		r->soff += (size_t)n;
		r->resp_bytes += (uint64_t)n;
		if (r->soff == r->slen)
			r->soff = r->slen = 0;
		if (r->worker_paused && r->slen - r->soff < STREAM_LOW) {
			r->worker_paused = false;
			resume_worker = true;
		}
	} else if (r->stream_failed) {
		n = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (r->stream_end) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
		finished = true;
	} else {
		/* nothing yet: park the connection until the next frame arrives */
		r->reader_waiting = true;
		vs_req_suspend_locked(r);
		n = 0;
	}
	pthread_mutex_unlock(&r->mu);
	/* outside our lock: the pool lock comes first in the lock order */
	if (resume_worker && slot >= 0)
		vs_pool_resume_reading(r->m->pool, slot);
	if (finished)
		vs_req_release_slot(r); /* the worker is idle again; free it for the next client */
	return n;
}

int vs_tts_queue_stream(struct vs_req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024,
	                                                              stream_reader, r, NULL);
	if (!resp)
		return -ENOMEM;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        vs_format_mime(r->response_format));
	vs_req_add_headers(r, resp);
	enum MHD_Result ok = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	r->status = 200;
	r->phase = P_STREAMING;
	return ok == MHD_YES ? 0 : -EIO;
}

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
