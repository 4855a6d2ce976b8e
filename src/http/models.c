/* models.c - a service's models as the front sees them.
 *
 * DESIGN
 * The catalogue (engine/models.c) says which models a service hosts; start-up
 * (main.c) gives each its own pool and slots (struct vs_model_rt). This
 * file answers the questions requests and probes ask about them: which model
 * a request's "model" names (ids first, then aliases, so an id can never be
 * shadowed), the one list of accepted names the validators of src/api
 * check against, and the models' entries of /v1/models and
 * /health/detailed. Reads snapshots only, never waits on a worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http/http.h"

int vs_service_models_index(struct vs_service *svc)
{
	size_t n = 0, max = sizeof(svc->model_names) / sizeof(svc->model_names[0]) - 1;
	size_t used = 0;

	svc->models_hint[0] = '\0';
	for (int i = 0; i < svc->n_models; i++) {
		struct vs_model_rt *m = &svc->models[i];
		const struct vs_model *spec = m->spec;

		m->svc = svc;
		m->fallback = NULL;
		for (int j = 0; spec->fallback[0] && j < svc->n_models; j++)
			if (strcmp(svc->models[j].spec->id, spec->fallback) == 0)
				m->fallback = &svc->models[j];
		for (int a = -1; a < spec->n_aliases; a++) {
			if (n == max)
				return -ENOSPC;
			svc->model_names[n++] = a < 0 ? spec->id : spec->aliases[a];
		}
	}
	/* the hint in 400s: every name, ids first (a client written for OpenAI
	 * looks for whisper-1 / tts-1) */
	for (size_t k = 0; k < n && used < sizeof(svc->models_hint); k++)
		used += (size_t)snprintf(svc->models_hint + used, sizeof(svc->models_hint) - used,
		                         "%s%s", k ? ", " : "", svc->model_names[k]);
	svc->model_names[n] = NULL;
	return 0;
}

struct vs_model_rt *vs_service_model(struct vs_service *svc, const char *name)
{
	if (!name || !*name)
		return svc->n_models ? &svc->models[0] : NULL;
	for (int i = 0; i < svc->n_models; i++)
		if (strcmp(svc->models[i].spec->id, name) == 0)
			return &svc->models[i];
	for (int i = 0; i < svc->n_models; i++)
		for (int a = 0; a < svc->models[i].spec->n_aliases; a++)
			if (strcmp(svc->models[i].spec->aliases[a], name) == 0)
				return &svc->models[i];
	return NULL;
}

/* one entry of /v1/models: OpenAI's fields, and which model an alias is */
static json_t *model_entry(const char *name, const struct vs_model_rt *m)
{
	json_t *e = json_pack("{s:s, s:s, s:i, s:s, s:s}", "id", name, "object", "model", "created",
	                      0, "owned_by", "voicestack", "service", m->svc->name);
	if (e && strcmp(name, m->spec->id) != 0)
		json_object_set_new(e, "alias_of", json_string(m->spec->id));
	return e;
}

void vs_models_list_json(struct vs_service *svc, json_t *data)
{
	for (int i = 0; i < svc->n_models; i++) {
		const struct vs_model_rt *m = &svc->models[i];
		json_array_append_new(data, model_entry(m->spec->id, m));
		for (int a = 0; a < m->spec->n_aliases; a++)
			json_array_append_new(data, model_entry(m->spec->aliases[a], m));
	}
}

json_t *vs_models_health_json(struct vs_service *svc)
{
	json_t *arr = json_array();

	for (int i = 0; i < svc->n_models; i++) {
		struct vs_model_rt *m = &svc->models[i];
		struct vs_slots_snapshot s;
		struct vs_pool_stats ps;

		vs_slots_snapshot(&m->slots, &s);
		vs_pool_get_stats(m->pool, &ps);
		json_t *o = json_pack(
		        "{s:s, s:s, s:b, s:b, s:s?, s:f,"
		        " s:{s:i, s:i, s:i}, s:{s:i, s:i},"
		        " s:f, s:I, s:f, s:I, s:I, s:I, s:o}",
		        "id", m->spec->id, "engine", m->spec->engine->name, "default", i == 0,
		        "loaded", vs_pool_model_loaded(m->pool), "fallback",
		        m->fallback ? m->fallback->spec->id : NULL, "idle_timeout_minutes",
		        m->idle_timeout_minutes, "concurrency", "active_requests", s.active,
		        "max_concurrent", s.max, "available_slots", s.available, "queue", "depth",
		        s.depth, "max", s.max_queue, "rss_mb", vs_pool_rss_mb(m->pool),
		        "last_load_ms", (json_int_t)ps.last_load_ms, "load_rss_mb", ps.load_rss_mb,
		        "loads", (json_int_t)ps.loads, "unloads", (json_int_t)ps.unloads, "crashes",
		        (json_int_t)ps.crashes, "workers", vs_pool_workers_json(m->pool));
		json_object_set_new(o, "lanes", vs_lanes_json(&s));
		json_array_append_new(arr, o);
	}
	return arr;
}
