/* realtime.c - realtime transcription sessions: the WebSocket handshake, the
 * session thread and its libwslay I/O, client events in, server events out.
 *
 * DESIGN (the whole picture is in realtime.h)
 * The handshake is an ordinary first call (route.c): its checks here, the
 * 101 queued with libmicrohttpd's upgrade response, Sec-WebSocket-Accept
 * from nettle's SHA-1 and base64. libmicrohttpd then hands the socket over
 * (on_upgrade, on one of its threads): the session is created there and
 * passed to the service's one session thread, which owns it from then on:
 *   - epoll, level-triggered, on every session socket (EPOLLIN while the
 *     session reads, EPOLLOUT while libwslay has bytes to send) and an
 *     eventfd other threads write to (a job answered, a slot handed over,
 *     a new session, shutdown); a tick of TICK_MS for the timers;
 *   - libwslay frames and unframes (no_buffering: each message is gathered
 *     here up to REALTIME_MAX_EVENT_KB, so an oversized one is refused with
 *     an error event before its close, instead of being buffered whole);
 *   - a client that stops reading does not grow our queue without end: past
 *     OUT_MAX queued bytes the session stops reading the client;
 *   - the session ends on the client's close or hang-up (its turn's worker
 *     is killed and the slot freed at once, event=client_gone), on an
 *     oversized event (1009), at REALTIME_MAX_SESSION_SECONDS or after
 *     REALTIME_IDLE_TIMEOUT_SECONDS without a client event while no turn is
 *     being worked on (1000, after an error event saying which), on a
 *     protocol error (libwslay's close), at shutdown (1001). The error event
 *     and the close frame get CLOSE_GRACE_MS to leave; then the socket goes
 *     back to libmicrohttpd (MHD_UPGRADE_ACTION_CLOSE), whose completion
 *     callback writes the session's access line and frees the request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "common/log.h"
#include "http/realtime.h"

#define TICK_MS 100
#define CLOSE_GRACE_MS 2000
/* server events queued for a client that does not read: past this the
 * session stops reading it (events are small; this is hundreds of them) */
#define OUT_MAX (1024 * 1024)
#define MAX_EVENTS 64
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define KEY_SUBPROTOCOL "openai-insecure-api-key."

struct vs_rt_loop {
	int efd; /* first: other threads wake the loop through it */
	int epfd;
	struct vs_service *svc;
	pthread_t thread;
	pthread_mutex_t mu; /* incoming, stopping */
	struct vs_rt_session *incoming;
	bool stopping, stopped;
	struct vs_rt_session *head; /* the thread's own */
};

void vs_rt_wake(struct vs_rt_loop *l)
{
	uint64_t one = 1;
	/* an eventfd counter does not fill up: a failed write means a wake is due */
	if (write(l->efd, &one, sizeof(one)) < 0)
		vs_debug("event=realtime_wake_failed err=%d", errno);
}

/* ---- the handshake (HTTP threads) ---- */

/* a comma-separated header value contains tok (case-insensitive)? */
static bool has_token(const char *v, const char *tok)
{
	size_t n = strlen(tok);
	while (v && *v) {
		v += strspn(v, " \t,");
		size_t k = strcspn(v, ",");
		size_t e = k;
		while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e == n && strncasecmp(v, tok, n) == 0)
			return true;
		v += k;
	}
	return false;
}

static const char *header(struct vs_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* a client key is the base64 of 16 bytes (RFC 6455 4.1): 24 characters */
static bool key_ok(const char *k)
{
	return k && strlen(k) == 24 &&
	       strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                 "0123456789+/=") == 24;
}

const char *vs_rt_subprotocol_key(struct vs_req *r, size_t *n)
{
	const char *v = header(r, "Sec-WebSocket-Protocol");
	const char *p = v ? strstr(v, KEY_SUBPROTOCOL) : NULL;
	if (!p || (p != v && !strchr(" \t,", p[-1])))
		return NULL;
	p += strlen(KEY_SUBPROTOCOL);
	*n = strcspn(p, " \t,");
	return p;
}

bool vs_rt_handshake(struct vs_req *r)
{
	const char *up = header(r, MHD_HTTP_HEADER_UPGRADE);
	const char *conn = header(r, MHD_HTTP_HEADER_CONNECTION);
	const char *ver = header(r, "Sec-WebSocket-Version");
	const char *intent = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "intent");

	if (strcmp(r->method, "GET") != 0) {
		vs_req_set_error(r, 405, NULL, "method_not_allowed",
		                 "Method %s is not allowed on /v1/realtime; use GET with "
		                 "Upgrade: websocket",
		                 r->method);
		return false;
	}
	if (!up || !has_token(up, "websocket") || !conn || !has_token(conn, "upgrade")) {
		vs_req_set_error(r, 426, NULL, "upgrade_required",
		                 "/v1/realtime is a WebSocket endpoint (OpenAI realtime "
		                 "transcription session): send Upgrade: websocket");
		return false;
	}
	if (!ver || strcmp(ver, "13") != 0) {
		vs_req_set_error(r, 426, NULL, "unsupported_websocket_version",
		                 "Sec-WebSocket-Version must be 13");
		return false;
	}
	if (!key_ok(header(r, "Sec-WebSocket-Key"))) {
		vs_req_set_error(r, 400, NULL, "invalid_websocket_key",
		                 "Sec-WebSocket-Key must be the base64 of 16 bytes");
		return false;
	}
	if (intent && strcmp(intent, "transcription") != 0) {
		vs_req_set_error(r, 400, "intent", "unsupported_intent",
		                 "Only transcription sessions are served: use "
		                 "?intent=transcription (got '%.40s')",
		                 intent);
		return false;
	}
	if (!r->svc->rt) {
		vs_req_set_error(r, 503, NULL, "realtime_unavailable",
		                 "Realtime sessions are not available on this server");
		return false;
	}
	if (!vs_admit_guard(r)) /* the guard's 503, as every request */
		return false;
	r->status = 101;
	return false;
}

static void on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh);

enum MHD_Result vs_rt_queue_upgrade(struct vs_req *r)
{
	const char *key = header(r, "Sec-WebSocket-Key");
	const char *proto = header(r, "Sec-WebSocket-Protocol");
	struct sha1_ctx c;
	uint8_t digest[SHA1_DIGEST_SIZE];
	char accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];

	sha1_init(&c);
	sha1_update(&c, strlen(key), (const uint8_t *)key);
	sha1_update(&c, strlen(WS_GUID), (const uint8_t *)WS_GUID);
	sha1_digest(&c, sizeof(digest), digest);
	base64_encode_raw(accept, sizeof(digest), digest);
	accept[sizeof(accept) - 1] = 0;

	struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, r->svc);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	/* OpenAI's clients offer "realtime" (with the key subprotocol, never
	 * echoed): choose it, or none */
	if (proto && has_token(proto, "realtime"))
		MHD_add_response_header(resp, "Sec-WebSocket-Protocol", "realtime");
	vs_req_add_headers(r, resp);
	enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	r->phase = P_SENT;
	return ret;
}

/* libmicrohttpd's thread: the socket is ours; the session thread takes it */
static void on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
	struct vs_service *svc = cls;
	struct vs_rt_loop *l = svc->rt;
	struct vs_req *r = con_cls;
	struct vs_rt_session *s = calloc(1, sizeof(*s));
	(void)connection;
	if (s && extra_in_size) {
		s->pre = malloc(extra_in_size);
		if (s->pre)
			memcpy(s->pre, extra_in, extra_in_size);
		s->pre_len = s->pre ? extra_in_size : 0;
	}
	pthread_mutex_lock(&l->mu);
	bool ok = s && (!extra_in_size || s->pre) && !l->stopping;
	if (ok) {
		s->loop = l;
		s->svc = svc;
		s->r = r;
		s->urh = urh;
		s->fd = sock;
		s->next = l->incoming;
		l->incoming = s;
	}
	pthread_mutex_unlock(&l->mu);
	if (!ok) {
		if (s)
			free(s->pre);
		free(s);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	vs_rt_wake(l);
}

/* ---- sending ---- */

void vs_rt_next_item(struct vs_rt_session *s, char out[VS_RT_ID_MAX])
{
	snprintf(out, VS_RT_ID_MAX, "item_%s_%u", s->r->request_id, ++s->item_seq);
}

void vs_rt_send(struct vs_rt_session *s, json_t *ev)
{
	char id[32];
	if (!ev)
		return; /* out of memory building it: the client misses one event */
	if (!json_object_get(ev, "event_id") ||
	    !json_string_length(json_object_get(ev, "event_id"))) {
		snprintf(id, sizeof(id), "event_%u", ++s->event_seq);
		json_object_set_new(ev, "event_id", json_string(id));
	}
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!text)
		return;
	struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, strlen(text)};
	/* after our close is queued nothing more goes out */
	if (s->ws && !s->close_queued)
		wslay_event_queue_msg(s->ws, &m); /* copies the message */
	free(text);
}

void vs_rt_send_error(struct vs_rt_session *s, const struct vs_oai_err *e, const char *event_id)
{
	char id[32];
	snprintf(id, sizeof(id), "event_%u", ++s->event_seq);
	vs_rt_send(s, vs_rt_error_event(id, e, event_id));
}

static void send_session(struct vs_rt_session *s, const char *type, bool beta)
{
	const char *model = s->cfg.model[0] ? s->cfg.model : s->model->spec->id;
	vs_rt_send(s, json_pack("{s:s, s:o}", "type", type, "session",
	                        vs_rt_session_json(&s->cfg, s->id, model, beta)));
}

/* ---- ending ---- */

void vs_rt_end(struct vs_rt_session *s, const char *reason, const struct vs_oai_err *e,
               uint16_t code)
{
	if (s->closing)
		return;
	if (e)
		vs_rt_send_error(s, e, NULL);
	s->closing = true;
	s->end_reason = reason;
	s->close_code = code;
	s->close_deadline_ms = vs_now_ms() + CLOSE_GRACE_MS;
	/* the turn's worker is killed and the slot freed now, not after the close */
	vs_req_cancel(s->r);
	s->slot = VS_RT_SLOT_NONE;
	s->job_running = false;
	vs_rt_turns_free(s);
}

static void end_error(struct vs_rt_session *s, const char *reason, uint16_t code, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
static void end_error(struct vs_rt_session *s, const char *reason, uint16_t code, const char *fmt,
                      ...)
{
	struct vs_oai_err e = {0};
	char msg[sizeof(e.message)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vs_oai_err_set(&e, 400, NULL, reason, "%s", msg);
	vs_rt_end(s, reason, &e, code);
}

/* Last step: the socket goes back to libmicrohttpd, which closes it and
 * calls the completion callback (the session's access line, r freed). */
static void teardown(struct vs_rt_loop *l, struct vs_rt_session *s)
{
	struct vs_req *r = s->r;
	const char *reason = s->end_reason ? s->end_reason : "client_gone";
	bool mid_turn = vs_rt_busy(s) || s->slot != VS_RT_SLOT_NONE;
	enum vs_phase phase = r->phase;
	const char *cancelled = vs_req_cancel(r); /* no-op when vs_rt_end ran */
	if (s->client_gone && mid_turn)
		vs_access_client_gone(r, vs_phase_name(phase), cancelled);
	r->gone_logged = true; /* the session's end is logged here, once */
	/* the session's own access line (completion callback) says 101, whatever
	 * its turns' admissions left in r */
	r->status = MHD_HTTP_SWITCHING_PROTOCOLS;
	r->reject_reason = NULL;
	vs_info("event=realtime_session_end service=%s session=%s reason=%s turns=%u "
	        "duration_ms=%llu request_id=%s",
	        s->svc->name, s->id, reason, s->turns_done,
	        (unsigned long long)(vs_now_ms() - s->started_ms), r->request_id);
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	pthread_mutex_lock(&r->mu);
	r->rt = NULL;
	pthread_mutex_unlock(&r->mu);
	vs_rt_turns_free(s);
	wslay_event_context_free(s->ws);
	if (s->prev)
		s->prev->next = s->next;
	else
		l->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	struct MHD_UpgradeResponseHandle *urh = s->urh;
	free(s->pre);
	free(s->msg);
	free(s);
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* ---- client events ---- */

static void on_update(struct vs_rt_session *s, const struct vs_rt_event *ev)
{
	struct vs_model_rt *m = vs_service_model(s->svc, ev->cfg.model);
	if (!m) /* cannot be: the name was checked against the same list */
		return;
	bool vad_changed = memcmp(&ev->cfg.vad, &s->cfg.vad, sizeof(ev->cfg.vad)) != 0;
	s->cfg = ev->cfg;
	s->model = m;
	if (vad_changed)
		vs_rt_vad_reset(s);
	vs_info("event=realtime_session_updated service=%s session=%s model=%s language=%s "
	        "vad=%s",
	        s->svc->name, s->id, m->spec->id, s->cfg.language[0] ? s->cfg.language : "-",
	        s->cfg.vad.on ? "server_vad" : "off");
	send_session(s,
	             ev->kind == VS_RT_SESSION_UPDATE ? "session.updated"
	                                              : "transcription_session.updated",
	             ev->kind == VS_RT_TRANSCRIPTION_UPDATE);
}

static void on_message(struct vs_rt_session *s, uint8_t opcode, const uint8_t *msg, size_t len)
{
	struct vs_oai_err err = {0};
	struct vs_rt_event ev;
	struct vs_rt_limits lim = {s->svc->model_names, s->svc->models_hint};

	s->active_ms = vs_now_ms();
	if (opcode != WSLAY_TEXT_FRAME) {
		vs_oai_err_set(&err, 400, NULL, "invalid_event",
		               "Events are JSON text messages; a binary message was received.");
		vs_rt_send_error(s, &err, NULL);
		return;
	}
	if (vs_rt_parse((const char *)msg, len, &s->cfg, &lim, &ev, &err) < 0) {
		vs_rt_send_error(s, &err, ev.event_id);
		return;
	}
	switch (ev.kind) {
	case VS_RT_SESSION_UPDATE:
	case VS_RT_TRANSCRIPTION_UPDATE: on_update(s, &ev); break;
	case VS_RT_APPEND: vs_rt_on_append(s, ev.audio, ev.audio_len, ev.event_id); break;
	case VS_RT_COMMIT: vs_rt_on_commit(s, ev.event_id); break;
	case VS_RT_CLEAR: vs_rt_on_clear(s, ev.event_id); break;
	}
	vs_rt_event_free(&ev);
}

/* ---- libwslay callbacks ---- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct vs_rt_session *s = user;
	(void)flags;
	if (s->pre_off < s->pre_len) {
		size_t n = s->pre_len - s->pre_off < len ? s->pre_len - s->pre_off : len;
		memcpy(buf, s->pre + s->pre_off, n);
		s->pre_off += n;
		return (ssize_t)n;
	}
	ssize_t n = recv(s->fd, buf, len, MSG_DONTWAIT);
	if (n > 0)
		return n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		s->client_gone = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
	struct vs_rt_session *s = user;
	int f = MSG_DONTWAIT | MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0);
	ssize_t n = send(s->fd, data, len, f);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		s->client_gone = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static void ws_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	struct vs_rt_session *s = user;
	(void)ctx;
	s->frame_ctrl = arg->opcode & 0x8;
	/* the declared length decides, before any payload byte is kept */
	if (!s->frame_ctrl &&
	    arg->payload_length > s->svc->cfg->realtime_max_event_kb * 1024ull - s->msg_len)
		s->msg_big = true;
}

static void ws_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
	struct vs_rt_session *s = user;
	(void)ctx;
	if (s->frame_ctrl || s->msg_big || !arg->data_length)
		return;
	if (s->msg_len + arg->data_length > s->msg_cap) {
		size_t cap = s->msg_cap ? s->msg_cap : 4096;
		while (cap < s->msg_len + arg->data_length)
			cap *= 2;
		uint8_t *nb = realloc(s->msg, cap);
		if (!nb) {
			s->msg_big = true; /* refused like an oversized message */
			return;
		}
		s->msg = nb;
		s->msg_cap = cap;
	}
	memcpy(s->msg + s->msg_len, arg->data, arg->data_length);
	s->msg_len += arg->data_length;
}

static void ws_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *user)
{
	struct vs_rt_session *s = user;
	(void)ctx;
	if (arg->opcode & 0x8)
		return; /* close, ping, pong: libwslay answers them */
	if (s->closing) {
		s->msg_len = 0;
		return;
	}
	if (s->msg_big) {
		end_error(s, "event_too_large", WSLAY_CODE_MESSAGE_TOO_BIG,
		          "The event is larger than REALTIME_MAX_EVENT_KB=%d KB; the session ends.",
		          s->svc->cfg->realtime_max_event_kb);
		return;
	}
	on_message(s, arg->opcode, s->msg, s->msg_len);
	s->msg_len = 0;
	if (s->msg_cap > 64 * 1024) { /* one large append must not pin its buffer */
		free(s->msg);
		s->msg = NULL;
		s->msg_cap = 0;
	}
}

static const struct wslay_event_callbacks ws_callbacks = {
        .recv_callback = ws_recv,
        .send_callback = ws_send,
        .on_frame_recv_start_callback = ws_frame_start,
        .on_frame_recv_chunk_callback = ws_frame_chunk,
        .on_msg_recv_callback = ws_message,
};

/* ---- the session thread ---- */

static void start_session(struct vs_rt_loop *l, struct vs_rt_session *s)
{
	struct vs_req *r = s->r;
	s->started_ms = s->active_ms = vs_now_ms();
	s->turns_tail = &s->turns;
	s->slot = VS_RT_SLOT_NONE;
	s->model = &s->svc->models[0];
	s->max_bytes = (size_t)(s->svc->cfg->realtime_max_buffer_seconds * VS_RT_RATE) * 2;
	snprintf(s->id, sizeof(s->id), "sess_%s", r->request_id);
	vs_rt_session_defaults(&s->cfg);
	vs_vad_init(&s->vad, VS_RT_RATE, s->cfg.vad.threshold, s->cfg.vad.silence_duration_ms);
	r->slot = r->mslot = -1;
	vs_rt_waiters_init(r);
	pthread_mutex_lock(&r->mu);
	r->rt = s;
	pthread_mutex_unlock(&r->mu);
	s->next = l->head;
	if (l->head)
		l->head->prev = s;
	l->head = s;
	int fl = fcntl(s->fd, F_GETFL);
	if (fl >= 0)
		fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
	if (wslay_event_context_server_init(&s->ws, &ws_callbacks, s) != 0) {
		s->ws = NULL;
		s->closing = true; /* torn down on this pass */
		s->end_reason = "out_of_memory";
		return;
	}
	wslay_event_config_set_no_buffering(s->ws, 1);
	s->interest = EPOLLIN | EPOLLRDHUP;
	struct epoll_event ev = {.events = s->interest, .data.ptr = s};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
		s->closing = true;
		s->end_reason = "epoll_failed";
	}
	vs_info("event=realtime_session_start service=%s session=%s client=%s key=%s "
	        "request_id=%s",
	        s->svc->name, s->id, r->client, r->key ? r->key->name : "-", r->request_id);
	send_session(s, "session.created", false);
}

static void timers(struct vs_rt_session *s)
{
	const struct vs_config *c = s->svc->cfg;
	uint64_t now = vs_now_ms(); /* after this pass's events moved active_ms */
	if (s->closing)
		return;
	if (now - s->started_ms >= (uint64_t)(c->realtime_max_session_seconds * 1000))
		end_error(
		        s, "session_expired", WSLAY_CODE_NORMAL_CLOSURE,
		        "The session reached its maximum length, REALTIME_MAX_SESSION_SECONDS=%g.",
		        c->realtime_max_session_seconds);
	else if (!vs_rt_busy(s) &&
	         now - s->active_ms >= (uint64_t)(c->realtime_idle_timeout_seconds * 1000))
		end_error(s, "idle_timeout", WSLAY_CODE_NORMAL_CLOSURE,
		          "No event from the client for REALTIME_IDLE_TIMEOUT_SECONDS=%g; the "
		          "session ends.",
		          c->realtime_idle_timeout_seconds);
}

/* One pass over a session; false when it is to be torn down. */
static bool pass(struct vs_rt_session *s, uint32_t io, uint64_t now)
{
	if (!s->ws)
		return false;
	bool posted;
	pthread_mutex_lock(&s->r->mu);
	posted = s->posted;
	s->posted = false;
	pthread_mutex_unlock(&s->r->mu);
	if (posted && !s->closing)
		vs_rt_progress(s);
	uint32_t hup = io & (EPOLLHUP | EPOLLERR | EPOLLRDHUP);
	bool may_read = !s->closing && wslay_event_get_queued_msg_length(s->ws) < OUT_MAX;
	/* read first: a close frame may come with the hang-up */
	if (may_read && (io & EPOLLIN || hup) && wslay_event_recv(s->ws) < 0)
		s->client_gone = true;
	else if (hup && (!may_read || s->closing))
		s->client_gone = true;
	if (s->client_gone)
		return false;
	/* the client closed (libwslay queued the reply) or broke the protocol */
	if (!s->closing && !wslay_event_get_read_enabled(s->ws)) {
		vs_rt_end(s,
		          wslay_event_get_close_received(s->ws) ? "client_closed"
		                                                : "protocol_error",
		          NULL, 0);
		s->close_queued = true; /* libwslay's own close frame is queued */
	}
	timers(s);
	if (s->closing && !s->close_queued && wslay_event_get_queued_msg_count(s->ws) == 0) {
		/* the error event is out: now the close frame */
		const char *why = s->end_reason ? s->end_reason : "";
		wslay_event_queue_close(s->ws, s->close_code, (const uint8_t *)why,
		                        strlen(why) < 120 ? strlen(why) : 120);
		s->close_queued = true;
	}
	if (wslay_event_want_write(s->ws) && wslay_event_send(s->ws) < 0)
		return false;
	if (s->closing && (wslay_event_get_close_sent(s->ws) || now >= s->close_deadline_ms))
		return false;
	return true;
}

static void set_interest(struct vs_rt_loop *l, struct vs_rt_session *s)
{
	/* closing: only what is left to send (a hang-up is reported anyway) */
	uint32_t want = s->closing ? 0 : EPOLLRDHUP;
	if (!s->closing && wslay_event_get_queued_msg_length(s->ws) < OUT_MAX)
		want |= EPOLLIN;
	if (wslay_event_want_write(s->ws))
		want |= EPOLLOUT;
	if (want != s->interest) {
		struct epoll_event ev = {.events = want, .data.ptr = s};
		if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0)
			s->interest = want;
	}
}

static void stop_all(struct vs_rt_loop *l)
{
	while (l->head) {
		struct vs_rt_session *s = l->head;
		struct vs_oai_err e = {0};
		vs_oai_err_set(&e, 503, NULL, "shutting_down", "The server is shutting down.");
		vs_rt_end(s, "shutting_down", &e, WSLAY_CODE_GOING_AWAY);
		/* one try to send the error event and the close frame: shutdown
		 * does not wait for a slow client */
		if (s->ws) {
			wslay_event_send(s->ws);
			wslay_event_queue_close(s->ws, WSLAY_CODE_GOING_AWAY, NULL, 0);
			wslay_event_send(s->ws);
		}
		teardown(l, s);
	}
}

static void *loop_main(void *arg)
{
	struct vs_rt_loop *l = arg;
	struct epoll_event evs[MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(l->epfd, evs, MAX_EVENTS, TICK_MS);
		uint64_t now = vs_now_ms();
		/* which sessions had I/O: kept in their interest's spare bits is
		 * not possible, so a small table */
		struct vs_rt_session *io_s[MAX_EVENTS];
		uint32_t io_e[MAX_EVENTS];
		int k = 0;
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;
				if (read(l->efd, &v, sizeof(v)) < 0)
					vs_debug("event=realtime_wake_read_failed err=%d", errno);
				continue;
			}
			io_s[k] = evs[i].data.ptr;
			io_e[k++] = evs[i].events;
		}
		pthread_mutex_lock(&l->mu);
		struct vs_rt_session *in = l->incoming;
		l->incoming = NULL;
		bool stopping = l->stopping;
		pthread_mutex_unlock(&l->mu);
		while (in) {
			struct vs_rt_session *next = in->next;
			in->next = in->prev = NULL;
			start_session(l, in);
			in = next;
		}
		if (stopping) {
			stop_all(l);
			return NULL;
		}
		now = vs_now_ms(); /* not before a session just started */
		for (struct vs_rt_session *s = l->head, *next; s; s = next) {
			next = s->next;
			uint32_t io = 0;
			for (int i = 0; i < k; i++)
				if (io_s[i] == s)
					io |= io_e[i];
			if (pass(s, io, now))
				set_interest(l, s);
			else
				teardown(l, s);
		}
	}
}

int vs_rt_start(struct vs_service *svc)
{
	struct vs_rt_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->svc = svc;
	pthread_mutex_init(&l->mu, NULL);
	l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int e = 0;
	if (l->efd < 0 || l->epfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->efd, &ev) < 0)
		e = -errno;
	else
		e = -pthread_create(&l->thread, NULL, loop_main, l);
	if (e < 0) {
		vs_error("event=start_failed service=%s what=realtime err=\"%s\"", svc->name,
		         strerror(-e));
		if (l->efd >= 0)
			close(l->efd);
		if (l->epfd >= 0)
			close(l->epfd);
		pthread_mutex_destroy(&l->mu);
		free(l);
		return e;
	}
	svc->rt = l;
	return 0;
}

void vs_rt_stop(struct vs_service *svc)
{
	struct vs_rt_loop *l = svc->rt;
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_mutex_unlock(&l->mu);
	vs_rt_wake(l);
	pthread_join(l->thread, NULL);
	/* on_upgrade refuses from now on (stopping); none can be incoming */
	close(l->epfd);
	l->epfd = -1;
	l->stopped = true;
}

void vs_rt_free(struct vs_service *svc)
{
	struct vs_rt_loop *l = svc->rt;
	if (!l)
		return;
	close(l->efd);
	pthread_mutex_destroy(&l->mu);
	free(l);
	svc->rt = NULL;
}
