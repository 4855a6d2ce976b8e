/* admission.c - the decisions made before any body byte is read.
 *
 * DESIGN
 * Called on a request's first access-handler call, in this order: resource
 * guard (503 + Retry-After 60/120), declared size (413), concurrency slot
 * (429 + Retry-After 10, or queued). The policies themselves live in
 * src/admit/ (guard.c, slots.c), which know nothing of HTTP; this file turns
 * their verdicts into replies and logs each refusal once, with its reason
 * (resource, memory, swap, slot, queue, size), so
 * `grep -i "resource\|memory\|slot\|idle"` finds them.
 *
 * The model's own slots come second, once the body says which model
 * (vs_admit_model): a request that holds a slot of its service asks for one
 * of its model (per-model concurrency within the service's). Its model's
 * slots and queue full, it gets the same 429; with *_DEGRADE_UNDER_LOAD the
 * model's fallback (and the fallback's, in turn) is tried first, without
 * queueing. Memory-aware: a request whose model slot has no loaded worker
 * would load the model; when the resident size the model's last load
 * measured would take memory past MEMORY_THRESHOLD_PERCENT, it goes to the
 * fallback (degrading) or gets 503 insufficient_memory_for_model, instead of
 * pushing the machine over and being caught afterwards. A degraded request
 * is logged once (event=degraded), counted and says so in its
 * X-Voicestack-Model header.
 *
 * Both levels admit in the request's priority lane (r->lane, both waiters
 * carry it): *_RESERVED_SLOTS and lane order hold at the service's slots
 * and at every model's (a model with fewer slots than the service could
 * otherwise be filled by normal requests while a high one waits for it).
 * A refusal says which lane was refused, and, when slots are reserved and
 * the request may not use them, that they are.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "common/log.h"
#include "http/http.h"
#include "obs/stats.h"

void vs_admit_waiter_wake(struct vs_waiter *w)
{
	struct vs_req *r = (struct vs_req *)((char *)w - offsetof(struct vs_req, waiter));
	pthread_mutex_lock(&r->mu);
	vs_req_resume_locked(r);
	pthread_mutex_unlock(&r->mu);
}

void vs_admit_model_waiter_wake(struct vs_waiter *w)
{
	struct vs_req *r = (struct vs_req *)((char *)w - offsetof(struct vs_req, mwaiter));
	pthread_mutex_lock(&r->mu);
	vs_req_resume_locked(r);
	pthread_mutex_unlock(&r->mu);
}

/* 429 for the service's slots (m NULL) or for model m's. Without lanes in
 * play (nothing reserved, a normal request) the messages are the
 * specification's; otherwise they name the lane's queue and the slots the
 * request may not take. */
static void reject_busy(struct vs_req *r, int err, struct vs_model_rt *m)
{
	struct vs_slots_snapshot s;
	char what[96], queue[32] = "queue", open[128] = "";
	vs_slots_snapshot(m ? &m->slots : &r->svc->slots, &s);
	snprintf(what, sizeof(what), m ? "%.60s model" : "%.60s", m ? m->spec->id : r->svc->name);
	int depth = s.lanes[r->lane].depth, max = s.max;
	if (s.reserved > 0 || r->lane != VS_LANE_NORMAL)
		snprintf(queue, sizeof(queue), "%s-priority queue", vs_lane_name(r->lane));
	if (s.reserved > 0 && r->lane != VS_LANE_HIGH) {
		max = s.max - s.reserved;
		snprintf(open, sizeof(open),
		         " open to %s-priority requests (%d more are reserved for high priority)",
		         vs_lane_name(r->lane), s.reserved);
	}
	r->retry_after = 10;
	if (err == -ENOSPC) {
		r->reject_reason = "queue_full";
		vs_req_set_error(r, 429, NULL, "queue_full",
		                 "Too many concurrent requests: all %d %s slots%s are busy and the "
		                 "%s is full (%d waiting). Retry later.",
		                 max, what, open, queue, depth);
	} else {
		r->reject_reason = "slot";
		vs_req_set_error(r, 429, NULL, "rate_limit_exceeded",
		                 "Too many concurrent requests: all %d %s slots%s are busy. "
		                 "Retry later.",
		                 max, what, open);
	}
	vs_info("event=reject reason=%s service=%s model=%s lane=%s status=429 active=%d "
	        "max_concurrent=%d reserved=%d queue_depth=%d msg=\"No free concurrency slot\"",
	        r->reject_reason, r->svc->name, m ? m->spec->id : "-", vs_lane_name(r->lane),
	        s.active, s.max, s.reserved, depth);
}

bool vs_admit_guard(struct vs_req *r)
{
	struct vs_service *svc = r->svc;
	struct vs_guard_verdict v;

	if (vs_guard_check(svc->guard, &v) < 0) {
		r->retry_after = v.retry_after_s;
		r->reject_reason = v.reason;
		vs_req_set_error(r, 503, NULL, "insufficient_resources", "%s", v.message);
		vs_warn("event=reject reason=%s service=%s status=503 retry_after=%d "
		        "mem_percent=%.1f swap_percent=%.1f msg=\"Resource guard: %s\"",
		        v.reason, svc->name, v.retry_after_s, v.reading.mem_percent,
		        v.reading.swap_percent, v.message);
		return false;
	}
	if (v.read_err_new)
		vs_warn("event=resource_read_failed err=%d msg=\"Could not read memory usage; "
		        "admitting requests without the memory guard\"",
		        v.read_err);
	return true;
}

bool vs_admit_precheck(struct vs_req *r)
{
	struct vs_service *svc = r->svc;

	if (!vs_admit_guard(r))
		return false;
	const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		unsigned long long n = strtoull(cl, &end, 10);
		if (*end == '\0' && n > svc->max_body_bytes) {
			r->reject_reason = "size";
			if (r->route == R_TRANSCRIBE)
				vs_req_set_error(
				        r, 413, "file", "file_too_large",
				        "Upload of %llu bytes exceeds MAX_UPLOAD_SIZE_MB=%d", n,
				        svc->cfg->max_upload_size_mb);
			else
				vs_req_set_error(
				        r, 413, NULL, "request_too_large",
				        "Request body of %llu bytes exceeds MAX_JSON_BODY_KB=%d", n,
				        svc->cfg->max_json_body_kb);
			vs_info("event=reject reason=size service=%s status=413 bytes=%llu "
			        "limit=%llu msg=\"Upload size over limit\"",
			        svc->name, n, (unsigned long long)svc->max_body_bytes);
			return false;
		}
	}
	return true;
}

bool vs_admit_slot(struct vs_req *r)
{
	struct vs_service *svc = r->svc;
	int s = vs_slots_acquire(&svc->slots, &r->waiter, vs_now_ms());
	if (s >= 0) {
		r->slot = s;
		return true;
	}
	if (s == VS_SLOT_QUEUED) {
		r->phase = P_QUEUED;
		vs_debug("event=queued service=%s lane=%s", svc->name, vs_lane_name(r->lane));
		return false;
	}
	reject_busy(r, s, NULL);
	return false;
}

/* Would loading m's model into the worker of `slot` take memory past the
 * threshold, by the resident size m's last load measured? Only a cold slot
 * (no process, or one that has not loaded) loads anything; a model never
 * loaded yet has no measurement and is let through (its first load
 * measures it). */
static bool cold_load_too_big(struct vs_req *r, struct vs_model_rt *m, int slot, double *need_mb)
{
	struct vs_pool_stats ps;
	if (vs_pool_slot_loaded(m->pool, slot))
		return false;
	vs_pool_get_stats(m->pool, &ps);
	*need_mb = ps.load_rss_mb;
	return !vs_guard_fits(r->svc->guard, ps.load_rss_mb);
}

/* the first fallback of r->asked (following the chain) with a free slot
 * now whose worker is loaded or whose load fits; NULL if none */
static struct vs_model_rt *degrade(struct vs_req *r, const char *why)
{
	int hops = 0;
	double need;
	for (struct vs_model_rt *f = r->asked->fallback; f && hops < VS_MODELS_MAX;
	     f = f->fallback, hops++) {
		if (f == r->asked)
			continue;
		r->mwaiter.state = VS_WAIT_NONE;
		int s = vs_slots_try(&f->slots, &r->mwaiter);
		if (s < 0)
			continue;
		if (cold_load_too_big(r, f, s, &need)) {
			vs_slots_cancel(&f->slots, &r->mwaiter);
			continue;
		}
		r->m = f;
		r->mslot = s;
		vs_info("event=degraded service=%s from=%s to=%s reason=%s msg=\"Served by the "
		        "fallback model\"",
		        r->svc->name, r->asked->spec->id, f->spec->id, why);
		vs_stats_degraded(r->svc->name, r->asked->spec->id, f->spec->id);
		return f;
	}
	return NULL;
}

/* 503: loading the model would pass the memory threshold */
static void reject_memory(struct vs_req *r, struct vs_model_rt *m, double need_mb)
{
	struct vs_mem_reading mem = {0};
	vs_guard_snapshot(r->svc->guard, &mem);
	r->retry_after = 60;
	r->reject_reason = "model_memory";
	vs_req_set_error(r, 503, NULL, "insufficient_memory_for_model",
	                 "Loading model %s (%.0f MB when last loaded) would take memory use from "
	                 "%.1f%% past MEMORY_THRESHOLD_PERCENT=%d (%.0f MB available of %.0f "
	                 "MB). Retry later.",
	                 m->spec->id, need_mb, mem.mem_percent,
	                 r->svc->cfg->memory_threshold_percent, mem.mem_available_mb,
	                 mem.mem_total_mb);
	vs_warn("event=reject reason=model_memory service=%s model=%s status=503 need_mb=%.0f "
	        "available_mb=%.0f mem_percent=%.1f msg=\"Model would not fit under the memory "
	        "threshold\"",
	        r->svc->name, m->spec->id, need_mb, mem.mem_available_mb, mem.mem_percent);
}

bool vs_admit_model_granted(struct vs_req *r)
{
	double need = 0;
	if (!cold_load_too_big(r, r->m, r->mslot, &need))
		return true;
	/* give the slot back before anything else: the next waiter may fit */
	vs_slots_cancel(&r->m->slots, &r->mwaiter);
	r->mslot = -1;
	if (r->svc->degrade && !r->no_degrade && degrade(r, "memory"))
		return true;
	r->m = NULL;
	r->phase = P_REPLY;
	reject_memory(r, r->asked, need);
	return false;
}

bool vs_admit_model(struct vs_req *r)
{
	struct vs_model_rt *m = r->asked;
	bool may_degrade = r->svc->degrade && !r->no_degrade && m->fallback;

	/* a realtime session, or a caller without a connection to resume
	 * (Wyoming), brings its own */
	if (!r->mwaiter.wake)
		r->mwaiter.wake = vs_admit_model_waiter_wake;
	r->m = m;
	int s = vs_slots_acquire(&m->slots, &r->mwaiter, vs_now_ms());
	if (s >= 0) {
		r->mslot = s;
		return vs_admit_model_granted(r);
	}
	if (s == VS_SLOT_QUEUED) {
		r->phase = P_MQUEUED;
		vs_debug("event=queued service=%s model=%s lane=%s", r->svc->name, m->spec->id,
		         vs_lane_name(r->lane));
		return false;
	}
	if (may_degrade && degrade(r, s == -ENOSPC ? "queue_full" : "slots_busy"))
		return true;
	r->m = NULL; /* mwaiter holds nothing */
	r->phase = P_REPLY;
	reject_busy(r, s, m);
	return false;
}

bool vs_admit(struct vs_req *r)
{
	return vs_admit_precheck(r) && vs_admit_slot(r);
}

void vs_admit_queue_expired(struct vs_req *r)
{
	struct vs_service *svc = r->svc;
	struct vs_slots_snapshot s;
	vs_slots_snapshot(r->phase == P_MQUEUED ? &r->m->slots : &svc->slots, &s);
	r->retry_after = 10;
	r->reject_reason = "queue_timeout";
	vs_req_set_error(r, 429, NULL, "queue_timeout",
	                 "Waited %.1f s in the %s queue without a free slot "
	                 "(%s_QUEUE_TIMEOUT_SECONDS=%g). Retry later.",
	                 (double)r->queue_wait_ms / 1000.0, svc->name,
	                 svc->kind == VS_ENGINE_ASR ? "ASR" : "TTS", s.queue_timeout_s);
	vs_info("event=reject reason=queue_timeout service=%s lane=%s status=429 "
	        "waited_ms=%llu msg=\"Queue wait timed out without a free slot\"",
	        svc->name, vs_lane_name(r->lane), (unsigned long long)r->queue_wait_ms);
}
