/* watch.c - hang-ups of suspended connections, and drain deadlines.
 *
 * DESIGN
 * While a request is queued, waits for its worker, or (streaming) waits for
 * the next frame, its connection is suspended and libmicrohttpd does not look
 * at its socket: a client that hung up would keep its slot or queue place
 * until the answer is ready. The watcher keeps those sockets in an epoll set
 * of its own (EPOLLRDHUP, level-triggered) and polls it from a reactor tick
 * (every ~100 ms). On a hang-up it cancels the work at once: leaves the queue
 * or kills the worker (vs_pool_detach via vs_req_cancel), gives the slot
 * back, then resumes the connection with r->client_gone set, so the access
 * handler or the stream reader refuses it and MHD closes it.
 *
 * Half-closed clients: a client that shuts down its sending side after the
 * request looks exactly like one that left (a FIN, then nothing); like nginx
 * (proxy_ignore_client_abort off) we treat it as gone. HTTP clients do not
 * half-close in practice, and the alternative keeps slots of departed
 * clients for up to REQUEST_TIMEOUT_SECONDS.
 *
 * Drain bound: when a TTS worker is done (END, error, timeout) but audio
 * still waits for a slow client, the request joins a deadline list; past
 * TTS_DRAIN_TIMEOUT_SECONDS its socket is shut down (SHUT_RDWR, never closed:
 * MHD owns the fd) with SO_LINGER 0, so MHD's next write fails, MHD closes
 * the connection and the close resets it at once (a FIN would reach the
 * client only after the megabytes the kernel still holds for it).
 *
 * fd lifetime: MHD closes a socket only after the completion callback, which
 * calls vs_watch_forget() (removal under our lock), and never closes a
 * suspended connection; so every fd in the set or the list is open. A socket
 * leaves the set before its connection is resumed.
 *
 * Locks: a request's mu, then the watcher's lock (suspend/resume hold mu).
 * The tick takes the watcher's lock alone and handles each departed request
 * after dropping it, with r->watch_busy set so that vs_watch_forget() waits
 * rather than letting the request be freed under the tick.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "common/log.h"
#include "http/http.h"

#define MAX_EVENTS 32

static struct {
	pthread_once_t once;
	pthread_mutex_t mu;
	pthread_cond_t idle; /* a request stopped being handled by the tick */
	int epfd;
	struct vs_req *drains;
} W = {.once = PTHREAD_ONCE_INIT,
       .mu = PTHREAD_MUTEX_INITIALIZER,
       .idle = PTHREAD_COND_INITIALIZER,
       .epfd = -1};

static void tick(void *opaque);

static void watch_init(void)
{
	W.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (W.epfd < 0)
		vs_error("event=watch_failed err=\"%s\" msg=\"Hang-ups of waiting clients will be "
		         "noticed only when their answer is ready\"",
		         strerror(errno));
	vs_reactor_add_tick(tick, NULL);
}

void vs_watch_suspended(struct vs_req *r)
{
	pthread_once(&W.once, watch_init);
	if (r->fd < 0 || W.epfd < 0)
		return;
	pthread_mutex_lock(&W.mu);
	if (!r->watched) {
		/* EPOLLRDHUP only: bytes of a pipelined next request are no hang-up */
		struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = r};
		r->watched = epoll_ctl(W.epfd, EPOLL_CTL_ADD, r->fd, &ev) == 0;
	}
	pthread_mutex_unlock(&W.mu);
}

static void unwatch_locked(struct vs_req *r)
{
	if (r->watched) {
		epoll_ctl(W.epfd, EPOLL_CTL_DEL, r->fd, NULL);
		r->watched = false;
	}
}

void vs_watch_resumed(struct vs_req *r)
{
	pthread_mutex_lock(&W.mu);
	unwatch_locked(r);
	pthread_mutex_unlock(&W.mu);
}

static void drain_unlink_locked(struct vs_req *r)
{
	if (!r->draining)
		return;
	if (r->drain_prev)
		r->drain_prev->drain_next = r->drain_next;
	else
		W.drains = r->drain_next;
	if (r->drain_next)
		r->drain_next->drain_prev = r->drain_prev;
	r->drain_prev = r->drain_next = NULL;
	r->draining = false;
}

void vs_watch_drain(struct vs_req *r)
{
	pthread_once(&W.once, watch_init);
	if (r->fd < 0)
		return;
	pthread_mutex_lock(&W.mu);
	if (!r->draining) {
		r->draining = true;
		r->drain_deadline_ms =
		        vs_now_ms() + (uint64_t)(r->svc->cfg->tts_drain_timeout_seconds * 1000.0);
		r->drain_prev = NULL;
		r->drain_next = W.drains;
		if (W.drains)
			W.drains->drain_prev = r;
		W.drains = r;
	}
	pthread_mutex_unlock(&W.mu);
}

void vs_watch_forget(struct vs_req *r)
{
	pthread_mutex_lock(&W.mu);
	unwatch_locked(r);
	drain_unlink_locked(r);
	while (r->watch_busy)
		pthread_cond_wait(&W.idle, &W.mu);
	pthread_mutex_unlock(&W.mu);
}

/* The client of a suspended request hung up: cancel its work now. */
static void client_gone(struct vs_req *r)
{
	pthread_mutex_lock(&r->mu);
	if (!r->suspended) {
		/* resumed meanwhile (answer or slot arrived): MHD watches it again */
		pthread_mutex_unlock(&r->mu);
		return;
	}
	r->client_gone = true;
	enum vs_phase phase = r->phase;
	pthread_mutex_unlock(&r->mu);

	const char *cancelled = vs_req_cancel(r);
	vs_access_client_gone(r, vs_phase_name(phase), cancelled);
	pthread_mutex_lock(&r->mu);
	vs_req_resume_locked(r); /* MHD sees client_gone and closes the connection */
	pthread_mutex_unlock(&r->mu);
}

static void tick(void *opaque)
{
	struct epoll_event evs[MAX_EVENTS];
	struct vs_req *gone[MAX_EVENTS];
	int n = 0;
	(void)opaque;

	pthread_mutex_lock(&W.mu);
	int k = W.epfd >= 0 ? epoll_wait(W.epfd, evs, MAX_EVENTS, 0) : 0;
	for (int i = 0; i < k; i++) {
		struct vs_req *r = evs[i].data.ptr;
		unwatch_locked(r);
		r->watch_busy = true;
		gone[n++] = r;
	}
	uint64_t now = vs_now_ms();
	for (struct vs_req *r = W.drains, *next; r; r = next) {
		next = r->drain_next;
		if (now < r->drain_deadline_ms)
			continue;
		drain_unlink_locked(r);
		r->gone_logged = true; /* we close it: not a client hang-up */
		/* a reset, not a FIN: a FIN would wait behind the megabytes still
		 * queued in the kernel for this client; the shutdown wakes MHD, whose
		 * failed write closes the connection (and the close aborts it) */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		shutdown(r->fd, SHUT_RDWR);
		vs_warn("event=stream_drain_timeout service=%s route=%s request_id=%s "
		        "drain_timeout_s=%g action=connection_closed msg=\"The client read the "
		        "finished answer too slowly (TTS_DRAIN_TIMEOUT_SECONDS)\"",
		        r->svc->name, r->route_label, r->request_id,
		        r->svc->cfg->tts_drain_timeout_seconds);
	}
	pthread_mutex_unlock(&W.mu);

	for (int i = 0; i < n; i++) {
		client_gone(gone[i]);
		pthread_mutex_lock(&W.mu);
		gone[i]->watch_busy = false;
		pthread_cond_broadcast(&W.idle);
		pthread_mutex_unlock(&W.mu);
	}
}
