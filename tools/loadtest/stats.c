/* stats.c - per-service counters and latency percentiles of voicestack-loadtest.
 *
 * DESIGN
 * Owns: struct lt_stats bookkeeping. run.c calls lt_stats_answer() for every
 * response that arrived whole and lt_stats_error() for every transfer libcurl
 * failed (timeouts included); report.c reads the counters and asks for
 * latency summaries with lt_stats_latency().
 *
 * Why it is shaped so:
 * - Every answer's latency is kept (16 bytes each): percentiles must be exact
 *   to be compared between runs, and even a 300 s stress run of fast 429s is
 *   a few million samples at most.
 * - Percentiles use the nearest-rank method (the smallest value with at least
 *   p% of the samples at or below it): every reported figure is a latency that
 *   really occurred, and p99 of 10 samples is simply the max.
 * - Errors are grouped by CURLcode, not by libcurl's detailed text, which
 *   carries varying numbers ("after 1000 ms"); the first detail text is kept
 *   as an example.
 * - Tables are fixed-size; what does not fit is counted, never dropped.
 */
#include "loadtest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double lt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void lt_stats_init(struct lt_stats *s, const char *name, const char *url)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->url = url;
}

void lt_stats_free(struct lt_stats *s)
{
	if (!s)
		return;
	free(s->lat);
	s->lat = NULL;
	s->nlat = s->caplat = 0;
	for (int i = 0; i < s->nlanes; i++)
		lt_stats_free(&s->lanes[i]);
	free(s->lanes);
	s->lanes = NULL;
	s->nlanes = 0;
}

int lt_stats_add_lanes(struct lt_stats *s, const struct lt_opts *o)
{
	if (o->nlanes == 0)
		return 0;
	s->lanes = calloc((size_t)o->nlanes, sizeof(*s->lanes));
	if (!s->lanes)
		return -ENOMEM;
	s->nlanes = o->nlanes;
	for (int i = 0; i < o->nlanes; i++)
		lt_stats_init(&s->lanes[i], o->lane[i].name, s->url);
	return 0;
}

static void touch(struct lt_stats *s, double now)
{
	s->completed++;
	if (now > s->t_last)
		s->t_last = now;
}

static void count_retry(struct lt_stats *s, const char *v)
{
	for (int i = 0; i < s->nretry; i++) {
		if (strcmp(s->retry[i].value, v) == 0) {
			s->retry[i].count++;
			return;
		}
	}
	if (s->nretry == LT_MAX_RETRY_VALUES || strlen(v) >= sizeof(s->retry[0].value)) {
		s->retry_other++;
		return;
	}
	snprintf(s->retry[s->nretry].value, sizeof(s->retry[0].value), "%s", v);
	s->retry[s->nretry++].count = 1;
}

int lt_stats_answer(struct lt_stats *s, int status, double ms, const char *retry_after,
                    uint64_t bytes, double now)
{
	if (s->nlat == s->caplat) {
		size_t cap = s->caplat ? s->caplat * 2 : 256;
		struct lt_sample *p = realloc(s->lat, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->lat = p;
		s->caplat = cap;
	}
	s->lat[s->nlat].ms = ms;
	s->lat[s->nlat++].status = status;
	touch(s, now);
	s->answered++;
	if (status >= 0 && status < LT_MAX_STATUS)
		s->status[status]++;
	if (retry_after && *retry_after)
		count_retry(s, retry_after);
	s->bytes_rx += bytes;
	return 0;
}

void lt_stats_error(struct lt_stats *s, int code, int is_timeout, const char *detail, double now)
{
	struct lt_errkind *k = NULL;

	touch(s, now);
	s->errors++;
	if (is_timeout)
		s->timeouts++;
	for (int i = 0; i < s->nerr; i++)
		if (s->err[i].code == code)
			k = &s->err[i];
	if (!k && s->nerr < LT_MAX_ERRKINDS) {
		k = &s->err[s->nerr++];
		k->code = code;
		snprintf(k->example, sizeof(k->example), "%s", detail ? detail : "");
	}
	if (!k) /* table full: lump into the last kind rather than lose it */
		k = &s->err[LT_MAX_ERRKINDS - 1];
	k->count++;
}

/* Nearest rank: the ceil(p/100 * n)-th smallest value (1-based). */
double lt_percentile(const double *sorted, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0.0;
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* status 0: every answer; otherwise only answers with that status. */
int lt_stats_latency(const struct lt_stats *s, int status, struct lt_latency *out)
{
	double *v, sum = 0.0;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (s->nlat == 0)
		return 0;
	v = malloc(s->nlat * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->nlat; i++) {
		if (status == 0 || s->lat[i].status == status) {
			v[n++] = s->lat[i].ms;
			sum += s->lat[i].ms;
		}
	}
	if (n > 0) {
		qsort(v, n, sizeof(*v), cmp_double);
		out->n = n;
		out->min = v[0];
		out->max = v[n - 1];
		out->mean = sum / (double)n;
		out->p50 = lt_percentile(v, n, 50);
		out->p90 = lt_percentile(v, n, 90);
		out->p99 = lt_percentile(v, n, 99);
	}
	free(v);
	return 0;
}

/* The exit-status rule: every request started got an HTTP answer. */
int lt_stats_ok(const struct lt_stats *s)
{
	return s->errors == 0 && s->aborted == 0 && s->answered == s->sent;
}
