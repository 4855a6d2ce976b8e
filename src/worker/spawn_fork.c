/* spawn_fork.c - the front's side of the spawner: workers by fork, not exec.
 *
 * DESIGN
 * vs_spawn() asks the spawner (`voicestack-worker spawner`, spawner.c) to
 * fork the worker; exec'ing the worker binary pays ~32 ms of dynamic linking
 * per worker, a fork from the spawner ~1 ms. The front is a child subreaper
 * (PR_SET_CHILD_SUBREAPER) and the spawner double forks, so every worker is
 * the front's child however it started, and the pool's reaping (waitpid
 * WNOHANG on its tick, the dying list) is unchanged.
 *
 * Lifetime (docs/ARCHITECTURE.md "Spawner memory"). The spawner holds the
 * worker binary's libraries (measured 28.9 MB RSS, 12.5 MB PSS, more than
 * the whole front), so it lives only while some worker of either service does: it
 * starts with the first worker (that worker is its first fork) and is let go
 * on the first tick with no worker left (idle unload of the last one, a
 * crash), so an idle server is the front alone. The next cold request then
 * pays the spawner's start once (about what an exec'd worker cost).
 *
 * Never worse than exec. When the spawner cannot be started, dies, or does
 * not answer within REPLY_MS (FRESH_REPLY_MS for a new one: it is still
 * being linked), the worker is exec'd as before (posix_spawn), one
 * event=spawner_unavailable line is logged per episode, the spawner is
 * SIGKILLed, and a new one is tried at a later spawn (not before RETRY_MS).
 * A spawner that dies between spawns is reaped on the tick and replaced at
 * the next spawn. Its workers do not depend on it.
 *
 * Waiting. The reply is read under the pool's lock, like posix_spawn's own
 * wait for the exec: normally ~1 ms, bounded by REPLY_MS. This file's mutex
 * is taken after a pool lock (vs_spawn, the ticks), never before one.
 *
 * Strays. A subreaper inherits every orphan below it: if the spawner died
 * between its two forks, the middle process would end as the front's child
 * with a pid nobody knows. The tick reaps a dead child that is neither a
 * known worker nor a spawner (waitid WNOWAIT to look first).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/time.h"
#include "worker/proto.h"
#include "worker/spawn.h"
#include "worker/spawner.h"

#define FRESH_REPLY_MS 5000 /* a new spawner: exec and dynamic linking first */
#define REPLY_MS 1000       /* a running one: one fork */
#define RETRY_MS 5000       /* after a failure, workers are exec'd this long */
#define EXIT_GRACE_MS 5000  /* a spawner let go must exit within this */
#define MAX_LIVE 512        /* workers tracked (slots of both services + dying) */
#define MAX_EXITING 8

struct exiting {
	pid_t pid;
	uint64_t kill_at_ms;
	bool killed;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	pid_t pid; /* the running spawner, 0 when none */
	int sock;
	bool answered; /* it has forked once: linked and serving */
	int subreaper; /* 1 set, -errno failed, 0 not tried */
	uint64_t retry_at_ms;
	bool unavailable_logged;
	pid_t live[MAX_LIVE]; /* every worker started and not yet reaped */
	size_t n_live;
	bool live_overflow_logged;
	struct exiting exiting[MAX_EXITING];
	size_t n_exiting;
} sp = {.sock = -1};

/* ---- bookkeeping (mu held) ---- */

static bool live_has(pid_t pid)
{
	for (size_t i = 0; i < sp.n_live; i++)
		if (sp.live[i] == pid)
			return true;
	return false;
}

static void live_add(pid_t pid)
{
	if (sp.n_live < MAX_LIVE) {
		sp.live[sp.n_live++] = pid;
	} else if (!sp.live_overflow_logged) {
		/* only costs an early stop of the spawner (restarted on demand) */
		sp.live_overflow_logged = true;
		vs_warn("event=spawner_untracked_worker pid=%d max=%d", (int)pid, MAX_LIVE);
	}
}

static bool exiting_has(pid_t pid)
{
	for (size_t i = 0; i < sp.n_exiting; i++)
		if (sp.exiting[i].pid == pid)
			return true;
	return false;
}

static void reap_exiting(uint64_t now)
{
	for (size_t i = 0; i < sp.n_exiting;) {
		struct exiting *e = &sp.exiting[i];
		pid_t r = waitpid(e->pid, NULL, WNOHANG);
		if (r == e->pid || (r < 0 && errno == ECHILD)) {
			*e = sp.exiting[--sp.n_exiting];
			continue;
		}
		if (!e->killed && now >= e->kill_at_ms) {
			kill(e->pid, SIGKILL);
			e->killed = true;
			vs_warn("event=spawner_killed pid=%d reason=no_exit_after_close",
			        (int)e->pid);
		}
		i++;
	}
}

/* Closes the link; the spawner exits on EOF (or at once when killed) and
 * is reaped by the ticks. */
static void let_go(const char *reason, bool kill_it)
{
	if (!sp.pid)
		return;
	close(sp.sock);
	if (kill_it)
		kill(sp.pid, SIGKILL);
	if (sp.n_exiting == MAX_EXITING) {
		/* never happens with one spawner at a time; SIGKILL makes it short */
		kill(sp.exiting[0].pid, SIGKILL);
		waitpid(sp.exiting[0].pid, NULL, 0);
		sp.exiting[0] = sp.exiting[--sp.n_exiting];
	}
	sp.exiting[sp.n_exiting++] = (struct exiting){
	        .pid = sp.pid, .kill_at_ms = vs_now_ms() + EXIT_GRACE_MS, .killed = kill_it};
	vs_info("event=spawner_stopped pid=%d reason=%s", (int)sp.pid, reason);
	sp.pid = 0;
	sp.sock = -1;
}

static void reap_strays(void)
{
	for (int i = 0; i < 4; i++) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
			return;
		pid_t pid = si.si_pid;
		if (live_has(pid) || pid == sp.pid || exiting_has(pid))
			return; /* its owner reaps it */
		waitpid(pid, NULL, WNOHANG);
		vs_warn("event=stray_child_reaped pid=%d", (int)pid);
	}
}

/* ---- the spawner ---- */

static const char *arg_after(const char *const *argv, const char *name)
{
	for (int i = 0; argv[i] && argv[i + 1]; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return NULL;
}

static int start_spawner(const char *exe, const char *const *wargv)
{
	static char room[VS_SPAWNER_ARGV_ROOM + 1];
	char fd[16];
	const char *level = arg_after(wargv, "--log-level");
	const char *argv[] = {exe,  "spawner", "--fd", fd, "--log-level", level ? level : "info",
	                      room, NULL};
	uint64_t t0 = vs_now_ms();

	if (sp.subreaper == 0)
		sp.subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 1 : -errno;
	if (sp.subreaper < 0)
		return sp.subreaper; /* its workers would not be our children */
	memset(room, ' ', VS_SPAWNER_ARGV_ROOM);
	snprintf(fd, sizeof(fd), "%d", VS_WORKER_FD);
	int r = vs_spawn_exec(exe, argv, &sp.pid, &sp.sock);
	if (r < 0) {
		sp.pid = 0;
		return r;
	}
	sp.answered = false;
	vs_info("event=spawner_started pid=%d spawn_ms=%llu", (int)sp.pid,
	        (unsigned long long)(vs_now_ms() - t0));
	return 0;
}

/* Reads one frame within timeout_ms from the non-blocking link. */
static int read_reply(struct vs_frame *f, int timeout_ms)
{
	struct vs_frame_reader rd;
	uint64_t deadline = vs_now_ms() + (uint64_t)timeout_ms;
	int r;

	vs_frame_reader_init(&rd);
	while ((r = vs_frame_read(&rd, sp.sock, f)) == 0) {
		uint64_t now = vs_now_ms();
		struct pollfd pfd = {.fd = sp.sock, .events = POLLIN};
		if (now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
	}
	vs_frame_reader_reset(&rd);
	return r < 0 ? r : 0;
}

/* One SPAWN/SPAWNED exchange: *pid is the forked worker, wfd its socket. */
static int ask_spawner(const char *const *argv, int wfd, pid_t *pid)
{
	struct vs_frame f;
	json_t *arr = json_array();
	for (int i = 0; argv[i]; i++)
		json_array_append_new(arr, json_string(argv[i]));
	json_t *j = json_pack("{s:o}", "argv", arr);
	int r = j ? vs_frame_post_json(sp.sock, VS_MSG_SPAWN, j, wfd) : -ENOMEM;
	json_decref(j);
	if (r < 0)
		return r;
	r = read_reply(&f, sp.answered ? REPLY_MS : FRESH_REPLY_MS);
	if (r < 0)
		return r;
	json_t *o = vs_frame_json(&f);
	json_int_t got = json_integer_value(json_object_get(o, "pid"));
	r = f.type == VS_MSG_SPAWNED && got > 0 ? 0 : -EPROTO;
	if (r == 0)
		*pid = (pid_t)got;
	json_decref(o);
	vs_frame_clear(&f);
	return r;
}

static int fork_by_spawner(const char *exe, const char *const *argv, pid_t *pid, int *sock)
{
	int sv[2], r;
	if (!sp.pid) {
		if (vs_now_ms() < sp.retry_at_ms)
			return -EAGAIN;
		if ((r = start_spawner(exe, argv)) < 0)
			return r;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	r = ask_spawner(argv, sv[1], pid);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	*sock = sv[0];
	sp.answered = true;
	return 0;
}

/* ---- API (spawn.h) ---- */

int vs_spawn(const char *exe, const char *const *argv, pid_t *pid, int *sock, const char **via)
{
	pthread_mutex_lock(&mu);
	int r = fork_by_spawner(exe, argv, pid, sock);
	if (r == 0) {
		*via = "spawner";
		sp.unavailable_logged = false;
	} else {
		if (r != -EAGAIN && !sp.unavailable_logged) {
			sp.unavailable_logged = true;
			vs_warn("event=spawner_unavailable err=\"%s\" action=posix_spawn "
			        "retry_s=%d",
			        strerror(-r), RETRY_MS / 1000);
		}
		if (r != -EAGAIN) {
			let_go("failed", true);
			sp.retry_at_ms = vs_now_ms() + RETRY_MS;
		}
		*via = "exec";
		r = vs_spawn_exec(exe, argv, pid, sock);
	}
	if (r == 0)
		live_add(*pid);
	pthread_mutex_unlock(&mu);
	return r;
}

void vs_spawn_forget(pid_t pid)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < sp.n_live; i++)
		if (sp.live[i] == pid) {
			sp.live[i] = sp.live[--sp.n_live];
			break;
		}
	pthread_mutex_unlock(&mu);
}

void vs_spawn_tick(uint64_t now)
{
	pthread_mutex_lock(&mu);
	if (sp.pid) {
		int st = 0;
		pid_t r = waitpid(sp.pid, &st, WNOHANG);
		if (r == sp.pid || (r < 0 && errno == ECHILD)) {
			char how[128];
			vs_spawn_describe_status(r == sp.pid ? st : -1, how, sizeof(how));
			vs_warn("event=spawner_exited pid=%d how=\"%s\" "
			        "action=restart_on_next_spawn",
			        (int)sp.pid, how);
			close(sp.sock);
			sp.pid = 0;
			sp.sock = -1;
		} else if (sp.n_live == 0) {
			let_go("no_workers", false);
		}
	}
	reap_exiting(now);
	if (sp.subreaper > 0)
		reap_strays();
	pthread_mutex_unlock(&mu);
}

void vs_spawner_stop(double grace_s)
{
	uint64_t deadline = vs_now_ms() + (uint64_t)(grace_s * 1000);
	size_t left;

	pthread_mutex_lock(&mu);
	let_go("shutdown", grace_s <= 0);
	pthread_mutex_unlock(&mu);
	for (;;) {
		pthread_mutex_lock(&mu);
		reap_exiting(vs_now_ms());
		left = sp.n_exiting;
		pthread_mutex_unlock(&mu);
		if (left == 0 || vs_now_ms() >= deadline)
			break;
		usleep(10000);
	}
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < sp.n_exiting; i++) {
		/* SIGKILL cannot be ignored: this wait is short */
		kill(sp.exiting[i].pid, SIGKILL);
		while (waitpid(sp.exiting[i].pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	sp.n_exiting = 0;
	pthread_mutex_unlock(&mu);
}
