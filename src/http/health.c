/* health.c - what the front tells about its services: GET /health/detailed,
 * /health/ready, /v1/models and the gauges of /metrics.
 *
 * DESIGN
 * Rendering service state needs the service (slots, pool, guard, config,
 * engine), so it lives here in http, the one layer that knows them all;
 * obs/ stays a registry fed with plain samples (obs/stats.h) and depends on
 * common only. /metrics: the service gauges are sampled here at scrape time
 * and handed to obs as vs_service_sample records.
 * /health/detailed keeps the original specification's keys and types
 * (status, service, timestamp, memory, swap, model, concurrency, config) and
 * adds queue, workers[], uptime_seconds, version and lanes (slots, queue
 * depth and refusals per priority lane). `model.loaded` is true
 * only while a worker process holds the model. `status` is "degraded" while
 * the resource guard refuses work. Runs on HTTP threads; reads only
 * snapshots, never waits on a worker.
 */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

#include "http/http.h"
#include "obs/metrics.h"
#include "obs/stats.h"

static json_t *iso_timestamp(void)
{
	struct timeval tv;
	struct tm tm;
	char buf[96];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (long)(tv.tv_usec / 1000));
	return json_string(buf);
}

static double round1(double v)
{
	return (double)(long long)(v * 10.0 + (v >= 0 ? 0.5 : -0.5)) / 10.0;
}

static const char *device_of(struct vs_service *svc)
{
	const char *d = svc->kind == VS_ENGINE_ASR ? svc->cfg->asr_device : svc->cfg->tts_device;
	return d && *d ? d : "cpu";
}

/* what adapts admission: the slot limit now (memory pressure), how `auto`
 * derived the slot count, the pressure reading and its bounds */
static json_t *admission_json(struct vs_service *svc, const struct vs_slots_snapshot *s,
                              const struct vs_mem_reading *m)
{
	const struct vs_auto_slots *a = &svc->auto_slots;
	json_t *derived =
	        svc->slots_auto
	                ? json_pack("{s:i, s:i, s:i, s:f, s:s, s:f, s:s}", "slots", a->slots,
	                            "cores", a->cores, "fit", a->fit, "room_mb", round1(a->room_mb),
	                            "model", a->model, "model_mb", a->model_mb, "model_mb_source",
	                            a->measured ? "measured" : "typical")
	                : json_null();
	return json_pack("{s:i, s:o, s:{s:o, s:f, s:f, s:b}}", "slots_limit", s->limit, "auto",
	                 derived, "pressure", "some_avg10",
	                 m->pressure_known ? json_real(m->pressure_some_avg10) : json_null(),
	                 "refuse_percent", svc->cfg->memory_pressure_refuse_percent,
	                 "shrink_percent", svc->cfg->memory_pressure_shrink_percent, "shrunk",
	                 svc->pressure.shrunk);
}

/* every worker of every model, each saying which model it serves */
static json_t *all_workers(struct vs_service *svc)
{
	json_t *all = json_array();
	for (int i = 0; i < svc->n_models; i++) {
		json_t *ws = vs_pool_workers_json(svc->models[i].pool);
		size_t k;
		json_t *w;
		json_array_foreach(ws, k, w)
		{
			json_object_set_new(w, "model", json_string(svc->models[i].spec->id));
			json_array_append(all, w);
		}
		json_decref(ws);
	}
	return all;
}

json_t *vs_lanes_json(const struct vs_slots_snapshot *s)
{
	json_t *j = json_pack("{s:i, s:i}", "reserved_slots", s->reserved, "low_max_skips",
	                      s->low_max_skips);
	for (int i = 0; i < VS_LANES; i++) {
		enum vs_lane l = vs_lane_by_rank[i];
		const struct vs_lane_counts *c = &s->lanes[l];
		json_object_set_new(j, vs_lane_name(l),
		                    json_pack("{s:i, s:i, s:{s:I, s:I, s:I}}", "active", c->active,
		                              "queued", c->depth, "rejected", "slot",
		                              (json_int_t)c->rejected_busy, "queue_full",
		                              (json_int_t)c->rejected_queue_full, "queue_timeout",
		                              (json_int_t)c->queue_timeouts));
	}
	return j;
}

char *vs_health_detailed(struct vs_service *svc, int *status)
{
	struct vs_mem_reading m = {0};
	struct vs_guard_verdict v;
	struct vs_slots_snapshot s;
	const struct vs_config *c = svc->cfg;

	struct vs_model_rt *def = &svc->models[0];
	bool refusing = vs_guard_check(svc->guard, &v) < 0;
	m = v.reading;
	vs_slots_snapshot(&svc->slots, &s);
	*status = 200;

	json_t *j = json_pack(
	        "{s:s, s:s, s:o,"
	        " s:{s:f, s:f, s:f, s:i},"
	        " s:{s:f, s:f, s:f, s:i},"
	        " s:{s:b, s:s, s:s, s:s},"
	        " s:{s:i, s:i, s:i},"
	        " s:{s:f, s:i},"
	        " s:{s:i, s:i, s:f},"
	        " s:o, s:f, s:s}",
	        "status", refusing ? "degraded" : "healthy", "service", svc->name, "timestamp",
	        iso_timestamp(), "memory", "percent", round1(m.mem_percent), "available_mb",
	        round1(m.mem_available_mb), "total_mb", round1(m.mem_total_mb), "threshold_percent",
	        c->memory_threshold_percent, "swap", "percent", round1(m.swap_percent), "used_mb",
	        round1(m.swap_used_mb), "total_mb", round1(m.swap_total_mb), "threshold_percent",
	        c->swap_threshold_percent, "model", "loaded", vs_pool_model_loaded(def->pool),
	        "engine", def->spec->engine->name, "model_name", def->spec->id, "device",
	        device_of(svc), "concurrency", "active_requests", s.active, "max_concurrent", s.max,
	        "available_slots", s.available, "config", "idle_timeout_minutes",
	        svc->idle_timeout_minutes, "max_upload_mb", c->max_upload_size_mb, "queue", "depth",
	        s.depth, "max", s.max_queue, "timeout_seconds", s.queue_timeout_s, "workers",
	        all_workers(svc), "uptime_seconds",
	        (double)(vs_now_ms() - svc->started_ms) / 1000.0, "version", VS_VERSION);
	if (refusing)
		json_object_set_new(j, "degraded_reason", json_string(v.message));
	json_object_set_new(j, "models", vs_models_health_json(svc));
	json_object_set_new(j, "admission", admission_json(svc, &s, &m));
	json_object_set_new(j, "degrade_under_load", json_boolean(svc->degrade));
	json_t *lanes = vs_lanes_json(&s);
	json_object_set_new(lanes, "client_priority", json_boolean(c->allow_client_priority));
	json_object_set_new(j, "lanes", lanes);
	char *out = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(j);
	return out;
}

/* 503 while the guard refuses, or while no new request could be admitted:
 * every slot busy and the queue full (or absent), so a load balancer sends
 * the next request elsewhere */
char *vs_health_ready(struct vs_service *svc, int *status)
{
	struct vs_guard_verdict v;
	struct vs_slots_snapshot s;
	json_t *j;
	vs_slots_snapshot(&svc->slots, &s);
	if (vs_guard_check(svc->guard, &v) < 0) {
		*status = 503;
		j = json_pack("{s:s, s:s, s:s, s:s}", "status", "not_ready", "service", svc->name,
		              "reason", v.reason, "message", v.message);
	} else if (s.available == 0 && s.depth >= s.max_queue) {
		char msg[160];
		snprintf(msg, sizeof(msg), "All %d slots are busy and the queue is %s", s.max,
		         s.max_queue ? "full" : "off");
		*status = 503;
		j = json_pack("{s:s, s:s, s:s, s:s}", "status", "not_ready", "service", svc->name,
		              "reason", "busy", "message", msg);
	} else {
		*status = 200;
		j = json_pack("{s:s, s:s}", "status", "ready", "service", svc->name);
	}
	char *out = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(j);
	return out;
}

char *vs_models_json(struct vs_service *svc)
{
	json_t *data = json_array();
	vs_models_list_json(svc, data);
	json_t *j = json_pack("{s:s, s:o}", "object", "list", "data", data);
	char *out = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(j);
	return out;
}
char *vs_audio_models_json(struct vs_service *svc)
{
	/* Open WebUI reads data["models"][i]["id"]; the entries are those of
	 * /v1/models, ids and aliases, so any name shown is one a request may send */
	json_t *models = json_array();
	vs_models_list_json(svc, models);
	json_t *j = json_pack("{s:s, s:o}", "object", "list", "models", models);
	char *out = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return out;
}

/* the services /metrics samples, in the order of their stats index */
static struct {
	struct vs_service *svcs[VS_STATS_MAX_SERVICES];
	int n;
} observed;

void vs_http_observe(struct vs_service *const *svcs, int n)
{
	for (int i = 0; i < n && observed.n < VS_STATS_MAX_SERVICES; i++)
		observed.svcs[observed.n++] = svcs[i];
	vs_stats_init();
	vs_process_metrics_init();
	vs_stats_build_info(VS_VERSION, MHD_get_version(), JANSSON_VERSION);
}

static void sample_model(int svc_index, int k, struct vs_model_rt *m)
{
	struct vs_slots_snapshot s;
	struct vs_pool_stats ps;
	vs_slots_snapshot(&m->slots, &s);
	vs_pool_get_stats(m->pool, &ps);
	struct vs_model_sample ms = {
	        .service = m->svc->name,
	        .model = m->spec->id,
	        .active = s.active,
	        .max = s.max,
	        .depth = s.depth,
	        .loads = ps.loads,
	        .unloads = ps.unloads,
	        .crashes = ps.crashes,
	        .timeouts = ps.timeouts,
	        .loaded = vs_pool_model_loaded(m->pool),
	        .rss_bytes = vs_pool_rss_mb(m->pool) * 1024 * 1024,
	};
	vs_stats_sample_model(svc_index, k, &ms);
}

char *vs_metrics_body(void)
{
	for (int i = 0; i < observed.n; i++) {
		struct vs_service *svc = observed.svcs[i];
		struct vs_slots_snapshot s;
		vs_slots_snapshot(&svc->slots, &s);
		struct vs_service_sample sample = {
		        .service = svc->name,
		        .active = s.active,
		        .max = s.max,
		        .available = s.available,
		        .depth = s.depth,
		        .max_queue = s.max_queue,
		        .reserved = s.reserved,
		};
		for (int l = 0; l < VS_LANES && l < VS_STATS_MAX_LANES; l++) {
			enum vs_lane lane = vs_lane_by_rank[l];
			sample.lanes[l].name = vs_lane_name(lane);
			sample.lanes[l].active = s.lanes[lane].active;
			sample.lanes[l].depth = s.lanes[lane].depth;
		}
		vs_stats_sample_service(i, &sample);
		for (int k = 0; k < svc->n_models; k++)
			sample_model(i, k, &svc->models[k]);
	}
	if (observed.n > 0) {
		struct vs_mem_reading m;
		if (vs_guard_snapshot(observed.svcs[0]->guard, &m) == 0)
			vs_stats_sample_memory(m.mem_percent, m.swap_percent,
			                       m.mem_available_mb * 1024 * 1024);
	}
	vs_process_metrics_sample();
	return vs_metrics_render();
}
