/* test_metrics.c - Prometheus registry: exact text, limits, threads, promtool.
 *
 * Every test starts from an empty registry (vs_metrics_reset in teardown).
 * The promtool test pipes the rendered text through `promtool check metrics`
 * (the Prometheus parser and linter); a deliberately broken text must fail
 * there too, so the test proves promtool really ran.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "obs/metrics.h"
#include "obs/stats.h"

#define PROMTOOL "/usr/bin/promtool"

static int teardown(void **state)
{
	vs_metrics_reset();
	return 0;
}

static double fixed_fn(void *opaque)
{
	return *(const double *)opaque;
}

static const char *const route_code[] = {"route", "code", NULL};
static const char *const service[] = {"service", NULL};
static const double buckets[] = {0.25, 0.5, 1};

/* A small registry with every kind, shared by the exact-text and promtool tests. */
static void build_sample(double *fn_value)
{
	struct vs_metric *req = vs_metric_counter("vs_requests_total",
	                                          "Requests by \\route\\\nand code", route_code);
	struct vs_metric *active = vs_metric_gauge("vs_active_requests", "In flight", NULL);
	struct vs_metric *lat =
	        vs_metric_histogram("vs_request_duration_seconds", "Latency", service, buckets, 3);
	struct vs_metric *mem =
	        vs_metric_gauge_fn("vs_memory_percent", "Memory used", fixed_fn, fn_value);
	assert_non_null(req);
	assert_non_null(active);
	assert_non_null(lat);
	assert_non_null(mem);
	/* declared but never used: only HELP and TYPE are rendered */
	assert_non_null(vs_metric_gauge("vs_queue_depth", "Queued", service));

	vs_counter_inc(req, (const char *const[]){"/v1/audio/speech", "200"});
	vs_counter_inc(req, (const char *const[]){"/v1/audio/speech", "200"});
	vs_counter_add(req, (const char *const[]){"q\"x\\y\nz", "500"}, 3.5);
	vs_gauge_set(active, NULL, 2);
	vs_gauge_add(active, NULL, -0.5);
	/* le is inclusive: 0.25 lands in the 0.25 bucket */
	const double obs[] = {0.25, 0.5, 0.5, 2};
	for (size_t i = 0; i < 4; i++)
		vs_histogram_observe(lat, (const char *const[]){"asr"}, obs[i]);
	vs_histogram_observe(lat, (const char *const[]){"tts"}, 0.1);
}

static void test_render_exact(void **state)
{
	double fn_value = 42.5;
	build_sample(&fn_value);
	char *text = vs_metrics_render();
	assert_non_null(text);
	assert_string_equal(text,
	                    "# HELP vs_requests_total Requests by \\\\route\\\\\\nand code\n"
	                    "# TYPE vs_requests_total counter\n"
	                    "vs_requests_total{route=\"/v1/audio/speech\",code=\"200\"} 2\n"
	                    "vs_requests_total{route=\"q\\\"x\\\\y\\nz\",code=\"500\"} 3.5\n"
	                    "# HELP vs_active_requests In flight\n"
	                    "# TYPE vs_active_requests gauge\n"
	                    "vs_active_requests 1.5\n"
	                    "# HELP vs_request_duration_seconds Latency\n"
	                    "# TYPE vs_request_duration_seconds histogram\n"
	                    "vs_request_duration_seconds_bucket{service=\"asr\",le=\"0.25\"} 1\n"
	                    "vs_request_duration_seconds_bucket{service=\"asr\",le=\"0.5\"} 3\n"
	                    "vs_request_duration_seconds_bucket{service=\"asr\",le=\"1\"} 3\n"
	                    "vs_request_duration_seconds_bucket{service=\"asr\",le=\"+Inf\"} 4\n"
	                    "vs_request_duration_seconds_sum{service=\"asr\"} 3.25\n"
	                    "vs_request_duration_seconds_count{service=\"asr\"} 4\n"
	                    "vs_request_duration_seconds_bucket{service=\"tts\",le=\"0.25\"} 1\n"
	                    "vs_request_duration_seconds_bucket{service=\"tts\",le=\"0.5\"} 1\n"
	                    "vs_request_duration_seconds_bucket{service=\"tts\",le=\"1\"} 1\n"
	                    "vs_request_duration_seconds_bucket{service=\"tts\",le=\"+Inf\"} 1\n"
	                    "vs_request_duration_seconds_sum{service=\"tts\"} 0.1\n"
	                    "vs_request_duration_seconds_count{service=\"tts\"} 1\n"
	                    "# HELP vs_memory_percent Memory used\n"
	                    "# TYPE vs_memory_percent gauge\n"
	                    "vs_memory_percent 42.5\n"
	                    "# HELP vs_queue_depth Queued\n"
	                    "# TYPE vs_queue_depth gauge\n");
	free(text);

	/* callback gauges are evaluated at each render */
	fn_value = 7;
	text = vs_metrics_render();
	assert_non_null(strstr(text, "\nvs_memory_percent 7\n"));
	free(text);
}

static void test_unlabelled_starts_at_zero_and_values(void **state)
{
	struct vs_metric *c = vs_metric_counter("vs_x_total", "x", NULL);
	struct vs_metric *g = vs_metric_gauge("vs_g", "g", (const char *const[]){NULL});
	struct vs_metric *h = vs_metric_histogram("vs_h_seconds", "h", NULL, NULL, 0);
	assert_non_null(c);
	assert_non_null(g);
	assert_non_null(h);
	char *text = vs_metrics_render();
	assert_non_null(strstr(text, "\nvs_x_total 0\n"));
	assert_non_null(strstr(text, "\nvs_h_seconds_bucket{le=\"+Inf\"} 0\n"));
	free(text);

	vs_counter_add(c, NULL, -1);  /* counters never go down */
	vs_counter_add(c, NULL, NAN); /* nor become NaN */
	vs_counter_add(c, NULL, 1e21);
	vs_histogram_observe(h, NULL, NAN);
	vs_histogram_observe(h, NULL, 0.1);
	vs_gauge_set(g, NULL, -INFINITY);
	vs_gauge_set(NULL, NULL, 1); /* a failed registration is harmless */
	vs_counter_inc(g, NULL);     /* wrong kind: ignored */
	text = vs_metrics_render();
	assert_non_null(strstr(text, "\nvs_x_total 1e+21\n"));
	assert_non_null(strstr(text, "\nvs_g -Inf\n"));
	assert_non_null(strstr(text, "\nvs_h_seconds_count 1\n"));
	assert_non_null(strstr(text, "\nvs_h_seconds_sum 0.1\n"));
	free(text);
}

static void test_registration_rules(void **state)
{
	struct vs_metric *a = vs_metric_counter("vs_a_total", "a", route_code);
	assert_non_null(a);
	/* same shape: shared; different kind or labels: refused */
	assert_ptr_equal(vs_metric_counter("vs_a_total", "other help", route_code), a);
	assert_null(vs_metric_gauge("vs_a_total", "a", route_code));
	assert_null(vs_metric_counter("vs_a_total", "a", service));
	struct vs_metric *h = vs_metric_histogram("vs_b_seconds", "b", NULL, buckets, 3);
	assert_ptr_equal(vs_metric_histogram("vs_b_seconds", "b", NULL, buckets, 3), h);
	assert_null(vs_metric_histogram("vs_b_seconds", "b", NULL, buckets, 2));

	assert_null(vs_metric_counter("9bad", "", NULL));
	assert_null(vs_metric_counter("bad-name", "", NULL));
	assert_null(vs_metric_counter("", "", NULL));
	assert_null(vs_metric_counter(NULL, "", NULL));
	assert_non_null(vs_metric_counter("ns:ok_total", NULL, NULL));
	assert_null(vs_metric_counter("vs_c", "", (const char *const[]){"a:b", NULL}));
	assert_null(vs_metric_counter("vs_c", "", (const char *const[]){"__x", NULL}));
	assert_null(vs_metric_counter("vs_c", "", (const char *const[]){"a", "a", NULL}));
	assert_null(vs_metric_counter("vs_c", "",
	                              (const char *const[]){"a", "b", "c", "d", "e", NULL}));
	assert_non_null(
	        vs_metric_counter("vs_d", "", (const char *const[]){"a", "b", "c", "d", NULL}));
	assert_null(vs_metric_histogram("vs_e", "", (const char *const[]){"le", NULL}, buckets, 3));
	assert_null(vs_metric_histogram("vs_e", "", NULL, (const double[]){1, 1}, 2));
	assert_null(vs_metric_histogram("vs_e", "", NULL, (const double[]){1, INFINITY}, 2));
	double many[VS_METRIC_MAX_BUCKETS + 1];
	for (size_t i = 0; i <= VS_METRIC_MAX_BUCKETS; i++)
		many[i] = (double)i;
	assert_null(vs_metric_histogram("vs_e", "", NULL, many, VS_METRIC_MAX_BUCKETS + 1));
	assert_non_null(vs_metric_histogram("vs_e", "", NULL, many, VS_METRIC_MAX_BUCKETS));
	assert_null(vs_metric_gauge_fn("vs_f", "", NULL, NULL));
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_series_limit_and_sanitising(void **state)
{
	struct vs_metric *c =
	        vs_metric_counter("vs_by_model_total", "m", (const char *const[]){"model", NULL});
	char name[32];
	for (int i = 0; i < VS_METRIC_MAX_SERIES + 44; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		vs_counter_inc(c, (const char *const[]){name});
	}
	vs_counter_inc(c, (const char *const[]){"m0"}); /* an existing series still counts */
	char *text = vs_metrics_render();
	assert_int_equal(count(text, "\nvs_by_model_total{"), VS_METRIC_MAX_SERIES + 1);
	assert_non_null(strstr(text, "\nvs_by_model_total{model=\"overflow\"} 44\n"));
	assert_non_null(strstr(text, "\nvs_by_model_total{model=\"m0\"} 2\n"));
	free(text);
	vs_metrics_reset();

	c = vs_metric_counter("vs_s_total", "s", (const char *const[]){"v", NULL});
	char longv[400];
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	longv[VS_METRIC_LABEL_VALUE_MAX - 1] = '\xc3'; /* a 2-byte char straddling the cut */
	longv[VS_METRIC_LABEL_VALUE_MAX] = '\xa9';
	vs_counter_inc(c, (const char *const[]){longv});
	vs_counter_inc(c, (const char *const[]){"ok\xff\xc3\xa9\xed\xa0\x80"});
	vs_counter_inc(c, (const char *const[]){NULL});
	text = vs_metrics_render();
	char expect[VS_METRIC_LABEL_VALUE_MAX + 64];
	snprintf(expect, sizeof(expect), "{v=\"%.*s\"} 1\n", VS_METRIC_LABEL_VALUE_MAX - 1, longv);
	assert_non_null(strstr(text, expect));
	/* invalid byte, valid é, then a UTF-16 surrogate (3 invalid bytes) */
	assert_non_null(strstr(text, "{v=\"ok?\xc3\xa9???\"} 1\n"));
	assert_non_null(strstr(text, "{v=\"\"} 1\n"));
	free(text);
}

#define THREADS 4
#define PER_THREAD 100000

static struct vs_metric *race_c, *race_h;
static pthread_barrier_t race_start;

static void *race(void *arg)
{
	const char *const vals[] = {"/v1/audio/transcriptions", "200"};
	pthread_barrier_wait(&race_start); /* all threads update at once */
	for (int i = 0; i < PER_THREAD; i++) {
		vs_counter_inc(race_c, vals);
		vs_histogram_observe(race_h, (const char *const[]){"asr"}, (i % 4) * 0.25);
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t t[THREADS];
	race_c = vs_metric_counter("vs_requests_total", "r", route_code);
	race_h = vs_metric_histogram("vs_d_seconds", "d", service, buckets, 3);
	assert_int_equal(pthread_barrier_init(&race_start, NULL, THREADS), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race, NULL), 0);
	for (int i = 0; i < THREADS; i++) {
		/* renders while the updates run must not crash or deadlock */
		free(vs_metrics_render());
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&race_start);
	char *text = vs_metrics_render();
	char expect[256];
	snprintf(expect, sizeof(expect),
	         "vs_requests_total{route=\"/v1/audio/transcriptions\",code=\"200\"} %d\n",
	         THREADS * PER_THREAD);
	assert_non_null(strstr(text, expect));
	snprintf(expect, sizeof(expect), "vs_d_seconds_count{service=\"asr\"} %d\n",
	         THREADS * PER_THREAD);
	assert_non_null(strstr(text, expect));
	/* values 0, .25, .5, .75 in equal numbers: sum = 1.5 per 4 observations */
	snprintf(expect, sizeof(expect), "vs_d_seconds_sum{service=\"asr\"} %d\n",
	         THREADS * PER_THREAD / 4 * 3 / 2);
	assert_non_null(strstr(text, expect));
	free(text);
}

/* Exit status of `promtool check metrics` fed with text; its output goes to
 * our stdout so a failure shows promtool's complaint. */
static int promtool(const char *text)
{
	FILE *p = popen(PROMTOOL " check metrics", "w");
	assert_non_null(p);
	fputs(text, p);
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_promtool(void **state)
{
	if (access(PROMTOOL, X_OK) != 0) {
		printf("skipping: %s not installed\n", PROMTOOL);
		skip();
	}
	double fn_value = 12.25;
	build_sample(&fn_value);
	struct vs_metric *c = vs_metric_counter("vs_odd_total", "odd label values",
	                                        (const char *const[]){"v", NULL});
	vs_counter_inc(c, (const char *const[]){"bad \xff utf8 \"quoted\" \\ back\nslash"});
	vs_counter_inc(c, (const char *const[]){"\xc3\xa9t\xc3\xa9"});
	char *text = vs_metrics_render();
	assert_int_equal(promtool(text), 0);
	free(text);
	/* the check is real: promtool rejects a malformed exposition */
	printf("expected promtool error follows:\n");
	fflush(stdout);
	const char *broken = "# TYPE vs_broken_total counter\nvs_broken_total{a=\"\xff\"} 1\n";
	assert_int_not_equal(promtool(broken), 0);
}

/* the outcome label of voicestack_request_duration_seconds */
static void test_outcome(void **state)
{
	(void)state;
	assert_string_equal(vs_stats_outcome(200, NULL), "ok");
	assert_string_equal(vs_stats_outcome(101, NULL), "ok");
	assert_string_equal(vs_stats_outcome(429, "slot"), "refused");
	assert_string_equal(vs_stats_outcome(429, "queue_timeout"), "refused");
	assert_string_equal(vs_stats_outcome(503, "memory"), "refused");
	/* a worker that could not start is the server's fault, not admission's */
	assert_string_equal(vs_stats_outcome(503, NULL), "server_error");
	assert_string_equal(vs_stats_outcome(500, NULL), "server_error");
	assert_string_equal(vs_stats_outcome(504, NULL), "timeout");
	assert_string_equal(vs_stats_outcome(499, NULL), "client_gone");
	assert_string_equal(vs_stats_outcome(413, "size"), "client_error");
	assert_string_equal(vs_stats_outcome(408, "body_timeout"), "client_error");
	assert_string_equal(vs_stats_outcome(400, NULL), "client_error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_render_exact, teardown),
	        cmocka_unit_test_teardown(test_unlabelled_starts_at_zero_and_values, teardown),
	        cmocka_unit_test_teardown(test_registration_rules, teardown),
	        cmocka_unit_test_teardown(test_series_limit_and_sanitising, teardown),
	        cmocka_unit_test_teardown(test_threads, teardown),
	        cmocka_unit_test_teardown(test_promtool, teardown),
	        cmocka_unit_test(test_outcome),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
