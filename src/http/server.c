/* server.c - libmicrohttpd daemons, routing, admission and replies.
 * See http.h for the request life cycle. Runs on MHD's pool threads.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "http/http.h"

/* A refused request body up to this size is read and dropped before the
 * reply, so the connection stays usable and the client is not reset while
 * still sending (closing a socket with unread input makes the kernel send
 * RST, which can destroy the reply in flight). Larger bodies, chunked ones
 * and those sent with Expect: 100-continue are refused at once (instead of
 * "100 Continue"), and the connection is closed with a lingering close
 * (conns.c), so a client that sends its body anyway still reads the reply. */
#define DISCARD_MAX_BYTES (8 * 1024 * 1024)
/* idle keep-alive connections are closed after this */
#define CONNECTION_IDLE_TIMEOUT_S 120

void vs_req_set_body(struct vs_req *r, int status, char *body, const char *ctype)
{
	free(r->body);
	r->status = status;
	r->body = body;
	r->ctype = ctype;
}

void vs_req_set_error(struct vs_req *r, int status, const char *param, const char *code,
                      const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vs_req_set_body(r, status, vs_oai_error_body(status, msg, param, code), "application/json");
}

void vs_req_suspend_locked(struct vs_req *r)
{
	if (!r->suspended) {
		r->suspended = true;
		MHD_suspend_connection(r->conn);
		/* MHD stops watching the socket: we watch it for a hang-up */
		vs_watch_suspended(r);
	}
}

void vs_req_resume_locked(struct vs_req *r)
{
	if (r->suspended) {
		r->suspended = false;
		vs_watch_resumed(r); /* out of our set before MHD may close the fd */
		MHD_resume_connection(r->conn);
	}
}

/* Gives the slot back as soon as the answer is final, before the reply is
 * sent: a client that sends its next request the moment it has read this
 * reply must find the slot free. Idempotent; the completion callback calls
 * it again for every other path. */
void vs_req_release_slot(struct vs_req *r)
{
	/* whoever takes the slot number releases it: an HTTP thread, the
	 * watcher, or a job callback on the reactor (vs_req_worker_done) */
	pthread_mutex_lock(&r->mu);
	int slot = r->slot;
	r->slot = -1;
	pthread_mutex_unlock(&r->mu);
	if (slot >= 0)
		vs_pool_detach(r->svc->pool, slot, &r->job);
	vs_slots_cancel(&r->svc->slots, &r->waiter);
}

void vs_req_worker_done(struct vs_req *r)
{
	/* no vs_pool_detach: the pool's lock is held and the worker is idle or gone */
	pthread_mutex_lock(&r->mu);
	r->slot = -1;
	pthread_mutex_unlock(&r->mu);
	vs_slots_cancel(&r->svc->slots, &r->waiter);
}

const char *vs_req_cancel(struct vs_req *r)
{
	pthread_mutex_lock(&r->mu);
	bool working =
	        r->slot >= 0 && ((r->phase == P_WORKING && !r->answered) ||
	                         (r->phase == P_STREAMING && !r->stream_end && !r->stream_failed));
	const char *what = r->phase == P_QUEUED && r->waiter.state == VS_WAIT_QUEUED ? "queue_place"
	                   : working      ? "worker_killed"
	                   : r->slot >= 0 ? "slot"
	                                  : "none";
	pthread_mutex_unlock(&r->mu);
	vs_req_release_slot(r);
	return what;
}

static enum MHD_Result queue_reply(struct vs_req *r)
{
	vs_req_release_slot(r);
	const char *body = r->body ? r->body : "";
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	        strlen(body), (void *)body,
	        r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	r->body = NULL; /* owned by the response now */
	if (!resp)
		return MHD_NO;
	r->resp_bytes = strlen(body);
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	if (r->ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
	if (r->retry_after > 0) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (r->close_after) {
		/* the body stays unread: keep the socket past MHD's close and drain it */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
		vs_conn_linger(r->svc, r->conn);
	}
	if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		                        (r->route == R_TRANSCRIBE || r->route == R_TRANSLATE ||
		                         r->route == R_SPEECH)
		                                ? "POST"
		                                : "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	r->phase = P_SENT;
	return ret;
}

/* ---- routing ---- */

static const struct {
	const char *path;
	enum vs_route route;
	const char *method;
	int kinds; /* bit mask of services serving it */
} routes[] = {
        {"/v1/audio/transcriptions", R_TRANSCRIBE, "POST", 1 << VS_ENGINE_ASR},
        {"/v1/audio/translations", R_TRANSLATE, "POST", 1 << VS_ENGINE_ASR},
        {"/v1/audio/speech", R_SPEECH, "POST", 1 << VS_ENGINE_TTS},
        {"/v1/audio/voices", R_VOICES, "GET", 1 << VS_ENGINE_TTS},
        {"/v1/models", R_MODELS, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS)},
        {"/health", R_HEALTH, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS)},
        {"/health/detailed", R_HEALTH_DETAILED, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS)},
        {"/health/ready", R_HEALTH_READY, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS)},
        {"/metrics", R_METRICS, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS)},
};

static bool method_is(const char *method, const char *want)
{
	if (strcmp(want, "GET") == 0)
		return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	return strcmp(method, want) == 0;
}

/* Returns true when the route exists and the method fits; otherwise sets the
 * 404/405 reply. */
static bool route_request(struct vs_req *r, const char *url, const char *method)
{
	size_t len = strlen(url);
	while (len > 1 && url[len - 1] == '/')
		len--; /* "/health/" is "/health" */
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strlen(routes[i].path) != len || strncmp(routes[i].path, url, len) != 0)
			continue;
		if (!(routes[i].kinds & (1 << r->svc->kind)))
			break;
		r->route = routes[i].route;
		r->route_label = routes[i].path;
		if (!method_is(method, routes[i].method)) {
			vs_req_set_error(r, 405, NULL, "method_not_allowed",
			                 "Method %s is not allowed on %s; use %s", method,
			                 routes[i].path, routes[i].method);
			return false;
		}
		return true;
	}
	r->route_label = "other";
	vs_req_set_error(r, 404, NULL, "not_found", "No route %s %.200s on the %s service", method,
	                 url, r->svc->name);
	return false;
}

/* ---- the access handler ---- */

static bool needs_slot(enum vs_route rt)
{
	return rt == R_TRANSCRIBE || rt == R_SPEECH || rt == R_VOICES;
}

static void body_complete(struct vs_req *r)
{
	switch (r->route) {
	case R_TRANSCRIBE: vs_asr_body_done(r); break;
	case R_VOICES: vs_tts_voices(r); break;
	default: break;
	}
}

static void simple_get(struct vs_req *r)
{
	int status = 200;
	char *body = NULL;
	switch (r->route) {
	case R_HEALTH: body = strdup("{\"status\":\"ok\"}"); break;
	case R_HEALTH_DETAILED: body = vs_health_detailed(r->svc, &status); break;
	case R_HEALTH_READY: body = vs_health_ready(r->svc, &status); break;
	case R_MODELS: body = vs_models_json(r->svc); break;
	case R_METRICS:
		vs_req_set_body(r, 200, vs_metrics_body(),
		                "text/plain; version=0.0.4; charset=utf-8");
		return;
	case R_TRANSLATE:
		vs_req_set_error(r, 400, "model", "unsupported_operation",
		                 "Translation is not supported by the %s engine; use "
		                 "/v1/audio/transcriptions",
		                 r->svc->engine->name);
		return;
	default: break;
	}
	vs_req_set_body(r, status, body, "application/json");
}

/* The body phase: MHD's per-connection timeout becomes the upload stall
 * timeout (no byte for that long), and the watcher (conns.c) bounds the
 * whole body by BODY_TIMEOUT_SECONDS, which a trickle cannot extend. */
static void enter_body(struct vs_req *r)
{
	r->phase = P_BODY;
	MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT,
	                          (unsigned)r->svc->cfg->upload_stall_timeout_seconds);
	vs_conn_watch(r->svc, r->conn, VS_WATCH_BODY, r);
	if (r->route == R_TRANSCRIBE && vs_upload_begin(r) < 0)
		r->phase = P_REPLY; /* reply set by vs_upload_begin */
}

struct cl_scan {
	const char *first;
	bool differ;
};

static enum MHD_Result scan_cl(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
	struct cl_scan *c = cls;
	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
		return MHD_YES;
	if (!c->first)
		c->first = value;
	else if (strcmp(c->first, value) != 0)
		c->differ = true;
	return MHD_YES;
}

/* Framing a proxy in front may read differently (request smuggling), or a
 * body whose end we cannot find: refused with 400, and the connection is
 * closed since where the next request starts is unknown. libmicrohttpd 0.9.75
 * takes the first Content-Length and ignores a Transfer-Encoding other than
 * chunked. */
static bool framing_ok(struct vs_req *r, const char *te, const char *cl)
{
	struct cl_scan scan = {0};
	const char *why = NULL;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_cl, &scan);
	if (scan.differ)
		why = "Conflicting Content-Length headers";
	else if (te && cl)
		why = "Transfer-Encoding and Content-Length together";
	else if (te && strcasecmp(te, "chunked") != 0)
		why = "Unsupported Transfer-Encoding (only chunked is accepted)";
	if (!why)
		return true;
	r->close_after = r->large_body = true;
	r->reject_reason = "framing";
	vs_req_set_error(r, 400, NULL, "invalid_request_framing", "%s", why);
	vs_info("event=reject reason=framing service=%s status=400 msg=\"%s\"", r->svc->name, why);
	return false;
}

static void new_request(struct vs_req *r, const char *url, const char *method)
{
	const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_TRANSFER_ENCODING);
	const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *expect =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
	r->has_body = te || (cl && strcmp(cl, "0") != 0);
	r->large_body = r->has_body && (te || expect || strtoull(cl, NULL, 10) > DISCARD_MAX_BYTES);
	r->close_after = r->large_body;
	r->phase = P_REPLY;

	if (!framing_ok(r, te, cl) || !route_request(r, url, method))
		return;
	if (r->route == R_TRANSCRIBE || r->route == R_SPEECH) {
		const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_TYPE);
		const char *want =
		        r->route == R_TRANSCRIBE ? "multipart/form-data" : "application/json";
		if (!ct || strncasecmp(ct, want, strlen(want)) != 0) {
			vs_req_set_error(r, 415, NULL, "unsupported_media_type",
			                 "Content-Type must be %s (got %.100s)", want,
			                 ct ? ct : "none");
			return;
		}
	}
	if (!needs_slot(r->route)) {
		simple_get(r);
		return;
	}
	/* a speech body is a small JSON document: read and parse it before a
	 * slot is asked for, so a slow sender never holds one */
	if (r->route == R_SPEECH ? vs_admit_precheck(r) : vs_admit(r))
		enter_body(r);
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

/* A reply decided while the body is still arriving (a chunked upload passing
 * the limit, a multipart body found malformed half-way). libmicrohttpd
 * 0.9.75 refuses MHD_queue_response() while a body is being received, and
 * closing straight away would reset a client that is still sending (RST
 * destroys the reply in flight). So the reply is written to the socket here,
 * the write side is shut, and the rest of the body is read and dropped for
 * a bounded time (nginx's "lingering close") until the client, having read
 * the reply, closes. */
static bool write_reply(struct vs_req *r)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	const char *body = r->body ? r->body : "";
	char head[256];
	vs_req_release_slot(r);
	if (!ci)
		return false;
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n",
	                 r->status, MHD_get_reason_phrase_for((unsigned)r->status), strlen(body),
	                 r->request_id);
	r->resp_bytes = strlen(body);
	struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, strlen(body)}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	/* a few hundred bytes: they fit in an empty send buffer */
	if (sendmsg(ci->connect_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return false;
	shutdown(ci->connect_fd, SHUT_WR);
	return true;
}

/* r->phase is P_LINGER (claimed under r->mu by the caller) */
static enum MHD_Result reply_mid_body(struct vs_req *r)
{
	if (write_reply(r))
		vs_conn_linger(r->svc, r->conn);
	return MHD_NO; /* MHD closes its side; conns.c drains what still comes */
}

bool vs_req_body_expired(struct vs_req *r)
{
	struct vs_service *svc = r->svc;
	pthread_mutex_lock(&r->mu);
	bool mine = r->phase == P_BODY;
	if (mine) {
		r->phase = P_LINGER;
		r->reject_reason = "body_timeout";
		vs_req_set_error(r, 408, NULL, "body_timeout",
		                 "The request body did not arrive in full within "
		                 "BODY_TIMEOUT_SECONDS=%g (%llu bytes received)",
		                 svc->cfg->body_timeout_seconds, (unsigned long long)r->body_bytes);
		vs_info("event=reject reason=body_timeout service=%s status=408 bytes=%llu "
		        "timeout_s=%g msg=\"Request body too slow\"",
		        svc->name, (unsigned long long)r->body_bytes,
		        svc->cfg->body_timeout_seconds);
	}
	pthread_mutex_unlock(&r->mu);
	return mine && write_reply(r);
}

/* Decides what to do with a reply that is set while a body may still come. */
static enum MHD_Result reply_or_discard(struct vs_req *r, size_t *upload_data_size)
{
	if (*upload_data_size == 0 || r->large_body) {
		*upload_data_size = 0;
		return queue_reply(r); /* a large refused body is not read: MHD closes */
	}
	*upload_data_size = 0;
	r->phase = P_DISCARD;
	return MHD_YES;
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
	if (r->route == R_SPEECH && r->stream_started && !r->err.status)
		return vs_tts_queue_stream(r) == 0 ? MHD_YES : MHD_NO;
	finish_answer(r);
	return queue_reply(r);
}

static enum MHD_Result submitted(struct vs_req *r)
{
	return r->phase == P_WORKING ? working(r) : queue_reply(r);
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
 * slot; a transcription has held one since its headers. */
static enum MHD_Result body_done(struct vs_req *r)
{
	vs_conn_watch(r->svc, r->conn, VS_WATCH_NONE, NULL);
	MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT,
	                          (unsigned)CONNECTION_IDLE_TIMEOUT_S);
	if (r->route != R_SPEECH) {
		body_complete(r);
		return submitted(r);
	}
	r->body_read = true;
	if (vs_tts_parse(r) < 0)
		return queue_reply(r);
	if (vs_admit_slot(r)) {
		vs_tts_submit(r);
		return submitted(r);
	}
	if (r->phase != P_QUEUED)
		return queue_reply(r);
	pthread_mutex_lock(&r->mu);
	if (r->waiter.state == VS_WAIT_QUEUED)
		vs_req_suspend_locked(r);
	pthread_mutex_unlock(&r->mu);
	return MHD_YES;
}

static enum MHD_Result on_body(struct vs_req *r, const char *upload_data, size_t *upload_data_size)
{
	pthread_mutex_lock(&r->mu);
	if (r->phase != P_BODY) {
		/* the watcher answered 408 meanwhile: let MHD close, conns.c lingers */
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
		return reply_mid_body(r);
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
		r->start_ms = vs_now_ms();
		r->waiter.wake = vs_admit_waiter_wake;
		vs_access_begin(r, method);
		*con_cls = r;
		vs_conn_watch(svc, conn, VS_WATCH_NONE, NULL); /* the head is in */
		new_request(r, url, method);
		r->job.ops = r->route == R_TRANSCRIBE ? &vs_asr_job_ops : &vs_tts_job_ops;
		/* refuse an unwanted large body now, before the client sends it
		 * (and instead of "100 Continue") */
		if (r->phase == P_REPLY && r->large_body && r->status >= 400)
			return queue_reply(r);
		if (r->phase == P_QUEUED) {
			pthread_mutex_lock(&r->mu);
			if (r->waiter.state == VS_WAIT_QUEUED)
				vs_req_suspend_locked(r);
			pthread_mutex_unlock(&r->mu);
		}
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
			return reply_or_discard(r, upload_data_size);
		}
		r->slot = r->waiter.slot;
		if (r->body_read) { /* speech: parsed, waiting for this slot only */
			vs_tts_submit(r);
			return submitted(r);
		}
		enter_body(r);
		if (r->phase == P_REPLY)
			return reply_or_discard(r, upload_data_size);
		/* MHD repeats the headers-only call after a resume: an empty
		 * call here is not the end of the body, which is still unread */
		if (*upload_data_size == 0)
			return MHD_YES;
		return on_body(r, upload_data, upload_data_size);
	case P_BODY: return on_body(r, upload_data, upload_data_size);
	case P_WORKING: return working(r);
	case P_LINGER:
		/* the reply is written; MHD closes and conns.c drains the rest */
		*upload_data_size = 0;
		return MHD_NO;
	case P_DISCARD:
		if (*upload_data_size > 0) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		return queue_reply(r);
	case P_REPLY: return reply_or_discard(r, upload_data_size);
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
	vs_watch_forget(r);
	vs_conn_watch(svc, conn, VS_WATCH_HEADER, NULL);
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
	vs_upload_free(r->up);
	free(r->json);
	json_decref(r->payload);
	free(r->body);
	free(r->sbuf);
	json_decref(r->result);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int vs_http_start(struct vs_service *svc)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)svc->port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6,
	                           .sin6_port = htons((uint16_t)svc->port)};
	struct sockaddr *addr = (struct sockaddr *)&sa;
	int e = vs_conns_start(svc);
	if (e < 0)
		return e;
	/* poll, not epoll: 0.9.75's edge-triggered epoll misses the hang-up of a
	 * client whose head, body start and FIN arrive together, and the slot
	 * stays taken until the stall timeout */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
	                 MHD_USE_ERROR_LOG;
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
	        (unsigned)svc->cfg->max_connections, MHD_OPTION_NOTIFY_CONNECTION, vs_conns_notify,
	        svc,
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
	vs_info("event=listening service=%s addr=%s:%d engine=%s max_concurrent=%d max_queue=%d",
	        svc->name, svc->cfg->host, svc->port, svc->engine->name, svc->slots.max,
	        svc->slots.max_queue);
	return 0;
}
