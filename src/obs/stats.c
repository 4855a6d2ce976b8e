/* stats.c - what the front counts, exported as Prometheus metrics.
 *
 * DESIGN
 * Request counters and histograms are updated once per request, from the
 * completion callback, with a plain record (stats.h): obs knows no HTTP.
 * Gauges (slots, queue, memory, worker RSS, model lifecycle counters kept
 * by the pools) are sampled when /metrics is scraped, so the hot path pays
 * nothing for them; the front fills the samples. Route labels come from the
 * fixed route table, never from the client's URL, so series stay bounded.
 */
#include <pthread.h>
#include <stdio.h>

#include "obs/metrics.h"
#include "obs/stats.h"

static struct {
	struct vs_metric *requests, *duration, *queue_wait, *rejections, *client_gone, *by_key;
	struct vs_metric *active, *max_slots, *available, *queued, *queue_max;
	struct vs_metric *loads, *unloads, *crashes, *timeouts, *loaded, *rss;
	struct vs_metric *m_active, *m_max, *m_queued, *degraded;
	struct vs_metric *mem_pct, *swap_pct, *mem_avail;
	struct vs_metric *reserved, *lane_active, *lane_queued, *lane_rejections;
	struct vs_metric *ttfb, *audio_in, *audio_out, *work, *build;
	pthread_mutex_t sync_mu;
	/* counts already exported, per model */
	struct vs_model_sample seen[VS_STATS_MAX_SERVICES][VS_STATS_MAX_MODELS];
} st = {.sync_mu = PTHREAD_MUTEX_INITIALIZER};

void vs_stats_init(void)
{
	static const char *const l_req[] = {"service", "route", "status", "model", NULL};
	static const char *const l_model[] = {"service", "model", NULL};
	static const char *const l_deg[] = {"service", "from", "to", NULL};
	static const char *const l_dur[] = {"service", "route", "outcome", NULL};
	static const char *const l_svc[] = {"service", NULL};
	static const char *const l_rej[] = {"service", "reason", NULL};
	/* refusals take a millisecond or two, transcriptions of long uploads
	 * minutes: 1 ms to 5 min (the old bounds, 5 ms to 300 s, are all kept so
	 * a query over `le` still finds them) */
	static const double dur_b[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	                               1,     2.5,    5,     10,   30,    60,   120, 300};
	static const double ttfb_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
	                                0.5,   1,    2.5,   5,    10,  30};
	static const double wait_b[] = {0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60};

	st.requests = vs_metric_counter("voicestack_requests_total",
	                                "HTTP requests by service, route, status and the model "
	                                "that served them (\"\" for routes without one)",
	                                l_req);
	st.duration = vs_metric_histogram(
	        "voicestack_request_duration_seconds",
	        "Time from request start to the last byte queued, by outcome (ok, refused, "
	        "client_error, server_error, timeout, client_gone)",
	        l_dur, dur_b, sizeof(dur_b) / sizeof(dur_b[0]));
	st.queue_wait = vs_metric_histogram("voicestack_queue_wait_seconds",
	                                    "Time queued requests waited for a slot", l_svc, wait_b,
	                                    sizeof(wait_b) / sizeof(wait_b[0]));
	static const char *const l_key[] = {"service", "key", NULL};
	/* names come from the key file: as many series as names there */
	st.by_key = vs_metric_counter("voicestack_requests_by_key_total",
	                              "Requests that presented a valid API key, by the key's name",
	                              l_key);
	st.rejections =
	        vs_metric_counter("voicestack_rejections_total",
	                          "Requests refused by admission control, by reason", l_rej);
	static const char *const l_gone[] = {"service", "phase", NULL};
	st.client_gone = vs_metric_counter("voicestack_client_gone_total",
	                                   "Clients that hung up before their answer was complete, "
	                                   "by the phase the request was in",
	                                   l_gone);
	st.active = vs_metric_gauge("voicestack_active_requests", "Requests holding a slot", l_svc);
	st.max_slots = vs_metric_gauge("voicestack_max_concurrent_requests",
	                               "Configured concurrency slots", l_svc);
	st.available =
	        vs_metric_gauge("voicestack_available_slots", "Free concurrency slots", l_svc);
	st.queued = vs_metric_gauge("voicestack_queue_depth", "Requests waiting for a slot", l_svc);
	st.queue_max = vs_metric_gauge("voicestack_queue_max", "Configured queue size", l_svc);
	st.loads = vs_metric_counter("voicestack_model_loads_total",
	                             "Models loaded by workers since start", l_model);
	st.unloads = vs_metric_counter("voicestack_model_unloads_total",
	                               "Models unloaded after the idle timeout", l_model);
	st.crashes = vs_metric_counter("voicestack_worker_crashes_total",
	                               "Workers that died during a request", l_model);
	st.timeouts = vs_metric_counter("voicestack_request_timeouts_total",
	                                "Workers killed for running past REQUEST_TIMEOUT_SECONDS",
	                                l_model);
	st.loaded = vs_metric_gauge("voicestack_model_loaded", "1 while a worker holds the model",
	                            l_model);
	st.rss = vs_metric_gauge("voicestack_worker_rss_bytes",
	                         "Resident memory of the model's workers", l_model);
	st.m_active = vs_metric_gauge("voicestack_model_active_requests",
	                              "Requests holding a slot of the model", l_model);
	st.m_max = vs_metric_gauge("voicestack_model_max_concurrent_requests",
	                           "The model's own slots", l_model);
	st.m_queued = vs_metric_gauge("voicestack_model_queue_depth",
	                              "Requests waiting for a slot of the model", l_model);
	st.degraded = vs_metric_counter("voicestack_degraded_requests_total",
	                                "Requests served by a fallback model because theirs could "
	                                "not be admitted (*_DEGRADE_UNDER_LOAD)",
	                                l_deg);
	static const char *const l_lane[] = {"service", "lane", NULL};
	static const char *const l_lane_rej[] = {"service", "lane", "reason", NULL};
	st.reserved = vs_metric_gauge(
	        "voicestack_reserved_slots",
	        "Slots only high-priority requests may take (*_RESERVED_SLOTS)", l_svc);
	st.lane_active = vs_metric_gauge("voicestack_lane_active_requests",
	                                 "Requests holding a slot, by priority lane", l_lane);
	st.lane_queued = vs_metric_gauge("voicestack_lane_queue_depth",
	                                 "Requests waiting for a slot, by priority lane", l_lane);
	st.lane_rejections = vs_metric_counter(
	        "voicestack_lane_rejections_total",
	        "Requests refused by admission control, by priority lane and reason", l_lane_rej);
	st.ttfb = vs_metric_histogram("voicestack_tts_time_to_first_byte_seconds",
	                              "Time from a speech request's start to its first audio "
	                              "bytes ready to send",
	                              l_model, ttfb_b, sizeof(ttfb_b) / sizeof(ttfb_b[0]));
	st.audio_in = vs_metric_counter("voicestack_audio_in_seconds_total",
	                                "Seconds of audio transcribed (decoded length of the "
	                                "uploads of successful requests)",
	                                l_model);
	st.audio_out =
	        vs_metric_counter("voicestack_audio_out_seconds_total",
	                          "Seconds of speech synthesized by successful requests", l_model);
	st.work = vs_metric_counter("voicestack_processing_seconds_total",
	                            "Worker time of the successful requests counted in "
	                            "voicestack_audio_{in,out}_seconds_total: divide for the "
	                            "real-time factor",
	                            l_model);
	st.mem_pct = vs_metric_gauge("voicestack_memory_used_percent",
	                             "Memory in use, as the resource guard sees it", NULL);
	st.swap_pct = vs_metric_gauge("voicestack_swap_used_percent", "Swap in use", NULL);
	st.mem_avail = vs_metric_gauge("voicestack_memory_available_bytes",
	                               "Memory available, as the resource guard sees it", NULL);
}

const char *vs_stats_outcome(int status, const char *reject_reason)
{
	if (status == 499)
		return "client_gone";
	if (status == 504)
		return "timeout";
	/* admission said no (slots, queue, memory, shutting down): the cheap,
	 * fast answers that must not drag the latency of real work down */
	if ((status == 429 || status == 503) && reject_reason)
		return "refused";
	if (status >= 500)
		return "server_error";
	if (status >= 400)
		return "client_error";
	return "ok";
}

/* what real-time factor is made of (stats.h) */
static void request_audio(const struct vs_request_record *rec, const char *model)
{
	const char *lm[] = {rec->service, model};
	if (rec->has_ttfb)
		vs_histogram_observe(st.ttfb, lm, rec->ttfb_s);
	if (rec->has_audio_in)
		vs_counter_add(st.audio_in, lm, rec->audio_in_s);
	if (rec->has_audio_out)
		vs_counter_add(st.audio_out, lm, rec->audio_out_s);
	if (rec->has_work)
		vs_counter_add(st.work, lm, rec->work_s);
}

void vs_stats_request_done(const struct vs_request_record *rec)
{
	char code[8];
	const char *route = rec->route ? rec->route : "other";
	const char *model = rec->model ? rec->model : "";
	snprintf(code, sizeof(code), "%d", rec->status);
	const char *lr[] = {rec->service, route, code, model};
	const char *ls[] = {rec->service, route, vs_stats_outcome(rec->status, rec->reject_reason)};
	const char *l1[] = {rec->service};
	vs_counter_inc(st.requests, lr);
	vs_histogram_observe(st.duration, ls, rec->duration_s);
	request_audio(rec, model);
	if (rec->queue_wait_s >= 0)
		vs_histogram_observe(st.queue_wait, l1, rec->queue_wait_s);
	if (rec->reject_reason) {
		const char *lj[] = {rec->service, rec->reject_reason};
		const char *ll[] = {rec->service, rec->lane ? rec->lane : "normal",
		                    rec->reject_reason};
		vs_counter_inc(st.rejections, lj);
		vs_counter_inc(st.lane_rejections, ll);
	}
	if (rec->key) {
		const char *lk[] = {rec->service, rec->key};
		vs_counter_inc(st.by_key, lk);
	}
}

void vs_stats_client_gone(const char *service, const char *phase)
{
	const char *l[] = {service, phase};
	vs_counter_inc(st.client_gone, l);
}

void vs_stats_sample_service(int index, const struct vs_service_sample *s)
{
	const char *l[] = {s->service};
	if (index < 0 || index >= VS_STATS_MAX_SERVICES)
		return;
	vs_gauge_set(st.active, l, s->active);
	vs_gauge_set(st.max_slots, l, s->max);
	vs_gauge_set(st.available, l, s->available);
	vs_gauge_set(st.queued, l, s->depth);
	vs_gauge_set(st.queue_max, l, s->max_queue);
	vs_gauge_set(st.reserved, l, s->reserved);
	for (int i = 0; i < VS_STATS_MAX_LANES; i++) {
		const char *ll[] = {s->service, s->lanes[i].name};
		if (!s->lanes[i].name)
			continue;
		vs_gauge_set(st.lane_active, ll, s->lanes[i].active);
		vs_gauge_set(st.lane_queued, ll, s->lanes[i].depth);
	}
}

void vs_stats_sample_model(int index, int model, const struct vs_model_sample *s)
{
	const char *l[] = {s->service, s->model};
	if (index < 0 || index >= VS_STATS_MAX_SERVICES || model < 0 ||
	    model >= VS_STATS_MAX_MODELS)
		return;
	vs_gauge_set(st.m_active, l, s->active);
	vs_gauge_set(st.m_max, l, s->max);
	vs_gauge_set(st.m_queued, l, s->depth);
	/* the pools count; the registry's counters catch up by the difference */
	pthread_mutex_lock(&st.sync_mu);
	struct vs_model_sample *seen = &st.seen[index][model];
	vs_counter_add(st.loads, l, (double)(s->loads - seen->loads));
	vs_counter_add(st.unloads, l, (double)(s->unloads - seen->unloads));
	vs_counter_add(st.crashes, l, (double)(s->crashes - seen->crashes));
	vs_counter_add(st.timeouts, l, (double)(s->timeouts - seen->timeouts));
	*seen = *s;
	pthread_mutex_unlock(&st.sync_mu);
	vs_gauge_set(st.loaded, l, s->loaded ? 1 : 0);
	vs_gauge_set(st.rss, l, s->rss_bytes);
}

void vs_stats_degraded(const char *service, const char *from, const char *to)
{
	const char *l[] = {service, from, to};
	vs_counter_inc(st.degraded, l);
}

void vs_stats_sample_memory(double mem_percent, double swap_percent, double available_bytes)
{
	vs_gauge_set(st.mem_pct, NULL, mem_percent);
	vs_gauge_set(st.swap_pct, NULL, swap_percent);
	vs_gauge_set(st.mem_avail, NULL, available_bytes);
}

void vs_stats_build_info(const char *version, const char *microhttpd, const char *jansson)
{
	static const char *const l[] = {"version", "microhttpd", "jansson", NULL};
	const char *v[] = {version, microhttpd, jansson};
	st.build = vs_metric_gauge("voicestack_build_info",
	                           "Always 1: the version of this server and of the libraries "
	                           "it was built with",
	                           l);
	vs_gauge_set(st.build, v, 1);
}
