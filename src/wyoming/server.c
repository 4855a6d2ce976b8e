/* server.c - the Wyoming listeners, their threads and connections.
 *
 * DESIGN
 * One thread per service (like the connection watcher) runs epoll over its
 * listening socket, an eventfd and its connections (level-triggered,
 * non-blocking sockets). Whatever another thread has to say to a connection
 * (a job callback on the reactor, a slot handed over) is a kick: an atomic
 * flag on the connection and a write to the eventfd; the thread then looks
 * at every kicked connection (wy.h says why this needs no lock). So the
 * front never blocks on a Wyoming client, and a Wyoming client never holds a
 * thread: output waits in the connection's buffer, written as the socket
 * takes it.
 *
 * A connection is read as long as its output stays below WY_OUT_HIGH x 4 (a
 * client that sends and never reads stops being read, so it cannot grow the
 * buffer without bound), so a hang-up is seen at once: EOF, a reset, or
 * EPOLLHUP/EPOLLRDHUP end the connection and cancel its job (the slot is
 * free, the worker killed if it was working). As for HTTP, a half-close is a
 * hang-up (a client that shuts its sending side is gone as far as a server
 * can tell). A protocol error (malformed or oversized event) sends an
 * `error` event, then the connection ends with a lingering close: the write
 * side is shut and what the client still sends is read and dropped for at
 * most WY_LINGER_MS, so the error is not destroyed by a reset.
 *
 * Timeouts, checked every 100 ms: audio that stalls (UPLOAD_STALL_TIMEOUT_
 * SECONDS) or takes too long in all (BODY_TIMEOUT_SECONDS) while its request
 * holds or waits for a slot; output a client does not read
 * (TTS_DRAIN_TIMEOUT_SECONDS); an idle connection (WYOMING_IDLE_TIMEOUT_
 * SECONDS; a half-sent event counts as a stall).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "wyoming/wy.h"

#define WY_LINGER_MS 2000
#define WY_TICK_MS 100
#define WY_READ_PAUSE (4 * WY_OUT_HIGH)

/* epoll's data.ptr for the two descriptors that are not connections */
static char tag_listen, tag_event;

const char *wy_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* wakes the server's thread (from any thread) */
static void poke(struct vs_wy_server *s)
{
	uint64_t one = 1;
	/* a full counter (never, in practice) still wakes the loop */
	if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vs_warn("event=wyoming_kick_failed err=%d", errno);
}

void wy_kick(struct wy_conn *c)
{
	atomic_store(&c->kick, true);
	poke(c->srv);
}

void wy_send(struct wy_conn *c, const char *type, json_t *data, const void *payload, size_t len)
{
	if (vs_wy_buf_pending(&c->out) == 0)
		c->last_tx_ms = vs_now_ms(); /* the drain deadline counts from here */
	if (vs_wy_encode(&c->out, type, data, payload, len) < 0) {
		vs_error("event=wyoming_send_failed service=%s type=%s msg=\"Out of memory\"",
		         c->srv->svc->name, type);
		c->gone = true;
	}
}

void wy_send_error(struct wy_conn *c, int status, const char *code, const char *text)
{
	json_t *d = json_pack("{s:s, s:s, s:i}", "text", text ? text : "error", "code",
	                      code && *code ? code : "error", "status", status);
	wy_send(c, "error", d, NULL, 0);
	json_decref(d);
}

void wy_fatal(struct wy_conn *c, const char *code, const char *text)
{
	if (c->closing)
		return;
	if (c->job)
		wy_job_abandon(c->job, "protocol_error");
	wy_send_error(c, 400, code, text);
	c->closing = true;
}

/* ---- events ---- */

static bool is_asr_type(const char *t)
{
	return !strcmp(t, "transcribe") || !strcmp(t, "audio-start") || !strcmp(t, "audio-chunk") ||
	       !strcmp(t, "audio-stop");
}

static bool is_tts_type(const char *t)
{
	return !strcmp(t, "synthesize") || !strcmp(t, "synthesize-start") ||
	       !strcmp(t, "synthesize-chunk") || !strcmp(t, "synthesize-stop");
}

/* an event of the other service: refused so the client does not wait for
 * an answer that never comes (audio events on the TTS port only once, at
 * audio-start: chunks and stops are let go) */
static void other_service(struct wy_conn *c, const char *type)
{
	bool asr = c->srv->svc->kind == VS_ENGINE_ASR;
	char msg[200];
	if (!asr && (strcmp(type, "audio-chunk") == 0 || strcmp(type, "audio-stop") == 0))
		return;
	snprintf(msg, sizeof(msg),
	         "'%s' is served on the Wyoming %s port (%s); this is the %s port", type,
	         asr ? "TTS" : "ASR", asr ? "WYOMING_TTS_PORT" : "WYOMING_ASR_PORT",
	         asr ? "ASR" : "TTS");
	wy_send_error(c, 400, "unsupported_event", msg);
}

static void handle_event(struct wy_conn *c, struct vs_wy_event *ev)
{
	const char *t = ev->type;
	bool asr = c->srv->svc->kind == VS_ENGINE_ASR;

	if (strcmp(t, "ping") == 0) {
		json_t *d = json_object();
		const char *text = wy_str(ev->data, "text");
		if (text)
			json_object_set_new(d, "text", json_string(text));
		wy_send(c, "pong", d, NULL, 0);
		json_decref(d);
	} else if (strcmp(t, "describe") == 0) {
		wy_info_describe(c);
	} else if (is_asr_type(t)) {
		if (asr)
			wy_asr_event(c, ev);
		else
			other_service(c, t);
	} else if (is_tts_type(t)) {
		if (asr)
			other_service(c, t);
		else
			wy_tts_event(c, ev);
	} else {
		/* unknown types are ignored, as the reference does */
		vs_debug("event=wyoming_event_ignored service=%s type=%.48s", c->srv->svc->name, t);
	}
}

static void feed(struct wy_conn *c, const uint8_t *data, size_t n)
{
	while (n > 0 && !c->closing && !c->gone) {
		struct vs_wy_event ev = {0};
		size_t used = 0;
		int rc = vs_wy_parse(&c->parser, data, n, &used, &ev);
		data += used;
		n -= used;
		if (rc == 1) {
			handle_event(c, &ev);
			vs_wy_event_clear(&ev);
			continue;
		}
		if (rc < 0) {
			bool big = rc == -EMSGSIZE;
			vs_info("event=wyoming_bad_event service=%s client=%s reason=%s msg=\"%s\"",
			        c->srv->svc->name, c->client, big ? "too_large" : "malformed",
			        rc == -ENOMEM ? "out of memory" : c->parser.err);
			wy_fatal(c, big ? "event_too_large" : "invalid_event",
			         rc == -ENOMEM ? "out of memory" : c->parser.err);
		}
		break;
	}
}

/* ---- connections ---- */

static void conn_gone(struct wy_conn *c, const char *why)
{
	if (c->gone)
		return;
	c->gone = true;
	if (c->job)
		wy_job_abandon(c->job, why);
}

static void read_input(struct wy_conn *c)
{
	uint8_t buf[65536];

	for (int budget = 16; budget > 0 && !c->gone; budget--) {
		if (!c->closing && vs_wy_buf_pending(&c->out) > WY_READ_PAUSE)
			return; /* it does not read: neither do we (update_interest) */
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			c->last_rx_ms = vs_now_ms();
			if (!c->closing) /* lingering: dropped */
				feed(c, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_gone(c, n == 0 ? "eof" : "reset");
	}
}

static void flush(struct wy_conn *c)
{
	while (vs_wy_buf_pending(&c->out) > 0 && !c->gone) {
		ssize_t n = send(c->fd, c->out.p + c->out.off, vs_wy_buf_pending(&c->out),
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out.off += (size_t)n;
			c->last_tx_ms = vs_now_ms();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_gone(c, "reset");
	}
	vs_wy_buf_compact(&c->out);
	if (c->closing && !c->linger_until_ms && vs_wy_buf_pending(&c->out) == 0) {
		/* the error is out: no more output, read and drop what still comes */
		shutdown(c->fd, SHUT_WR);
		c->linger_until_ms = vs_now_ms() + WY_LINGER_MS;
	}
}

static void update_interest(struct wy_conn *c)
{
	uint32_t want = 0;
	if (c->gone)
		return;
	if (c->closing || vs_wy_buf_pending(&c->out) <= WY_READ_PAUSE)
		want |= EPOLLIN | EPOLLRDHUP;
	if (vs_wy_buf_pending(&c->out) > 0 && !c->linger_until_ms)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	struct epoll_event e = {.events = want, .data.ptr = c};
	if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = want;
}

/* everything a connection may do after something happened to it */
static void progress(struct wy_conn *c)
{
	if (!c->gone && c->job)
		wy_job_poll(c->job);
	if (!c->gone && !c->closing && !c->job && c->srv->svc->kind == VS_ENGINE_TTS)
		wy_tts_next(c);
	flush(c);
	update_interest(c);
}

static void conn_free(struct vs_wy_server *s, struct wy_conn *c)
{
	if (c->job)
		wy_job_abandon(c->job, "closed");
	wy_tts_free(c);
	vs_wy_parser_reset(&c->parser);
	vs_wy_buf_free(&c->out);
	close(c->fd); /* also leaves the epoll set */
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	free(c);
}

static void client_address(struct wy_conn *c, const struct sockaddr_storage *sa)
{
	snprintf(c->client, sizeof(c->client), "-");
	if (sa->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->client,
		          sizeof(c->client));
	else if (sa->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->client,
		          sizeof(c->client));
}

static void accept_all(struct vs_wy_server *s)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd =
		        accept4(s->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				vs_warn("event=wyoming_accept_failed service=%s err=\"%s\"",
				        s->svc->name, strerror(errno));
			return;
		}
		if (s->n_conns >= s->svc->cfg->max_connections) {
			/* MAX_CONNECTIONS bounds Wyoming's connections as HTTP's */
			vs_info("event=reject reason=connections service=%s protocol=wyoming "
			        "max_connections=%d",
			        s->svc->name, s->svc->cfg->max_connections);
			close(fd);
			continue;
		}
		struct wy_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		/* small events (transcript, pong) leave at once */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->srv = s;
		c->fd = fd;
		c->id = ++s->next_id;
		c->last_rx_ms = c->last_tx_ms = vs_now_ms();
		c->items_tail = &c->items;
		client_address(c, &sa);
		vs_wy_parser_init(&c->parser, &s->lim);
		c->events = EPOLLIN | EPOLLRDHUP;
		struct epoll_event e = {.events = c->events, .data.ptr = c};
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->n_conns++;
	}
}

/* ---- timeouts ---- */

static void timeouts(struct vs_wy_server *s, uint64_t now)
{
	const struct vs_config *cfg = s->svc->cfg;
	for (struct wy_conn *c = s->conns; c; c = c->next) {
		struct wy_job *j = c->job;
		char msg[240];
		if (c->gone)
			continue;
		if (c->linger_until_ms) {
			if (now >= c->linger_until_ms)
				conn_gone(c, "linger_done");
			continue;
		}
		if (vs_wy_buf_pending(&c->out) > 0 &&
		    now - c->last_tx_ms > (uint64_t)(cfg->tts_drain_timeout_seconds * 1000)) {
			vs_info("event=stream_drain_timeout service=%s protocol=wyoming client=%s "
			        "pending=%zu timeout_s=%g",
			        s->svc->name, c->client, vs_wy_buf_pending(&c->out),
			        cfg->tts_drain_timeout_seconds);
			conn_gone(c, "drain_timeout");
			continue;
		}
		bool audio = j && j->kind == WJ_TRANSCRIBE && !j->audio_done &&
		             (j->state == WJ_SVC_QUEUED || j->state == WJ_HOLDING);
		if (audio && now - j->started_ms > (uint64_t)(cfg->body_timeout_seconds * 1000)) {
			snprintf(msg, sizeof(msg),
			         "The request body did not arrive in full within "
			         "BODY_TIMEOUT_SECONDS=%g (%llu bytes received)",
			         cfg->body_timeout_seconds, (unsigned long long)j->audio_bytes);
			j->r.reject_reason = "body_timeout";
			wy_send_error(c, 408, "body_timeout", msg);
			wy_job_finish(j, 408);
			c->closing = true;
		} else if ((audio || !vs_wy_parser_idle(&c->parser)) &&
		           now - c->last_rx_ms >
		                   (uint64_t)(cfg->upload_stall_timeout_seconds * 1000)) {
			snprintf(
			        msg, sizeof(msg),
			        "Nothing arrived for UPLOAD_STALL_TIMEOUT_SECONDS=%g in the middle "
			        "of %s; the connection is closed",
			        cfg->upload_stall_timeout_seconds,
			        audio ? "the audio" : "an event");
			vs_info("event=reject reason=upload_stall service=%s protocol=wyoming "
			        "client=%s timeout_s=%g",
			        s->svc->name, c->client, cfg->upload_stall_timeout_seconds);
			if (j) {
				j->r.reject_reason = "upload_stall";
				wy_send_error(c, 408, "upload_stall_timeout", msg);
				wy_job_finish(j, 408);
			} else {
				wy_send_error(c, 408, "upload_stall_timeout", msg);
			}
			c->closing = true;
		} else if (!j && !c->items && vs_wy_parser_idle(&c->parser) &&
		           vs_wy_buf_pending(&c->out) == 0 &&
		           now - (c->last_rx_ms > c->last_tx_ms ? c->last_rx_ms : c->last_tx_ms) >
		                   (uint64_t)(cfg->wyoming_idle_timeout_seconds * 1000)) {
			vs_debug("event=wyoming_idle_close service=%s client=%s", s->svc->name,
			         c->client);
			conn_gone(c, "idle");
			continue;
		}
		flush(c);
		update_interest(c);
	}
}

/* ---- the thread ---- */

static void quiesce(struct vs_wy_server *s)
{
	s->quiesced = true;
	if (s->lfd >= 0) {
		close(s->lfd);
		s->lfd = -1;
	}
	for (struct wy_conn *c = s->conns; c; c = c->next) {
		struct wy_job *j = c->job;
		/* a worker's job ends with the pool's own 503; the others now */
		if (j && j->state != WJ_WORKING) {
			j->r.reject_reason = "shutting_down";
			wy_send_error(c, 503, "shutting_down",
			              "The server is shutting down; this request was not finished");
			wy_job_finish(j, 503);
		}
		progress(c);
	}
}

static void reap(struct vs_wy_server *s)
{
	for (struct wy_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->gone)
			conn_free(s, c);
	}
}

static void *loop(void *arg)
{
	struct vs_wy_server *s = arg;
	struct epoll_event evs[64];
	uint64_t next_tick = 0;

	while (!atomic_load(&s->stop)) {
		int n = epoll_wait(s->epfd, evs, 64, WY_TICK_MS);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &tag_listen) {
				accept_all(s);
			} else if (p == &tag_event) {
				uint64_t v;
				while (read(s->efd, &v, sizeof(v)) > 0)
					;
			} else {
				struct wy_conn *c = p;
				if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					read_input(c);
				if (evs[i].events & (EPOLLHUP | EPOLLERR))
					conn_gone(c, "hangup");
				atomic_store(&c->kick, false);
				progress(c);
			}
		}
		if (atomic_load(&s->quiesce) && !s->quiesced)
			quiesce(s);
		for (struct wy_conn *c = s->conns; c; c = c->next)
			if (atomic_exchange(&c->kick, false))
				progress(c);
		uint64_t now = vs_now_ms();
		if (now >= next_tick) {
			timeouts(s, now);
			next_tick = now + WY_TICK_MS;
		}
		reap(s);
	}
	for (struct wy_conn *c = s->conns; c; c = c->next)
		flush(c); /* what fits, once: the shutdown errors */
	while (s->conns)
		conn_free(s, s->conns);
	return NULL;
}

static int listen_on(struct vs_wy_server *s, const char *host, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	struct sockaddr *addr = (struct sockaddr *)&sa;
	socklen_t alen = sizeof(sa);
	int one = 1;

	if (inet_pton(AF_INET6, host, &sa6.sin6_addr) == 1) {
		addr = (struct sockaddr *)&sa6;
		alen = sizeof(sa6);
	} else if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		return -EINVAL;
	}
	s->lfd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return -errno;
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, addr, alen) < 0 || listen(s->lfd, 128) < 0)
		return -errno;
	return 0;
}

static void server_free(struct vs_wy_server *s)
{
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->efd >= 0)
		close(s->efd);
	free(s);
}

int vs_wyoming_start(struct vs_service *svc, int port, struct vs_wy_server **out)
{
	const struct vs_config *cfg = svc->cfg;
	struct vs_wy_server *s = calloc(1, sizeof(*s));
	int e;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->svc = svc;
	s->port = port;
	s->lfd = s->epfd = s->efd = -1;
	s->lim.max_line = (size_t)cfg->wyoming_max_data_kb * 1024;
	s->lim.max_data = (size_t)cfg->wyoming_max_data_kb * 1024;
	s->lim.max_payload = (size_t)cfg->wyoming_max_payload_kb * 1024;
	e = listen_on(s, cfg->host, port);
	if (e < 0) {
		vs_error("event=start_failed service=%s protocol=wyoming addr=%s:%d err=\"%s\" "
		         "msg=\"Could not listen (port in use?)\"",
		         svc->name, cfg->host, port, strerror(-e));
		server_free(s);
		return e;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event el = {.events = EPOLLIN, .data.ptr = &tag_listen};
	struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &tag_event};
	if (s->epfd < 0 || s->efd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &el) < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->efd, &ee) < 0 ||
	    (e = pthread_create(&s->thread, NULL, loop, s)) != 0) {
		e = e ? -e : -errno;
		vs_error("event=start_failed service=%s protocol=wyoming err=\"%s\"", svc->name,
		         strerror(-e));
		server_free(s);
		return e;
	}
	vs_info("event=wyoming_listening service=%s addr=%s:%d max_data_kb=%d max_payload_kb=%d "
	        "idle_timeout_s=%g",
	        svc->name, cfg->host, port, cfg->wyoming_max_data_kb, cfg->wyoming_max_payload_kb,
	        cfg->wyoming_idle_timeout_seconds);
	*out = s;
	return 0;
}

void vs_wyoming_quiesce(struct vs_wy_server *s)
{
	if (!s)
		return;
	atomic_store(&s->quiesce, true);
	poke(s);
}

void vs_wyoming_stop(struct vs_wy_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	poke(s);
	pthread_join(s->thread, NULL);
	server_free(s);
}
