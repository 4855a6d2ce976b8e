/* pool.c - worker processes and the reactor that reads them.
 *
 * DESIGN
 * Each pool (one per service) has `slots` worker entries; slot i always uses
 * worker i, so N simultaneous first requests start at most N workers and a
 * slot never loads its model twice. A worker's life:
 *
 *   NONE --submit--> BUSY (spawned; loads the model on its first request)
 *     ^               |  ^
 *     |   RESULT/END/ |  | submit
 *     |   ERROR       v  |
 *     +--idle unload-- IDLE
 *     +--crash / request timeout / detach while busy (SIGKILL)
 *
 * The reactor thread (reactor.c) serves all pools: it reads frames from every
 * worker socket and hands them to the job (the HTTP request), reaps workers
 * whose socket hung up (a crash: the job gets 500), kills workers that run
 * past REQUEST_TIMEOUT_SECONDS (504), and every IDLE_CHECK_INTERVAL_SECONDS
 * stops workers idle for longer than the idle timeout. Stopping means the
 * process exits, so its memory really returns to the system.
 *
 * Nothing here ever waits for a worker: the reactor and the HTTP threads
 * share the pool lock, so one stuck worker would hang both services while
 * /health still answered. Letting a worker go closes its socket (and
 * SIGKILLs it when it is busy); the process is then polled with
 * waitpid(WNOHANG) on every tick and SIGKILLed if it has not exited
 * EXIT_GRACE_MS after its socket closed (e.g. it was SIGSTOPped). /proc
 * (worker memory for /health/detailed and /metrics) is read from a copy of
 * the pids taken under the lock, after releasing it.
 *
 * This file is the state machine; the reactor thread (epoll, ticks) is
 * reactor.c, starting and reaping processes is spawn.c.
 */
#include "worker/pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/time.h"
#include "worker/reactor.h"
#include "worker/spawn.h"

/* how long a worker whose socket was closed (idle unload, shutdown) may take
 * to exit before it is SIGKILLed; a healthy one exits in milliseconds */
#define EXIT_GRACE_MS 5000

enum wstate { W_NONE = 0, W_IDLE, W_BUSY };

struct worker {
	struct vs_reactor_source src; /* first: the reactor hands us &src */
	struct vs_pool *pool;
	int slot;
	enum wstate state;
	pid_t pid;
	int sock;
	bool loaded;
	bool paused;
	struct vs_job *job;
	uint64_t spawned_ms, last_used_ms, job_deadline_ms;
	uint64_t requests_served;
	struct vs_frame_reader rd;
};

struct vs_pool {
	pthread_mutex_t mu;
	struct vs_pool_config cfg;
	char exe[4096];
	struct worker *w;
	struct vs_pool_stats stats;
	uint64_t next_idle_check_ms;
	struct vs_dying_list dying; /* reaped without blocking, on the tick */
	bool stopped;               /* vs_pool_stop ran: submits fail with -ESHUTDOWN */
};

static void worker_ready(struct vs_reactor_source *src);

static const char *model_of(const struct vs_pool *p)
{
	return p->cfg.model ? p->cfg.model : p->cfg.engine->name;
}

/* ---- worker lifecycle (pool lock held) ---- */

static int spawn_worker(struct worker *w)
{
	struct vs_pool *p = w->pool;
	char fdarg[16];
	const char *argv[112];
	int n = 0, r;

	snprintf(fdarg, sizeof(fdarg), "%d", VS_WORKER_FD);
	argv[n++] = p->exe;
	argv[n++] = "worker";
	argv[n++] = "--service";
	argv[n++] = p->cfg.service;
	argv[n++] = "--engine";
	argv[n++] = p->cfg.engine->name;
	argv[n++] = "--model-id";
	argv[n++] = p->cfg.model ? p->cfg.model : p->cfg.engine->name;
	argv[n++] = "--fd";
	argv[n++] = fdarg;
	for (int i = 0; p->cfg.worker_args && p->cfg.worker_args[i] && n < 110; i++)
		argv[n++] = p->cfg.worker_args[i];
	argv[n] = NULL;

	const char *via = "";
	r = vs_spawn(p->exe, argv, &w->pid, &w->sock, &via);
	if (r < 0) {
		vs_error("event=worker_spawn_failed service=%s slot=%d exe=%s err=\"%s\"",
		         p->cfg.service, w->slot, p->exe, strerror(-r));
		return r;
	}
	w->loaded = false;
	w->paused = false;
	w->requests_served = 0;
	w->spawned_ms = w->last_used_ms = vs_now_ms();
	vs_frame_reader_init(&w->rd);
	w->src.ready = worker_ready;
	vs_reactor_add(w->sock, &w->src);
	p->stats.spawns++;
	vs_info("event=worker_started service=%s model=%s slot=%d pid=%d engine=%s via=%s",
	        p->cfg.service, model_of(p), w->slot, (int)w->pid, p->cfg.engine->name, via);
	return 0;
}

/* Ends a worker process and forgets it, without ever waiting for it.
 * kill_it: SIGKILL (crash, timeout, abandoned job) rather than a clean exit
 * on EOF (idle unload). Returns its wait status when it had already ended,
 * -1 when it is left to the dying list (vs_dying_check on the tick). */
static int reap_worker(struct worker *w, bool kill_it)
{
	int status = -1;
	if (w->state == W_NONE)
		return 0;
	vs_reactor_del(w->sock);
	close(w->sock);
	w->sock = -1;
	/* a crashed worker has usually ended already: keep its real status */
	if (!vs_spawn_try_wait(w->pid, &status)) {
		if (kill_it)
			kill(w->pid, SIGKILL);
		/* an idle worker sees EOF on its socket and exits by itself */
		if (!vs_spawn_try_wait(w->pid, &status)) {
			vs_dying_add(&w->pool->dying, w->pid, w->slot, kill_it, EXIT_GRACE_MS);
			status = -1;
		}
	}
	vs_frame_reader_reset(&w->rd);
	w->state = W_NONE;
	w->loaded = false;
	w->job = NULL;
	w->pid = 0;
	return status;
}

/* The worker's socket hung up or broke the protocol. */
static void worker_died(struct worker *w, const char *why)
{
	struct vs_pool *p = w->pool;
	struct vs_job *job = w->job;
	pid_t pid = w->pid;
	bool was_busy = w->state == W_BUSY;
	char how[128], msg[300];

	int status = reap_worker(w, true);
	vs_spawn_describe_status(status, how, sizeof(how));
	if (was_busy && job) {
		p->stats.crashes++;
		vs_error(
		        "event=worker_crashed service=%s model=%s slot=%d pid=%d how=\"%s\" why=%s",
		        p->cfg.service, model_of(p), w->slot, (int)pid, how, why);
		snprintf(msg, sizeof(msg),
		         "The %s engine worker crashed while handling this request "
		         "(%s); the next request starts a fresh worker",
		         p->cfg.service, how);
		job->ops->on_fail(job, 500, msg, "worker_crashed");
	} else if (status == -1 || !(WIFEXITED(status) && WEXITSTATUS(status) == 3)) {
		/* exit 3 = model load failure, already answered with a 503 */
		vs_warn("event=worker_exited service=%s slot=%d pid=%d how=\"%s\"", p->cfg.service,
		        w->slot, (int)pid, how);
	}
}

static void handle_frame(struct worker *w, struct vs_frame *f)
{
	struct vs_pool *p = w->pool;
	struct vs_job *job = w->job;
	bool last = f->type == VS_MSG_RESULT || f->type == VS_MSG_END || f->type == VS_MSG_ERROR;

	if (f->type == VS_MSG_LOADED) {
		json_t *j = vs_frame_json(f);
		json_int_t rss_kb = json_integer_value(json_object_get(j, "rss_kb"));
		w->loaded = true;
		p->stats.loads++;
		p->stats.last_load_ms = (uint64_t)json_integer_value(json_object_get(j, "load_ms"));
		if (rss_kb > 0)
			p->stats.load_rss_mb = (double)rss_kb / 1024.0;
		json_decref(j);
		return;
	}
	if (last) {
		w->state = W_IDLE;
		w->job = NULL;
		w->last_used_ms = vs_now_ms();
		if (job)
			job->done_ms = w->last_used_ms;
		w->requests_served++;
	}
	if (job && !job->ops->on_frame(job, f) && !last) {
		vs_reactor_set_reading(w->sock, &w->src, false);
		w->paused = true;
	}
}

static void worker_readable(struct worker *w)
{
	for (int budget = 64; budget > 0 && w->state != W_NONE; budget--) {
		struct vs_frame f;
		int r = vs_frame_read(&w->rd, w->sock, &f);
		if (r == 0)
			return;
		if (r < 0) {
			worker_died(w, r == -EPIPE ? "eof" : "protocol_error");
			return;
		}
		handle_frame(w, &f);
		vs_frame_clear(&f);
		if (w->paused)
			return;
	}
}

static void check_timeouts(struct vs_pool *p, uint64_t now)
{
	for (int i = 0; i < p->cfg.slots; i++) {
		struct worker *w = &p->w[i];
		if (w->state != W_BUSY || !w->job || !w->job_deadline_ms ||
		    now < w->job_deadline_ms)
			continue;
		struct vs_job *job = w->job;
		pid_t pid = w->pid;
		p->stats.timeouts++;
		reap_worker(w, true);
		vs_warn("event=request_timeout service=%s slot=%d pid=%d timeout_s=%.1f "
		        "action=worker_killed",
		        p->cfg.service, i, (int)pid, p->cfg.request_timeout_s);
		char msg[200];
		snprintf(msg, sizeof(msg),
		         "The request ran past REQUEST_TIMEOUT_SECONDS=%g; its "
		         "worker was stopped",
		         p->cfg.request_timeout_s);
		job->ops->on_fail(job, 504, msg, "request_timeout");
	}
	if (p->cfg.idle_timeout_s <= 0 || now < p->next_idle_check_ms)
		return;
	p->next_idle_check_ms = now + (uint64_t)(p->cfg.idle_check_interval_s * 1000);
	for (int i = 0; i < p->cfg.slots; i++) {
		struct worker *w = &p->w[i];
		double idle_s = (double)(now - w->last_used_ms) / 1000.0;
		if (w->state != W_IDLE || idle_s < p->cfg.idle_timeout_s)
			continue;
		pid_t pid = w->pid;
		bool loaded = w->loaded;
		reap_worker(w, false);
		if (loaded)
			p->stats.unloads++;
		vs_info("event=model_unloaded service=%s slot=%d pid=%d model=%s idle_s=%.1f "
		        "msg=\"Unloaded idle model %s after %.1f s idle (timeout %g min)\"",
		        p->cfg.service, i, (int)pid, model_of(p), idle_s, model_of(p), idle_s,
		        p->cfg.idle_timeout_s / 60.0);
	}
}

/* Reactor thread: the worker's socket is readable or hung up. */
static void worker_ready(struct vs_reactor_source *src)
{
	struct worker *w = (struct worker *)src;
	struct vs_pool *p = w->pool;
	pthread_mutex_lock(&p->mu);
	/* the entry may have been reaped by an earlier event of this batch */
	if (w->state != W_NONE && w->sock >= 0)
		worker_readable(w);
	pthread_mutex_unlock(&p->mu);
}

/* Reactor tick: timeouts, idle unload, reaping. */
static void pool_tick(void *opaque)
{
	struct vs_pool *p = opaque;
	uint64_t now = vs_now_ms();
	pthread_mutex_lock(&p->mu);
	check_timeouts(p, now);
	vs_dying_check(&p->dying, now);
	pthread_mutex_unlock(&p->mu);
}

/* ---- public API ---- */

struct vs_pool *vs_pool_new(const struct vs_pool_config *cfg, const char *exe)
{
	struct vs_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	p->cfg = *cfg;
	p->dying.service = cfg->service;
	snprintf(p->exe, sizeof(p->exe), "%s", exe);
	p->w = calloc((size_t)cfg->slots, sizeof(*p->w));
	if (!p->w) {
		free(p);
		return NULL;
	}
	for (int i = 0; i < cfg->slots; i++) {
		p->w[i] = (struct worker){.pool = p, .slot = i, .sock = -1};
		vs_frame_reader_init(&p->w[i].rd);
	}
	p->next_idle_check_ms = vs_now_ms() + (uint64_t)(cfg->idle_check_interval_s * 1000);
	if (vs_reactor_add_tick(pool_tick, p) < 0) {
		pthread_mutex_destroy(&p->mu);
		free(p->w);
		free(p);
		return NULL;
	}
	if (cfg->idle_timeout_s > 0)
		vs_info("event=idle_checker_started service=%s model=%s interval_s=%g "
		        "timeout_min=%g msg=\"Idle timeout checker started\"",
		        cfg->service, cfg->model ? cfg->model : "-", cfg->idle_check_interval_s,
		        cfg->idle_timeout_s / 60.0);
	else
		vs_info("event=idle_checker_disabled service=%s model=%s msg=\"Idle timeout "
		        "disabled (%s_IDLE_TIMEOUT_MINUTES=0)\"",
		        cfg->service, cfg->model ? cfg->model : "-",
		        strcmp(cfg->service, "asr") == 0 ? "ASR" : "TTS");
	return p;
}

/* Shutdown. The pool lock is held only while the workers are detached (so
 * the reactor never waits behind the grace period); the waiting is done on
 * the collected pids without it, and never blocks past grace_s. */
void vs_pool_stop(struct vs_pool *p, double grace_s)
{
	pthread_mutex_lock(&p->mu);
	p->stopped = true;
	for (int i = 0; i < p->cfg.slots; i++) {
		struct worker *w = &p->w[i];
		struct vs_job *job = w->state == W_BUSY ? w->job : NULL;
		/* an idle worker sees EOF and exits on its own; a busy one is killed,
		 * its request answered below rather than finished */
		reap_worker(w, job != NULL);
		if (job)
			job->ops->on_fail(
			        job, 503,
			        "The server is shutting down; this request was not finished",
			        "shutting_down");
	}
	pthread_mutex_unlock(&p->mu);

	/* the only wait in the pool, bounded by grace_s: reap the dying list
	 * ourselves (the reactor may already be stopped), then SIGKILL the rest */
	uint64_t deadline = vs_now_ms() + (uint64_t)(grace_s * 1000);
	for (;;) {
		pthread_mutex_lock(&p->mu);
		vs_dying_check(&p->dying, vs_now_ms());
		size_t left = p->dying.n;
		pthread_mutex_unlock(&p->mu);
		if (left == 0 || vs_now_ms() >= deadline)
			break;
		usleep(20000);
	}
	pid_t left[VS_POOL_STOP_MAX];
	size_t n = 0;
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->dying.n && n < VS_POOL_STOP_MAX; i++)
		left[n++] = p->dying.d[i].pid;
	p->dying.n = 0;
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < n; i++) {
		/* a worker that ignored EOF for the whole grace period (stuck, or
		 * stopped) must not keep the server from exiting; SIGKILL cannot be
		 * ignored, so this wait is short, and it is outside the lock */
		vs_warn("event=worker_killed service=%s pid=%d reason=shutdown_grace grace_s=%g",
		        p->cfg.service, (int)left[i], grace_s);
		kill(left[i], SIGKILL);
		while (waitpid(left[i], NULL, 0) < 0 && errno == EINTR)
			;
	}
}

void vs_pool_free(struct vs_pool *p)
{
	if (!p)
		return;
	if (!p->stopped)
		vs_pool_stop(p, 0);
	vs_reactor_remove_tick(pool_tick, p);
	pthread_mutex_destroy(&p->mu);
	vs_dying_free(&p->dying);
	free(p->w);
	free(p);
}

int vs_pool_submit(struct vs_pool *p, int slot, struct vs_job *job, uint16_t type,
                   const json_t *payload, int fd)
{
	int r = 0;
	if (slot < 0 || slot >= p->cfg.slots)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	struct worker *w = &p->w[slot];
	if (p->stopped) {
		r = -ESHUTDOWN; /* a kept-alive request that arrived during shutdown */
		goto out;
	}
	if (w->state == W_BUSY) {
		/* cannot happen while slots are honoured; refuse rather than mix answers */
		r = -EBUSY;
		goto out;
	}
	if (w->state == W_NONE) {
		r = spawn_worker(w);
		if (r < 0)
			goto out;
		w->state = W_IDLE;
	}
	r = vs_frame_post_json(w->sock, type, payload, fd);
	if (r < 0) {
		/* it died between requests: start a fresh one and try once more */
		reap_worker(w, true);
		r = spawn_worker(w);
		if (r == 0) {
			w->state = W_IDLE;
			r = vs_frame_post_json(w->sock, type, payload, fd);
		}
		if (r < 0)
			goto out;
	}
	w->state = W_BUSY;
	w->job = job;
	w->last_used_ms = vs_now_ms();
	job->submit_ms = w->last_used_ms;
	job->done_ms = 0;
	w->job_deadline_ms = p->cfg.request_timeout_s > 0
	                             ? w->last_used_ms + (uint64_t)(p->cfg.request_timeout_s * 1000)
	                             : 0;
out:
	pthread_mutex_unlock(&p->mu);
	return r;
}

void vs_pool_detach(struct vs_pool *p, int slot, struct vs_job *job)
{
	if (slot < 0 || slot >= p->cfg.slots)
		return;
	pthread_mutex_lock(&p->mu);
	struct worker *w = &p->w[slot];
	if (w->state == W_BUSY && w->job == job) {
		/* the client left mid-request: stop the work so the slot is really free */
		vs_info("event=job_abandoned service=%s slot=%d pid=%d action=worker_killed",
		        p->cfg.service, slot, (int)w->pid);
		reap_worker(w, true);
	}
	pthread_mutex_unlock(&p->mu);
}

void vs_pool_resume_reading(struct vs_pool *p, int slot)
{
	pthread_mutex_lock(&p->mu);
	struct worker *w = &p->w[slot];
	if (w->state != W_NONE && w->paused) {
		w->paused = false;
		vs_reactor_set_reading(w->sock, &w->src, true);
	}
	pthread_mutex_unlock(&p->mu);
}

static double read_rss_mb(pid_t pid)
{
	char path[64], line[256];
	double mb = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long kb;
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1) {
			mb = (double)kb / 1024.0;
			break;
		}
	}
	fclose(f);
	return mb;
}

/* What /health/detailed shows of a worker, copied under the pool lock so
 * /proc is read after it is released (a stopped or dying worker's /proc
 * entry must never hold up the reactor). */
struct worker_view {
	int slot;
	pid_t pid;
	enum wstate state;
	bool loaded;
	uint64_t requests_served, last_used_ms;
};

static size_t snapshot(struct vs_pool *p, struct worker_view *v)
{
	size_t n = 0;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->cfg.slots; i++) {
		struct worker *w = &p->w[i];
		if (w->state != W_NONE)
			v[n++] = (struct worker_view){.slot = i,
			                              .pid = w->pid,
			                              .state = w->state,
			                              .loaded = w->loaded,
			                              .requests_served = w->requests_served,
			                              .last_used_ms = w->last_used_ms};
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

json_t *vs_pool_workers_json(struct vs_pool *p)
{
	json_t *arr = json_array();
	struct worker_view *v = calloc((size_t)p->cfg.slots, sizeof(*v));
	if (!v)
		return arr;
	size_t n = snapshot(p, v);
	uint64_t now = vs_now_ms();
	for (size_t i = 0; i < n; i++) {
		bool idle = v[i].state == W_IDLE;
		double idle_s = idle && now > v[i].last_used_ms
		                        ? (double)(now - v[i].last_used_ms) / 1000.0
		                        : 0;
		json_t *unload = json_null();
		if (p->cfg.idle_timeout_s > 0 && idle) {
			double left = p->cfg.idle_timeout_s - idle_s;
			unload = json_real(left > 0 ? left : 0);
		}
		const char *state =
		        v[i].state == W_BUSY ? (v[i].loaded ? "busy" : "loading") : "idle";
		json_array_append_new(
		        arr, json_pack("{s:i, s:i, s:s, s:b, s:f, s:I, s:f, s:o}", "slot",
		                       v[i].slot, "pid", (int)v[i].pid, "state", state,
		                       "model_loaded", v[i].loaded, "rss_mb", read_rss_mb(v[i].pid),
		                       "requests_served", (json_int_t)v[i].requests_served,
		                       "idle_seconds", idle_s, "unload_in_seconds", unload));
	}
	free(v);
	return arr;
}

bool vs_pool_model_loaded(struct vs_pool *p)
{
	bool any = false;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->cfg.slots; i++)
		any = any || (p->w[i].state != W_NONE && p->w[i].loaded);
	pthread_mutex_unlock(&p->mu);
	return any;
}

bool vs_pool_slot_loaded(struct vs_pool *p, int slot)
{
	bool loaded = false;
	pthread_mutex_lock(&p->mu);
	if (slot >= 0 && slot < p->cfg.slots)
		loaded = p->w[slot].state != W_NONE && p->w[slot].loaded;
	pthread_mutex_unlock(&p->mu);
	return loaded;
}

void vs_pool_get_stats(struct vs_pool *p, struct vs_pool_stats *s)
{
	pthread_mutex_lock(&p->mu);
	*s = p->stats;
	pthread_mutex_unlock(&p->mu);
}

double vs_pool_rss_mb(struct vs_pool *p)
{
	double sum = 0;
	struct worker_view *v = calloc((size_t)p->cfg.slots, sizeof(*v));
	if (!v)
		return 0;
	size_t n = snapshot(p, v);
	for (size_t i = 0; i < n; i++)
		sum += read_rss_mb(v[i].pid);
	free(v);
	return sum;
}
