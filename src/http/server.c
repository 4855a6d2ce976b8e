/* server.c - the libmicrohttpd daemons and the access-handler state machine.
 *
 * DESIGN
 * libmicrohttpd calls on_access() several times per request: once with the
 * head, then with pieces of the body, then with none, and again after every
 * resume. struct vs_req carries the request across those calls and r->phase
 * (http.h has the life-cycle diagram) says what a call means. This file only
 * moves a request from phase to phase; the decisions live beside it:
 * route.c (the first call: framing, route, simple GETs, admission),
 * reply.c (replies, suspension, the slot), upload.c and tts.c (the two
 * kinds of work), watcher.c (what MHD does not watch), access.c (request
 * ids, the access log and request metrics). Runs on MHD's pool threads.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http/http.h"

/* idle keep-alive connections are closed after this */
#define CONNECTION_IDLE_TIMEOUT_S 120

/* The body is in: parse it (the model it asks for, the work for the
 * worker). 0 to go on to the model's slot; <0 with the reply set (a refusal,
 * or voices already known). */
static int body_complete(struct vs_req *r)
{
	switch (r->route) {
	case R_TRANSCRIBE: return vs_asr_body_done(r);
	case R_SPEECH: return vs_tts_parse(r);
	case R_VOICES: return vs_tts_voices(r);
	default: return -EINVAL;
	}
}

/* r holds a slot of its model: the work goes to that slot's worker */
static void submit(struct vs_req *r)
{
	switch (r->route) {
	case R_TRANSCRIBE: vs_asr_submit(r); break;
	case R_SPEECH: vs_tts_submit(r); break;
	case R_VOICES: vs_tts_voices_submit(r); break;
	default: break;
	}
}

/* The body phase: MHD's per-connection timeout becomes the upload stall
 * timeout (no byte for that long), and the watcher (watcher.c) bounds the
 * whole body by BODY_TIMEOUT_SECONDS, which a trickle cannot extend. */
static void enter_body(struct vs_req *r)
{
	r->phase = P_BODY;
	MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT,
	                          (unsigned)r->svc->cfg->upload_stall_timeout_seconds);
	vs_watcher_deadline(r->svc, r->conn, VS_WATCH_BODY, r);
	if (r->route == R_TRANSCRIBE && vs_upload_begin(r) < 0)
		r->phase = P_REPLY; /* reply set by vs_upload_begin */
}

/* Turns the worker's answer (or failure) into the reply. */
static void finish_answer(struct vs_req *r)
{
	if (r->err.status)
		vs_req_set_body(r, r->err.status, vs_oai_err_body(&r->err), "application/json");
	else if (r->route == R_TRANSCRIBE)
		vs_asr_render(r);
	else if (r->route == R_VOICES)
		vs_tts_voices_render(r);
	else if (!r->body)
		vs_req_set_error(r, 500, NULL, "engine_error", "The engine produced no audio");
}

/* Waits for the worker's answer, or turns it into the reply. */
static enum MHD_Result working(struct vs_req *r)
{
	pthread_mutex_lock(&r->mu);
	if (r->client_gone) {
		/* the watcher saw the hang-up and killed the worker: close */
		pthread_mutex_unlock(&r->mu);
		return MHD_NO;
	}
	if (!r->answered) {
		vs_req_suspend_locked(r);
		pthread_mutex_unlock(&r->mu);
		return MHD_YES;
	}
	pthread_mutex_unlock(&r->mu);
	/* the first frame started a stream: 200; an event stream carries a
	 * later error in itself (stream.c) */
	if (r->stream_started && (r->sse || !r->err.status))
		return vs_stream_queue(r) == 0 ? MHD_YES : MHD_NO;
	finish_answer(r);
	return vs_req_queue_reply(r);
}

static enum MHD_Result submitted(struct vs_req *r)
{
	return r->phase == P_WORKING ? working(r) : vs_req_queue_reply(r);
}

/* Suspends r while its waiter is still queued (the wake may have come
 * already, between the queueing and here). */
static enum MHD_Result wait_queued(struct vs_req *r, struct vs_waiter *w)
{
	pthread_mutex_lock(&r->mu);
	if (w->state == VS_WAIT_QUEUED)
		vs_req_suspend_locked(r);
	pthread_mutex_unlock(&r->mu);
	return MHD_YES;
}

/* r's model (r->asked) is known and its work ready, a service slot held:
 * the model's slot then the work, or the wait for that slot, or the 429. */
static enum MHD_Result model_then_submit(struct vs_req *r)
{
	if (vs_admit_model(r)) {
		submit(r);
		return submitted(r);
	}
	if (r->phase != P_MQUEUED)
		return vs_req_queue_reply(r);
	return wait_queued(r, &r->mwaiter);
}

/* One piece of body, with r->mu held (the watcher's 408 takes the request
 * under the same lock). Returns 0 to go on, 1 when a reply is to be written
 * mid-body (phase P_LINGER), 2 to drop the rest then reply (P_DISCARD), -1 on
 * allocation failure. */
static int body_data_locked(struct vs_req *r, const char *data, size_t len)
{
	struct vs_service *svc = r->svc;
	r->body_bytes += len;
	if (r->body_bytes > svc->max_body_bytes) {
		/* a chunked upload passing the limit: cut it off now */
		r->reject_reason = "size";
		vs_req_set_error(r, 413, r->route == R_TRANSCRIBE ? "file" : NULL,
		                 "request_too_large",
		                 "Request body exceeds the limit of %llu bytes",
		                 (unsigned long long)svc->max_body_bytes);
		vs_info("event=reject reason=size service=%s status=413 "
		        "msg=\"Upload size over limit (streamed body)\"",
		        svc->name);
		r->phase = P_LINGER;
		return 1;
	}
	if (r->route == R_TRANSCRIBE) {
		if (vs_upload_feed(r, data, len) < 0) {
			r->phase = r->large_body ? P_LINGER : P_DISCARD;
			return r->large_body ? 1 : 2;
		}
		return 0;
	}
	char *nb = realloc(r->json, r->json_len + len + 1);
	if (!nb)
		return -1;
	memcpy(nb + r->json_len, data, len);
	r->json = nb;
	r->json_len += len;
	r->json[r->json_len] = 0;
	return 0;
}

/* The whole body is in. A speech request is parsed and only now asks for a
 * slot of its service; a transcription has held one since its headers. Then
 * the slot of the model the body names. */
static enum MHD_Result body_done(struct vs_req *r)
{
	vs_watcher_deadline(r->svc, r->conn, VS_WATCH_NONE, NULL);
	MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT,
	                          (unsigned)CONNECTION_IDLE_TIMEOUT_S);
	r->body_read = true;
	if (body_complete(r) < 0)
		return vs_req_queue_reply(r);
	if (r->route != R_SPEECH)
		return model_then_submit(r);
	if (vs_admit_slot(r))
		return model_then_submit(r);
	if (r->phase != P_QUEUED)
		return vs_req_queue_reply(r);
	return wait_queued(r, &r->waiter);
}

static enum MHD_Result on_body(struct vs_req *r, const char *upload_data, size_t *upload_data_size)
{
	pthread_mutex_lock(&r->mu);
	if (r->phase != P_BODY) {
		/* the watcher answered 408 meanwhile: let MHD close, it lingers */
		pthread_mutex_unlock(&r->mu);
		*upload_data_size = 0;
		return MHD_NO;
	}
	if (*upload_data_size == 0) {
		r->phase = P_REPLY; /* out of the watcher's reach */
		pthread_mutex_unlock(&r->mu);
		return body_done(r);
	}
	int e = body_data_locked(r, upload_data, *upload_data_size);
	pthread_mutex_unlock(&r->mu);
	*upload_data_size = 0;
	if (e < 0)
		return MHD_NO;
	if (e == 1)
		return vs_req_reply_mid_body(r);
	return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	struct vs_service *svc = cls;
	struct vs_req *r = *con_cls;
	(void)version;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		pthread_mutex_init(&r->mu, NULL);
		r->svc = svc;
		r->conn = conn;
		r->slot = -1;
		r->mslot = -1;
		r->start_ms = vs_now_ms();
		r->waiter.wake = vs_admit_waiter_wake;
		vs_access_begin(r, method);
		*con_cls = r;
		vs_watcher_deadline(svc, conn, VS_WATCH_NONE, NULL); /* the head is in */
		if (vs_route_new_request(r, url, method))
			enter_body(r);
		r->job.ops = r->route == R_TRANSCRIBE ? &vs_asr_job_ops : &vs_tts_job_ops;
		/* refuse an unwanted large body now, before the client sends it
		 * (and instead of "100 Continue") */
		if (r->phase == P_REPLY && r->large_body && r->status >= 400)
			return vs_req_queue_reply(r);
		if (r->phase == P_QUEUED)
			return wait_queued(r, &r->waiter);
		return MHD_YES;
	}

	switch (r->phase) {
	case P_QUEUED:
		pthread_mutex_lock(&r->mu);
		if (r->client_gone) {
			/* the watcher saw the hang-up and left the queue: close */
			pthread_mutex_unlock(&r->mu);
			return MHD_NO;
		}
		if (r->waiter.state == VS_WAIT_QUEUED) {
			/* woken early (should not happen): wait again */
			vs_req_suspend_locked(r);
			pthread_mutex_unlock(&r->mu);
			return MHD_YES;
		}
		pthread_mutex_unlock(&r->mu);
		r->queue_wait_ms = vs_now_ms() - r->waiter.enqueued_ms;
		if (r->waiter.state != VS_WAIT_GRANTED) {
			vs_admit_queue_expired(r);
			return vs_req_reply_or_discard(r, upload_data_size);
		}
		r->slot = r->waiter.slot;
		if (r->body_read) /* speech: parsed, waiting for this slot only */
			return model_then_submit(r);
		enter_body(r);
		if (r->phase == P_REPLY)
			return vs_req_reply_or_discard(r, upload_data_size);
		/* MHD repeats the headers-only call after a resume: an empty
		 * call here is not the end of the body, which is still unread */
		if (*upload_data_size == 0)
			return MHD_YES;
		return on_body(r, upload_data, upload_data_size);
	case P_MQUEUED:
		pthread_mutex_lock(&r->mu);
		if (r->client_gone) {
			pthread_mutex_unlock(&r->mu);
			return MHD_NO;
		}
		if (r->mwaiter.state == VS_WAIT_QUEUED) {
			vs_req_suspend_locked(r);
			pthread_mutex_unlock(&r->mu);
			return MHD_YES;
		}
		pthread_mutex_unlock(&r->mu);
		r->queue_wait_ms += vs_now_ms() - r->mwaiter.enqueued_ms;
		if (r->mwaiter.state != VS_WAIT_GRANTED) {
			vs_admit_queue_expired(r);
			return vs_req_queue_reply(r);
		}
		r->mslot = r->mwaiter.slot;
		if (!vs_admit_model_granted(r))
			return vs_req_queue_reply(r);
		submit(r);
		return submitted(r);
	case P_BODY: return on_body(r, upload_data, upload_data_size);
	case P_WORKING: return working(r);
	case P_LINGER:
		/* the reply is written; MHD closes and the watcher drains the rest */
		*upload_data_size = 0;
		return MHD_NO;
	case P_DISCARD:
		if (*upload_data_size > 0) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		return vs_req_queue_reply(r);
	case P_REPLY: return vs_req_reply_or_discard(r, upload_data_size);
	case P_NEW:
	case P_STREAMING:
	case P_SENT: *upload_data_size = 0; return MHD_YES;
	}
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct vs_service *svc = cls;
	struct vs_req *r = *con_cls;
	if (!r)
		return;
	*con_cls = NULL;
	/* out of both watchers' hands before MHD closes the socket and r is
	 * freed; the connection now waits for its next request head (idle
	 * keep-alive) */
	vs_watcher_forget(r);
	vs_watcher_deadline(svc, conn, VS_WATCH_HEADER, NULL);
	/* whatever happened to the request, its slot comes back here at the latest */
	const char *cancelled = vs_req_cancel(r);
	bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || r->phase == P_LINGER;
	int status = ok ? r->status : 499;
	/* a hang-up MHD noticed itself (mid-body, mid-stream): one line */
	if (!ok && !r->gone_logged &&
	    (r->status < 400 || (r->phase == P_STREAMING && !r->stream_failed))) {
		vs_access_client_gone(r, vs_phase_name(r->phase), cancelled);
	}
	vs_access_end(r, status);
	vs_api_key_release(r->key);
	vs_req_clear(r);
	free(r);
}

int vs_http_start(struct vs_service *svc)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)svc->port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6,
	                           .sin6_port = htons((uint16_t)svc->port)};
	struct sockaddr *addr = (struct sockaddr *)&sa;
	int e = vs_watcher_start(svc);
	if (e < 0)
		return e;
	if (svc->kind == VS_ENGINE_ASR && (e = vs_rt_start(svc)) < 0)
		return e;
	/* poll, not epoll: 0.9.75's edge-triggered epoll misses the hang-up of a
	 * client whose head, body start and FIN arrive together, and the slot
	 * stays taken until the stall timeout */
	/* MHD_ALLOW_UPGRADE: GET /v1/realtime becomes a WebSocket (realtime.c) */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
	                 MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
	if (inet_pton(AF_INET6, svc->cfg->host, &sa6.sin6_addr) == 1) {
		addr = (struct sockaddr *)&sa6;
		flags |= MHD_USE_IPv6;
	} else if (inet_pton(AF_INET, svc->cfg->host, &sa.sin_addr) != 1) {
		vs_error("event=start_failed setting=HOST value=%s msg=\"HOST must be an IP "
		         "address\"",
		         svc->cfg->host);
		return -EINVAL;
	}
	svc->daemon = MHD_start_daemon(
	        flags, (uint16_t)svc->port, NULL, NULL, on_access, svc, MHD_OPTION_SOCK_ADDR, addr,
	        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)svc->cfg->http_threads,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, svc, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)CONNECTION_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned)svc->cfg->max_connections, MHD_OPTION_NOTIFY_CONNECTION,
	        vs_watcher_notify, svc,
	        /* 0 turns the per-IP limit off (e.g. behind a reverse proxy) */
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)svc->cfg->max_connections_per_ip,
	        MHD_OPTION_END);
	if (!svc->daemon) {
		vs_error("event=start_failed service=%s addr=%s:%d msg=\"Could not listen (port in "
		         "use?)\"",
		         svc->name, svc->cfg->host, svc->port);
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *di =
	        MHD_get_daemon_info(svc->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (di)
		svc->port = di->port;
	/* the specification's `grep -i "...slot..."` shows this line */
	vs_info("event=listening service=%s addr=%s:%d engine=%s max_concurrent=%d max_queue=%d "
	        "reserved=%d msg=\"%d slots, queue of %d\"",
	        svc->name, svc->cfg->host, svc->port, svc->engine->name, svc->slots.max,
	        svc->slots.max_queue, svc->slots.reserved, svc->slots.max, svc->slots.max_queue);
	return 0;
}
