/* realtime.h - realtime transcription sessions over WebSocket: the types
 * shared by realtime.c (handshake, the session thread, libwslay I/O, events)
 * and realtime_turn.c (audio, turns, admission, jobs).
 *
 * DESIGN
 * GET /v1/realtime?intent=transcription is an ordinary request of the ASR
 * service up to its answer: framing, API key (a browser's
 * `openai-insecure-api-key.KEY` subprotocol too), route, resource guard
 * (503) as any request, then 101 (libmicrohttpd's upgrade, MHD_ALLOW_UPGRADE)
 * instead of a body. The upgraded socket belongs to one session thread per
 * service (realtime.c): an epoll loop over every session, libwslay for the
 * WebSocket framing (no_buffering: each message is gathered here, bounded
 * by REALTIME_MAX_EVENT_KB, so an oversized one gets an error event before
 * its close), timers for REALTIME_MAX_SESSION_SECONDS and
 * REALTIME_IDLE_TIMEOUT_SECONDS. wslay is not thread-safe: only this thread
 * touches a session's context; the others (job callbacks on the reactor,
 * slot hand-overs) record what happened in the upgrade request's struct
 * vs_req under its mu and post to the thread's eventfd.
 *
 * The struct vs_req of the upgrade request lives as long as the session (it
 * is freed by the completion callback, which libmicrohttpd calls once the
 * session hands the socket back with MHD_UPGRADE_ACTION_CLOSE). It carries
 * what admission needs for the session's turns: the waiters, the service
 * and model slots, the job, the key (and so a key's lane), the request id,
 * the route label "/v1/realtime" of logs and metrics.
 *
 * A turn is the audio between the first append (or, with server VAD, the
 * start of speech) and its commit. A session holds ONE ASR slot (the
 * service's and its model's, through the same vs_admit_* calls as HTTP)
 * while it has audio buffered or committed turns not yet transcribed, and
 * none in between: the slot is taken when a turn starts, kept while the
 * committed turns are transcribed one by one on that slot's worker, and
 * given back when nothing is buffered or pending. Refused (429, 503, queue
 * timeout), the turn's audio is dropped with an error event saying what the
 * HTTP API would have said.
 */
#ifndef VS_HTTP_REALTIME_H
#define VS_HTTP_REALTIME_H

#include <wslay/wslay.h>

#include "api/realtime.h"
#include "http/http.h"
#include "media/vad.h"

/* "item_" / "sess_" + a request id (VS_REQUEST_ID_MAX) + "_" + a counter */
#define VS_RT_ID_MAX (VS_REQUEST_ID_MAX + 24)

/* a committed turn waiting for, or in, transcription */
struct vs_rt_turn {
	struct vs_rt_turn *next;
	char item_id[VS_RT_ID_MAX];
	uint8_t *pcm; /* s16le, 24 kHz, mono */
	size_t len;
	uint64_t start_ms; /* the turn's first audio: its duration in the metrics */
};

enum vs_rt_slot { VS_RT_SLOT_NONE, VS_RT_SLOT_WAITING, VS_RT_SLOT_HELD };

struct vs_rt_loop;

struct vs_rt_session {
	struct vs_rt_session *prev, *next;
	struct vs_rt_loop *loop;
	struct vs_service *svc;
	struct vs_req *r; /* the upgrade request (admission, job, logs, metrics) */
	struct MHD_UpgradeResponseHandle *urh;
	int fd;
	wslay_event_context_ptr ws;
	uint32_t interest; /* epoll events registered */
	uint8_t *pre;      /* bytes libmicrohttpd read past the handshake */
	size_t pre_len, pre_off;

	/* the client message being gathered (one WebSocket message) */
	uint8_t *msg;
	size_t msg_len, msg_cap;
	bool frame_ctrl, msg_big;

	char id[VS_RT_ID_MAX]; /* sess_<request id> */
	unsigned event_seq, item_seq;
	struct vs_rt_session_cfg cfg;
	struct vs_model_rt *model; /* cfg.model resolved */
	size_t max_bytes;          /* REALTIME_MAX_BUFFER_SECONDS of pcm16 */

	/* the current turn's audio (with VAD and no speech: the prefix padding) */
	uint8_t *buf;
	size_t buf_len, buf_cap;
	uint64_t appended;  /* bytes appended over the session (audio_start_ms) */
	uint64_t buf_start; /* `appended` at buf[0] */
	uint64_t turn_start_ms;
	bool refused; /* the turn was refused: its audio is dropped to its end */
	bool full;    /* the turn hit the buffer bound (error sent once) */
	struct vs_vad vad;
	char vad_item[VS_RT_ID_MAX]; /* the item speech_started announced */
	char last_item[VS_RT_ID_MAX];

	struct vs_rt_turn *turns, **turns_tail; /* committed; the head is worked on */
	size_t turns_bytes;
	enum vs_rt_slot slot;
	bool job_running;
	bool posted; /* under r->mu: an answer or a slot hand-over arrived */
	unsigned turns_done;

	uint64_t started_ms, active_ms;
	/* ending: the error event and close frame go out, then the socket */
	const char *end_reason;
	uint16_t close_code;
	bool closing, close_queued, client_gone;
	uint64_t close_deadline_ms;
};

/* realtime.c: sends one server event (event_id added; ev is consumed) */
void vs_rt_send(struct vs_rt_session *s, json_t *ev);
/* an error event from an OpenAI error */
void vs_rt_send_error(struct vs_rt_session *s, const struct vs_oai_err *e, const char *event_id);
/* ends the session: error event (e may be NULL), work cancelled and the slot
 * freed now, then the close frame with code and the socket */
void vs_rt_end(struct vs_rt_session *s, const char *reason, const struct vs_oai_err *e,
               uint16_t code);
/* next "item_..." / "event_..." id */
void vs_rt_next_item(struct vs_rt_session *s, char out[VS_RT_ID_MAX]);

/* wakes the session thread (any thread; never blocks) */
void vs_rt_wake(struct vs_rt_loop *l);

/* realtime_turn.c: the upgrade request's waiters post to its session */
void vs_rt_waiters_init(struct vs_req *r);
/* on the session thread */
void vs_rt_on_append(struct vs_rt_session *s, const uint8_t *pcm, size_t len, const char *event_id);
void vs_rt_on_commit(struct vs_rt_session *s, const char *event_id);
void vs_rt_on_clear(struct vs_rt_session *s, const char *event_id);
/* the VAD setting changed (session.update) */
void vs_rt_vad_reset(struct vs_rt_session *s);
/* an answer or a slot hand-over was posted for s */
void vs_rt_progress(struct vs_rt_session *s);
/* the session ends: every turn and the buffer freed (the slot is the
 * caller's, through vs_req_cancel) */
void vs_rt_turns_free(struct vs_rt_session *s);
/* true while s has work in flight (a turn transcribing or waiting) */
bool vs_rt_busy(const struct vs_rt_session *s);
extern const struct vs_job_ops vs_rt_job_ops;

#endif
