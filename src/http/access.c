/* access.c - request ids and the access log.
 *
 * DESIGN
 * Every request gets an id on its first access-handler call: the client's
 * X-Request-Id when it is sane (1..64 of [A-Za-z0-9._-], so it can go into a
 * log line and a header as is), otherwise 16 random hex digits. The id is
 * sent back as X-Request-Id on every reply, refusals and streams included,
 * and ends the request's one event=access line, written by the completion
 * callback (so it has the final status and byte count). A client that hangs
 * up mid-request gets one more line, event=client_gone, from whoever notices
 * it first (the watcher, or the completion callback).
 *
 * The same two moments feed the metrics: the access line and the request's
 * record for obs/stats.h are written together, so the log and /metrics
 * always count the same requests. With API keys, both carry the key's name
 * (key=NAME), never the key. A realtime session is one request (its access
 * line, status 101, when the session ends) and each of its turns one more
 * (method=WS, written when the turn is transcribed or refused), all under
 * route /v1/realtime.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"
#include "common/text.h"
#include "http/http.h"
#include "obs/stats.h"

static bool id_ok(const char *s)
{
	return s && vs_label_ok(s, strlen(s), VS_REQUEST_ID_MAX);
}

static void new_id(char *out)
{
	static uint64_t counter;
	uint64_t v;
	/* uniqueness, not secrecy: a counter stands in if getrandom fails */
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^ vs_now_ms() << 20;
	snprintf(out, 17, "%016llx", (unsigned long long)v);
}

static void client_address(struct vs_req *r)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	snprintf(r->client, sizeof(r->client), "-");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client,
		          sizeof(r->client));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client,
		          sizeof(r->client));
}

void vs_access_begin(struct vs_req *r, const char *method)
{
	const char *in = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
	if (id_ok(in))
		snprintf(r->request_id, sizeof(r->request_id), "%s", in);
	else
		new_id(r->request_id);
	client_address(r);
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	r->fd = ci ? ci->connect_fd : -1;
	/* MHD accepts any token as a method: keep the log line parseable */
	size_t i = 0;
	for (; method[i] && i + 1 < sizeof(r->method); i++)
		r->method[i] = (method[i] >= 'A' && method[i] <= 'Z') ? method[i] : '_';
	r->method[i] = 0;
}

const char *vs_phase_name(enum vs_phase p)
{
	static const char *const names[] = {
	        [P_NEW] = "new",         [P_QUEUED] = "queued",
	        [P_BODY] = "body",       [P_MQUEUED] = "model_queued",
	        [P_WORKING] = "working", [P_REPLY] = "reply",
	        [P_DISCARD] = "discard", [P_STREAMING] = "streaming",
	        [P_LINGER] = "linger",   [P_SENT] = "sent",
	};
	return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

void vs_access_client_gone(struct vs_req *r, const char *phase, const char *cancelled)
{
	r->gone_logged = true;
	vs_stats_client_gone(r->svc->name, phase);
	vs_info("event=client_gone service=%s route=%s phase=%s cancelled=%s request_id=%s "
	        "elapsed_ms=%llu msg=\"The client hung up before its answer was complete\"",
	        r->svc->name, r->route_label ? r->route_label : "other", phase, cancelled,
	        r->request_id, (unsigned long long)(vs_now_ms() - r->start_ms));
}

/* what real-time factor is made of (stats.h), for a request that ended
 * with status; a realtime session's request is used again by its next
 * turn, so what was taken is cleared */
static void record_audio(struct vs_req *r, int status, uint64_t start_ms,
                         struct vs_request_record *rec)
{
	bool ok = status >= 200 && status < 300;
	rec->has_audio_in = ok && r->has_audio_in;
	rec->audio_in_s = r->audio_in_s;
	rec->has_audio_out = ok && r->has_audio_out;
	rec->audio_out_s = r->audio_out_s;
	/* the worker's time, for the same requests only: RTF divides the two */
	rec->has_work = (rec->has_audio_in || rec->has_audio_out) && r->job.submit_ms &&
	                r->job.done_ms >= r->job.submit_ms;
	rec->work_s = (double)(r->job.done_ms - r->job.submit_ms) / 1000.0;
	rec->has_ttfb = r->first_audio_ms >= start_ms;
	rec->ttfb_s = (double)(r->first_audio_ms - start_ms) / 1000.0;
	r->has_audio_in = r->has_audio_out = false;
	r->first_audio_ms = 0;
}

void vs_access_end(struct vs_req *r, int status)
{
	uint64_t elapsed_ms = vs_now_ms() - r->start_ms;
	const struct vs_model_rt *m = r->m ? r->m : r->asked;
	struct vs_request_record rec = {
	        .model = m ? m->spec->id : NULL,
	        .service = r->svc->name,
	        .route = r->route_label ? r->route_label : "other",
	        .status = status,
	        .duration_s = (double)elapsed_ms / 1000.0,
	        .queue_wait_s = r->waiter.enqueued_ms || r->mwaiter.enqueued_ms
	                                ? (double)r->queue_wait_ms / 1000.0
	                                : -1.0,
	        .reject_reason = r->reject_reason,
	        .key = r->key ? r->key->name : NULL,
	        .lane = vs_lane_name(r->lane),
	};
	record_audio(r, status, r->start_ms, &rec);
	vs_stats_request_done(&rec);
	vs_info("event=access service=%s method=%s route=%s status=%d bytes=%llu "
	        "duration_ms=%llu queue_ms=%llu model=%s served_by=%s key=%s lane=%s client=%s "
	        "request_id=%s",
	        r->svc->name, r->method[0] ? r->method : "-",
	        r->route_label ? r->route_label : "other", status,
	        (unsigned long long)r->resp_bytes, (unsigned long long)elapsed_ms,
	        (unsigned long long)r->queue_wait_ms, r->model[0] ? r->model : "-",
	        m ? m->spec->id : "-", r->key ? r->key->name : "-", vs_lane_name(r->lane),
	        r->client, r->request_id);
}

void vs_access_turn(struct vs_req *r, int status, uint64_t start_ms, const char *item_id)
{
	uint64_t elapsed_ms = vs_now_ms() - start_ms;
	const struct vs_model_rt *m = r->m ? r->m : r->asked;
	struct vs_request_record rec = {
	        .model = m ? m->spec->id : NULL,
	        .service = r->svc->name,
	        .route = r->route_label,
	        .status = status,
	        .duration_s = (double)elapsed_ms / 1000.0,
	        .queue_wait_s = r->waiter.enqueued_ms || r->mwaiter.enqueued_ms
	                                ? (double)r->queue_wait_ms / 1000.0
	                                : -1.0,
	        .reject_reason = status >= 400 ? r->reject_reason : NULL,
	        .key = r->key ? r->key->name : NULL,
	};
	record_audio(r, status, start_ms, &rec);
	vs_stats_request_done(&rec);
	vs_info("event=access service=%s method=WS route=%s status=%d duration_ms=%llu "
	        "queue_ms=%llu model=%s key=%s client=%s request_id=%s item=%s",
	        r->svc->name, r->route_label, status, (unsigned long long)elapsed_ms,
	        (unsigned long long)r->queue_wait_ms, m ? m->spec->id : "-",
	        r->key ? r->key->name : "-", r->client, r->request_id, item_id);
}
