/* reply.c - a request's reply, its suspension and its slot.
 *
 * DESIGN
 * Everything that ends a request's work or sends its answer, whatever phase
 * decided it, goes through here, so the slot is always released before the
 * reply leaves (a client that sends its next request the moment it has read
 * a reply must find the slot free):
 *   - the reply as data (vs_req_set_body, vs_req_set_error: OpenAI error
 *     bodies from src/api);
 *   - queued to libmicrohttpd (vs_req_queue_reply), the normal way, on an
 *     access-handler call after the first (0.9.75 closes keep-alive
 *     connections otherwise), or on the first call for a body we refuse to
 *     read, then closed with a lingering close (watcher.c);
 *   - written by the front itself when decided mid-body (vs_req_reply_mid_body,
 *     the watcher's 408 in vs_req_body_expired): 0.9.75 cannot queue a
 *     response while a body arrives; phase P_LINGER;
 *   - suspension and resumption of the connection, which also move its
 *     socket in and out of the watcher's hang-up set;
 *   - the slot: released when the answer is final, when the worker stops
 *     (job callbacks), or when the request is cancelled (client gone,
 *     completion callback).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/log.h"
#include "http/http.h"

void vs_req_clear(struct vs_req *r)
{
	vs_upload_free(r->up);
	free(r->json);
	json_decref(r->payload);
	free(r->body);
	free(r->sbuf);
	json_decref(r->result);
	pthread_mutex_destroy(&r->mu);
}

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
		vs_watcher_suspended(r);
	}
}

void vs_req_resume_locked(struct vs_req *r)
{
	if (r->suspended) {
		r->suspended = false;
		vs_watcher_resumed(r); /* out of our set before MHD may close the fd */
		MHD_resume_connection(r->conn);
	}
}

/* Gives the slot back as soon as the answer is final, before the reply is
 * sent: a client that sends its next request the moment it has read this
 * reply must find the slot free. Idempotent; the completion callback calls
 * it again for every other path. */
void vs_req_release_slot(struct vs_req *r)
{
	/* whoever takes the slot numbers releases them: an HTTP thread, the
	 * watcher, or a job callback on the reactor (vs_req_worker_done) */
	pthread_mutex_lock(&r->mu);
	int mslot = r->mslot;
	struct vs_model_rt *m = r->m;
	r->slot = -1;
	r->mslot = -1;
	pthread_mutex_unlock(&r->mu);
	if (mslot >= 0)
		vs_pool_detach(m->pool, mslot, &r->job);
	/* the model's slot (or queue place) first: a request waiting for this
	 * model holds a service slot already */
	if (m)
		vs_slots_cancel(&m->slots, &r->mwaiter);
	vs_slots_cancel(&r->svc->slots, &r->waiter);
}

void vs_req_worker_done(struct vs_req *r)
{
	/* no vs_pool_detach: the pool's lock is held and the worker is idle or gone */
	pthread_mutex_lock(&r->mu);
	struct vs_model_rt *m = r->m;
	r->slot = -1;
	r->mslot = -1;
	pthread_mutex_unlock(&r->mu);
	if (m)
		vs_slots_cancel(&m->slots, &r->mwaiter);
	vs_slots_cancel(&r->svc->slots, &r->waiter);
}

const char *vs_req_cancel(struct vs_req *r)
{
	pthread_mutex_lock(&r->mu);
	/* a stream is still being produced (its first frames may have come
	 * before the 200 left: still P_WORKING) */
	bool producing = r->stream_started && !r->stream_end && !r->stream_failed;
	bool working = r->mslot >= 0 && ((r->phase == P_WORKING && (!r->answered || producing)) ||
	                                 (r->phase == P_STREAMING && producing));
	bool queued = (r->phase == P_QUEUED && r->waiter.state == VS_WAIT_QUEUED) ||
	              (r->phase == P_MQUEUED && r->mwaiter.state == VS_WAIT_QUEUED);
	const char *what = queued                          ? "queue_place"
	                   : working                       ? "worker_killed"
	                   : r->slot >= 0 || r->mslot >= 0 ? "slot"
	                                                   : "none";
	pthread_mutex_unlock(&r->mu);
	vs_req_release_slot(r);
	return what;
}

void vs_req_add_headers(struct vs_req *r, struct MHD_Response *resp)
{
	struct vs_model_rt *m = r->m ? r->m : r->asked;
	struct vs_hdr hs[VS_AUTH_HDRS_MAX];
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	if (m)
		MHD_add_response_header(resp, "X-Voicestack-Model", m->spec->id);
	for (int i = 0, n = vs_auth_headers(r, hs); i < n; i++)
		MHD_add_response_header(resp, hs[i].name, hs[i].value);
}

enum MHD_Result vs_req_queue_reply(struct vs_req *r)
{
	if (r->status == MHD_HTTP_SWITCHING_PROTOCOLS) /* the realtime handshake */
		return vs_rt_queue_upgrade(r);
	vs_req_release_slot(r);
	const char *body = r->body ? r->body : "";
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	        strlen(body), (void *)body,
	        r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	r->body = NULL; /* owned by the response now */
	if (!resp)
		return MHD_NO;
	r->resp_bytes = strlen(body);
	vs_req_add_headers(r, resp);
	if (r->ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
	if (r->csp[0])
		MHD_add_response_header(resp, "Content-Security-Policy", r->csp);
	if (r->retry_after > 0) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%d", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (r->close_after) {
		/* the body stays unread: keep the socket past MHD's close and drain it */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
		vs_watcher_linger(r->svc, r->conn);
	}
	if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, vs_route_methods(r->route));
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	r->phase = P_SENT;
	return ret;
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
	char head[1024];
	struct vs_hdr hs[VS_AUTH_HDRS_MAX];
	vs_req_release_slot(r);
	if (!ci)
		return false;
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\nX-Request-Id: %s\r\nConnection: close\r\n",
	                 r->status, MHD_get_reason_phrase_for((unsigned)r->status), strlen(body),
	                 r->request_id);
	/* CORS: a browser script reads this refusal too (a few short lines: they fit) */
	for (int i = 0, k = vs_auth_headers(r, hs); i < k && n < (int)sizeof(head); i++)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "%s: %s\r\n", hs[i].name,
		              hs[i].value);
	if (n < (int)sizeof(head))
		n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	if (n >= (int)sizeof(head))
		return false; /* cannot happen: an origin is under VS_STR_MAX bytes */
	r->resp_bytes = strlen(body);
	struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, strlen(body)}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
	/* a few hundred bytes: they fit in an empty send buffer */
	if (sendmsg(ci->connect_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return false;
	shutdown(ci->connect_fd, SHUT_WR);
	return true;
}

enum MHD_Result vs_req_reply_mid_body(struct vs_req *r)
{
	if (write_reply(r))
		vs_watcher_linger(r->svc, r->conn);
	return MHD_NO; /* MHD closes its side; the watcher drains what still comes */
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

enum MHD_Result vs_req_reply_or_discard(struct vs_req *r, size_t *upload_data_size)
{
	if (*upload_data_size == 0 || r->large_body) {
		*upload_data_size = 0;
		return vs_req_queue_reply(r); /* a large refused body is not read: MHD closes */
	}
	*upload_data_size = 0;
	r->phase = P_DISCARD;
	return MHD_YES;
}
