/* http.h - the HTTP front's internal types (libmicrohttpd).
 *
 * DESIGN
 * One MHD daemon per service (ASR port, TTS port), poll with an internal
 * thread pool (0.9.75's epoll mode misses some hang-ups mid-body, see
 * docs/ARCHITECTURE.md). A request never parks an HTTP thread: while it waits for a
 * slot (queue) or for its worker's answer, its connection is suspended
 * (MHD_suspend_connection) and the reactor or the slot hand-over resumes it.
 *
 * Life of a request (struct vs_req, one per connection request):
 *
 *   NEW --admission--> QUEUED (suspended) --slot--> BODY --complete--> WORKING
 *    |                   |timeout/full             |limit/invalid      |(suspended)
 *    v                   v                         v                   v
 *   REPLY / DISCARD ---------------------------> queue response <-- answer / stream
 *
 * Admission happens on the first call, before any body byte is read:
 * framing (400), resource guard (503), declared size (413), slots (429 or
 * queue). A speech request (POST /v1/audio/speech) goes NEW -> BODY without a
 * slot and asks for one (QUEUED, 429) only once its JSON is read and parsed.
 * The connection watcher (conns.c) bounds the phases MHD does not: the
 * request head and idle keep-alive (HEADER_TIMEOUT_SECONDS, the socket is
 * shut down) and the whole BODY (BODY_TIMEOUT_SECONDS, 408 and the slot
 * freed at once).
 * The slot is released the moment the worker stops working for the request
 * (last frame, crash, timeout: job callbacks; client gone: watch.c), so
 * neither a slow reader nor a departed client holds it, and at the latest by
 * the completion callback, whatever the path. While a connection is
 * suspended, watch.c watches its socket for a hang-up.
 *
 * Responses are queued on the second access-handler call, not the first:
 * libmicrohttpd 0.9.75 closes keep-alive connections otherwise. The
 * exception is refusing a body we do not want to read (chunked, over 8 MiB,
 * or sent with Expect: 100-continue): answering at once (instead of
 * "100 Continue") lets the client stop sending, and the connection ends with
 * a lingering close (conns.c) so a client still sending reads the reply.
 * Replies decided mid-body are written by the front itself (P_LINGER).
 */
#ifndef VS_HTTP_H
#define VS_HTTP_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "admit/guard.h"
#include "common/time.h"
#include "admit/slots.h"
#include "config/config.h"
#include "engine/engine.h"
#include "api/openai.h"
#include "worker/pool.h"

enum vs_watch { VS_WATCH_NONE = 0, VS_WATCH_HEADER, VS_WATCH_BODY };

struct vs_conn;
struct vs_linger;

/* the connections of one service and their watcher (conns.c) */
struct vs_conns {
	pthread_mutex_t mu;
	struct vs_conn *head;
	struct vs_linger *linger;
	int n_linger;
	pthread_t thread;
};

struct vs_service {
	const char *name; /* "asr" | "tts" */
	enum vs_engine_kind kind;
	const struct vs_config *cfg;
	const struct vs_engine_ops *engine;
	char models_hint[256];
	struct vs_pool *pool;
	struct vs_slots slots;
	struct vs_guard *guard; /* shared by both services */
	struct MHD_Daemon *daemon;
	int port;
	double idle_timeout_minutes;
	uint64_t started_ms;
	uint64_t max_body_bytes;
	pthread_mutex_t voices_mu;
	char *voices_json; /* cached GET /v1/audio/voices body */
	struct vs_conns conns;
};

enum vs_route {
	R_NONE = 0,
	R_TRANSCRIBE,
	R_TRANSLATE,
	R_SPEECH,
	R_VOICES,
	R_MODELS,
	R_HEALTH,
	R_HEALTH_DETAILED,
	R_HEALTH_READY,
	R_METRICS,
};

enum vs_phase {
	P_NEW = 0,
	P_QUEUED,
	P_BODY,
	P_WORKING,
	P_REPLY,
	P_DISCARD, /* reply decided; swallow the (small) body first */
	P_STREAMING,
	P_LINGER, /* reply written by the front itself; MHD closes, conns.c lingers */
	P_SENT,
};

struct vs_upload; /* multipart state, upload.c */

/* longest X-Request-Id accepted from a client (longer ones are replaced) */
#define VS_REQUEST_ID_MAX 64

struct vs_req {
	struct vs_job job; /* first: the pool calls back with &req->job */
	struct vs_service *svc;
	struct MHD_Connection *conn;
	pthread_mutex_t mu;
	enum vs_route route;
	const char *route_label; /* for metrics and logs */
	enum vs_phase phase;
	uint64_t start_ms;
	bool has_body, large_body;
	bool close_after; /* refused with its body unread: close after the reply */
	bool body_read;   /* TTS: the whole body is in before the slot is asked for */
	uint64_t body_bytes;

	struct vs_waiter waiter;
	int slot; /* >= 0 while this request holds a slot */
	uint64_t queue_wait_ms;
	bool suspended;

	/* reply decided by the front */
	int status;
	char *body;
	const char *ctype;
	int retry_after;
	const char *reject_reason; /* "memory", "swap", "slot", "queue", "size", ... */

	/* request payload */
	struct vs_upload *up; /* transcriptions */
	char *json;           /* speech body */
	size_t json_len;
	json_t *payload; /* speech request, parsed before the slot */

	/* worker answer (guarded by mu) */
	bool answered;
	json_t *result;
	struct vs_oai_err err;
	char response_format[16];
	bool want_words;

	/* streaming (guarded by mu) */
	uint8_t *sbuf;
	size_t slen, soff;
	bool stream_started, stream_end, stream_failed, reader_waiting, worker_paused;
	uint64_t stream_bytes;

	/* the connection, for the watcher and the access log (set on the first call) */
	int fd;
	char request_id[VS_REQUEST_ID_MAX + 1];
	char client[48];
	char method[8];
	char model[64];      /* once validated; "" = none */
	uint64_t resp_bytes; /* body bytes handed to MHD (streams: as sent) */

	/* watch.c (guarded by the watcher's lock) */
	bool watched, watch_busy, draining;
	uint64_t drain_deadline_ms;
	struct vs_req *drain_prev, *drain_next;
	/* the watcher saw the client hang up while the request waited (mu) */
	bool client_gone, gone_logged;
};

/* server.c */
int vs_http_start(struct vs_service *svc);
void vs_req_set_error(struct vs_req *r, int status, const char *param, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void vs_req_set_body(struct vs_req *r, int status, char *body, const char *ctype);
/* suspend until the reactor answers (mu held by caller) */
void vs_req_suspend_locked(struct vs_req *r);
void vs_req_resume_locked(struct vs_req *r);
void vs_req_release_slot(struct vs_req *r);
/* From a job callback (pool lock held): the worker no longer works for r,
 * so its slot goes back now (to the next waiter, if any). */
void vs_req_worker_done(struct vs_req *r);
/* The request is abandoned: kills its worker if it still works for it,
 * leaves the queue, releases the slot. Returns what was cancelled:
 * "worker_killed", "queue_place", "slot" or "none". */
const char *vs_req_cancel(struct vs_req *r);

/* the watcher's 408: true when it claimed the request (still in P_BODY),
 * wrote the reply and freed the slot; called with svc->conns.mu held */
bool vs_req_body_expired(struct vs_req *r);

/* conns.c */
int vs_conns_start(struct vs_service *svc);
void vs_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);
/* sets the connection's deadline (HEADER/BODY) or clears it (NONE); r is the
 * request a BODY deadline answers. Not with r->mu held. */
void vs_conn_watch(struct vs_service *svc, struct MHD_Connection *conn, enum vs_watch w,
                   struct vs_req *r);
/* keep the socket after MHD closes it and drain the client's input (lingering close) */
void vs_conn_linger(struct vs_service *svc, struct MHD_Connection *conn);

/* access.c: request id, client address, the access-log line and the
 * request's metrics (obs/stats.h) */
void vs_access_begin(struct vs_req *r, const char *method);
/* the request ended with status: event=access line and request metrics */
void vs_access_end(struct vs_req *r, int status);
/* "client_gone" line and metric when a client hangs up mid-request (once per request) */
void vs_access_client_gone(struct vs_req *r, const char *phase, const char *cancelled);
const char *vs_phase_name(enum vs_phase p);

/* watch.c: the sockets of suspended connections, and drain deadlines.
 * suspended/resumed are called with r->mu held (the watcher's lock comes
 * after it); forget from the completion callback, before r is freed. */
void vs_watch_suspended(struct vs_req *r);
void vs_watch_resumed(struct vs_req *r);
void vs_watch_drain(struct vs_req *r);
void vs_watch_forget(struct vs_req *r);

/* admission.c: true when the request may read its body now; false when a
 * reply is set or the request is queued (r->phase says which).
 * vs_admit = vs_admit_precheck (guard 503, declared size 413) then
 * vs_admit_slot (429 or queue). */
bool vs_admit(struct vs_req *r);
bool vs_admit_precheck(struct vs_req *r);
bool vs_admit_slot(struct vs_req *r);
void vs_admit_waiter_wake(struct vs_waiter *w);
/* sets the 429 reply of a request whose queue wait ran out */
void vs_admit_queue_expired(struct vs_req *r);

/* upload.c: multipart/form-data for transcriptions */
int vs_upload_begin(struct vs_req *r);
int vs_upload_feed(struct vs_req *r, const char *data, size_t len);
/* finishes parsing; on success submits the job. Sets the reply on error. */
void vs_asr_body_done(struct vs_req *r);
void vs_upload_free(struct vs_upload *u);
extern const struct vs_job_ops vs_asr_job_ops;
void vs_asr_render(struct vs_req *r);
void vs_job_on_fail(struct vs_job *job, int status, const char *message, const char *code);

/* tts.c: parse (no slot needed; sets the reply on error), then submit on r->slot */
int vs_tts_parse(struct vs_req *r);
void vs_tts_submit(struct vs_req *r);
void vs_tts_voices(struct vs_req *r);
void vs_tts_voices_render(struct vs_req *r);
int vs_tts_queue_stream(struct vs_req *r);
extern const struct vs_job_ops vs_tts_job_ops;

/* health.c: bodies of the health routes and /v1/models; the /metrics body
 * (service gauges sampled into obs/stats.h, then the whole registry) */
char *vs_health_detailed(struct vs_service *svc, int *status);
char *vs_health_ready(struct vs_service *svc, int *status);
char *vs_models_json(struct vs_service *svc);
/* the services /metrics reports (once, before the daemons start) */
void vs_http_observe(struct vs_service *const *svcs, int n);
char *vs_metrics_body(void);

#endif
