/* guard.c - memory/swap readings and the admit/refuse decision; see guard.h.
 *
 * DESIGN
 * Two halves: vs_guard_read() parses /proc and cgroup files into a reading
 * (pure, no state, testable against a fake tree), and struct vs_guard wraps it
 * with thresholds and a time-based cache shared by the HTTP threads.
 *
 * Cgroup discovery: /proc/self/cgroup gives our cgroup path, "N:...memory...:/p"
 * (v1 memory controller; preferred, because on hybrid hosts v1 owns memory) or
 * "0::/p" (v2). We walk from that cgroup up to the mount root and take the
 * lowest limit found, because a limit on a parent (a pod, a systemd slice)
 * binds just as much as one on the leaf; the working set is then read from the
 * cgroup that carries that limit. Directories that do not exist are skipped,
 * which also covers containers where the mount root already is our cgroup
 * (cgroup namespaces, v1 bind mounts) while /proc/self/cgroup shows a host path.
 */
#include "admit/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB 1048576.0
/* meminfo is ~1.5 KB, memory.stat ~1.5 KB (v2) / ~1.2 KB (v1), cgroup < 1 KB */
#define FILE_BUF 8192
/* deeper cgroup trees than this are not walked further up */
#define MAX_CGROUP_DEPTH 64
/* limits at or above this are "none" (v1: 0x7ffffffffffff000, v2: "max") */
#define NO_LIMIT (UINT64_C(1) << 62)

/* Reads a whole small file into buf (NUL-terminated, truncated to cap - 1).
 * Returns the length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (len < cap - 1) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* Finds "key<sep> <number>" at the start of a line; 0 or -ENOENT. */
static int find_field(const char *buf, const char *key, char sep, uint64_t *out)
{
	size_t klen = strlen(key);

	for (const char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) != 0 || p[klen] != sep)
			continue;
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p + klen + 1, &end, 10);
		if (errno || end == p + klen + 1)
			return -EINVAL;
		*out = (uint64_t)v;
		return 0;
	}
	return -ENOENT;
}

static int join(char *out, size_t cap, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, cap, "%s%s%s", a, b, c);
	return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

/* Reads a single number; "max" (v2: no limit) gives UINT64_MAX. */
static int read_u64(const char *path, uint64_t *out)
{
	char buf[64];
	ssize_t n = read_small(path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	if (strncmp(buf, "max", 3) == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

struct cg_files {
	const char *mount; /* under <root>/sys/fs/cgroup */
	const char *limit, *usage, *inactive_key;
};

static const struct cg_files cg_v2 = {"", "/memory.max", "/memory.current", "inactive_file"};
static const struct cg_files cg_v1 = {"/memory", "/memory.limit_in_bytes", "/memory.usage_in_bytes",
                                      "total_inactive_file"};

/* From /proc/self/cgroup: our memory cgroup path (relative, no trailing '/')
 * and which hierarchy it belongs to. */
static int cgroup_path(const char *root, char *rel, size_t cap, const struct cg_files **kind)
{
	char path[PATH_MAX], buf[FILE_BUF];
	const char *v2 = NULL, *v1 = NULL;
	size_t v2len = 0, v1len = 0;
	int err = join(path, sizeof(path), root, "/proc/self/cgroup", "");

	if (err)
		return err;
	ssize_t n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char *c1 = memchr(line, ':', len);
		char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;

		if (c2) {
			size_t plen = len - (size_t)(c2 + 1 - line);
			size_t clen = (size_t)(c2 - c1 - 1);
			if (c1 - line == 1 && line[0] == '0' && clen == 0) {
				v2 = c2 + 1;
				v2len = plen;
			}
			/* controllers are a comma-separated list: find "memory" as a word */
			for (char *p = c1 + 1; p < c2;) {
				char *comma = memchr(p, ',', (size_t)(c2 - p));
				char *e = comma ? comma : c2;
				if ((size_t)(e - p) == 6 && memcmp(p, "memory", 6) == 0) {
					v1 = c2 + 1;
					v1len = plen;
				}
				p = e + 1;
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	const char *p = v1 ? v1 : v2;
	size_t plen = v1 ? v1len : v2len;
	if (!p)
		return -ENOENT;
	while (plen > 0 && p[plen - 1] == '/')
		plen--;
	if (plen >= cap)
		return -ENAMETOOLONG;
	memcpy(rel, p, plen);
	rel[plen] = '\0';
	*kind = v1 ? &cg_v1 : &cg_v2;
	return 0;
}

/* Fills limit (UINT64_MAX = none) and working set (bytes) of the cgroup that
 * binds us. Returns 0 when some cgroup directory was found, else -errno. */
static int read_cgroup(const char *root, uint64_t *limit, uint64_t *ws, bool *ws_known)
{
	char rel[PATH_MAX], base[PATH_MAX], dir[PATH_MAX], best[PATH_MAX], file[PATH_MAX];
	const struct cg_files *k = &cg_v2;
	bool found = false;
	int err = cgroup_path(root, rel, sizeof(rel), &k);

	*limit = UINT64_MAX;
	*ws = 0;
	*ws_known = false;
	if (err)
		return err;
	err = join(base, sizeof(base), root, "/sys/fs/cgroup", k->mount);
	if (err)
		return err;
	best[0] = '\0';
	for (int depth = 0; depth < MAX_CGROUP_DEPTH; depth++) {
		uint64_t lim;
		if (join(dir, sizeof(dir), base, rel, "") == 0 &&
		    join(file, sizeof(file), dir, k->limit, "") == 0) {
			int e = read_u64(file, &lim);
			/* v1 says "unlimited" with ~2^63 (rounded to pages) */
			if (e == 0 && lim >= NO_LIMIT)
				lim = UINT64_MAX;
			if (e == 0 || (e != -ENOENT && e != -ENOTDIR)) {
				/* the first existing level is our own cgroup: report its
				 * working set unless an ancestor's limit binds */
				if (!found || (e == 0 && lim < *limit))
					memcpy(best, dir, strlen(dir) + 1);
				if (e == 0 && lim < *limit)
					*limit = lim;
				found = true;
			}
		}
		char *slash = strrchr(rel, '/');
		if (!rel[0])
			break;
		if (slash)
			*slash = '\0';
		else
			rel[0] = '\0';
	}
	if (!found)
		return -ENOENT;

	uint64_t usage, inactive = 0;
	char buf[FILE_BUF];
	if (join(file, sizeof(file), best, k->usage, "") || read_u64(file, &usage))
		return 0; /* e.g. the v2 root cgroup has no memory.current */
	if (join(file, sizeof(file), best, "/memory.stat", "") == 0 &&
	    read_small(file, buf, sizeof(buf)) >= 0)
		(void)find_field(buf, k->inactive_key, ' ', &inactive);
	*ws = usage > inactive ? usage - inactive : 0;
	*ws_known = true;
	return 0;
}

/* "some avg10=1.23 avg60=..." of a PSI file: 0 and *avg10, or -errno */
static int read_psi(const char *path, double *avg10)
{
	char buf[FILE_BUF];
	ssize_t n = read_small(path, buf, sizeof(buf));
	const char *p = n > 0 ? strstr(buf, "some avg10=") : NULL;
	char *end;

	if (!p)
		return n < 0 ? (int)n : -EINVAL;
	errno = 0;
	*avg10 = strtod(p + 11, &end);
	return errno || end == p + 11 ? -EINVAL : 0;
}

/* PSI of the machine and of our own cgroup v2, whichever stalls more */
static void read_pressure(const char *root, struct vs_mem_reading *r)
{
	char path[PATH_MAX], dir[PATH_MAX], rel[PATH_MAX / 2];
	const struct cg_files *k;
	double v;

	if (join(path, sizeof(path), root, "/proc/pressure/memory", "") == 0 &&
	    read_psi(path, &v) == 0) {
		r->pressure_known = true;
		r->pressure_some_avg10 = v;
	}
	if (cgroup_path(root, rel, sizeof(rel), &k) == 0 && k == &cg_v2 &&
	    join(dir, sizeof(dir), root, "/sys/fs/cgroup", rel) == 0 &&
	    join(path, sizeof(path), dir, "/memory.pressure", "") == 0 && read_psi(path, &v) == 0 &&
	    (!r->pressure_known || v > r->pressure_some_avg10)) {
		r->pressure_known = true;
		r->pressure_some_avg10 = v;
	}
}

int vs_guard_read(struct vs_mem_reading *r, const char *proc_root)
{
	const char *root = proc_root ? proc_root : "";
	char path[PATH_MAX], buf[FILE_BUF];
	uint64_t total_kb, avail_kb, swap_total_kb = 0, swap_free_kb = 0;
	int err;

	memset(r, 0, sizeof(*r));
	err = join(path, sizeof(path), root, "/proc/meminfo", "");
	if (err)
		return err;
	ssize_t n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (find_field(buf, "MemTotal", ':', &total_kb) || total_kb == 0)
		return -EINVAL;
	if (find_field(buf, "MemAvailable", ':', &avail_kb)) {
		/* kernels before 3.14: approximate as the free(1) of that time did */
		uint64_t f = 0, b = 0, c = 0;
		(void)find_field(buf, "MemFree", ':', &f);
		(void)find_field(buf, "Buffers", ':', &b);
		(void)find_field(buf, "Cached", ':', &c);
		avail_kb = f + b + c;
	}
	if (avail_kb > total_kb)
		avail_kb = total_kb;
	(void)find_field(buf, "SwapTotal", ':', &swap_total_kb);
	(void)find_field(buf, "SwapFree", ':', &swap_free_kb);

	double total = (double)total_kb * 1024.0, avail = (double)avail_kb * 1024.0;
	r->mem_total_mb = total / MIB;
	r->mem_available_mb = avail / MIB;
	r->mem_percent = (total - avail) / total * 100.0;

	if (swap_total_kb > 0) {
		uint64_t used = swap_free_kb < swap_total_kb ? swap_total_kb - swap_free_kb : 0;
		r->swap_total_mb = (double)swap_total_kb / 1024.0;
		r->swap_used_mb = (double)used / 1024.0;
		r->swap_percent = (double)used / (double)swap_total_kb * 100.0;
	}

	uint64_t limit, ws;
	bool ws_known;
	if (read_cgroup(root, &limit, &ws, &ws_known) == 0) {
		if (limit != UINT64_MAX)
			r->cgroup_limit_mb = (double)limit / MIB;
		if (ws_known)
			r->cgroup_working_set_mb = (double)ws / MIB;
		/* a limit above the RAM cannot bind before the machine runs out */
		if (limit > 0 && (double)limit < total && ws_known) {
			double lim = (double)limit, used = (double)ws;
			r->cgroup_limited = true;
			r->mem_total_mb = lim / MIB;
			r->mem_available_mb = (used < lim ? lim - used : 0) / MIB;
			r->mem_percent = used / lim * 100.0;
		}
	}
	read_pressure(root, r);
	return 0;
}

static uint64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void vs_guard_init(struct vs_guard *g, int mem_threshold_pct, int swap_threshold_pct,
                   uint64_t cache_us)
{
	memset(g, 0, sizeof(*g));
	g->mem_threshold_pct = mem_threshold_pct;
	g->swap_threshold_pct = swap_threshold_pct;
	g->cache_us = cache_us;
	g->now_us = monotonic_us;
	pthread_mutex_init(&g->lock, NULL);
}

void vs_guard_destroy(struct vs_guard *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
}

void vs_guard_set_root(struct vs_guard *g, const char *root)
{
	snprintf(g->root, sizeof(g->root), "%s", root ? root : "");
}

void vs_guard_set_clock(struct vs_guard *g, uint64_t (*now_us)(void))
{
	g->now_us = now_us ? now_us : monotonic_us;
}

/* Copies the cached reading into *out, re-reading first when stale. Returns
 * the cached read error; *err_new is set for the first caller to see a failure. */
static int current(struct vs_guard *g, struct vs_mem_reading *out, bool *err_new)
{
	int err;

	pthread_mutex_lock(&g->lock);
	uint64_t now = g->now_us();
	/* unsigned difference: a clock that went backwards also counts as stale */
	bool stale = !g->have_reading || now - g->cached_at_us >= g->cache_us;
	if (stale && !(g->refreshing && g->have_reading)) {
		struct vs_mem_reading fresh;
		g->refreshing = true;
		pthread_mutex_unlock(&g->lock);
		err = vs_guard_read(&fresh, g->root);
		pthread_mutex_lock(&g->lock);
		g->cached = fresh;
		g->cached_err = err;
		g->cached_at_us = now;
		g->have_reading = true;
		g->refreshing = false;
		if (!err)
			g->err_reported = false;
	}
	*out = g->cached;
	err = g->cached_err;
	/* only checks consume the "new failure" flag, snapshots do not */
	if (err_new) {
		*err_new = err && !g->err_reported;
		if (err)
			g->err_reported = true;
	}
	pthread_mutex_unlock(&g->lock);
	return err;
}

int vs_guard_check(struct vs_guard *g, struct vs_guard_verdict *v)
{
	const struct vs_mem_reading *r = &v->reading;

	/* fields, not memset: the 256-byte message need not be cleared per request */
	v->reason = NULL;
	v->retry_after_s = 0;
	v->message[0] = '\0';
	v->read_err = current(g, &v->reading, &v->read_err_new);
	if (v->read_err) {
		/* fail open: an unreadable /proc is no evidence of memory pressure */
		snprintf(v->message, sizeof(v->message), "cannot read memory state: %s",
		         strerror(-v->read_err));
		return 0;
	}
	if (r->mem_percent > g->mem_threshold_pct) {
		v->reason = "memory";
		v->retry_after_s = 60;
		snprintf(v->message, sizeof(v->message),
		         "Insufficient memory available: memory usage %.1f%% exceeds threshold "
		         "%d%% (%.0f MB available of %.0f MB%s)",
		         r->mem_percent, g->mem_threshold_pct, r->mem_available_mb, r->mem_total_mb,
		         r->cgroup_limited ? " cgroup limit" : "");
		return -EBUSY;
	}
	if (g->pressure_refuse_pct > 0 && r->pressure_known &&
	    r->pressure_some_avg10 > g->pressure_refuse_pct) {
		v->reason = "pressure";
		v->retry_after_s = 30;
		snprintf(v->message, sizeof(v->message),
		         "Memory pressure too high: tasks stalled on memory %.1f%% of the last 10 "
		         "s, "
		         "over MEMORY_PRESSURE_REFUSE_PERCENT=%g",
		         r->pressure_some_avg10, g->pressure_refuse_pct);
		return -EBUSY;
	}
	if (r->swap_percent > g->swap_threshold_pct) {
		v->reason = "swap";
		v->retry_after_s = 120;
		snprintf(v->message, sizeof(v->message),
		         "Swap usage too high: swap usage %.1f%% exceeds threshold %d%% "
		         "(%.0f MB used of %.0f MB)",
		         r->swap_percent, g->swap_threshold_pct, r->swap_used_mb, r->swap_total_mb);
		return -EBUSY;
	}
	return 0;
}

int vs_guard_snapshot(struct vs_guard *g, struct vs_mem_reading *r)
{
	int err = current(g, r, NULL);

	if (err)
		memset(r, 0, sizeof(*r));
	return err;
}

bool vs_guard_fits(struct vs_guard *g, double need_mb)
{
	struct vs_mem_reading r;

	if (need_mb <= 0 || vs_guard_snapshot(g, &r) < 0 || r.mem_total_mb <= 0)
		return true;
	double used = r.mem_total_mb - r.mem_available_mb + need_mb;
	return used * 100.0 / r.mem_total_mb <= (double)g->mem_threshold_pct;
}
