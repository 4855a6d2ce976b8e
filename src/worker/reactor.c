/* reactor.c - the front's event thread (see reactor.h).
 *
 * DESIGN
 * One thread, one epoll set, one eventfd (data.ptr NULL) to wake it when a
 * paused source is re-armed from another thread. Every TICK_MS it runs the
 * registered ticks; sources' ready() and ticks take their own locks, the
 * reactor holds none while calling them. Nothing here blocks but epoll_wait.
 */
#include "worker/reactor.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"

#define TICK_MS 100

struct tick {
	void (*fn)(void *);
	void *opaque;
};

static struct {
	pthread_once_t once;
	pthread_mutex_t mu; /* guards ticks[], stop and started */
	int epfd, evfd;
	pthread_t thread;
	bool started, stop, full_logged;
	struct tick ticks[VS_REACTOR_MAX_TICKS];
	int n_ticks;
} reactor = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .evfd = -1};

static void wake(void)
{
	uint64_t one = 1;
	ssize_t n = write(reactor.evfd, &one, sizeof(one));
	(void)n;
}

static bool stopping(void)
{
	pthread_mutex_lock(&reactor.mu);
	bool stop = reactor.stop;
	pthread_mutex_unlock(&reactor.mu);
	return stop;
}

static void *reactor_main(void *arg)
{
	(void)arg;
	while (!stopping()) {
		struct epoll_event evs[32];
		int n = epoll_wait(reactor.epfd, evs, 32, TICK_MS);
		for (int i = 0; i < n; i++) {
			struct vs_reactor_source *src = evs[i].data.ptr;
			if (src == NULL) {
				uint64_t v;
				ssize_t rr = read(reactor.evfd, &v, sizeof(v));
				(void)rr;
				continue;
			}
			src->ready(src);
		}
		/* a copy: a tick may take locks that another thread holds while
		 * registering nothing, and the table only grows while we run */
		struct tick ticks[VS_REACTOR_MAX_TICKS];
		pthread_mutex_lock(&reactor.mu);
		int nt = reactor.n_ticks;
		for (int i = 0; i < nt; i++)
			ticks[i] = reactor.ticks[i];
		pthread_mutex_unlock(&reactor.mu);
		for (int i = 0; i < nt; i++)
			ticks[i].fn(ticks[i].opaque);
	}
	return NULL;
}

static void start(void)
{
	reactor.epfd = epoll_create1(EPOLL_CLOEXEC);
	reactor.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(reactor.epfd, EPOLL_CTL_ADD, reactor.evfd, &ev);
	reactor.started = pthread_create(&reactor.thread, NULL, reactor_main, NULL) == 0;
	if (reactor.started) /* for ps, gdb and the watchdog test */
		pthread_setname_np(reactor.thread, "vs-reactor");
	else
		vs_error("event=reactor_start_failed");
}

int vs_reactor_add(int fd, struct vs_reactor_source *src)
{
	pthread_once(&reactor.once, start);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = src};
	return epoll_ctl(reactor.epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void vs_reactor_set_reading(int fd, struct vs_reactor_source *src, bool reading)
{
	struct epoll_event ev = {.events = reading ? EPOLLIN : 0, .data.ptr = src};
	epoll_ctl(reactor.epfd, EPOLL_CTL_MOD, fd, &ev);
	if (reading)
		wake(); /* input may already be waiting: report it now, not next tick */
}

void vs_reactor_del(int fd)
{
	epoll_ctl(reactor.epfd, EPOLL_CTL_DEL, fd, NULL);
}

int vs_reactor_add_tick(void (*fn)(void *opaque), void *opaque)
{
	int r = 0;
	pthread_once(&reactor.once, start);
	pthread_mutex_lock(&reactor.mu);
	if (reactor.n_ticks < VS_REACTOR_MAX_TICKS) {
		reactor.ticks[reactor.n_ticks++] = (struct tick){fn, opaque};
	} else {
		r = -ENOSPC;
		if (!reactor.full_logged)
			vs_error("event=reactor_tick_table_full max=%d", VS_REACTOR_MAX_TICKS);
		reactor.full_logged = true;
	}
	pthread_mutex_unlock(&reactor.mu);
	return r;
}

void vs_reactor_remove_tick(void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&reactor.mu);
	for (int i = 0; i < reactor.n_ticks; i++) {
		if (reactor.ticks[i].fn == fn && reactor.ticks[i].opaque == opaque) {
			for (int j = i + 1; j < reactor.n_ticks; j++)
				reactor.ticks[j - 1] = reactor.ticks[j];
			reactor.n_ticks--;
			break;
		}
	}
	pthread_mutex_unlock(&reactor.mu);
}

void vs_reactor_stop(void)
{
	pthread_mutex_lock(&reactor.mu);
	bool started = reactor.started;
	reactor.stop = true;
	reactor.started = false;
	pthread_mutex_unlock(&reactor.mu);
	if (!started)
		return;
	wake();
	pthread_join(reactor.thread, NULL);
	close(reactor.evfd);
	close(reactor.epfd);
	reactor.evfd = reactor.epfd = -1;
}
