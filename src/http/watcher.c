/* watcher.c - the one connection watcher of a service: what libmicrohttpd
 * does not watch.
 *
 * DESIGN
 * One thread per service owns every check of a connection that MHD 0.9.75
 * lacks. Each pass (at least every TICK_MS; at once when a lingering client
 * sends or a suspended client hangs up, since the thread polls those sockets):
 *
 * 1. Deadlines, one per tracked connection (MHD_OPTION_NOTIFY_CONNECTION).
 *    MHD has one inactivity timeout, reset by every byte, so a trickle could
 *    hold a connection (and, mid-body, a slot) for ever.
 *      VS_WATCH_HEADER  from accept and after each request: the next request
 *                       head by HEADER_TIMEOUT_SECONDS (idle keep-alive
 *                       included). Past it the socket is shut down; MHD sees
 *                       the client gone and closes it. No reply, as nginx.
 *      VS_WATCH_BODY    the whole body by BODY_TIMEOUT_SECONDS. Past it
 *                       vs_req_body_expired() answers 408 and frees the slot
 *                       at once, then the connection lingers (below).
 * 2. Lingering close. A refused request whose body is still coming must not
 *    be closed with unread input (the kernel sends RST, which destroys the
 *    reply in flight and makes the client's writes fail with EPIPE).
 *    vs_watcher_linger() keeps a duplicate of the socket; when MHD has sent
 *    the reply and closes its descriptor, the watcher shuts the write side
 *    and reads and drops what the client still sends until it closes, for at
 *    most LINGER_MS / LINGER_BYTES (nginx's lingering close).
 * 3. Hang-ups of suspended connections. While a request is queued, waits for
 *    its worker or (streaming) for the next frame, MHD does not look at its
 *    socket. The watcher keeps those sockets in an epoll set (EPOLLRDHUP,
 *    level-triggered); on a hang-up it cancels the work at once (leaves the
 *    queue or kills the worker, via vs_req_cancel), gives the slot back, and
 *    resumes the connection with r->client_gone set, so the access handler
 *    or the stream reader refuses it and MHD closes it. A client that
 *    half-closes after its request looks the same as one that left (a FIN,
 *    then nothing); like nginx we treat it as gone.
 * 4. Drain deadlines. A TTS answer whose worker is done but whose audio still
 *    waits for a slow client must be read within TTS_DRAIN_TIMEOUT_SECONDS;
 *    past it the socket is shut down (SHUT_RDWR with SO_LINGER 0): MHD's next
 *    write fails, MHD closes, and the close resets the connection at once (a
 *    FIN would wait behind the megabytes the kernel still holds).
 *
 * fd lifetimes (this file is their one owner outside MHD): MHD owns every
 * connection socket and closes it only after the completion callback, which
 * calls vs_watcher_forget() (removal under susp_mu), and after the
 * connection-closed notification, which unlinks the entry under mu; MHD never
 * closes a suspended connection. So every fd in the list, the epoll set or
 * the drain list is open, and the watcher only ever shuts sockets down. The
 * only descriptors the watcher closes are its own: the lingering duplicates.
 *
 * Locks (docs/ARCHITECTURE.md has the whole order):
 *   mu       the connection list, deadlines and lingering sockets. Taken
 *            before a request's mu and the pool lock, never under them.
 *   susp_mu  the suspended set and the drain list. Taken after a request's
 *            mu (suspend/resume and the job callbacks hold it). A pass takes
 *            it alone and handles each departed request after dropping it,
 *            with r->watch_busy set so that vs_watcher_forget() waits rather
 *            than letting the request be freed under the pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "http/http.h"

#define TICK_MS 100
#define LINGER_MS 5000
#define LINGER_BYTES (64ull * 1024 * 1024)
/* sockets lingering at once per service; more are closed straight away */
#define LINGER_MAX 256
/* dropped per socket per pass, so one fast sender cannot hog the watcher */
#define DRAIN_PER_PASS (256 * 1024)
/* hang-ups handled per pass; the rest stay readable for the next one */
#define MAX_EVENTS 32

struct vs_conn {
	struct vs_conn *prev, *next;
	int fd;
	int linger_fd; /* dup of fd, kept past MHD's close; -1 if none */
	enum vs_watch watch;
	uint64_t deadline_ms;
	struct vs_req *req; /* VS_WATCH_BODY: the request the deadline ends */
};

struct vs_linger {
	int fd;
	uint64_t until_ms;
	uint64_t bytes;
};

/* ---- 1. deadlines and 2. lingering close (mu) ---- */

static struct vs_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void set_deadline(struct vs_service *svc, struct vs_conn *c, enum vs_watch w,
                         struct vs_req *r)
{
	double s = w == VS_WATCH_BODY ? svc->cfg->body_timeout_seconds
	                              : svc->cfg->header_timeout_seconds;
	c->watch = w;
	c->req = r;
	c->deadline_ms = vs_now_ms() + (uint64_t)(s * 1000.0);
}

void vs_watcher_deadline(struct vs_service *svc, struct MHD_Connection *conn, enum vs_watch w,
                         struct vs_req *r)
{
	pthread_mutex_lock(&svc->watcher.mu);
	struct vs_conn *c = conn_of(conn);
	if (c)
		set_deadline(svc, c, w, r);
	pthread_mutex_unlock(&svc->watcher.mu);
}

static void keep_for_linger(struct vs_conn *c)
{
	if (c->linger_fd < 0)
		c->linger_fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
}

void vs_watcher_linger(struct vs_service *svc, struct MHD_Connection *conn)
{
	pthread_mutex_lock(&svc->watcher.mu);
	struct vs_conn *c = conn_of(conn);
	if (c)
		keep_for_linger(c);
	pthread_mutex_unlock(&svc->watcher.mu);
}

static void linger_add(struct vs_watcher *w, int fd)
{
	if (w->n_linger >= LINGER_MAX) {
		close(fd);
		return;
	}
	/* MHD has sent the reply (or given up); the client reads it, then EOF */
	shutdown(fd, SHUT_WR);
	w->linger[w->n_linger++] =
	        (struct vs_linger){.fd = fd, .until_ms = vs_now_ms() + LINGER_MS};
}

void vs_watcher_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
	struct vs_service *svc = cls;
	struct vs_watcher *w = &svc->watcher;
	struct vs_conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c = calloc(1, sizeof(*c));
		if (!c || !ci) {
			free(c);
			return; /* untracked: only MHD's own timeout applies */
		}
		c->fd = ci->connect_fd;
		c->linger_fd = -1;
		pthread_mutex_lock(&w->mu);
		set_deadline(svc, c, VS_WATCH_HEADER, NULL);
		c->next = w->head;
		if (w->head)
			w->head->prev = c;
		w->head = c;
		*socket_context = c;
		pthread_mutex_unlock(&w->mu);
		return;
	}
	if (!c)
		return;
	pthread_mutex_lock(&w->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->linger_fd >= 0)
		linger_add(w, c->linger_fd);
	*socket_context = NULL;
	pthread_mutex_unlock(&w->mu);
	free(c);
}

/* Reads and drops what a lingering client sends; true when it is done. */
static bool linger_drain(struct vs_linger *l, uint64_t now)
{
	char buf[16384];
	size_t pass = 0;
	while (pass < DRAIN_PER_PASS) {
		ssize_t n = recv(l->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return true; /* the client closed: it has read the reply */
		if (n < 0)
			return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
		pass += (size_t)n;
		l->bytes += (uint64_t)n;
	}
	return now > l->until_ms || l->bytes > LINGER_BYTES;
}

static void expire(struct vs_service *svc, struct vs_conn *c)
{
	enum vs_watch w = c->watch;
	c->watch = VS_WATCH_NONE;
	if (w == VS_WATCH_HEADER) {
		/* no request in flight: nothing to answer; MHD sees EOF and closes */
		vs_debug("event=connection_closed reason=header_timeout service=%s timeout_s=%g",
		         svc->name, svc->cfg->header_timeout_seconds);
		shutdown(c->fd, SHUT_RDWR);
	} else if (w == VS_WATCH_BODY && c->req && vs_req_body_expired(c->req)) {
		keep_for_linger(c);
	}
	c->req = NULL;
}

static void pass_connections(struct vs_service *svc, uint64_t now)
{
	struct vs_watcher *w = &svc->watcher;
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < w->n_linger;) {
		if (linger_drain(&w->linger[i], now)) {
			close(w->linger[i].fd);
			w->linger[i] = w->linger[--w->n_linger];
		} else {
			i++;
		}
	}
	for (struct vs_conn *c = w->head; c; c = c->next)
		if (c->watch != VS_WATCH_NONE && now >= c->deadline_ms)
			expire(svc, c);
	pthread_mutex_unlock(&w->mu);
}

/* ---- 3. suspended connections and 4. drain deadlines (susp_mu) ---- */

void vs_watcher_suspended(struct vs_req *r)
{
	struct vs_watcher *w = &r->svc->watcher;
	if (r->fd < 0 || w->epfd < 0)
		return;
	pthread_mutex_lock(&w->susp_mu);
	if (!r->watched) {
		/* EPOLLRDHUP only: bytes of a pipelined next request are no hang-up */
		struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = r};
		r->watched = epoll_ctl(w->epfd, EPOLL_CTL_ADD, r->fd, &ev) == 0;
	}
	pthread_mutex_unlock(&w->susp_mu);
}

static void unwatch_locked(struct vs_watcher *w, struct vs_req *r)
{
	if (r->watched) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, r->fd, NULL);
		r->watched = false;
	}
}

void vs_watcher_resumed(struct vs_req *r)
{
	struct vs_watcher *w = &r->svc->watcher;
	pthread_mutex_lock(&w->susp_mu);
	unwatch_locked(w, r);
	pthread_mutex_unlock(&w->susp_mu);
}

static void drain_unlink_locked(struct vs_watcher *w, struct vs_req *r)
{
	if (!r->draining)
		return;
	if (r->drain_prev)
		r->drain_prev->drain_next = r->drain_next;
	else
		w->drains = r->drain_next;
	if (r->drain_next)
		r->drain_next->drain_prev = r->drain_prev;
	r->drain_prev = r->drain_next = NULL;
	r->draining = false;
}

void vs_watcher_drain(struct vs_req *r)
{
	struct vs_watcher *w = &r->svc->watcher;
	if (r->fd < 0)
		return;
	pthread_mutex_lock(&w->susp_mu);
	if (!r->draining) {
		r->draining = true;
		r->drain_deadline_ms =
		        vs_now_ms() + (uint64_t)(r->svc->cfg->tts_drain_timeout_seconds * 1000.0);
		r->drain_prev = NULL;
		r->drain_next = w->drains;
		if (w->drains)
			w->drains->drain_prev = r;
		w->drains = r;
	}
	pthread_mutex_unlock(&w->susp_mu);
}

void vs_watcher_forget(struct vs_req *r)
{
	struct vs_watcher *w = &r->svc->watcher;
	pthread_mutex_lock(&w->susp_mu);
	unwatch_locked(w, r);
	drain_unlink_locked(w, r);
	while (r->watch_busy)
		pthread_cond_wait(&w->idle, &w->susp_mu);
	pthread_mutex_unlock(&w->susp_mu);
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

static void drain_expired(struct vs_req *r)
{
	r->gone_logged = true; /* we close it: not a client hang-up */
	/* a reset, not a FIN: a FIN would wait behind the megabytes still queued
	 * in the kernel for this client; the shutdown wakes MHD, whose failed
	 * write closes the connection (and the close aborts it) */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	shutdown(r->fd, SHUT_RDWR);
	vs_warn("event=stream_drain_timeout service=%s route=%s request_id=%s "
	        "drain_timeout_s=%g action=connection_closed msg=\"The client read the "
	        "finished answer too slowly (TTS_DRAIN_TIMEOUT_SECONDS)\"",
	        r->svc->name, r->route_label, r->request_id,
	        r->svc->cfg->tts_drain_timeout_seconds);
}

static void pass_suspended(struct vs_watcher *w, uint64_t now)
{
	struct epoll_event evs[MAX_EVENTS];
	struct vs_req *gone[MAX_EVENTS];
	int n = 0;

	pthread_mutex_lock(&w->susp_mu);
	int k = w->epfd >= 0 ? epoll_wait(w->epfd, evs, MAX_EVENTS, 0) : 0;
	for (int i = 0; i < k; i++) {
		struct vs_req *r = evs[i].data.ptr;
		unwatch_locked(w, r);
		r->watch_busy = true;
		gone[n++] = r;
	}
	for (struct vs_req *r = w->drains, *next; r; r = next) {
		next = r->drain_next;
		if (now >= r->drain_deadline_ms) {
			drain_unlink_locked(w, r);
			drain_expired(r);
		}
	}
	pthread_mutex_unlock(&w->susp_mu);

	for (int i = 0; i < n; i++) {
		client_gone(gone[i]);
		pthread_mutex_lock(&w->susp_mu);
		gone[i]->watch_busy = false;
		pthread_cond_broadcast(&w->idle);
		pthread_mutex_unlock(&w->susp_mu);
	}
}

/* ---- the thread ---- */

static void *watcher_main(void *arg)
{
	struct vs_service *svc = arg;
	struct vs_watcher *w = &svc->watcher;
	struct pollfd pfd[LINGER_MAX + 1];

	for (;;) {
		int n = 0;
		if (w->epfd >= 0)
			pfd[n++] = (struct pollfd){.fd = w->epfd, .events = POLLIN};
		pthread_mutex_lock(&w->mu);
		for (int i = 0; i < w->n_linger; i++)
			pfd[n++] = (struct pollfd){.fd = w->linger[i].fd, .events = POLLIN};
		pthread_mutex_unlock(&w->mu);
		/* wakes early when a lingering client sends (so it is not
		 * throttled) or a suspended client hangs up */
		poll(pfd, (nfds_t)n, TICK_MS);

		uint64_t now = vs_now_ms();
		pass_connections(svc, now);
		pass_suspended(w, now);
		__atomic_add_fetch(&w->beats, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

int vs_watcher_start(struct vs_service *svc)
{
	struct vs_watcher *w = &svc->watcher;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->susp_mu, NULL);
	pthread_cond_init(&w->idle, NULL);
	w->linger = calloc(LINGER_MAX, sizeof(*w->linger));
	if (!w->linger)
		return -ENOMEM;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		vs_error("event=watch_failed service=%s err=\"%s\" msg=\"Hang-ups of waiting "
		         "clients will be noticed only when their answer is ready\"",
		         svc->name, strerror(errno));
	int e = pthread_create(&w->thread, NULL, watcher_main, svc);
	if (e)
		return -e;
	/* named, so that ps, gdb and the watchdog test can tell it apart */
	char name[16];
	snprintf(name, sizeof(name), "vs-watch-%s", svc->name);
	pthread_setname_np(w->thread, name);
	pthread_detach(w->thread);
	return 0;
}

unsigned long vs_watcher_beats(struct vs_service *svc)
{
	return __atomic_load_n(&svc->watcher.beats, __ATOMIC_RELAXED);
}
