/* pool.h - the front's side of the engine workers: one worker process per
 * concurrency slot, spawned on first use, respawned after a crash, stopped
 * when idle; and the reactor thread that reads every worker's frames.
 *
 * Thread rules: vs_pool_submit/detach/resume_reading/status are called from
 * HTTP threads; job callbacks run on the reactor thread with the pool's lock
 * held, so a callback must not call back into the pool. Lock order: pool lock,
 * then the request's own lock (taken inside callbacks).
 */
#ifndef VS_POOL_H
#define VS_POOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "worker/proto.h"
#include "worker/reactor.h"

struct vs_job;

struct vs_job_ops {
	/* One frame of the job's answer. The callback may take f->data (set it to
	 * NULL). Return true to keep reading this worker, false to pause it until
	 * vs_pool_resume_reading() (backpressure while a client reads slowly). */
	bool (*on_frame)(struct vs_job *job, struct vs_frame *f);
	/* The job ended without an answer: worker crashed (500), ran past the
	 * request timeout (504), or could not be started (503). */
	void (*on_fail)(struct vs_job *job, int status, const char *message, const char *code);
};

struct vs_job {
	const struct vs_job_ops *ops;
	/* set by the pool (its lock held): when the job reached its worker, and
	 * when that worker sent the job's last frame (0 = not yet; before
	 * on_frame is called with it). done - submit is the worker's time on the
	 * job, a model load on a cold worker included (processing seconds). */
	uint64_t submit_ms, done_ms;
};

struct vs_pool_config {
	const char *service;                 /* "asr" | "tts" */
	const char *model;                   /* the catalogue's model id, for logs */
	const struct vs_engine_info *engine; /* what the workers load */
	int slots;                           /* max concurrent requests = max workers */
	double idle_timeout_s;               /* 0 = never unload */
	double idle_check_interval_s;
	double request_timeout_s;       /* 0 = none */
	const char *const *worker_args; /* extra argv for `voicestack worker`, NULL-terminated */
};

struct vs_pool_stats {
	uint64_t loads, unloads, crashes, timeouts, spawns;
	/* the last load, as its worker measured it: time and resident memory
	 * right after load (0 = no load yet) */
	uint64_t last_load_ms;
	double load_rss_mb;
};

struct vs_pool;

/* Starts the shared reactor thread on first call. exe: the worker binary.
 * NULL when out of memory or the reactor's tick table is full. */
struct vs_pool *vs_pool_new(const struct vs_pool_config *cfg, const char *exe);
/* Frees the pool (stopping it with no grace if vs_pool_stop did not run).
 * Call after vs_reactor_stop(). Accepts NULL. */
void vs_pool_free(struct vs_pool *p);

#define VS_POOL_STOP_MAX 64 /* = VS_SLOTS_MAX: one worker per slot */
/* Shutdown, first step: from now on vs_pool_submit fails with -ESHUTDOWN.
 * Busy workers are SIGKILLed and their jobs get on_fail(503, "shutting_down")
 * (which resumes their connections); idle workers get EOF and exit on their
 * own. Waits up to grace_s for them, then SIGKILLs the rest. Returns once
 * every worker is reaped. */
void vs_pool_stop(struct vs_pool *p, double grace_s);

/* Sends a request to the worker of `slot` (spawning it if needed). The job's
 * callbacks fire until it ends with RESULT, END, ERROR or on_fail.
 * Returns 0, or -errno when the worker could not be started (caller: 503). */
int vs_pool_submit(struct vs_pool *p, int slot, struct vs_job *job, uint16_t type,
                   const json_t *payload, int fd);

/* The request that owns `job` is over. If the worker is still working on it
 * (client went away), the worker is killed so the slot is really free. */
void vs_pool_detach(struct vs_pool *p, int slot, struct vs_job *job);

/* Re-enable reading after on_frame returned false. */
void vs_pool_resume_reading(struct vs_pool *p, int slot);

/* /health/detailed "workers" array and model.loaded. */
json_t *vs_pool_workers_json(struct vs_pool *p);
bool vs_pool_model_loaded(struct vs_pool *p);
/* true when the worker of `slot` is running with its model loaded (a
 * request there starts no process and loads nothing) */
bool vs_pool_slot_loaded(struct vs_pool *p, int slot);
void vs_pool_get_stats(struct vs_pool *p, struct vs_pool_stats *s);
/* Sum of workers' resident memory in MB (for /metrics). */
double vs_pool_rss_mb(struct vs_pool *p);

#endif
