/* job.c - one Wyoming request through the front's admission and pools.
 *
 * DESIGN
 * A job is a struct vs_req with no connection, and it takes the steps an
 * HTTP request takes, with the same functions (http.h): the resource guard
 * (vs_admit_guard, 503), a slot of the service (vs_admit_slot: 429 or the
 * queue), once the model is known a slot of the model (vs_admit_model:
 * its queue, 429, degradation, the memory check), then its worker
 * (vs_pool_submit, REQUEST_TIMEOUT_SECONDS), and at the end one access line
 * and its metrics (vs_access_end, route "wyoming:..."). A refusal carries
 * the OpenAI error body those functions set; it becomes an `error` event
 * with the same message and code, and the HTTP status.
 *
 * Where HTTP suspends a connection, a job just waits in its state; the
 * slot hand-over (wake, slots lock held) and the pool's callbacks (reactor,
 * pool lock held) record what happened under r.mu and kick the connection
 * (wy.h). The pool callbacks are http's own where they fit (the answer
 * and failure of a transcription or a voice list, as upload.c records
 * them); only a synthesis's audio is collected here, for the Wyoming
 * thread to frame into audio-chunks.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "wyoming/wy.h"

static const char *const routes[] = {
        [WJ_TRANSCRIBE] = "wyoming:transcribe",
        [WJ_SYNTHESIZE] = "wyoming:synthesize",
        [WJ_VOICES] = "wyoming:describe",
};

/* ---- what other threads do to a job ---- */

static void woken(struct wy_job *j)
{
	pthread_mutex_lock(&j->r.mu);
	j->woken = true;
	pthread_mutex_unlock(&j->r.mu);
	wy_kick(j->c);
}

static void wake_service(struct vs_waiter *w)
{
	woken((struct wy_job *)((char *)w - offsetof(struct wy_job, r.waiter)));
}

static void wake_model(struct vs_waiter *w)
{
	woken((struct wy_job *)((char *)w - offsetof(struct wy_job, r.mwaiter)));
}

/* a synthesis's audio and its end; the reactor stops reading the worker
 * while more than WY_STREAM_HIGH waits (tts.c resumes it) */
static bool audio_frame(struct wy_job *j, struct vs_frame *f)
{
	struct vs_req *r = &j->r;
	bool keep = true;

	pthread_mutex_lock(&r->mu);
	vs_tts_frame_seen_locked(r, f);
	if (f->type == VS_MSG_AUDIO) {
		uint8_t *nb = realloc(r->sbuf, r->slen + f->len);
		if (nb) {
			r->sbuf = nb;
			memcpy(r->sbuf + r->slen, f->data, f->len);
			r->slen += f->len;
			r->stream_bytes += f->len;
		} else {
			vs_oai_err_set(&r->err, 500, NULL, "internal_error", "Out of memory");
		}
		if (r->slen - r->soff > WY_STREAM_HIGH) {
			r->worker_paused = true;
			keep = false;
		}
	} else {
		r->stream_end = true;
		r->answered = true;
	}
	pthread_mutex_unlock(&r->mu);
	if (f->type == VS_MSG_END)
		vs_req_worker_done(r); /* the worker is idle: its slot goes back now */
	return keep;
}

static bool on_frame(struct vs_job *job, struct vs_frame *f)
{
	struct wy_job *j = (struct wy_job *)job;
	bool keep;

	if (j->kind == WJ_SYNTHESIZE && (f->type == VS_MSG_AUDIO || f->type == VS_MSG_END))
		keep = audio_frame(j, f);
	else /* RESULT, ERROR: recorded as a transcription's (upload.c) */
		keep = vs_asr_job_ops.on_frame(job, f);
	wy_kick(j->c);
	return keep;
}

static void on_fail(struct vs_job *job, int status, const char *message, const char *code)
{
	vs_job_on_fail(job, status, message, code);
	wy_kick(((struct wy_job *)job)->c);
}

const struct vs_job_ops wy_job_ops = {
        .on_frame = on_frame,
        .on_fail = on_fail,
};

/* ---- the Wyoming thread ---- */

struct wy_job *wy_job_new(struct wy_conn *c, enum wy_kind kind)
{
	struct wy_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	struct vs_req *r = &j->r;
	pthread_mutex_init(&r->mu, NULL);
	r->job.ops = &wy_job_ops;
	r->svc = c->srv->svc;
	r->slot = r->mslot = -1;
	r->fd = -1;
	r->start_ms = vs_now_ms();
	r->waiter.wake = wake_service;
	r->mwaiter.wake = wake_model;
	r->route_label = routes[kind];
	snprintf(r->method, sizeof(r->method), "WYOMING");
	snprintf(r->client, sizeof(r->client), "%s", c->client);
	snprintf(r->request_id, sizeof(r->request_id), "wy%u-%u", c->id, ++c->jobs);
	j->c = c;
	j->kind = kind;
	j->spool = -1;
	j->pool_slot = -1;
	j->started_ms = r->start_ms;
	c->job = j;
	return j;
}

int wy_job_admit(struct wy_job *j)
{
	struct vs_req *r = &j->r;

	if (j->c->srv->quiesced) {
		r->reject_reason = "shutting_down";
		vs_req_set_error(r, 503, NULL, "shutting_down",
		                 "The server is shutting down; this request was not finished");
		wy_job_refused(j);
		return -1;
	}
	if (vs_admit_guard(r) && vs_admit_slot(r)) {
		j->state = WJ_HOLDING;
		r->phase = P_BODY;
		return 1;
	}
	if (r->phase == P_QUEUED) {
		j->state = WJ_SVC_QUEUED;
		return 0;
	}
	wy_job_refused(j);
	return -1;
}

static void submit(struct wy_job *j)
{
	struct vs_req *r = &j->r;
	int e;

	r->phase = P_WORKING;
	j->state = WJ_WORKING;
	j->pool = r->m->pool;
	j->pool_slot = r->mslot;
	switch (j->kind) {
	case WJ_TRANSCRIBE: e = wy_asr_submit(j); break;
	case WJ_SYNTHESIZE: e = wy_tts_submit(j); break;
	default: e = wy_info_voices_submit(j); break;
	}
	if (e < 0) {
		vs_req_set_error(r, 503, NULL, "worker_unavailable",
		                 "Could not start the worker of model %s (engine %s): %s",
		                 r->m->spec->id, r->m->spec->engine->name, strerror(-e));
		wy_job_refused(j);
	}
}

void wy_job_model(struct wy_job *j)
{
	struct vs_req *r = &j->r;

	if (vs_admit_model(r)) {
		submit(j);
		return;
	}
	if (r->phase == P_MQUEUED) {
		j->state = WJ_MODEL_QUEUED;
		return;
	}
	wy_job_refused(j);
}

/* the service's slot is held: what comes next depends on the kind */
static void held(struct wy_job *j)
{
	if (j->kind == WJ_TRANSCRIBE)
		wy_asr_held(j);
	else
		wy_job_model(j);
}

void wy_job_poll(struct wy_job *j)
{
	struct vs_req *r = &j->r;
	bool was_woken;

	pthread_mutex_lock(&r->mu);
	was_woken = j->woken;
	j->woken = false;
	bool answered = r->answered;
	pthread_mutex_unlock(&r->mu);

	switch (j->state) {
	case WJ_SVC_QUEUED:
		if (!was_woken || r->waiter.state == VS_WAIT_QUEUED)
			return;
		r->queue_wait_ms = vs_now_ms() - r->waiter.enqueued_ms;
		if (r->waiter.state != VS_WAIT_GRANTED) {
			vs_admit_queue_expired(r);
			wy_job_refused(j);
			return;
		}
		r->slot = r->waiter.slot;
		j->state = WJ_HOLDING;
		r->phase = P_BODY;
		held(j);
		return;
	case WJ_MODEL_QUEUED:
		if (!was_woken || r->mwaiter.state == VS_WAIT_QUEUED)
			return;
		r->queue_wait_ms += vs_now_ms() - r->mwaiter.enqueued_ms;
		if (r->mwaiter.state != VS_WAIT_GRANTED) {
			vs_admit_queue_expired(r);
			wy_job_refused(j);
			return;
		}
		r->mslot = r->mwaiter.slot;
		if (vs_admit_model_granted(r))
			submit(j);
		else
			wy_job_refused(j);
		return;
	case WJ_WORKING:
		if (j->kind == WJ_SYNTHESIZE)
			wy_tts_pump(j);
		else if (answered && j->kind == WJ_TRANSCRIBE)
			wy_asr_answered(j);
		else if (answered)
			wy_info_voices_answered(j);
		return;
	default: return;
	}
}

void wy_job_finish(struct wy_job *j, int status)
{
	struct vs_req *r = &j->r;

	j->c->job = NULL;
	vs_req_release_slot(r);
	/* the pool's lock once more: a callback still running for this job
	 * (it kicks after vs_req_worker_done) has returned once we get it */
	if (j->pool)
		vs_pool_detach(j->pool, j->pool_slot, &r->job);
	if (j->spool >= 0)
		close(j->spool);
	vs_access_end(r, status);
	vs_req_clear(r);
	free(j);
}

void wy_job_refused(struct wy_job *j)
{
	struct vs_req *r = &j->r;
	struct wy_conn *c = j->c;
	char *owned = r->body ? NULL : vs_oai_err_body(&r->err);
	json_t *doc = json_loads(r->body ? r->body : owned ? owned : "{}", 0, NULL);
	json_t *e = json_object_get(doc, "error");
	int status = r->body ? r->status : r->err.status;
	const char *text = wy_str(e, "message");

	if (status < 400)
		status = 500;
	if (j->kind == WJ_VOICES) {
		/* describe answers anyway, with the voices the front knows */
		vs_warn("event=wyoming_voices_failed service=%s model=%s status=%d msg=\"%s\"",
		        c->srv->svc->name, r->asked ? r->asked->spec->id : "-", status,
		        text ? text : "");
		if (r->asked)
			c->describe_failed[r->asked - c->srv->svc->models] = true;
	} else {
		wy_send_error(c, status, wy_str(e, "code"), text);
		if (j->kind == WJ_TRANSCRIBE && !j->audio_done)
			c->drop_audio = true; /* its chunks up to audio-stop are dropped */
		if (j->kind == WJ_SYNTHESIZE && j->stream)
			c->stream_failed = true;
	}
	json_decref(doc);
	free(owned);
	wy_job_finish(j, status);
}

void wy_job_abandon(struct wy_job *j, const char *why)
{
	struct vs_req *r = &j->r;
	bool client = strcmp(why, "protocol_error") != 0 && strcmp(why, "closed") != 0;
	const char *phase = vs_phase_name(r->phase);
	const char *cancelled = vs_req_cancel(r);

	if (client)
		vs_access_client_gone(r, phase, cancelled);
	wy_job_finish(j, client ? 499 : strcmp(why, "closed") == 0 ? 503 : 400);
}
