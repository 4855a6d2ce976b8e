/* guard.h - resource guard: refuse new work when memory or swap is short.
 *
 * DESIGN
 * Owns reading the memory state of the machine (/proc/meminfo) and of the
 * cgroup this process runs in (v2 memory.max/current/stat, v1 fallback), and
 * the decision "admit or refuse with 503 + Retry-After". It knows nothing about
 * HTTP: the front calls vs_guard_check() for every inference request before a
 * slot is taken, and vs_guard_snapshot() for /health/detailed and /metrics.
 *
 * Why cgroups: in a container /proc/meminfo shows the host's RAM, while the
 * OOM killer acts on the cgroup limit. When a limit lower than MemTotal is set,
 * percent = working set / limit, working set = memory.current - inactive_file
 * (the figure kubelet and cAdvisor evict on), so the guard refuses work before
 * the container is killed.
 *
 * Why a cache: the check runs on every request from several HTTP threads; a
 * /proc read costs tens of microseconds, a cached check well under one. One
 * thread that finds the cache stale re-reads while the others keep using the
 * previous reading, so nobody waits on file I/O after the first read.
 *
 * Failing to read /proc does not refuse traffic (fail open): the verdict
 * carries the error and a flag that is set once per outage so the caller logs
 * it once.
 */
#ifndef VS_GUARD_H
#define VS_GUARD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* All sizes in MiB (1048576 bytes), percentages 0..100. */
struct vs_mem_reading {
	double mem_percent, mem_available_mb, mem_total_mb;
	double swap_percent, swap_used_mb, swap_total_mb;
	/* true when a cgroup limit below MemTotal is in force: the mem_* fields
	 * then describe the cgroup (total = limit, available = limit - working set) */
	bool cgroup_limited;
	double cgroup_limit_mb;       /* 0 when no limit (or "max") was found */
	double cgroup_working_set_mb; /* of the limiting cgroup, else of our own; 0 if unknown */
	/* pressure stall information: the share of the last 10 s in which some
	 * task waited for memory (PSI "some avg10", percent), the larger of
	 * /proc/pressure/memory and our cgroup v2's memory.pressure; known only
	 * where the kernel offers PSI */
	bool pressure_known;
	double pressure_some_avg10;
};

/* Reads <proc_root>/proc/meminfo and the cgroup files under <proc_root>/sys/fs/cgroup.
 * proc_root NULL or "" means the real root. Cgroup files that are absent or
 * unreadable are ignored (meminfo figures are used). Returns 0, or a negative
 * errno when meminfo cannot be read or lacks MemTotal (r is zeroed then). */
int vs_guard_read(struct vs_mem_reading *r, const char *proc_root);

#define VS_GUARD_ROOT_MAX 256

struct vs_guard {
	/* configuration, set before the guard is shared */
	int mem_threshold_pct, swap_threshold_pct; /* refuse when percent > threshold */
	double pressure_refuse_pct;                /* refuse while PSI some avg10 > this; 0 = off */
	uint64_t cache_us;
	uint64_t (*now_us)(void); /* monotonic clock; injectable for tests */
	char root[VS_GUARD_ROOT_MAX];

	/* cache, protected by lock */
	pthread_mutex_t lock;
	struct vs_mem_reading cached;
	uint64_t cached_at_us;
	int cached_err;    /* 0, or -errno of the last read */
	bool have_reading; /* a read (successful or not) has completed */
	bool refreshing;   /* a thread is re-reading; others use the stale value */
	bool err_reported; /* the current read failure was already flagged */
};

struct vs_guard_verdict {
	const char *reason; /* "memory", "swap" or "pressure" when refused, NULL when admitted */
	int retry_after_s;  /* 60 for memory, 120 for swap, 30 for pressure, 0 when admitted */
	char message[256];  /* human-readable reason for the response body */
	int read_err;       /* < 0: reading failed and the request was admitted anyway */
	bool read_err_new;  /* first check to see this failure: log it (once per outage) */
	struct vs_mem_reading reading; /* the reading the decision was based on */
};

/* Thresholds in percent (1..100); cache_us is how long a reading is reused
 * (e.g. 250000). Uses the real root and CLOCK_MONOTONIC. */
void vs_guard_init(struct vs_guard *g, int mem_threshold_pct, int swap_threshold_pct,
                   uint64_t cache_us);
void vs_guard_destroy(struct vs_guard *g); /* accepts NULL */

/* For tests: read a fake tree instead of "/" (NULL or "" = real root), and a
 * clock in microseconds (NULL = CLOCK_MONOTONIC). Call before sharing. */
void vs_guard_set_root(struct vs_guard *g, const char *root);
void vs_guard_set_clock(struct vs_guard *g, uint64_t (*now_us)(void));

/* 0 = admit, -EBUSY = refuse (v->reason, retry_after_s, message filled).
 * v is always filled. Thread-safe. */
int vs_guard_check(struct vs_guard *g, struct vs_guard_verdict *v);

/* The latest reading, refreshed if stale. Returns 0, or the -errno of a failed
 * read (r is zeroed then). Thread-safe. */
int vs_guard_snapshot(struct vs_guard *g, struct vs_mem_reading *r);

/* Would `need_mb` more resident memory (a model about to load) keep memory
 * use at or under the threshold? true when need_mb <= 0 (not measured yet)
 * or memory cannot be read (fail open, like vs_guard_check). */
bool vs_guard_fits(struct vs_guard *g, double need_mb);

#endif
