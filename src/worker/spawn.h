/* spawn.h - starting worker processes and letting them go without waiting.
 *
 * Used by the pool (pool.c); knows nothing of slots or requests.
 */
#ifndef VS_SPAWN_H
#define VS_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VS_WORKER_FD 3
#define VS_WORKER_EXE "voicestack-worker"

/* The worker binary: VS_WORKER_EXE in the directory of this executable
 * (/proc/self/exe), where meson builds and installs it. 0, or -errno when
 * it is missing or not executable (buf then holds the path tried). */
int vs_worker_exe(char *buf, size_t len); /* the worker's end of its socketpair, in the child */

/* Starts a worker: exe with argv (NULL-terminated) and one end of a new
 * socketpair as fd VS_WORKER_FD; *sock gets the front's end (non-blocking,
 * close-on-exec). Forked by the spawner when it can (spawn_fork.c: no
 * dynamic linking to pay), else exec'd by vs_spawn_exec; *via says which
 * ("spawner" | "exec"). Either way the child is the caller's child, with an
 * empty signal mask and default dispositions. 0 or -errno. */
int vs_spawn(const char *exe, const char *const *argv, pid_t *pid, int *sock, const char **via);

/* posix_spawn of exe, as above. The child starts with an empty signal mask
 * and default dispositions, not the front's (which blocks SIGINT/SIGTERM for
 * sigwait and ignores SIGPIPE). 0 or -errno. */
int vs_spawn_exec(const char *exe, const char *const *argv, pid_t *pid, int *sock);

/* Shutdown: lets the spawner go (it exits on EOF), waits up to grace_s for
 * it, then SIGKILLs it. Call after every vs_pool_stop. */
void vs_spawner_stop(double grace_s);

/* Between spawn.c and spawn_fork.c: a worker was reaped (or is no child of
 * ours any more); and the periodic work of the spawner's side (reaping it,
 * stopping it when no worker is left), run from vs_dying_check. */
void vs_spawn_forget(pid_t pid);
void vs_spawn_tick(uint64_t now_ms);

/* waitpid(WNOHANG): true and *status when pid has ended (or is not our child
 * any more), false while it runs. Never blocks. */
bool vs_spawn_try_wait(pid_t pid, int *status);
/* "killed by signal 11 (Segmentation fault)", ...; status -1: "closed its socket" */
void vs_spawn_describe_status(int status, char *buf, size_t len);

/* Processes let go of but not yet reaped: polled on every tick, SIGKILLed
 * if one still runs grace_ms after it was added. Not thread-safe (the pool
 * guards it with its lock). */
struct vs_dying {
	pid_t pid;
	int slot;
	uint64_t grace_ms, kill_at_ms;
	bool killed;
};
struct vs_dying_list {
	const char *service; /* for the log lines */
	struct vs_dying *d;
	size_t n, cap;
};
void vs_dying_add(struct vs_dying_list *l, pid_t pid, int slot, bool killed, uint64_t grace_ms);
/* Reaps what ended, SIGKILLs what outlived its grace. */
void vs_dying_check(struct vs_dying_list *l, uint64_t now_ms);
void vs_dying_free(struct vs_dying_list *l);

#endif
