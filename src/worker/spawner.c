/* spawner.c - `voicestack-worker spawner`: forks engine workers on request.
 *
 * DESIGN
 * Starting the worker binary costs ~32 ms, nearly all of it the dynamic
 * linking of FFmpeg, espeak-ng and pocketsphinx; fork() of a process that
 * has them mapped costs ~0.1 ms. So the front starts this process once (with
 * its first worker): it is the worker binary with the libraries linked but
 * NOTHING initialised - no engine, no FFmpeg state, no locale, no thread
 * (espeak-ng hangs when initialised before a fork and changes the locale) -
 * and it forks a worker for every SPAWN the front sends (proto.h):
 *
 *   front --SPAWN {argv} + worker's socket (SCM_RIGHTS)--> spawner
 *   spawner: fork A; A: fork W, tell the spawner W's pid, _exit
 *   spawner: waitpid(A) --SPAWNED {pid}--> front
 *
 * The double fork makes W an orphan, and the front is a child subreaper
 * (PR_SET_CHILD_SUBREAPER, spawn_client.c), so W is reparented to the front
 * before the spawner replies: the front reaps its workers as it always did
 * (waitpid WNOHANG on its tick), whichever way they started, and a spawner
 * crash cannot take a worker with it. W waits until its parent is the front
 * before it arms PR_SET_PDEATHSIG (vs_worker_main): armed earlier, the exit
 * of A would fire it.
 *
 * fork is not exec, so W undoes by hand what exec and posix_spawn's clean
 * state would give: default dispositions and an empty signal mask, the
 * worker's socket as fd 3 and every other descriptor above 2 closed (the
 * spawner's own socket included: close-on-exec does not apply). Its command
 * line is rewritten in place to the worker's (`ps`, and the tests, find
 * workers by `worker` in argv): the front gives the spawner a blank
 * VS_SPAWNER_ARGV_ROOM-byte argument for that. W then runs vs_worker_main
 * and leaves by returning from main, as an exec'd worker does (so a
 * sanitizer build checks it for leaks).
 *
 * The spawner serves one request at a time and exits on EOF from the front
 * (the front stops it when no worker is left, and at shutdown) or with the
 * front (PR_SET_PDEATHSIG).
 */
#include "worker/spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/proto.h"
#include "worker/spawn.h"
#include "worker/worker.h"

#define MAX_ARGS 64
#define REPARENT_WAIT_US (2 * 1000 * 1000)

struct wargs {
	int argc;
	char *argv[MAX_ARGS + 1];
};

static void wargs_free(struct wargs *a)
{
	for (int i = 0; i < a->argc; i++)
		free(a->argv[i]);
	a->argc = 0;
}

/* {argv:[exe, "worker", ...]}: a worker's command line, nothing else. */
static int wargs_parse(const struct vs_frame *f, struct wargs *a)
{
	json_t *j = vs_frame_json(f);
	json_t *arr = json_object_get(j, "argv");
	size_t i, n = json_array_size(arr);
	int r = 0;

	a->argc = 0;
	if (n < 2 || n > MAX_ARGS)
		r = -EINVAL;
	for (i = 0; r == 0 && i < n; i++) {
		const char *s = json_string_value(json_array_get(arr, i));
		if (!s || !(a->argv[i] = strdup(s)))
			r = s ? -ENOMEM : -EINVAL;
		else
			a->argc++;
	}
	a->argv[a->argc] = NULL;
	if (r == 0 && strcmp(a->argv[1], "worker") != 0)
		r = -EINVAL;
	json_decref(j);
	if (r < 0)
		wargs_free(a);
	return r;
}

/* Fork A, which forks W and exits. Returns W's pid in the spawner (W is
 * then the front's child), 0 in W, or -errno. */
static pid_t fork_orphan(void)
{
	int p[2], st;
	pid_t a, w = -EIO;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	a = fork();
	if (a < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (a == 0) {
		pid_t c = fork();
		if (c == 0) {
			close(p[0]);
			close(p[1]);
			return 0;
		}
		if (c < 0)
			c = -errno;
		_exit(write(p[1], &c, sizeof(c)) == (ssize_t)sizeof(c) ? 0 : 1);
	}
	close(p[1]);
	/* once A is reaped, W has been reparented (exit_notify runs before
	 * A can be waited for), so the pid we reply is already the front's child */
	while (waitpid(a, &st, 0) < 0 && errno == EINTR)
		;
	ssize_t n;
	while ((n = read(p[0], &w, sizeof(w))) < 0 && errno == EINTR)
		;
	close(p[0]);
	if (n != (ssize_t)sizeof(w))
		return -EIO;
	return w;
}

/* The fresh state exec would give; see the DESIGN note. */
static void reset_process_state(int sock, int wfd)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL); /* SIGKILL/SIGSTOP and the RT range may refuse */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* dup2 onto fd 3 also closes the spawner's socket when it sits there */
	if (sock != VS_WORKER_FD)
		close(sock);
	if (wfd != VS_WORKER_FD) {
		dup2(wfd, VS_WORKER_FD); /* the copy is not close-on-exec; no matter here */
		close(wfd);
	}
	close_range(VS_WORKER_FD + 1, ~0U, 0);
}

/* Overwrites the spawner's command line (argv..argv[argc-1], contiguous as
 * the kernel laid it out) with the worker's, as much as fits, NUL-padded so
 * /proc/PID/cmdline still reads as separate arguments. */
static void set_cmdline(int argc, char **argv, char *const *wargv)
{
	char *p = argv[0], *end = argv[argc - 1] + strlen(argv[argc - 1]);

	for (int i = 1; i < argc; i++)
		if (argv[i] != argv[i - 1] + strlen(argv[i - 1]) + 1)
			return; /* not one block: leave it */
	for (int i = 0; wargv[i]; i++) {
		size_t n = strlen(wargv[i]) + 1;
		if (p + n > end)
			break;
		memcpy(p, wargv[i], n);
		p += n;
	}
	memset(p, 0, (size_t)(end - p));
}

static int run_worker(int argc, char **argv, int sock, int wfd, pid_t front, struct wargs *a)
{
	reset_process_state(sock, wfd);
	for (int waited = 0; getppid() != front; waited += 100) {
		if (waited >= REPARENT_WAIT_US)
			return 1; /* the front is gone (or not our reaper): nothing to serve */
		usleep(100);
	}
	set_cmdline(argc, argv, a->argv);
	int r = vs_worker_main(a->argc - 1, a->argv + 1);
	wargs_free(a);
	return r;
}

static void reply_error(int sock, int err)
{
	json_t *j = json_pack("{s:i, s:s}", "status", 503, "message", strerror(-err));
	vs_frame_send_json(sock, VS_MSG_ERROR, j, -1);
	json_decref(j);
}

int vs_spawner_main(int argc, char **argv)
{
	int sock = -1;
	pid_t front = getppid();

	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--fd") == 0)
			sock = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--log-level") == 0) {
			int l = vs_log_parse_level(argv[i + 1]);
			if (l >= 0)
				vs_log_set_level((enum vs_log_level)l);
		}
	}
	if (sock < 0) {
		fprintf(stderr, "voicestack-worker spawner: --fd is required (started by the "
		                "server)\n");
		return 2;
	}
	vs_log_set_tag("spawner");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != front)
		return 1;
	signal(SIGPIPE, SIG_IGN); /* a front gone mid-reply is EPIPE, then EOF */

	for (;;) {
		struct vs_frame f;
		struct wargs a;
		int r = vs_frame_recv(sock, &f);
		if (r == -EPIPE)
			break; /* the front let us go: no worker left, or shutdown */
		if (r < 0) {
			vs_error("event=protocol_error err=%d", r);
			return 1;
		}
		r = f.type == VS_MSG_SPAWN && f.fd >= 0 ? wargs_parse(&f, &a) : -EINVAL;
		if (r < 0) {
			vs_frame_clear(&f);
			reply_error(sock, r);
			continue;
		}
		pid_t pid = fork_orphan();
		if (pid == 0) {
			int wfd = f.fd;
			f.fd = -1;
			vs_frame_clear(&f);
			return run_worker(argc, argv, sock, wfd, front, &a);
		}
		vs_frame_clear(&f);
		wargs_free(&a);
		if (pid < 0) {
			vs_error("event=spawner_fork_failed err=\"%s\"", strerror((int)-pid));
			reply_error(sock, (int)pid);
			continue;
		}
		json_t *j = json_pack("{s:i}", "pid", (int)pid);
		r = vs_frame_send_json(sock, VS_MSG_SPAWNED, j, -1);
		json_decref(j);
		if (r < 0)
			break; /* the front is gone; W noticed its socket closing */
	}
	return 0;
}
