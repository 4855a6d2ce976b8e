/* process.c - the standard process_* metrics of the front.
 *
 * DESIGN
 * The names every Prometheus client library exports for its own process
 * (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds), so stock dashboards and alerts work on the
 * front as on anything else. They describe this process only: the workers
 * are other processes, exported per model as voicestack_worker_rss_bytes.
 * Read from /proc/self when /metrics is scraped (a few small reads), never
 * on a request's path. The CPU counter catches up by the difference since
 * the last scrape (two ports may scrape at once: one lock).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "obs/metrics.h"
#include "obs/stats.h"

static struct {
	struct vs_metric *cpu, *rss, *vsz, *fds, *max_fds, *start;
	pthread_mutex_t mu;
	double cpu_seen;
} pm = {.mu = PTHREAD_MUTEX_INITIALIZER};

void vs_process_metrics_init(void)
{
	pm.cpu = vs_metric_counter("process_cpu_seconds_total",
	                           "User and system CPU time of the front process", NULL);
	pm.rss = vs_metric_gauge("process_resident_memory_bytes",
	                         "Resident memory of the front process (workers: "
	                         "voicestack_worker_rss_bytes)",
	                         NULL);
	pm.vsz = vs_metric_gauge("process_virtual_memory_bytes",
	                         "Virtual memory of the front process", NULL);
	pm.fds = vs_metric_gauge("process_open_fds", "Open file descriptors of the front", NULL);
	pm.max_fds = vs_metric_gauge("process_max_fds",
	                             "The front's limit of open file descriptors (soft)", NULL);
	pm.start = vs_metric_gauge("process_start_time_seconds",
	                           "Start time of the front since the Unix epoch", NULL);
}

/* "btime" of /proc/stat: boot time, seconds since the epoch; 0 if unknown */
static double boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	double bt = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "btime ", 6) == 0) {
			bt = strtod(line + 6, NULL);
			break;
		}
	fclose(f);
	return bt;
}

/* entries of /proc/self/fd, less the one opendir holds */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss) of
 * /proc/self/stat, counted from after the command name's ')' (it may hold
 * spaces) where field 3 is the first */
static int read_stat(double *cpu_s, double *start_ticks, double *vsize, double *rss_pages)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	double v[22] = {0};
	int i = 0;
	for (char *save = NULL, *tok = strtok_r(p + 1, " ", &save); tok && i < 22;
	     tok = strtok_r(NULL, " ", &save))
		v[i++] = strtod(tok, NULL);
	if (i < 22)
		return -1;
	double hz = (double)sysconf(_SC_CLK_TCK);
	*cpu_s = (v[11] + v[12]) / hz;
	*start_ticks = v[19] / hz;
	*vsize = v[20];
	*rss_pages = v[21];
	return 0;
}

void vs_process_metrics_sample(void)
{
	double cpu, start, vsize, rss;
	struct rlimit rl;

	if (read_stat(&cpu, &start, &vsize, &rss) == 0) {
		pthread_mutex_lock(&pm.mu);
		/* two scrapes may read /proc in one order and lock in the
		 * other: only the newer reading adds, so the counter never
		 * goes back */
		if (cpu > pm.cpu_seen) {
			vs_counter_add(pm.cpu, NULL, cpu - pm.cpu_seen);
			pm.cpu_seen = cpu;
		}
		pthread_mutex_unlock(&pm.mu);
		vs_gauge_set(pm.rss, NULL, rss * (double)sysconf(_SC_PAGESIZE));
		vs_gauge_set(pm.vsz, NULL, vsize);
		vs_gauge_set(pm.start, NULL, boot_time() + start);
	}
	int fds = open_fds();
	if (fds >= 0)
		vs_gauge_set(pm.fds, NULL, fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		vs_gauge_set(pm.max_fds, NULL, (double)rl.rlim_cur);
}
