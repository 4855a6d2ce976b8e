/* report.c - the end-of-run summary of voicestack-loadtest, text or JSON.
 *
 * DESIGN
 * Owns: printing struct lt_stats for humans (lt_report_text) or for
 * programs (lt_report_json, --json). Called once by main.c after lt_run().
 *
 * Why it is shaped so:
 * - Both forms carry the same figures, per service: sent/completed, count per
 *   HTTP status, transport errors grouped by CURLcode (with one example of
 *   libcurl's detailed message), throughput, latency min/mean/p50/p90/p99/max
 *   for all answers and per status (a 2 ms 429 and a 2 s 200 averaged
 *   together describe neither), and the Retry-After values seen.
 * - The JSON goes to stdout alone, so `--json | python3 -m json.tool` works;
 *   all human chatter (progress, --verbose) is on stderr.
 * - With --lane, the same figures again per lane (text: one line each under
 *   the service; JSON: "lanes" in the service's object), so what a high
 *   request got under normal load reads beside it.
 * - Throughput is answers per second over the service's own window (first
 *   request started to last one finished), not the whole run's, so a service
 *   that finished early is not diluted by the other.
 */
#include "loadtest.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static double window(const struct lt_stats *s, double elapsed)
{
	double w = s->t_last - s->t_first;

	return w > 0 ? w : elapsed;
}

static long count_2xx(const struct lt_stats *s)
{
	long n = 0;

	for (int c = 200; c < 300; c++)
		n += s->status[c];
	return n;
}

static void text_latency_row(const struct lt_stats *s, const char *label, int status)
{
	struct lt_latency l;

	if (lt_stats_latency(s, status, &l) < 0 || l.n == 0)
		return;
	printf("    %-8s%8zu %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", label, l.n, l.min, l.mean,
	       l.p50, l.p90, l.p99, l.max);
}

/* one line per lane: what each lane sent and got, and its latency */
static void text_lanes(const struct lt_stats *s)
{
	for (int i = 0; i < s->nlanes; i++) {
		const struct lt_stats *l = &s->lanes[i];
		struct lt_latency lat;

		printf("  lane %-7s %ld sent, %ld answered, %ld errors; status", l->name, l->sent,
		       l->answered, l->errors);
		for (int c = 0; c < LT_MAX_STATUS; c++)
			if (l->status[c])
				printf(" %d: %ld", c, l->status[c]);
		if (lt_stats_latency(l, 0, &lat) == 0 && lat.n > 0)
			printf("; latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f", lat.p50, lat.p90,
			       lat.p99, lat.max);
		printf("\n");
	}
}

static void text_service(const struct lt_stats *s, double elapsed)
{
	double w = window(s, elapsed);
	char label[16];

	printf("\n%s  %s\n", s->name[0] == 'a' ? "ASR" : "TTS", s->url);
	printf("  requests     %ld sent, %ld completed: %ld HTTP answers, %ld transport errors "
	       "(%ld timeouts)",
	       s->sent, s->completed, s->answered, s->errors, s->timeouts);
	if (s->aborted)
		printf(", %ld aborted in flight", s->aborted);
	printf("\n  status      ");
	if (s->answered == 0)
		printf(" none");
	for (int c = 0; c < LT_MAX_STATUS; c++)
		if (s->status[c])
			printf(" %d: %ld", c, s->status[c]);
	printf("\n  throughput   %.2f answers/s (%.2f 2xx/s) over %.2f s, %.1f KiB received\n",
	       w > 0 ? (double)s->answered / w : 0.0, w > 0 ? (double)count_2xx(s) / w : 0.0, w,
	       (double)s->bytes_rx / 1024.0);
	if (s->answered > 0) {
		printf("  latency ms%8s %9s %9s %9s %9s %9s %9s\n", "count", "min", "mean", "p50",
		       "p90", "p99", "max");
		text_latency_row(s, "all", 0);
		for (int c = 0; c < LT_MAX_STATUS; c++) {
			if (!s->status[c])
				continue;
			snprintf(label, sizeof(label), "%d", c);
			text_latency_row(s, label, c);
		}
	}
	printf("  Retry-After ");
	if (s->nretry == 0 && s->retry_other == 0)
		printf(" none");
	for (int i = 0; i < s->nretry; i++)
		printf(" \"%s\": %ld", s->retry[i].value, s->retry[i].count);
	if (s->retry_other)
		printf(" (other values: %ld)", s->retry_other);
	printf("\n  errors      ");
	if (s->nerr == 0)
		printf(" none\n");
	for (int i = 0; i < s->nerr; i++) {
		const struct lt_errkind *k = &s->err[i];

		printf("%s %ld x CURLE %d (%s)\n", i ? "              " : "", k->count, k->code,
		       curl_easy_strerror((CURLcode)k->code));
		if (k->example[0])
			printf("                 e.g. %s\n", k->example);
	}
	text_lanes(s);
}

void lt_report_text(const struct lt_opts *o, const struct lt_stats st[LT_NSVC], double elapsed,
                    int exit_status)
{
	printf("voicestack-loadtest %s: %d worker%s per service, ", VS_VERSION, o->workers,
	       o->workers == 1 ? "" : "s");
	if (o->duration > 0)
		printf("%.3g s of requests", o->duration);
	else
		printf("%ld request%s per worker", o->requests, o->requests == 1 ? "" : "s");
	printf(", timeout %.3g s; ran %.2f s\n", o->timeout, elapsed);
	for (int s = 0; s < LT_NSVC; s++)
		if (o->want[s])
			text_service(&st[s], elapsed);
	printf("\nresult: ");
	if (exit_status == 0) {
		printf("every request got an HTTP answer (exit 0)\n");
		return;
	}
	for (int s = 0, first = 1; s < LT_NSVC; s++) {
		if (!o->want[s] || lt_stats_ok(&st[s]))
			continue;
		printf("%s%ld of %ld %s requests got no HTTP answer", first ? "" : "; ",
		       st[s].sent - st[s].answered, st[s].sent, st[s].name);
		first = 0;
	}
	printf(" (exit 1)\n");
}

static json_t *json_latency(const struct lt_stats *s, int status)
{
	struct lt_latency l;

	if (lt_stats_latency(s, status, &l) < 0)
		return NULL;
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "count", (json_int_t)l.n, "min",
	                 l.min, "mean", l.mean, "p50", l.p50, "p90", l.p90, "p99", l.p99, "max",
	                 l.max);
}

/* json_object_set_new() tolerates a NULL value by failing; count that. */
static int put(json_t *obj, const char *key, json_t *v)
{
	return v ? json_object_set_new(obj, key, v) : -1;
}

static json_t *json_service(const struct lt_stats *s, double elapsed)
{
	/* the figures of a service, or of one of its lanes (recursion depth 1) */
	json_t *j = json_object(), *status = json_object(), *lat = json_object();
	json_t *errs = json_array(), *retry = json_object();
	double w = window(s, elapsed);
	char key[16];
	int bad = !j || !status || !lat || !errs || !retry;

	for (int c = 0; !bad && c < LT_MAX_STATUS; c++) {
		if (!s->status[c])
			continue;
		snprintf(key, sizeof(key), "%d", c);
		bad |= put(status, key, json_integer(s->status[c])) < 0;
		bad |= put(lat, key, json_latency(s, c)) < 0;
	}
	if (!bad)
		bad |= put(lat, "all", json_latency(s, 0)) < 0;
	for (int i = 0; !bad && i < s->nerr; i++) {
		const struct lt_errkind *k = &s->err[i];

		bad |= json_array_append_new(
		               errs, json_pack("{s:i, s:s, s:s, s:I, s:b}", "code", k->code,
		                               "message", curl_easy_strerror((CURLcode)k->code),
		                               "example", k->example, "count", (json_int_t)k->count,
		                               "timeout", k->code == CURLE_OPERATION_TIMEDOUT)) < 0;
	}
	for (int i = 0; !bad && i < s->nretry; i++)
		bad |= put(retry, s->retry[i].value, json_integer(s->retry[i].count)) < 0;
	if (!bad && s->retry_other)
		bad |= put(retry, "other", json_integer(s->retry_other)) < 0;
	if (!bad && s->nlanes) {
		json_t *lanes = json_object();

		bad |= put(j, "lanes", lanes) < 0;
		for (int i = 0; !bad && i < s->nlanes; i++)
			bad |= put(lanes, s->lanes[i].name, json_service(&s->lanes[i], elapsed)) <
			       0;
	}
	if (bad) {
		json_decref(j);
		json_decref(status);
		json_decref(lat);
		json_decref(errs);
		json_decref(retry);
		return NULL;
	}
	if (json_object_update_new(
	            j, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o,"
	                         " s:f, s:f, s:f, s:o, s:o, s:I}",
	                         "url", s->url, "sent", (json_int_t)s->sent, "completed",
	                         (json_int_t)s->completed, "answered", (json_int_t)s->answered,
	                         "transport_errors", (json_int_t)s->errors, "timeouts",
	                         (json_int_t)s->timeouts, "aborted", (json_int_t)s->aborted,
	                         "status", status, "errors", errs, "elapsed_s", w, "throughput_rps",
	                         w > 0 ? (double)s->answered / w : 0.0, "ok_rps",
	                         w > 0 ? (double)count_2xx(s) / w : 0.0, "latency_ms", lat,
	                         "retry_after", retry, "bytes_received", (json_int_t)s->bytes_rx)) <
	    0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int lt_report_json(const struct lt_opts *o, const struct lt_stats st[LT_NSVC], double elapsed,
                   int exit_status)
{
	json_t *root, *svcs = json_object(), *cfg;
	int rc = 0;

	cfg = json_pack("{s:s, s:i, s:I, s:f, s:f}", "service",
	                o->want[LT_ASR] && o->want[LT_TTS] ? "both"
	                : o->want[LT_ASR]                  ? "asr"
	                                                   : "tts",
	                "workers", o->workers, "requests", (json_int_t)o->requests, "duration_s",
	                o->duration, "timeout_s", o->timeout);
	if (!svcs || !cfg)
		rc = -1;
	for (int s = 0; svcs && s < LT_NSVC; s++)
		if (o->want[s] && put(svcs, st[s].name, json_service(&st[s], elapsed)) < 0)
			rc = -1;
	root = json_pack("{s:s, s:s, s:o*, s:f, s:i, s:o*}", "tool", "voicestack-loadtest",
	                 "version", VS_VERSION, "config", cfg, "elapsed_s", elapsed, "exit_status",
	                 exit_status, "services", svcs);
	if (!root || rc < 0 || json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
		rc = -1;
	else
		fputc('\n', stdout);
	json_decref(root);
	return rc;
}
