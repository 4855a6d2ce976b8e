/* conns.c - every client connection of a service, the deadlines
 * libmicrohttpd lacks, and lingering closes.
 *
 * DESIGN
 * libmicrohttpd 0.9.75 has one inactivity timeout per connection, reset by
 * every byte received: a client trickling its headers or its body, or an
 * idle keep-alive connection, can hold a connection (and, mid-body, a slot)
 * for as long as it likes. So each connection is tracked here (via
 * MHD_OPTION_NOTIFY_CONNECTION) with at most one deadline:
 *   VS_WATCH_HEADER  from accept, and again after each request: the next
 *                    request head must be in by HEADER_TIMEOUT_SECONDS
 *                    (idle keep-alive included). Past it the socket is shut
 *                    down; MHD sees the client gone and closes it.
 *   VS_WATCH_BODY    from the start of a body: all of it by
 *                    BODY_TIMEOUT_SECONDS. Past it server.c answers 408 and
 *                    frees the slot at once (vs_req_body_expired), without
 *                    waiting for the client's next byte.
 * One watcher thread per service scans the list every TICK_MS: O(connections).
 *
 * Lingering close: a refused request whose body is still coming must not be
 * closed with unread input (the kernel then sends RST, which destroys the
 * reply before the client reads it, and makes its writes fail with EPIPE).
 * vs_conn_linger() keeps a duplicate of the socket; when libmicrohttpd has
 * sent the reply and closes its descriptor, the watcher shuts the write side
 * and reads and drops what the client still sends until it closes, for at
 * most LINGER_MS and LINGER_BYTES (nginx's lingering close).
 *
 * Locking: svc->conns.mu guards the list, each entry and the lingering set.
 * It comes before a request's mu and before the pool lock; nobody takes it
 * while holding either.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
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

static struct vs_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void set_watch(struct vs_service *svc, struct vs_conn *c, enum vs_watch w, struct vs_req *r)
{
	double s = w == VS_WATCH_BODY ? svc->cfg->body_timeout_seconds
	                              : svc->cfg->header_timeout_seconds;
	c->watch = w;
	c->req = r;
	c->deadline_ms = vs_now_ms() + (uint64_t)(s * 1000.0);
}

void vs_conn_watch(struct vs_service *svc, struct MHD_Connection *conn, enum vs_watch w,
                   struct vs_req *r)
{
	pthread_mutex_lock(&svc->conns.mu);
	struct vs_conn *c = conn_of(conn);
	if (c)
		set_watch(svc, c, w, r);
	pthread_mutex_unlock(&svc->conns.mu);
}

static void keep_for_linger(struct vs_conn *c)
{
	if (c->linger_fd < 0)
		c->linger_fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
}

void vs_conn_linger(struct vs_service *svc, struct MHD_Connection *conn)
{
	pthread_mutex_lock(&svc->conns.mu);
	struct vs_conn *c = conn_of(conn);
	if (c)
		keep_for_linger(c);
	pthread_mutex_unlock(&svc->conns.mu);
}

static void linger_add(struct vs_conns *cs, int fd)
{
	if (cs->n_linger >= LINGER_MAX) {
		close(fd);
		return;
	}
	/* MHD has sent the reply (or given up); the client reads it, then EOF */
	shutdown(fd, SHUT_WR);
	cs->linger[cs->n_linger++] =
	        (struct vs_linger){.fd = fd, .until_ms = vs_now_ms() + LINGER_MS};
}

void vs_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
	struct vs_service *svc = cls;
	struct vs_conns *cs = &svc->conns;
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
		pthread_mutex_lock(&cs->mu);
		set_watch(svc, c, VS_WATCH_HEADER, NULL);
		c->next = cs->head;
		if (cs->head)
			cs->head->prev = c;
		cs->head = c;
		*socket_context = c;
		pthread_mutex_unlock(&cs->mu);
		return;
	}
	if (!c)
		return;
	pthread_mutex_lock(&cs->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->linger_fd >= 0)
		linger_add(cs, c->linger_fd);
	*socket_context = NULL;
	pthread_mutex_unlock(&cs->mu);
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

static void *watcher(void *arg)
{
	struct vs_service *svc = arg;
	struct vs_conns *cs = &svc->conns;
	struct pollfd pfd[LINGER_MAX];

	for (;;) {
		pthread_mutex_lock(&cs->mu);
		int n = cs->n_linger;
		for (int i = 0; i < n; i++)
			pfd[i] = (struct pollfd){.fd = cs->linger[i].fd, .events = POLLIN};
		pthread_mutex_unlock(&cs->mu);
		/* wakes early when a lingering client sends, so it is not throttled */
		poll(pfd, (nfds_t)n, TICK_MS);

		uint64_t now = vs_now_ms();
		pthread_mutex_lock(&cs->mu);
		for (int i = 0; i < cs->n_linger;) {
			if (linger_drain(&cs->linger[i], now)) {
				close(cs->linger[i].fd);
				cs->linger[i] = cs->linger[--cs->n_linger];
			} else {
				i++;
			}
		}
		for (struct vs_conn *c = cs->head; c; c = c->next)
			if (c->watch != VS_WATCH_NONE && now >= c->deadline_ms)
				expire(svc, c);
		pthread_mutex_unlock(&cs->mu);
	}
	return NULL;
}

int vs_conns_start(struct vs_service *svc)
{
	struct vs_conns *cs = &svc->conns;
	pthread_mutex_init(&cs->mu, NULL);
	cs->linger = calloc(LINGER_MAX, sizeof(*cs->linger));
	if (!cs->linger)
		return -ENOMEM;
	int e = pthread_create(&cs->thread, NULL, watcher, svc);
	if (e)
		return -e;
	pthread_detach(cs->thread);
	return 0;
}
