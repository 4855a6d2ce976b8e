/* spawn.c - worker processes: start them, reap them without ever waiting.
 *
 * DESIGN
 * Workers are exec'd with posix_spawn (a separate binary, see pool.h), never
 * forked from the threaded front: espeak-ng hangs when initialised before a
 * fork, and a fork of a multi-threaded process may inherit a lock held by
 * another thread. The child gets a clean signal state: the front blocks
 * SIGINT/SIGTERM in every thread (sigwait in main), libmicrohttpd's threads
 * block SIGPIPE, and the front ignores SIGPIPE; a worker inheriting that
 * could not be stopped by SIGTERM and would not notice what it expects.
 *
 * Reaping is the caller's tick: vs_dying_check() polls with WNOHANG, so a
 * stopped or stuck worker never holds up the reactor or the HTTP threads.
 */
#include "worker/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/time.h"

extern char **environ;

int vs_worker_exe(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n <= 0) {
		snprintf(buf, len, "/proc/self/exe");
		return -errno;
	}
	buf[n] = 0;
	char *slash = strrchr(buf, '/');
	size_t dir = slash ? (size_t)(slash - buf) + 1 : 0;
	if (dir + sizeof(VS_WORKER_EXE) > len)
		return -ENAMETOOLONG;
	memcpy(buf + dir, VS_WORKER_EXE, sizeof(VS_WORKER_EXE));
	return access(buf, X_OK) == 0 ? 0 : -errno;
}

int vs_spawn_exec(const char *exe, const char *const *argv, pid_t *pid, int *sock)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* dup2 onto the same number would keep O_CLOEXEC: move it out of the way */
	if (sv[1] == VS_WORKER_FD) {
		int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
		close(sv[1]);
		sv[1] = moved;
	}
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], VS_WORKER_FD);
	r = posix_spawn(pid, exe, &fa, &at, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	if (r != 0) {
		close(sv[0]);
		return -r;
	}
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	*sock = sv[0];
	return 0;
}

bool vs_spawn_try_wait(pid_t pid, int *status)
{
	pid_t r;
	*status = 0;
	while ((r = waitpid(pid, status, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == 0)
		return false;
	vs_spawn_forget(pid);
	return true;
}

void vs_spawn_describe_status(int status, char *buf, size_t len)
{
	if (status == -1)
		snprintf(buf, len, "closed its socket");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(buf, len, "ended");
}

void vs_dying_add(struct vs_dying_list *l, pid_t pid, int slot, bool killed, uint64_t grace_ms)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct vs_dying *d = realloc(l->d, cap * sizeof(*d));
		if (!d) {
			/* cannot track it: make sure it dies; PDEATHSIG reaps nothing,
			 * so it stays a zombie until the front exits */
			kill(pid, SIGKILL);
			vs_error("event=worker_untracked service=%s slot=%d pid=%d reason=enomem",
			         l->service, slot, (int)pid);
			return;
		}
		l->d = d;
		l->cap = cap;
	}
	l->d[l->n++] = (struct vs_dying){.pid = pid,
	                                 .slot = slot,
	                                 .killed = killed,
	                                 .grace_ms = grace_ms,
	                                 .kill_at_ms = vs_now_ms() + grace_ms};
}

void vs_dying_check(struct vs_dying_list *l, uint64_t now)
{
	vs_spawn_tick(now);
	for (size_t i = 0; i < l->n;) {
		struct vs_dying *d = &l->d[i];
		int status;
		if (vs_spawn_try_wait(d->pid, &status)) {
			l->d[i] = l->d[--l->n];
			continue;
		}
		if (!d->killed && now >= d->kill_at_ms) {
			kill(d->pid, SIGKILL);
			d->killed = true;
			vs_warn("event=worker_killed service=%s slot=%d pid=%d "
			        "reason=no_exit_after_close grace_ms=%llu",
			        l->service, d->slot, (int)d->pid, (unsigned long long)d->grace_ms);
		}
		i++;
	}
}

void vs_dying_free(struct vs_dying_list *l)
{
	free(l->d);
	l->d = NULL;
	l->n = l->cap = 0;
}
