/* auth.h - API keys and CORS in the front (auth.c).
 *
 * DESIGN
 * One struct vs_auth for the process, shared by both services (like the
 * guard): the keys in force (admit/keys.h: parsing, reload, the
 * constant-time check) and what the settings say about status routes and
 * origins. Everything is decided on the first access-handler call, from the
 * request head: the CORS origin to echo (vs_cors_begin), a preflight's 204
 * (vs_cors_preflight), the key or the 401 (vs_auth_request). The headers
 * that carry those decisions are added to every answer by vs_auth_headers,
 * which both the queued replies and the TTS stream (reply.c
 * vs_req_add_headers) and the replies the front writes itself mid-body use.
 */
#ifndef VS_HTTP_AUTH_H
#define VS_HTTP_AUTH_H

#include <stdbool.h>

#include "admit/keys.h"
#include "config/config.h"

#define VS_CORS_ORIGINS_MAX 32

struct vs_auth {
	struct vs_keys keys; /* keys.on == false: API keys off */
	bool protect_status; /* AUTH_PROTECT_STATUS: /metrics, /health/detailed need a key */
	bool cors_any;       /* ALLOW_ORIGINS=* */
	int n_origins;       /* ALLOW_ORIGINS entries; 0 and !cors_any: CORS off */
	const char *origins[VS_CORS_ORIGINS_MAX]; /* into origins_buf */
	char origins_buf[VS_STR_MAX];
};

struct vs_req;

/* From the settings, at start-up: loads the keys (logs event=api_keys_loaded,
 * or the error; the caller exits 2 on <0) and splits ALLOW_ORIGINS. */
int vs_auth_init(struct vs_auth *a, const struct vs_config *c);
/* SIGHUP: re-reads API_KEYS_FILE; one log line either way (a file that does
 * not parse keeps the keys in force). */
void vs_auth_reload(struct vs_auth *a);
void vs_auth_destroy(struct vs_auth *a);

/* First call, once the route is known (R_NONE for an unknown path): true
 * when r may go on (keys off, an open route, or a key that matches: r->key
 * set, with a reference the completion callback drops); false with the 401
 * set and logged. */
bool vs_auth_request(struct vs_req *r);
/* First call, before anything else: the Origin to echo on every answer. */
void vs_cors_begin(struct vs_req *r);
/* A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method,
 * CORS on) of a known route: true with the 204 set; no key, no admission. */
bool vs_cors_preflight(struct vs_req *r, const char *method);

struct vs_hdr {
	const char *name, *value;
};
#define VS_AUTH_HDRS_MAX 7
/* The CORS and WWW-Authenticate headers of r's answer into out; returns
 * their number. Values live as long as r. */
int vs_auth_headers(const struct vs_req *r, struct vs_hdr out[VS_AUTH_HDRS_MAX]);

#endif
