/* sdnotify.c - the front's side of systemd's Type=notify and WatchdogSec=.
 *
 * DESIGN
 * Only under systemd (NOTIFY_SOCKET set): otherwise every call returns at
 * once, and no thread, tick or socket exists. Messages go through
 * libsystemd's sd_notify(), never a hand-written client.
 *
 * READY=1 is sent by main once every listening socket of the process
 * listens: MHD_start_daemon() returns with its socket listening, and the
 * Wyoming listeners are started before, so a client that connects the moment
 * systemd reports the unit active is accepted.
 *
 * One thread, "vs-notify", then wakes every second (or every half watchdog
 * interval, if shorter) and
 *  - sends STATUS= when the text changed: per service, slots busy of all,
 *    queue depth of its maximum, and per model whether a worker holds it
 *    loaded. Short (systemctl status shows one line), at most one message a
 *    second however many requests come, none while nothing changes.
 *  - with a watchdog (sd_watchdog_enabled()), every half interval, sends
 *    WATCHDOG=1 only with proof that each thread a stuck front would stall
 *    made progress since the last check:
 *      reactor   (worker/reactor.c) runs the pools' ticks: timeouts, idle
 *                unload, reaping, queue expiry. A tick of ours counts its
 *                passes; it stops counting when the reactor is stuck in a
 *                source or a lock.
 *      watcher   one per service (watcher.c): deadlines, hang-ups of
 *                waiting clients. Each pass counts (vs_watcher_beats()).
 *      HTTP      MHD's threads of each service (HTTP_THREADS of them) run
 *                no code of ours between requests, so they are proved from
 *                outside: a loopback GET /health to the service, answered
 *                within a quarter of the interval (at most 5 s). An accept
 *                closed at once (MAX_CONNECTIONS reached) counts too: a
 *                thread ran. It shows one access line per service per
 *                check, like any health probe.
 *    A thread frozen for one check costs one ping; systemd acts only after a
 *    whole WatchdogSec= without one, so a slow check is forgiven. The probe
 *    proves that some thread of a pool answers, not each: with several
 *    HTTP_THREADS one stuck thread among them goes unnoticed, as it does for
 *    every other health check. The Wyoming listener threads are not watched
 *    (wyoming/ sits above http/ in the layers): they take the same pool and
 *    slot locks as the reactor and the HTTP threads, so a deadlock there
 *    stops the pings anyway; a hang of the Wyoming loop alone does not.
 *    When a proof fails the ping is withheld and one line says which thread;
 *    another says when pings resume. The notifier itself is a thread: if it
 *    hangs (a lock a stuck thread holds, while it reads the pools' state for
 *    STATUS=), the pings stop too, which is right.
 */
#include "http/sdnotify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "http/http.h"
#include "worker/reactor.h"

#define STATUS_PERIOD_MS 1000
#define PROBE_TIMEOUT_MAX_MS 5000
#define STATUS_MAX 512

static struct {
	bool on, stop, withheld;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* stop */
	struct vs_service *svcs[2];
	int n;
	uint64_t half_ms; /* half the watchdog interval; 0 = no watchdog */
	unsigned long reactor_beats, last_reactor, last_watch[2];
	char status[STATUS_MAX];
} sd = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void reactor_beat(void *opaque)
{
	(void)opaque;
	__atomic_add_fetch(&sd.reactor_beats, 1, __ATOMIC_RELAXED);
}

/* "asr 1/2 slots busy, queue 0/4, pocketsphinx 1 loaded, pocketsphinx-accurate
 * not loaded; tts ..." (cut at STATUS_MAX) */
static void status_text(char *buf, size_t cap)
{
	size_t off = 0;
	buf[0] = 0;
	for (int i = 0; i < sd.n && off < cap; i++) {
		struct vs_service *svc = sd.svcs[i];
		struct vs_slots_snapshot ss;
		vs_slots_snapshot(&svc->slots, &ss);
		off += (size_t)snprintf(buf + off, cap - off, "%s%s %d/%d slots busy, queue %d/%d",
		                        i ? "; " : "", svc->name, ss.active, ss.max, ss.depth,
		                        ss.max_queue);
		for (int k = 0; k < svc->n_models && off < cap; k++) {
			struct vs_model_rt *m = &svc->models[k];
			int loaded = 0;
			for (int s = 0; s < m->slots.max; s++)
				loaded += vs_pool_slot_loaded(m->pool, s);
			if (loaded)
				off += (size_t)snprintf(buf + off, cap - off, ", %s %d loaded",
				                        m->spec->id, loaded);
			else
				off += (size_t)snprintf(buf + off, cap - off, ", %s not loaded",
				                        m->spec->id);
		}
	}
}

static void update_status(void)
{
	char now[STATUS_MAX], msg[STATUS_MAX + 8];
	status_text(now, sizeof(now));
	if (strcmp(now, sd.status) == 0)
		return;
	memcpy(sd.status, now, sizeof(now));
	snprintf(msg, sizeof(msg), "STATUS=%s", now);
	sd_notify(0, msg);
}

/* Where to reach svc from this host: its HOST, or loopback for a wildcard. */
static socklen_t probe_addr(const struct vs_service *svc, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET6, svc->cfg->host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)svc->port);
		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			in6->sin6_addr = in6addr_loopback;
		return sizeof(*in6);
	}
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)svc->port);
	if (inet_pton(AF_INET, svc->cfg->host, &in->sin_addr) != 1 ||
	    in->sin_addr.s_addr == htonl(INADDR_ANY))
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*in);
}

/* Waits for events on fd until deadline_ms; -ETIMEDOUT past it. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = vs_now_ms();
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)(deadline_ms - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* 0 when a thread of svc's HTTP daemon answered GET /health (or accepted and
 * closed the connection) within timeout_ms; -errno otherwise. */
static int probe(const struct vs_service *svc, uint64_t timeout_ms)
{
	static const char req[] = "GET /health HTTP/1.0\r\nConnection: close\r\n\r\n";
	struct sockaddr_storage ss;
	socklen_t len = probe_addr(svc, &ss);
	uint64_t deadline = vs_now_ms() + timeout_ms;
	char buf[16];
	int e = 0, fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		e = -errno;
	socklen_t el = sizeof(int);
	int so = 0;
	if (!e && !(e = wait_fd(fd, POLLOUT, deadline)) &&
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &el) == 0 && so)
		e = -so;
	/* a few bytes into an empty socket buffer: one send is enough */
	if (!e && send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
		e = -EIO;
	if (!e && !(e = wait_fd(fd, POLLIN, deadline))) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			e = errno == ECONNRESET ? 0 : -errno; /* reset: accepted, then closed */
		else if (n > 0 && strncmp(buf, "HTTP/", (size_t)n < 5 ? (size_t)n : 5) != 0)
			e = -EPROTO;
	}
	close(fd);
	return e;
}

/* Which thread made no progress since the last check (NULL: none); sets
 * *svc_name to the service concerned. */
static const char *stuck_thread(const char **svc_name)
{
	const char *stuck = NULL;
	unsigned long rb = __atomic_load_n(&sd.reactor_beats, __ATOMIC_RELAXED);
	if (rb == sd.last_reactor)
		stuck = "reactor", *svc_name = "-";
	sd.last_reactor = rb;
	uint64_t timeout =
	        sd.half_ms / 2 < PROBE_TIMEOUT_MAX_MS ? sd.half_ms / 2 : PROBE_TIMEOUT_MAX_MS;
	for (int i = 0; i < sd.n; i++) {
		unsigned long wb = vs_watcher_beats(sd.svcs[i]);
		if (!stuck && wb == sd.last_watch[i])
			stuck = "watcher", *svc_name = sd.svcs[i]->name;
		sd.last_watch[i] = wb;
		if (!stuck && probe(sd.svcs[i], timeout) < 0)
			stuck = "http", *svc_name = sd.svcs[i]->name;
	}
	return stuck;
}

static void watchdog_check(void)
{
	const char *svc = "-", *stuck = stuck_thread(&svc);
	if (!stuck) {
		sd_notify(0, "WATCHDOG=1");
		if (sd.withheld)
			vs_warn("event=watchdog_resumed msg=\"Every front thread made progress "
			        "again: watchdog pings resume\"");
		sd.withheld = false;
		return;
	}
	if (!sd.withheld)
		vs_error(
		        "event=watchdog_withheld thread=%s service=%s msg=\"A front thread made no "
		        "progress: no watchdog ping; systemd restarts the service if this lasts "
		        "WatchdogSec\"",
		        stuck, svc);
	sd.withheld = true;
}

static void *notifier_main(void *arg)
{
	(void)arg;
	uint64_t tick = sd.half_ms && sd.half_ms < STATUS_PERIOD_MS ? sd.half_ms : STATUS_PERIOD_MS;
	uint64_t next_check = vs_now_ms() + sd.half_ms;
	pthread_mutex_lock(&sd.mu);
	while (!sd.stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(tick / 1000);
		ts.tv_nsec += (long)(tick % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_sec++, ts.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&sd.cv, &sd.mu, &ts);
		if (sd.stop)
			break;
		pthread_mutex_unlock(&sd.mu);
		update_status();
		if (sd.half_ms && vs_now_ms() >= next_check) {
			watchdog_check();
			next_check = vs_now_ms() + sd.half_ms;
		}
		pthread_mutex_lock(&sd.mu);
	}
	pthread_mutex_unlock(&sd.mu);
	return NULL;
}

int vs_sd_ready(struct vs_service *const *svcs, int n)
{
	uint64_t usec = 0;
	char msg[STATUS_MAX + 32];

	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	sd.n = n < 2 ? n : 2;
	for (int i = 0; i < sd.n; i++) {
		sd.svcs[i] = svcs[i];
		sd.last_watch[i] = vs_watcher_beats(svcs[i]);
	}
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000)
		sd.half_ms = usec / 2000;
	status_text(sd.status, sizeof(sd.status));
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", sd.status);
	int r = sd_notify(0, msg);
	vs_info("event=sd_notify state=ready sent=%d watchdog_s=%g", r > 0,
	        (double)sd.half_ms * 2 / 1000.0);
	if (sd.half_ms && vs_reactor_add_tick(reactor_beat, NULL) < 0)
		sd.half_ms = 0; /* logged by the reactor; without proof, no pings */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sd.cv, &ca);
	pthread_condattr_destroy(&ca);
	int e = pthread_create(&sd.thread, NULL, notifier_main, NULL);
	if (e) {
		vs_error("event=sd_notify_failed err=\"%s\" msg=\"No STATUS updates or watchdog "
		         "pings\"",
		         strerror(e));
		return -e;
	}
	pthread_setname_np(sd.thread, "vs-notify");
	sd.on = true;
	return 0;
}

void vs_sd_reloading(void)
{
	char msg[64];
	struct timespec ts;
	if (!getenv("NOTIFY_SOCKET"))
		return;
	/* MONOTONIC_USEC: what Type=notify-reload (systemd 253) requires */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ull +
	                 (unsigned long long)ts.tv_nsec / 1000);
	sd_notify(0, msg);
}

void vs_sd_reloaded(void)
{
	if (getenv("NOTIFY_SOCKET"))
		sd_notify(0, "READY=1");
}

void vs_sd_stopping(void)
{
	if (!getenv("NOTIFY_SOCKET"))
		return;
	sd_notify(0, "STOPPING=1\nSTATUS=Stopping: finishing requests in flight");
	if (!sd.on)
		return;
	pthread_mutex_lock(&sd.mu);
	sd.stop = true;
	pthread_cond_signal(&sd.cv);
	pthread_mutex_unlock(&sd.mu);
	pthread_join(sd.thread, NULL);
	pthread_cond_destroy(&sd.cv);
	if (sd.half_ms)
		vs_reactor_remove_tick(reactor_beat, NULL);
	sd.on = false;
}
