/* auth.c - API keys and CORS on the first access-handler call.
 *
 * DESIGN
 * Runs on MHD's threads, from the request head alone (route.c calls it), so
 * a request without a valid key is refused before admission takes a slot or
 * a queue place and before a byte of its body is read; a large body gets
 * its 401 at once with a lingering close like every early refusal. Order
 * (docs/ARCHITECTURE.md "Admission order"): framing (400), then a CORS
 * preflight of a known route (204: a browser sends it without credentials,
 * so it cannot need a key), then the key (401, before 404/405, so a client
 * without a key learns nothing of the routes), then the rest.
 *
 * Open without a key: /health and /health/ready (liveness and readiness
 * probes carry no credentials), and /metrics and /health/detailed when
 * AUTH_PROTECT_STATUS=false.
 *
 * The key comes from `Authorization: Bearer KEY` (the scheme in any case),
 * or, when there is no Authorization header, from `X-API-Key: KEY`, or on
 * /v1/realtime from the subprotocol `openai-insecure-api-key.KEY`. An
 * Authorization header of another scheme counts as a wrong key. The check
 * (admit/keys.c) hashes the presented key and compares digests in constant
 * time. Only the key's name is ever written: the access line (key=NAME),
 * voicestack_requests_by_key_total; a refusal logs whether a key was
 * presented, not what it was.
 *
 * CORS: ALLOW_ORIGINS is split once at start-up (lower case: scheme and
 * host are case-insensitive and browsers send them in lower case); a
 * request's Origin that matches one entry (or any, with `*`) is echoed on
 * every answer, refusals and streams included, with Vary: Origin and the
 * headers a browser script may read.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "http/http.h"

/* what a browser may send (preflight) and read (answers) */
#define CORS_ALLOW_HEADERS                                                                         \
	"Authorization, Content-Type, X-API-Key, X-Request-Id, X-Voicestack-Degrade, "             \
	"X-Voicestack-Priority"
#define CORS_EXPOSE_HEADERS "X-Request-Id, X-Voicestack-Model, Retry-After"
/* seconds a browser may cache a preflight (Chromium caps it at 7200) */
#define CORS_MAX_AGE "600"
#define AUTH_CHALLENGE "Bearer realm=\"voicestack\""

static void split_origins(struct vs_auth *a, const char *list)
{
	char *save = NULL;

	snprintf(a->origins_buf, sizeof(a->origins_buf), "%s", list);
	for (char *p = a->origins_buf; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *t = strtok_r(a->origins_buf, ", ", &save);
	     t && a->n_origins < VS_CORS_ORIGINS_MAX; t = strtok_r(NULL, ", ", &save)) {
		if (strcmp(t, "*") == 0)
			a->cors_any = true;
		else
			a->origins[a->n_origins++] = t;
	}
}

int vs_auth_init(struct vs_auth *a, const struct vs_config *c)
{
	char err[640];

	memset(a, 0, sizeof(*a));
	a->protect_status = c->auth_protect_status;
	split_origins(a, c->allow_origins);
	if (a->cors_any || a->n_origins)
		vs_info("event=cors allow_origins=\"%s\"", c->allow_origins);
	int r = vs_keys_init(&a->keys, c->api_keys_file, c->api_key, err, sizeof(err));
	if (r < 0) {
		vs_error("event=start_failed setting=%s msg=\"%s\"",
		         c->api_keys_file[0] ? "API_KEYS_FILE" : "API_KEY", err);
		return r;
	}
	if (!a->keys.on) {
		vs_info("event=api_keys state=off msg=\"No API_KEYS_FILE or API_KEY: every route "
		        "is "
		        "open\"");
		return 0;
	}
	vs_info("event=api_keys_loaded source=%s keys=%d protect_status=%s",
	        a->keys.from_file ? "API_KEYS_FILE" : "API_KEY", vs_keys_count(&a->keys),
	        a->protect_status ? "true" : "false");
	if (a->keys.others_can_read)
		vs_warn("event=api_keys_file_readable file=%s msg=\"Other users can read the key "
		        "file (chmod 600 it)\"",
		        a->keys.path);
	return 0;
}

void vs_auth_reload(struct vs_auth *a)
{
	char err[640];

	if (!a->keys.on || !a->keys.from_file) {
		vs_info("event=reload msg=\"SIGHUP: nothing to re-read (API_KEYS_FILE is not "
		        "set)\"");
		return;
	}
	if (vs_keys_reload(&a->keys, err, sizeof(err)) < 0) {
		vs_error("event=api_keys_reload_failed keys_kept=%d msg=\"%s; the keys in force "
		         "stay\"",
		         vs_keys_count(&a->keys), err);
		return;
	}
	vs_info("event=api_keys_reloaded file=%s keys=%d", a->keys.path, vs_keys_count(&a->keys));
	if (a->keys.others_can_read)
		vs_warn("event=api_keys_file_readable file=%s msg=\"Other users can read the key "
		        "file (chmod 600 it)\"",
		        a->keys.path);
}

void vs_auth_destroy(struct vs_auth *a)
{
	vs_keys_destroy(&a->keys);
}

static bool route_open(const struct vs_auth *a, enum vs_route rt)
{
	/* the page holds no secret and must load to ask for the key (page.c) */
	return rt == R_HEALTH || rt == R_HEALTH_READY || rt == R_PAGE || rt == R_PAGE_JS ||
	       rt == R_PAGE_CSS || rt == R_PAGE_CONFIG ||
	       (!a->protect_status && (rt == R_HEALTH_DETAILED || rt == R_METRICS));
}

/* The key the request presents: true when it presents one (p, n set; n may
 * be 0), or an Authorization header of another scheme (p = NULL). */
static bool presented_key(struct vs_req *r, const char **p, size_t *n)
{
	const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                               MHD_HTTP_HEADER_AUTHORIZATION);
	const char *v = NULL;

	*p = NULL;
	*n = 0;
	if (auth) {
		if (strncasecmp(auth, "Bearer", 6) != 0 || (auth[6] != ' ' && auth[6] != '\t'))
			return true;
		v = auth + 6;
	} else {
		v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-API-Key");
		/* a browser cannot set headers on a WebSocket: OpenAI's clients
		 * send the key as a subprotocol instead */
		if (!v && r->route == R_REALTIME && (v = vs_rt_subprotocol_key(r, n))) {
			*p = v;
			return true;
		}
		if (!v)
			return false;
	}
	while (*v == ' ' || *v == '\t')
		v++;
	*p = v;
	*n = strlen(v);
	return true;
}

bool vs_auth_request(struct vs_req *r)
{
	struct vs_auth *a = r->svc->auth;
	const char *p;
	size_t n;

	if (!a || !a->keys.on || route_open(a, r->route))
		return true;
	bool given = presented_key(r, &p, &n);
	if (p)
		r->key = vs_keys_check(&a->keys, p, n);
	if (r->key)
		return true;
	r->reject_reason = "auth";
	vs_req_set_error(r, 401, NULL, "invalid_api_key", "%s",
	                 given ? "Incorrect API key provided"
	                       : "Missing API key: send Authorization: Bearer KEY (or X-API-Key: "
	                         "KEY)");
	vs_info("event=reject reason=auth service=%s status=401 route=%s client=%s presented=%s "
	        "request_id=%s",
	        r->svc->name, r->route_label ? r->route_label : "other", r->client,
	        given ? "yes" : "no", r->request_id);
	return false;
}

static bool cors_on(const struct vs_auth *a)
{
	return a && (a->cors_any || a->n_origins > 0);
}

void vs_cors_begin(struct vs_req *r)
{
	const struct vs_auth *a = r->svc->auth;

	r->cors_origin = NULL;
	const char *o = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
	if (!o)
		return;
	/* the page on the other port of this process: MHD keeps o as long as
	 * the request, which outlives its reply headers */
	if (vs_page_sibling_origin(r, o)) {
		r->cors_origin = o;
		return;
	}
	if (!cors_on(a))
		return;
	if (a->cors_any) {
		r->cors_origin = "*";
		return;
	}
	for (int i = 0; i < a->n_origins; i++)
		if (strcasecmp(o, a->origins[i]) == 0)
			r->cors_origin = a->origins[i]; /* lives as long as the process */
}

bool vs_cors_preflight(struct vs_req *r, const char *method)
{
	if (strcmp(method, "OPTIONS") != 0 || (!cors_on(r->svc->auth) && !r->cors_origin) ||
	    !MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin") ||
	    !MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method"))
		return false;
	r->preflight = true;
	vs_req_set_body(r, 204, NULL, NULL);
	return true;
}

int vs_auth_headers(const struct vs_req *r, struct vs_hdr out[VS_AUTH_HDRS_MAX])
{
	const struct vs_auth *a = r->svc->auth;
	int n = 0;

	/* the answer depends on Origin whenever the origin is not `*` */
	if ((cors_on(a) && !a->cors_any) || (r->cors_origin && strcmp(r->cors_origin, "*") != 0))
		out[n++] = (struct vs_hdr){"Vary", "Origin"};
	if (r->cors_origin) {
		out[n++] = (struct vs_hdr){"Access-Control-Allow-Origin", r->cors_origin};
		if (r->preflight) {
			out[n++] = (struct vs_hdr){"Access-Control-Allow-Methods",
			                           vs_route_methods(r->route)};
			out[n++] =
			        (struct vs_hdr){"Access-Control-Allow-Headers", CORS_ALLOW_HEADERS};
			out[n++] = (struct vs_hdr){"Access-Control-Max-Age", CORS_MAX_AGE};
		} else {
			out[n++] = (struct vs_hdr){"Access-Control-Expose-Headers",
			                           CORS_EXPOSE_HEADERS};
		}
	}
	if (r->status == 401)
		out[n++] = (struct vs_hdr){"WWW-Authenticate", AUTH_CHALLENGE};
	return n;
}
