/* route.c - the first access-handler call: framing, route, content type,
 * the simple GETs, and admission.
 *
 * DESIGN
 * Everything here is decided from the request head alone, before a body
 * byte is read, in the order of docs/ARCHITECTURE.md "Admission order":
 * framing (400), a CORS preflight (204) or the API key (401; auth.c), route
 * (404/405), content type (415), then either the
 * answer of a simple GET (health, models, metrics, the 400 of translations)
 * or admission (admission.c: guard 503, declared size 413, slot 429/queue).
 * The request's priority lane (vs_req_lane_of) is settled here too, before
 * admission, so both its slots (service, then model) are asked for in it.
 * Routes come from one fixed table; their path is the route label of logs
 * and metrics, never the client's URL, so label values stay bounded.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "http/http.h"

/* A refused request body up to this size is read and dropped before the
 * reply, so the connection stays usable and the client is not reset while
 * still sending (closing a socket with unread input makes the kernel send
 * RST, which can destroy the reply in flight). Larger bodies, chunked ones
 * and those sent with Expect: 100-continue are refused at once (instead of
 * "100 Continue"), and the connection is closed with a lingering close
 * (watcher.c), so a client that sends its body anyway still reads the reply. */
#define DISCARD_MAX_BYTES (8 * 1024 * 1024)

static const struct {
	const char *path;
	enum vs_route route;
	const char *method;
	int kinds; /* bit mask of services serving it */
	/* the label of the route's answers streamed as server-sent events
	 * (stream.c): their own series in /metrics and the access log */
	const char *sse_label;
} routes[] = {
        {"/v1/audio/transcriptions", R_TRANSCRIBE, "POST", 1 << VS_ENGINE_ASR,
         "/v1/audio/transcriptions:sse"},
        {"/v1/audio/translations", R_TRANSLATE, "POST", 1 << VS_ENGINE_ASR, NULL},
        {"/v1/audio/speech", R_SPEECH, "POST", 1 << VS_ENGINE_TTS, "/v1/audio/speech:sse"},
        {"/v1/audio/voices", R_VOICES, "GET", 1 << VS_ENGINE_TTS, NULL},
        {"/v1/audio/models", R_AUDIO_MODELS, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS),
         NULL},
        {"/v1/models", R_MODELS, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS), NULL},
        {"/health", R_HEALTH, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS), NULL},
        {"/health/detailed", R_HEALTH_DETAILED, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS),
         NULL},
        {"/health/ready", R_HEALTH_READY, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS), NULL},
        {"/metrics", R_METRICS, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS), NULL},
        {"/v1/realtime", R_REALTIME, "GET", 1 << VS_ENGINE_ASR, NULL},
        {"/", R_PAGE, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS), NULL},
        {"/page.js", R_PAGE_JS, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS), NULL},
        {"/page.css", R_PAGE_CSS, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS), NULL},
        {"/page/config", R_PAGE_CONFIG, "GET", (1 << VS_ENGINE_ASR) | (1 << VS_ENGINE_TTS), NULL},
};

static bool method_is(const char *method, const char *want)
{
	if (strcmp(want, "GET") == 0)
		return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	return strcmp(method, want) == 0;
}

/* Sets r->route and r->route_label of a path this service serves (else the
 * label "other"); returns its index in routes[], or -1. */
static int find_route(struct vs_req *r, const char *url)
{
	size_t len = strlen(url);
	while (len > 1 && url[len - 1] == '/')
		len--; /* "/health/" is "/health" */
	r->route_label = "other";
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strlen(routes[i].path) != len || strncmp(routes[i].path, url, len) != 0)
			continue;
		if (!(routes[i].kinds & (1 << r->svc->kind)))
			return -1;
		r->route = routes[i].route;
		r->route_label = routes[i].path;
		return (int)i;
	}
	return -1;
}

void vs_route_sse(struct vs_req *r)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].route == r->route && routes[i].sse_label) {
			r->sse = true;
			r->route_label = routes[i].sse_label;
		}
}

const char *vs_route_methods(enum vs_route rt)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].route == rt)
			return strcmp(routes[i].method, "GET") == 0 ? "GET, HEAD"
			                                            : routes[i].method;
	return "GET, HEAD";
}

/* The 404 of an unknown path (i < 0), or the 405 of a method route i does
 * not take; true when neither. */
static bool route_ok(struct vs_req *r, int i, const char *url, const char *method)
{
	if (i < 0) {
		vs_req_set_error(r, 404, NULL, "not_found", "No route %s %.200s on the %s service",
		                 method, url, r->svc->name);
		return false;
	}
	if (!method_is(method, routes[i].method)) {
		vs_req_set_error(r, 405, NULL, "method_not_allowed",
		                 "Method %s is not allowed on %s; use %s", method, routes[i].path,
		                 routes[i].method);
		return false;
	}
	return true;
}

static bool needs_slot(enum vs_route rt)
{
	return rt == R_TRANSCRIBE || rt == R_SPEECH || rt == R_VOICES;
}

static void simple_get(struct vs_req *r)
{
	int status = 200;
	char *body = NULL;
	switch (r->route) {
	case R_HEALTH: body = strdup("{\"status\":\"ok\"}"); break;
	case R_HEALTH_DETAILED: body = vs_health_detailed(r->svc, &status); break;
	case R_HEALTH_READY: body = vs_health_ready(r->svc, &status); break;
	case R_MODELS: body = vs_models_json(r->svc); break;
	case R_AUDIO_MODELS: body = vs_audio_models_json(r->svc); break;
	case R_PAGE:
	case R_PAGE_JS:
	case R_PAGE_CSS:
	case R_PAGE_CONFIG: vs_page_reply(r); return;
	case R_METRICS:
		vs_req_set_body(r, 200, vs_metrics_body(),
		                "text/plain; version=0.0.4; charset=utf-8");
		return;
	case R_TRANSLATE:
		vs_req_set_error(r, 400, "model", "unsupported_operation",
		                 "Translation is not supported by the %s engine; use "
		                 "/v1/audio/transcriptions",
		                 r->svc->engine->name);
		return;
	default: break;
	}
	vs_req_set_body(r, status, body, "application/json");
}

struct cl_scan {
	const char *first;
	bool differ;
};

static enum MHD_Result scan_cl(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
	struct cl_scan *c = cls;
	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
		return MHD_YES;
	if (!c->first)
		c->first = value;
	else if (strcmp(c->first, value) != 0)
		c->differ = true;
	return MHD_YES;
}

/* Framing a proxy in front may read differently (request smuggling), or a
 * body whose end we cannot find: refused with 400, and the connection is
 * closed since where the next request starts is unknown. libmicrohttpd 0.9.75
 * takes the first Content-Length and ignores a Transfer-Encoding other than
 * chunked. */
static bool framing_ok(struct vs_req *r, const char *te, const char *cl)
{
	struct cl_scan scan = {0};
	const char *why = NULL;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_cl, &scan);
	if (scan.differ)
		why = "Conflicting Content-Length headers";
	else if (te && cl)
		why = "Transfer-Encoding and Content-Length together";
	else if (te && strcasecmp(te, "chunked") != 0)
		why = "Unsupported Transfer-Encoding (only chunked is accepted)";
	if (!why)
		return true;
	r->close_after = r->large_body = true;
	r->reject_reason = "framing";
	vs_req_set_error(r, 400, NULL, "invalid_request_framing", "%s", why);
	vs_info("event=reject reason=framing service=%s status=400 msg=\"%s\"", r->svc->name, why);
	return false;
}

/* X-Voicestack-Degrade: never (this request is not served by a fallback
 * model) or allow (the default); any other value is refused, not ignored */
static bool degrade_header_ok(struct vs_req *r)
{
	const char *v =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Voicestack-Degrade");
	if (!v || strcasecmp(v, "allow") == 0)
		return true;
	if (strcasecmp(v, "never") == 0) {
		r->no_degrade = true;
		return true;
	}
	vs_req_set_error(r, 400, NULL, "invalid_header",
	                 "X-Voicestack-Degrade must be 'never' or 'allow' (got '%.40s')", v);
	return false;
}

/* The header a client chooses its lane with, when ALLOW_CLIENT_PRIORITY lets it */
#define PRIORITY_HEADER "X-Voicestack-Priority"

/* The lane of r's API key (API_KEYS_FILE's LANE column; `API_KEY` alone is
 * normal), checked by auth.c before this runs; normal while keys are off.
 * Everything downstream (both waiters, the access line, metrics) follows
 * r->lane, which vs_req_lane_of sets from this. */
static enum vs_lane key_lane(const struct vs_req *r)
{
	return r->key ? r->key->lane : VS_LANE_NORMAL;
}

/* Sets r->lane and both its waiters' lanes: the key's lane, or the one the
 * client asks for with X-Voicestack-Priority where ALLOW_CLIENT_PRIORITY
 * allows it (the header then wins over the key). A header sent while it is
 * not allowed, or an unknown lane, is refused with 400 (false, reply set):
 * a request option is never ignored silently. */
static bool vs_req_lane_of(struct vs_req *r)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, PRIORITY_HEADER);
	r->lane = key_lane(r);
	if (v && !r->svc->cfg->allow_client_priority) {
		vs_req_set_error(r, 400, NULL, "priority_not_allowed",
		                 PRIORITY_HEADER " is not accepted here: clients may not choose "
		                                 "their priority (ALLOW_CLIENT_PRIORITY=false); "
		                                 "send the request without it");
		return false;
	}
	if (v && !vs_lane_parse(v, strlen(v), &r->lane)) {
		vs_req_set_error(r, 400, NULL, "invalid_header",
		                 PRIORITY_HEADER " must be 'high', 'normal' or 'low' (got '%.40s')",
		                 v);
		return false;
	}
	r->waiter.lane = r->mwaiter.lane = r->lane;
	return true;
}

bool vs_route_new_request(struct vs_req *r, const char *url, const char *method)
{
	const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_TRANSFER_ENCODING);
	const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *expect =
	        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
	r->has_body = te || (cl && strcmp(cl, "0") != 0);
	r->large_body = r->has_body && (te || expect || strtoull(cl, NULL, 10) > DISCARD_MAX_BYTES);
	r->close_after = r->large_body;
	r->phase = P_REPLY;

	vs_cors_begin(r);
	if (!framing_ok(r, te, cl))
		return false;
	int route = find_route(r, url);
	/* a preflight carries no key; the key is checked before 404/405 (auth.c) */
	if ((route >= 0 && vs_cors_preflight(r, method)) || !vs_auth_request(r) ||
	    !route_ok(r, route, url, method))
		return false;
	if (r->route == R_TRANSCRIBE || r->route == R_SPEECH) {
		const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_TYPE);
		const char *want =
		        r->route == R_TRANSCRIBE ? "multipart/form-data" : "application/json";
		if (!ct || strncasecmp(ct, want, strlen(want)) != 0) {
			vs_req_set_error(r, 415, NULL, "unsupported_media_type",
			                 "Content-Type must be %s (got %.100s)", want,
			                 ct ? ct : "none");
			return false;
		}
	}
	if (r->route == R_REALTIME) /* a WebSocket: 101 or a refusal (realtime.c) */
		return vs_rt_handshake(r);
	if (!needs_slot(r->route)) {
		simple_get(r);
		return false;
	}
	if (!degrade_header_ok(r) || !vs_req_lane_of(r))
		return false;
	/* a speech body is a small JSON document: read and parse it before a
	 * slot is asked for, so a slow sender never holds one */
	return r->route == R_SPEECH ? vs_admit_precheck(r) : vs_admit(r);
}
