/* realtime_turn.c - a realtime session's audio and turns: the buffer, server
 * VAD, the ASR slot of each turn, the transcription jobs and their events.
 *
 * DESIGN
 * Runs on the session thread only (realtime.c); other threads reach a
 * session through vs_rt_progress(), after they recorded an answer or a slot
 * hand-over in the upgrade request (job callbacks below, waiter wakes in
 * realtime.c).
 *
 * The slot (http/realtime.h): a turn asks for one when it starts (the first
 * append into an empty buffer; with server VAD, speech_started), through
 * vs_admit_guard (503), vs_admit_slot (the service's slot, 429 or its
 * queue) and vs_admit_model (the model's slot, its queue, degradation) -
 * the HTTP path's own calls on the upgrade request's struct vs_req, so lanes,
 * keys and queues apply alike. While it waits in a queue the turn keeps
 * buffering (bounded like any turn). The slot is kept while audio is
 * buffered or committed turns wait, and given back as soon as there is
 * neither: between utterances a session holds nothing.
 *
 * A committed turn is written as a canonical WAV (24 kHz s16le mono) to a
 * sealed memfd and sent as an ordinary TRANSCRIBE job to the slot's
 * worker, whose FFmpeg reads and resamples it to the engine's rate (the
 * front resamples nothing and links no FFmpeg). The answer (verbose_json)
 * becomes one delta per segment, whose concatenation is the transcript, then
 * completed; a failed job becomes ...transcription.failed with the error the
 * HTTP API would have given. Each turn is one access line and one request
 * in /metrics under route "/v1/realtime": 200, or the refusal's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "http/realtime.h"

/* OpenAI refuses to commit less than 100 ms of audio */
#define MIN_COMMIT_MS 100
#define BYTES_PER_MS (VS_RT_RATE * 2 / 1000)

/* ---- the job (reactor thread, pool lock held) ---- */

static void post_locked(struct vs_req *r)
{
	if (r->rt) {
		r->rt->posted = true;
		vs_rt_wake(r->rt->loop);
	}
}

static void waiter_wake(struct vs_req *r)
{
	pthread_mutex_lock(&r->mu);
	post_locked(r);
	pthread_mutex_unlock(&r->mu);
}

/* slot hand-overs and queue expiry (slots lock held): the session thread
 * looks at the waiter's state */
static void rt_waiter_wake(struct vs_waiter *w)
{
	waiter_wake((struct vs_req *)((char *)w - offsetof(struct vs_req, waiter)));
}

static void rt_mwaiter_wake(struct vs_waiter *w)
{
	waiter_wake((struct vs_req *)((char *)w - offsetof(struct vs_req, mwaiter)));
}

void vs_rt_waiters_init(struct vs_req *r)
{
	r->waiter.wake = rt_waiter_wake;
	r->mwaiter.wake = rt_mwaiter_wake;
}

static bool rt_on_frame(struct vs_job *job, struct vs_frame *f)
{
	struct vs_req *r = (struct vs_req *)job;
	pthread_mutex_lock(&r->mu);
	if (vs_asr_take_answer(r, f))
		post_locked(r);
	pthread_mutex_unlock(&r->mu);
	return true;
}

static void rt_on_fail(struct vs_job *job, int status, const char *message, const char *code)
{
	struct vs_req *r = (struct vs_req *)job;
	pthread_mutex_lock(&r->mu);
	vs_oai_err_set(&r->err, status, NULL, code, "%s", message);
	r->answered = true;
	post_locked(r);
	pthread_mutex_unlock(&r->mu);
}

const struct vs_job_ops vs_rt_job_ops = {.on_frame = rt_on_frame, .on_fail = rt_on_fail};

/* ---- bookkeeping ---- */

static bool need_slot(const struct vs_rt_session *s)
{
	/* with VAD and no speech the buffer holds padding only: no slot for that */
	bool buffered = s->cfg.vad.on ? s->vad.speech && !s->refused : s->buf_len > 0;
	return s->turns || s->job_running || buffered;
}

bool vs_rt_busy(const struct vs_rt_session *s)
{
	return s->turns || s->job_running;
}

static void free_turn(struct vs_rt_turn *t)
{
	free(t->pcm);
	free(t);
}

void vs_rt_turns_free(struct vs_rt_session *s)
{
	while (s->turns) {
		struct vs_rt_turn *t = s->turns;
		s->turns = t->next;
		free_turn(t);
	}
	s->turns_tail = &s->turns;
	s->turns_bytes = 0;
	free(s->buf);
	s->buf = NULL;
	s->buf_len = s->buf_cap = 0;
}

static int buf_add(struct vs_rt_session *s, const uint8_t *p, size_t n)
{
	if (s->buf_len + n > s->buf_cap) {
		size_t cap = s->buf_cap ? s->buf_cap : 64 * 1024;
		while (cap < s->buf_len + n)
			cap *= 2;
		uint8_t *nb = realloc(s->buf, cap);
		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->buf_cap = cap;
	}
	memcpy(s->buf + s->buf_len, p, n);
	s->buf_len += n;
	return 0;
}

/* drops the buffer's audio (the turn ends without a commit) */
static void buf_drop(struct vs_rt_session *s)
{
	s->buf_start += s->buf_len;
	s->buf_len = 0;
}

static void release_if_idle(struct vs_rt_session *s)
{
	if (s->slot == VS_RT_SLOT_NONE || need_slot(s))
		return;
	vs_req_release_slot(s->r); /* leaves a queue too */
	s->slot = VS_RT_SLOT_NONE;
	s->r->phase = P_REPLY;
}

/* ---- admission ---- */

static void send_failed(struct vs_rt_session *s, const struct vs_rt_turn *t,
                        const struct vs_oai_err *e)
{
	json_t *ev = vs_rt_error_event("", e, NULL);
	vs_rt_send(s, json_pack("{s:s, s:s, s:i, s:O}", "type",
	                        "conversation.item.input_audio_transcription.failed", "item_id",
	                        t->item_id, "content_index", 0, "error",
	                        json_object_get(ev, "error")));
	json_decref(ev);
}

/* the turn was refused (r's reply says how): the error event, the record,
 * its audio and any turn that waited with it dropped */
static void refuse(struct vs_rt_session *s, const char *event_id)
{
	struct vs_req *r = s->r;
	struct vs_oai_err e = {.status = r->status ? r->status : 503};
	json_t *body = r->body ? json_loads(r->body, 0, NULL) : NULL;
	json_t *jerr = json_object_get(body, "error");
	vs_oai_err_set(&e, e.status, json_string_value(json_object_get(jerr, "param")),
	               json_string_value(json_object_get(jerr, "code")), "%s",
	               json_string_value(json_object_get(jerr, "message")) ?: "Refused");
	json_decref(body);
	vs_rt_send_error(s, &e, event_id);
	vs_access_turn(r, e.status, s->turn_start_ms, "-");
	while (s->turns) {
		struct vs_rt_turn *t = s->turns;
		s->turns = t->next;
		send_failed(s, t, &e);
		free_turn(t);
	}
	s->turns_tail = &s->turns;
	s->turns_bytes = 0;
	buf_drop(s);
	s->refused = true;
	vs_req_release_slot(r);
	s->slot = VS_RT_SLOT_NONE;
	r->phase = P_REPLY;
}

/* The turn's slot, step by step: NONE asks (guard, service slot, model
 * slot); WAITING looks at what the queue handed over. Returns true while the
 * turn may go on (held or queued), false when refused. */
static bool admit(struct vs_rt_session *s, const char *event_id)
{
	struct vs_req *r = s->r;
	if (s->slot == VS_RT_SLOT_HELD)
		return true;
	if (s->slot == VS_RT_SLOT_NONE) {
		free(r->body);
		r->body = NULL;
		r->status = 0;
		r->reject_reason = NULL;
		r->queue_wait_ms = 0;
		r->asked = s->model;
		r->m = NULL;
		r->phase = P_NEW;
		r->waiter.state = r->mwaiter.state = VS_WAIT_NONE;
		r->waiter.enqueued_ms = r->mwaiter.enqueued_ms = 0;
		s->slot = VS_RT_SLOT_WAITING;
		if (!vs_admit_guard(r) || (!vs_admit_slot(r) && r->phase != P_QUEUED)) {
			refuse(s, event_id);
			return false;
		}
		if (r->phase == P_QUEUED)
			return true;
	} else if (r->phase == P_QUEUED) {
		if (__atomic_load_n(&r->waiter.state, __ATOMIC_ACQUIRE) == VS_WAIT_QUEUED)
			return true;
		r->queue_wait_ms = vs_now_ms() - r->waiter.enqueued_ms;
		if (r->waiter.state != VS_WAIT_GRANTED) {
			vs_admit_queue_expired(r);
			refuse(s, event_id);
			return false;
		}
		r->slot = r->waiter.slot;
	} else if (r->phase == P_MQUEUED) {
		if (__atomic_load_n(&r->mwaiter.state, __ATOMIC_ACQUIRE) == VS_WAIT_QUEUED)
			return true;
		r->queue_wait_ms += vs_now_ms() - r->mwaiter.enqueued_ms;
		if (r->mwaiter.state != VS_WAIT_GRANTED) {
			vs_admit_queue_expired(r);
			refuse(s, event_id);
			return false;
		}
		r->mslot = r->mwaiter.slot;
		if (!vs_admit_model_granted(r)) {
			refuse(s, event_id);
			return false;
		}
		goto held;
	}
	/* the service's slot is ours: the model's */
	r->phase = P_NEW;
	if (!vs_admit_model(r)) {
		if (r->phase == P_MQUEUED)
			return true;
		refuse(s, event_id);
		return false;
	}
held:
	s->slot = VS_RT_SLOT_HELD;
	r->phase = P_BODY; /* audio arriving, as an upload's body would */
	return true;
}

/* ---- jobs ---- */

static int turn_fd(const struct vs_rt_turn *t)
{
	uint8_t head[VS_WAV_HEADER_BYTES];
	int fd = memfd_create("voicestack-realtime-turn", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	vs_wav_header(head, VS_RT_RATE, (uint32_t)t->len);
	struct {
		const uint8_t *p;
		size_t n;
	} parts[2] = {{head, sizeof(head)}, {t->pcm, t->len}};
	for (int i = 0; i < 2; i++) {
		size_t off = 0;
		while (off < parts[i].n) {
			ssize_t w = write(fd, parts[i].p + off, parts[i].n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				int e = -errno;
				close(fd);
				return e;
			}
			off += (size_t)w;
		}
	}
	/* the worker only reads it */
	fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
	return fd;
}

static void submit_next(struct vs_rt_session *s)
{
	struct vs_req *r = s->r;
	while (s->slot == VS_RT_SLOT_HELD && !s->job_running && s->turns) {
		struct vs_rt_turn *t = s->turns;
		json_t *payload = json_pack("{s:s?, s:s?, s:f, s:b}", "language",
		                            s->cfg.language[0] ? s->cfg.language : NULL, "prompt",
		                            s->cfg.prompt[0] ? s->cfg.prompt : NULL, "temperature",
		                            0.0, "want_words", 0);
		int fd = payload ? turn_fd(t) : -ENOMEM;
		int e = fd;
		if (fd >= 0) {
			pthread_mutex_lock(&r->mu);
			r->answered = false;
			json_decref(r->result);
			r->result = NULL;
			memset(&r->err, 0, sizeof(r->err));
			pthread_mutex_unlock(&r->mu);
			r->job.ops = &vs_rt_job_ops;
			r->phase = P_WORKING;
			s->job_running = true;
			e = vs_pool_submit(r->m->pool, r->mslot, &r->job, VS_MSG_TRANSCRIBE,
			                   payload, fd);
			close(fd); /* the worker holds its own reference now */
		}
		json_decref(payload);
		if (e >= 0)
			return;
		s->job_running = false;
		r->phase = P_BODY;
		struct vs_oai_err err = {0};
		vs_oai_err_set(&err, 503, NULL, "worker_unavailable",
		               "Could not start the worker of model %s: %s", r->m->spec->id,
		               strerror(-e));
		send_failed(s, t, &err);
		vs_access_turn(r, 503, t->start_ms, t->item_id);
		s->turns = t->next;
		if (!s->turns)
			s->turns_tail = &s->turns;
		s->turns_bytes -= t->len;
		free_turn(t);
	}
}

/* the answer of the head turn: deltas and completed, or failed */
static void answered(struct vs_rt_session *s, json_t *result, const struct vs_oai_err *err)
{
	struct vs_rt_turn *t = s->turns;
	s->turns = t->next;
	if (!s->turns)
		s->turns_tail = &s->turns;
	s->turns_bytes -= t->len;
	s->job_running = false;
	s->r->phase = P_BODY;
	s->turns_done++;
	if (err->status) {
		send_failed(s, t, err);
		vs_access_turn(s->r, err->status, t->start_ms, t->item_id);
		free_turn(t);
		return;
	}
	const char *text = json_string_value(json_object_get(result, "text")) ?: "";
	/* one delta per segment (whisper's " Hello." shape, the first one's
	 * space dropped) when they add up to the text; else one delta */
	json_t *segs = json_object_get(result, "segments"), *seg;
	size_t i, off = 0, tl = strlen(text);
	bool split = json_array_size(segs) > 1;
	json_array_foreach(segs, i, seg)
	{
		const char *st = json_string_value(json_object_get(seg, "text")) ?: "";
		st += i == 0 ? strspn(st, " ") : 0;
		size_t n = strlen(st);
		split = split && off + n <= tl && memcmp(text + off, st, n) == 0;
		off += n;
	}
	split = split && off == tl;
	for (i = 0; i < (split ? json_array_size(segs) : 1); i++) {
		const char *st =
		        json_string_value(json_object_get(json_array_get(segs, i), "text"));
		const char *d = split ? st + (i == 0 ? strspn(st, " ") : 0) : text;
		vs_rt_send(s, json_pack("{s:s, s:s, s:i, s:s}", "type",
		                        "conversation.item.input_audio_transcription.delta",
		                        "item_id", t->item_id, "content_index", 0, "delta", d));
	}
	vs_rt_send(s, json_pack("{s:s, s:s, s:i, s:s, s:{s:s, s:f}}", "type",
	                        "conversation.item.input_audio_transcription.completed", "item_id",
	                        t->item_id, "content_index", 0, "transcript", text, "usage", "type",
	                        "duration", "seconds", (double)t->len / (VS_RT_RATE * 2)));
	vs_access_turn(s->r, 200, t->start_ms, t->item_id);
	free_turn(t);
}

void vs_rt_progress(struct vs_rt_session *s)
{
	struct vs_req *r = s->r;
	pthread_mutex_lock(&r->mu);
	bool done = s->job_running && r->answered;
	json_t *result = done ? r->result : NULL;
	struct vs_oai_err err = r->err;
	if (done)
		r->result = NULL;
	pthread_mutex_unlock(&r->mu);
	if (done) {
		answered(s, result, &err);
		json_decref(result);
	}
	if (s->slot == VS_RT_SLOT_WAITING && !admit(s, NULL))
		return;
	submit_next(s);
	release_if_idle(s);
}

/* ---- client events ---- */

static void commit(struct vs_rt_session *s, const char *item)
{
	struct vs_rt_turn *t = calloc(1, sizeof(*t));
	if (!t) {
		buf_drop(s);
		return;
	}
	snprintf(t->item_id, sizeof(t->item_id), "%s", item);
	t->pcm = s->buf;
	t->len = s->buf_len;
	t->start_ms = s->turn_start_ms;
	s->buf_start += s->buf_len;
	s->buf = NULL;
	s->buf_len = s->buf_cap = 0;
	*s->turns_tail = t;
	s->turns_tail = &t->next;
	s->turns_bytes += t->len;
	vs_rt_send(s, json_pack("{s:s, s:s, s:s?}", "type", "input_audio_buffer.committed",
	                        "item_id", t->item_id, "previous_item_id",
	                        s->last_item[0] ? s->last_item : NULL));
	snprintf(s->last_item, sizeof(s->last_item), "%s", t->item_id);
	s->full = false;
	submit_next(s);
}

static void error_event(struct vs_rt_session *s, const char *event_id, const char *param,
                        const char *code, const char *msg)
{
	struct vs_oai_err e = {0};
	vs_oai_err_set(&e, 400, param, code, "%s", msg);
	vs_rt_send_error(s, &e, event_id);
}

/* room for n more bytes of audio in the session (buffer + pending turns)? */
static bool room_for(struct vs_rt_session *s, size_t n, const char *event_id)
{
	if (s->buf_len + s->turns_bytes + n <= s->max_bytes)
		return true;
	if (!s->full) {
		struct vs_oai_err e = {0};
		vs_oai_err_set(
		        &e, 400, "audio", "input_audio_buffer_full",
		        "The input audio buffer is full: the session holds %.1f s of audio "
		        "not yet transcribed, REALTIME_MAX_BUFFER_SECONDS=%g. This audio was "
		        "dropped; commit or clear first.",
		        (double)(s->buf_len + s->turns_bytes) / (VS_RT_RATE * 2),
		        s->svc->cfg->realtime_max_buffer_seconds);
		vs_rt_send_error(s, &e, event_id);
	}
	/* with VAD one error per turn: the rest of the speech would repeat it */
	s->full = s->cfg.vad.on;
	return false;
}

static void append_manual(struct vs_rt_session *s, const uint8_t *pcm, size_t len,
                          const char *event_id)
{
	if (s->refused || !room_for(s, len, event_id))
		return;
	if (s->buf_len == 0) {
		s->turn_start_ms = vs_now_ms();
		if (!admit(s, event_id))
			return;
	}
	if (buf_add(s, pcm, len) < 0)
		error_event(s, event_id, NULL, "server_error", "Out of memory.");
}

static void speech_started(struct vs_rt_session *s, const char *event_id)
{
	vs_rt_next_item(s, s->vad_item);
	s->turn_start_ms = vs_now_ms();
	s->full = false;
	vs_rt_send(s, json_pack("{s:s, s:I, s:s}", "type", "input_audio_buffer.speech_started",
	                        "audio_start_ms", (json_int_t)(s->buf_start / BYTES_PER_MS),
	                        "item_id", s->vad_item));
	admit(s, event_id);
}

static void speech_stopped(struct vs_rt_session *s)
{
	vs_rt_send(s, json_pack("{s:s, s:I, s:s}", "type", "input_audio_buffer.speech_stopped",
	                        "audio_end_ms",
	                        (json_int_t)((s->buf_start + s->buf_len) / BYTES_PER_MS), "item_id",
	                        s->vad_item));
	if (s->refused || s->buf_len == 0) {
		s->refused = false;
		buf_drop(s);
		release_if_idle(s);
		return;
	}
	commit(s, s->vad_item);
}

/* server VAD: frame by frame, so an event falls on its exact sample */
static void append_vad(struct vs_rt_session *s, const uint8_t *pcm, size_t len,
                       const char *event_id)
{
	size_t pad = (size_t)s->cfg.vad.prefix_padding_ms * BYTES_PER_MS;
	for (size_t off = 0; off < len;) {
		size_t n = vs_vad_room(&s->vad) * 2;
		if (n > len - off)
			n = len - off;
		bool keep = !s->refused && (!s->vad.speech || room_for(s, n, event_id));
		if (keep && buf_add(s, pcm + off, n) < 0) {
			error_event(s, event_id, NULL, "server_error", "Out of memory.");
			return;
		}
		if (!keep)
			s->buf_start += n; /* dropped, but counted in the stream's time */
		enum vs_vad_event ev = vs_vad_push(&s->vad, pcm + off, n / 2);
		off += n;
		if (ev == VS_VAD_START)
			speech_started(s, event_id);
		else if (ev == VS_VAD_STOP)
			speech_stopped(s);
		if (!s->vad.speech && s->buf_len > pad) {
			/* before speech only the prefix padding is kept */
			size_t cut = (s->buf_len - pad) & ~(size_t)1;
			memmove(s->buf, s->buf + cut, s->buf_len - cut);
			s->buf_len -= cut;
			s->buf_start += cut;
		}
	}
}

void vs_rt_on_append(struct vs_rt_session *s, const uint8_t *pcm, size_t len, const char *event_id)
{
	s->appended += len;
	if (s->cfg.vad.on)
		append_vad(s, pcm, len, event_id);
	else
		append_manual(s, pcm, len, event_id);
}

void vs_rt_on_commit(struct vs_rt_session *s, const char *event_id)
{
	if (s->refused || s->buf_len < (size_t)MIN_COMMIT_MS * BYTES_PER_MS) {
		struct vs_oai_err e = {0};
		vs_oai_err_set(&e, 400, NULL, "input_audio_buffer_commit_empty",
		               "Error committing input audio buffer: buffer too small. Expected at "
		               "least %dms of audio, but buffer only has %.2fms of audio%s.",
		               MIN_COMMIT_MS, s->refused ? 0.0 : (double)s->buf_len / BYTES_PER_MS,
		               s->refused ? " (the turn's audio was refused)" : "");
		vs_rt_send_error(s, &e, event_id);
		if (s->refused && !s->cfg.vad.on)
			s->refused = false; /* the refused turn ends here */
		return;
	}
	char item[VS_RT_ID_MAX];
	if (s->cfg.vad.on && s->vad.speech)
		snprintf(item, sizeof(item), "%s", s->vad_item);
	else
		vs_rt_next_item(s, item);
	commit(s, item);
	if (s->cfg.vad.on && s->vad.speech)
		vs_rt_next_item(s, s->vad_item); /* the rest of this speech is a new item */
}

void vs_rt_on_clear(struct vs_rt_session *s, const char *event_id)
{
	(void)event_id;
	buf_drop(s);
	if (!s->cfg.vad.on)
		s->refused = false;
	s->full = false;
	vs_rt_send(s, json_pack("{s:s}", "type", "input_audio_buffer.cleared"));
	release_if_idle(s);
}

void vs_rt_vad_reset(struct vs_rt_session *s)
{
	/* a new setting starts from silence; what was buffered stays */
	vs_vad_init(&s->vad, VS_RT_RATE, s->cfg.vad.threshold, s->cfg.vad.silence_duration_ms);
	s->refused = false;
	release_if_idle(s);
}
