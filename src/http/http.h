/* http.h - the HTTP front's internal types (libmicrohttpd).
 *
 * DESIGN
 * One MHD daemon per service (ASR port, TTS port), poll with an internal
 * thread pool (0.9.75's epoll mode misses some hang-ups mid-body, see
 * docs/ARCHITECTURE.md). A request never parks an HTTP thread: while it waits
 * for a slot (queue), for its worker's answer or for the next audio frame,
 * its connection is suspended (MHD_suspend_connection) and the slot
 * hand-over or the reactor resumes it.
 *
 * Files: server.c (daemons, the access-handler state machine), route.c (the
 * first call), reply.c (replies, suspension, the slot), admission.c, upload.c
 * (transcriptions), tts.c (speech, voices), stream.c (streamed answers:
 * audio and server-sent events), watcher.c (the one
 * connection watcher thread per service), access.c (ids, access log, request
 * metrics), health.c (health, models, /metrics bodies).
 *
 * Life of a request (struct vs_req, r->phase; (s) = connection suspended):
 *
 *   NEW --refused (400 framing, 404/405, 415, 503, 413, 429), simple GET--> REPLY
 *    |  \--transcription, no free slot, room in the queue--> QUEUED (s)
 *    |                                                   |slot   |expired
 *    |  transcription holding a slot, or speech          |       v
 *    v                                                   |      REPLY
 *   BODY <--------------------(transcription)------------+
 *    |  \--413 over the limit, malformed large body, 408 deadline--> LINGER
 *    |       (the front writes the reply; MHD closes; the watcher lingers)
 *    |complete; speech asks for its slot only now: QUEUED (s) or 429 REPLY
 *    |          (and from QUEUED goes on to its model's slot when granted)
 *    |then the slot of the model the body names (vs_admit_model):
 *    |   granted (or its fallback's, degrading) -> WORKING,
 *    |   its queue -> MQUEUED (s) --granted--> WORKING | --expired--> 429 REPLY
 *    |   full -> 429 REPLY
 *    v
 *   WORKING (s) --answer or error--> REPLY
 *    |first audio frame (speech)
 *    v
 *   STREAMING (s while nothing is buffered) --END, error--> completion
 *
 *   REPLY --no body--------------------------------------> SENT (queued to MHD)
 *         --small body--> DISCARD (read and dropped) ----> SENT
 *         --large, chunked or Expect body: at once, Connection: close--> SENT,
 *           then a lingering close (watcher.c)
 *
 * In words: admission happens on the first call, before any body byte is
 * read: framing (400), a CORS preflight (204) or the API key (401; auth.c),
 * route (404/405), content type (415), the lane headers (400), resource
 * guard (503), declared size (413), slots in the request's priority lane
 * (429 or queue). A speech request
 * (POST /v1/audio/speech) goes NEW -> BODY without a slot and asks for one
 * (QUEUED, 429) only once its JSON is read and parsed; granted, it goes
 * straight to WORKING. A transcription holds its slot from the head on and
 * goes QUEUED -> BODY when its slot comes. A reply decided mid-body (413 of
 * a chunked upload, a malformed multipart body, the watcher's 408 past
 * BODY_TIMEOUT_SECONDS) is written by the front itself (LINGER): 0.9.75
 * cannot queue a response while a body arrives. Any phase ends in the
 * completion callback (server.c), which releases the slot at the latest,
 * writes the access line and frees r.
 *
 * The connection watcher (watcher.c) bounds the phases MHD does not: the
 * request head and idle keep-alive (HEADER_TIMEOUT_SECONDS, the socket is
 * shut down), the whole BODY (BODY_TIMEOUT_SECONDS, 408 and the slot freed
 * at once), and the TTS drain (TTS_DRAIN_TIMEOUT_SECONDS); it watches every
 * suspended connection for a hang-up and lingers on closed connections whose
 * client may still send.
 * The slot is released the moment the worker stops working for the request
 * (last frame, crash, timeout: job callbacks; client gone: the watcher), so
 * neither a slow reader nor a departed client holds it, and at the latest by
 * the completion callback, whatever the path.
 *
 * Responses are queued on the second access-handler call, not the first:
 * libmicrohttpd 0.9.75 closes keep-alive connections otherwise. The
 * exception is refusing a body we do not want to read (chunked, over 8 MiB,
 * or sent with Expect: 100-continue): answering at once (instead of
 * "100 Continue") lets the client stop sending, and the connection ends with
 * a lingering close (watcher.c) so a client still sending reads the reply.
 */
#ifndef VS_HTTP_H
#define VS_HTTP_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "admit/adapt.h"
#include "admit/guard.h"
#include "common/time.h"
#include "admit/slots.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine/models.h"
#include "api/openai.h"
#include "http/auth.h"
#include "worker/pool.h"

enum vs_watch { VS_WATCH_NONE = 0, VS_WATCH_HEADER, VS_WATCH_BODY };

struct vs_conn;
struct vs_linger;
struct vs_rt_session; /* realtime.h */
struct vs_rt_loop;

/* the one connection watcher of a service (watcher.c): deadlines, lingering
 * closes, hang-ups of suspended connections, drain deadlines */
struct vs_watcher {
	pthread_mutex_t mu; /* connections, deadlines, lingering; before a request's mu */
	struct vs_conn *head;
	struct vs_linger *linger;
	int n_linger;
	pthread_mutex_t susp_mu; /* suspended set, drains; after a request's mu */
	pthread_cond_t idle;     /* a request stopped being handled by a pass */
	int epfd;                /* sockets of suspended connections (EPOLLRDHUP) */
	struct vs_req *drains;
	pthread_t thread;
	unsigned long beats; /* passes done (atomic): the watchdog's proof (sdnotify.c) */
};

/* One model of a service (the catalogue's entry) as the front runs it: its
 * own worker pool and slots (within the service's), its voices, its fallback
 * for degradation. Slot i of the model is worker i of its pool. */
struct vs_model_rt {
	const struct vs_model *spec;
	struct vs_service *svc;
	struct vs_pool *pool;
	struct vs_slots slots;
	struct vs_model_rt *fallback; /* NULL = none */
	double idle_timeout_minutes;
	pthread_mutex_t voices_mu;
	char *voices_json; /* cached GET /v1/audio/voices body */
};

struct vs_service {
	const char *name; /* "asr" | "tts" */
	enum vs_engine_kind kind;
	const struct vs_config *cfg;
	const struct vs_engine_info *engine; /* the default model's */
	struct vs_model_rt models[VS_MODELS_MAX];
	int n_models; /* models[0] is the default */
	const char *model_names[VS_MODELS_MAX * (VS_MODEL_ALIASES_MAX + 1) +
	                        1]; /* every id and alias */
	char models_hint[512];
	bool degrade; /* *_DEGRADE_UNDER_LOAD */
	struct vs_slots slots;
	bool slots_auto; /* *_MAX_CONCURRENT_REQUESTS=auto: auto_slots says how */
	struct vs_auto_slots auto_slots;
	struct vs_pressure_ctl pressure; /* MEMORY_PRESSURE_SHRINK_PERCENT (reactor tick) */
	struct vs_guard *guard;          /* shared by both services */
	struct vs_auth *auth;            /* API keys and CORS, shared by both services (auth.c) */
	struct MHD_Daemon *daemon;
	int port;
	double idle_timeout_minutes;
	uint64_t started_ms;
	uint64_t max_body_bytes;
	struct vs_watcher watcher;
	struct vs_rt_loop *rt; /* the realtime session thread (ASR only; realtime.c) */
	/* the other service of this process (NULL when it runs alone): the
	 * page's config and its CORS/CSP name its port (page.c) */
	struct vs_service *sibling;
};

enum vs_route {
	R_NONE = 0,
	R_TRANSCRIBE,
	R_TRANSLATE,
	R_SPEECH,
	R_VOICES,
	R_AUDIO_MODELS, /* GET /v1/audio/models: {"models":[{"id"}...]} (Open WebUI) */
	R_MODELS,
	R_HEALTH,
	R_HEALTH_DETAILED,
	R_HEALTH_READY,
	R_METRICS,
	R_REALTIME, /* GET /v1/realtime: a WebSocket session (realtime.c) */
	R_PAGE,     /* GET /, /page.js, /page.css, /page/config: the page (page.c) */
	R_PAGE_JS,
	R_PAGE_CSS,
	R_PAGE_CONFIG,
};

enum vs_phase {
	P_NEW = 0,
	P_QUEUED,
	P_BODY,
	P_MQUEUED, /* body in, service slot held: waits for a slot of its model */
	P_WORKING,
	P_REPLY,
	P_DISCARD, /* reply decided; swallow the (small) body first */
	P_STREAMING,
	P_LINGER, /* reply written by the front itself; MHD closes, the watcher lingers */
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
	int slot; /* >= 0 while this request holds a slot of the service */
	/* the model: asked for (resolved "model"), and the one serving it (the
	 * same, or its fallback when degraded); mslot >= 0 while r holds a slot
	 * of m (= the worker of m's pool that works for r) */
	struct vs_model_rt *asked, *m;
	int mslot;
	struct vs_waiter mwaiter;
	bool no_degrade;   /* X-Voicestack-Degrade: never */
	enum vs_lane lane; /* set on the first call (route.c); both waiters carry it */
	/* auth.c: the key r presented (its name and lane; a reference dropped
	 * by the completion callback), NULL when keys are off or the route is
	 * open; the Origin echoed on every answer (NULL: no CORS headers); a
	 * CORS preflight answered 204 */
	const struct vs_api_key *key;
	const char *cors_origin;
	char csp[400]; /* page.c: Content-Security-Policy of `/` ("" = none) */
	bool preflight;
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

	/* streaming (guarded by mu); sse: the answer is server-sent events
	 * (stream=true, stream_format "sse"), set with the body; sse_deltas:
	 * transcript deltas sent */
	bool sse;
	unsigned sse_deltas;
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

	/* the watcher's suspended set and drain list (guarded by its susp_mu) */
	bool watched, watch_busy, draining;
	uint64_t drain_deadline_ms;
	struct vs_req *drain_prev, *drain_next;
	/* the watcher saw the client hang up while the request waited (mu) */
	bool client_gone, gone_logged;
	/* the realtime session this upgrade request carries (mu; NULL once it
	 * ended): job callbacks and waiter wakes post to it */
	struct vs_rt_session *rt;

	/* for the metrics (mu; access.c reads them at the end): when the first
	 * audio of a speech answer came from the worker (0: none), the seconds
	 * of audio the worker decoded (RESULT duration) or produced (END) */
	uint64_t first_audio_ms;
	bool has_audio_in, has_audio_out;
	double audio_in_s, audio_out_s;
};

/* server.c: the daemons and the access-handler state machine */
int vs_http_start(struct vs_service *svc);

/* route.c: the first call. Sets r->route and either the reply (phase
 * P_REPLY: framing 400, 404/405, 415, a simple GET, a refusal), or queues
 * the request (P_QUEUED); true when the request may read its body now. */
bool vs_route_new_request(struct vs_req *r, const char *url, const char *method);
/* the methods a route answers ("POST" or "GET, HEAD"): Allow, CORS */
const char *vs_route_methods(enum vs_route rt);
/* the body asked for server-sent events: r->sse and the route's sse label */
void vs_route_sse(struct vs_req *r);

/* reply.c: the reply, suspension and the slot */
/* frees what r holds (payloads, answer, buffers) and its lock, not r */
void vs_req_clear(struct vs_req *r);
void vs_req_set_error(struct vs_req *r, int status, const char *param, const char *code,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void vs_req_set_body(struct vs_req *r, int status, char *body, const char *ctype);
/* suspend until the reactor answers (mu held by caller) */
void vs_req_suspend_locked(struct vs_req *r);
void vs_req_resume_locked(struct vs_req *r);
void vs_req_release_slot(struct vs_req *r);
/* the headers every answer carries: X-Request-Id, and X-Voicestack-Model
 * (the model that served, or would have served, r) once it is known */
void vs_req_add_headers(struct vs_req *r, struct MHD_Response *resp);
/* From a job callback (pool lock held): the worker no longer works for r,
 * so its slot goes back now (to the next waiter, if any). */
void vs_req_worker_done(struct vs_req *r);
/* The request is abandoned: kills its worker if it still works for it,
 * leaves the queue, releases the slot. Returns what was cancelled:
 * "worker_killed", "queue_place", "slot" or "none". */
const char *vs_req_cancel(struct vs_req *r);

/* the watcher's 408: true when it claimed the request (still in P_BODY),
 * wrote the reply and freed the slot; called with svc->watcher.mu held */
bool vs_req_body_expired(struct vs_req *r);
/* queues r's reply to MHD (phase P_SENT); the slot is released first */
enum MHD_Result vs_req_queue_reply(struct vs_req *r);
/* r->phase is P_LINGER (claimed under r->mu by the caller): writes the reply
 * to the socket, shuts the write side; MHD closes and the watcher lingers */
enum MHD_Result vs_req_reply_mid_body(struct vs_req *r);
/* a reply is set while a body may still come: queue it now (no body, or a
 * large one we will not read) or drop the small body first (P_DISCARD) */
enum MHD_Result vs_req_reply_or_discard(struct vs_req *r, size_t *upload_data_size);

/* watcher.c: one thread per service watches what MHD does not */
int vs_watcher_start(struct vs_service *svc);
/* passes the watcher of svc has made so far (any thread) */
unsigned long vs_watcher_beats(struct vs_service *svc);
/* MHD_OPTION_NOTIFY_CONNECTION: tracks every connection of the service */
void vs_watcher_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
/* sets the connection's deadline (HEADER/BODY) or clears it (NONE); r is the
 * request a BODY deadline answers. Not with r->mu held. */
void vs_watcher_deadline(struct vs_service *svc, struct MHD_Connection *conn, enum vs_watch w,
                         struct vs_req *r);
/* keep the socket after MHD closes it and drain the client's input (lingering close) */
void vs_watcher_linger(struct vs_service *svc, struct MHD_Connection *conn);
/* the socket of a suspended connection, watched for a hang-up; suspended and
 * resumed are called with r->mu held; drain starts the TTS drain deadline
 * (r->mu held); forget from the completion callback, before r is freed */
void vs_watcher_suspended(struct vs_req *r);
void vs_watcher_resumed(struct vs_req *r);
void vs_watcher_drain(struct vs_req *r);
void vs_watcher_forget(struct vs_req *r);

/* access.c: request id, client address, the access-log line and the
 * request's metrics (obs/stats.h) */
void vs_access_begin(struct vs_req *r, const char *method);
/* the request ended with status: event=access line and request metrics */
void vs_access_end(struct vs_req *r, int status);
/* "client_gone" line and metric when a client hangs up mid-request (once per request) */
void vs_access_client_gone(struct vs_req *r, const char *phase, const char *cancelled);
/* one realtime turn ended with status (200, a refusal, a failure): access
 * line (method=WS) and request metrics under r's route */
void vs_access_turn(struct vs_req *r, int status, uint64_t start_ms, const char *item_id);
const char *vs_phase_name(enum vs_phase p);

/* admission.c: true when the request may read its body now; false when a
 * reply is set or the request is queued (r->phase says which).
 * vs_admit = vs_admit_precheck (guard 503, declared size 413) then
 * vs_admit_slot (429 or queue). */
bool vs_admit(struct vs_req *r);
bool vs_admit_precheck(struct vs_req *r);
/* the resource guard alone (503): realtime turns, and requests without HTTP
 * headers (Wyoming) */
bool vs_admit_guard(struct vs_req *r);
bool vs_admit_slot(struct vs_req *r);
void vs_admit_waiter_wake(struct vs_waiter *w);
/* The slot of the request's model (r->asked, resolved from its body), with
 * the service's slot held: true when r->m / r->mslot are set (submit now);
 * false when queued (phase P_MQUEUED) or refused (429 set, phase P_REPLY).
 * With degradation on, r->m may be a fallback of r->asked. */
bool vs_admit_model(struct vs_req *r);
/* r was granted slot r->mslot of r->m (at once or from the queue): true if
 * it may use it; false when loading the model there would pass the memory
 * threshold and no fallback took it (503 set, phase P_REPLY) */
bool vs_admit_model_granted(struct vs_req *r);
void vs_admit_model_waiter_wake(struct vs_waiter *w);
/* sets the 429 reply of a request whose queue wait ran out */
void vs_admit_queue_expired(struct vs_req *r);

/* upload.c: multipart/form-data for transcriptions */
int vs_upload_begin(struct vs_req *r);
int vs_upload_feed(struct vs_req *r, const char *data, size_t len);
/* finishes parsing: r->asked and r->payload set (0), or the reply (<0) */
int vs_asr_body_done(struct vs_req *r);
/* sends the parsed transcription to r->m's worker r->mslot (503 set on failure) */
void vs_asr_submit(struct vs_req *r);
void vs_upload_free(struct vs_upload *u);
/* an unlinked temporary file in $TMPDIR (O_TMPFILE), for an upload's bytes;
 * the fd, or -errno */
int vs_spool_open(void);
/* grammar_dir.c: the text of operator grammar g->name (ASR_GRAMMAR_DIR),
 * checked like a client's; *text malloc'd. 0, or <0 with *err filled (400
 * grammar_not_found, 413, ...). */
int vs_grammar_dir_read(const char *dir, const struct vs_grammar_req *g, size_t max_bytes,
                        char **text, struct vs_oai_err *err);
extern const struct vs_job_ops vs_asr_job_ops;
/* A transcription job's frame, r->mu held: a RESULT or ERROR becomes
 * r->result or r->err and r->answered (true); other frames: false. */
bool vs_asr_take_answer(struct vs_req *r, struct vs_frame *f);
void vs_asr_render(struct vs_req *r);
void vs_job_on_fail(struct vs_job *job, int status, const char *message, const char *code);

/* tts.c: parse (no slot needed; sets r->asked, or the reply on error), then
 * submit to r->m's worker r->mslot */
int vs_tts_parse(struct vs_req *r);
void vs_tts_submit(struct vs_req *r);
/* voices: r->asked from ?model= (0), or the reply (<0: cached, or 400) */
int vs_tts_voices(struct vs_req *r);
void vs_tts_voices_submit(struct vs_req *r);
void vs_tts_voices_render(struct vs_req *r);
extern const struct vs_job_ops vs_tts_job_ops;
/* a speech job's AUDIO or END frame (r->mu held), for the metrics: the
 * time of the first audio, the seconds END says were produced */
void vs_tts_frame_seen_locked(struct vs_req *r, struct vs_frame *f);

/* realtime.c: WebSocket transcription sessions (realtime.h). The first
 * call of GET /v1/realtime: the handshake's checks and the guard; false
 * with the reply set (a refusal, or 101 to be queued by vs_req_queue_reply,
 * which calls vs_rt_queue_upgrade for it). */
bool vs_rt_handshake(struct vs_req *r);

/* page.c: the answer of the page's routes (R_PAGE..R_PAGE_CONFIG) */
void vs_page_reply(struct vs_req *r);
/* true when origin is the sibling service's on the request's host (the page
 * served by the other port): CORS allows it without ALLOW_ORIGINS */
bool vs_page_sibling_origin(const struct vs_req *r, const char *origin);
enum MHD_Result vs_rt_queue_upgrade(struct vs_req *r);
/* the key of OpenAI's browser subprotocol `openai-insecure-api-key.KEY` in
 * Sec-WebSocket-Protocol, *n its length; NULL if none (auth.c) */
const char *vs_rt_subprotocol_key(struct vs_req *r, size_t *n);
/* the session thread of svc (ASR) from vs_http_start; stop: every session
 * ends (error shutting_down, close 1001) and the thread is joined */
int vs_rt_start(struct vs_service *svc);
void vs_rt_stop(struct vs_service *svc);
void vs_rt_free(struct vs_service *svc); /* after the daemon stopped */
/* stream.c: streamed answers, called with r->mu held from job callbacks.
 * push: bytes for the client (starts the stream; false = pause the worker,
 * the client is behind); sse_event: one event (steals ev); sse_audio: a
 * speech.audio.delta of these encoded bytes; fail: the worker failed after
 * the stream started (r->err set): an error event and a clean end (sse), or
 * a cut (raw audio). vs_stream_queue: the 200 and its content reader, once
 * the stream has started (server.c). */
bool vs_stream_push_locked(struct vs_req *r, const void *data, size_t len);
bool vs_sse_event_locked(struct vs_req *r, json_t *ev);
bool vs_sse_audio_locked(struct vs_req *r, const uint8_t *data, size_t len);
void vs_stream_fail_locked(struct vs_req *r);
int vs_stream_queue(struct vs_req *r);

/* models.c: a service's models. vs_service_models_index fills model_names,
 * models_hint and the fallback pointers once models[] is set up; 0 or
 * -ENOSPC. vs_service_model: the model a request's "model" names (id or
 * alias; NULL or "" = the default), NULL if none. */
int vs_service_models_index(struct vs_service *svc);
struct vs_model_rt *vs_service_model(struct vs_service *svc, const char *name);
/* GET /v1/models entries of svc appended to data; /health/detailed models[] */
/* health.c: the "lanes" object of /health/detailed (a service's or a model's) */
json_t *vs_lanes_json(const struct vs_slots_snapshot *s);
void vs_models_list_json(struct vs_service *svc, json_t *data);
json_t *vs_models_health_json(struct vs_service *svc);

/* health.c: bodies of the health routes and /v1/models; the /metrics body
 * (service gauges sampled into obs/stats.h, then the whole registry) */
char *vs_health_detailed(struct vs_service *svc, int *status);
char *vs_health_ready(struct vs_service *svc, int *status);
char *vs_models_json(struct vs_service *svc);
/* GET /v1/audio/models: {"object":"list","models":[/v1/models entries]} */
char *vs_audio_models_json(struct vs_service *svc);
/* the services /metrics reports (once, before the daemons start) */
void vs_http_observe(struct vs_service *const *svcs, int n);
char *vs_metrics_body(void);

#endif
