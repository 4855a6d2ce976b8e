/* openai.c - OpenAI-shaped error bodies and the model-name check.
 *
 * DESIGN
 * Every non-2xx answer of the server is {"error":{message,type,param,code}},
 * the shape OpenAI SDKs parse into their exception classes. The status ->
 * type/code table lives here (documented in openai.h) so the front, the
 * admission layer and the validators cannot disagree about it. Callers pass
 * human text; this file makes sure it is valid UTF-8 before jansson sees it,
 * because jansson rejects invalid strings and an error path must not fail.
 * The model check is here because both request validators share it and its
 * only product is an error.
 */
#include "api/openai.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vs_oai_error_type(int http_status)
{
	if (http_status == 429)
		return "rate_limit_error";
	if (http_status == 504)
		return "timeout_error";
	if (http_status >= 400 && http_status < 500)
		return "invalid_request_error";
	return "server_error";
}

const char *vs_oai_error_default_code(int http_status)
{
	switch (http_status) {
	case 429: return "rate_limit_exceeded";
	case 503: return "service_unavailable";
	case 504: return "timeout";
	default: return NULL;
	}
}

json_t *vs_oai_json_string(const char *s)
{
	if (!s)
		s = "";
	json_t *j = json_string(s);
	if (j)
		return j;
	char *copy = strdup(s);
	if (!copy)
		return NULL;
	vs_oai_utf8_sanitize(copy);
	j = json_string(copy);
	free(copy);
	return j;
}

/* NULL or "" -> JSON null */
static json_t *str_or_null(const char *s)
{
	return s && *s ? vs_oai_json_string(s) : json_null();
}

json_t *vs_oai_error(const char *message, const char *type, const char *param, const char *code)
{
	json_t *inner = json_object();
	json_t *outer = json_object();
	if (!inner || !outer)
		goto fail;
	/* message and type are always strings, even when empty */
	if (json_object_set_new(inner, "message", vs_oai_json_string(message)) < 0 ||
	    json_object_set_new(inner, "type", vs_oai_json_string(type ? type : "server_error")) <
	            0 ||
	    json_object_set_new(inner, "param", str_or_null(param)) < 0 ||
	    json_object_set_new(inner, "code", str_or_null(code)) < 0)
		goto fail;
	if (json_object_set_new(outer, "error", inner) < 0) {
		inner = NULL; /* set_new consumed it even on failure */
		goto fail;
	}
	return outer;
fail:
	json_decref(inner);
	json_decref(outer);
	return NULL;
}

char *vs_oai_error_body(int http_status, const char *message, const char *param, const char *code)
{
	if (!code || !*code)
		code = vs_oai_error_default_code(http_status);
	json_t *e = vs_oai_error(message, vs_oai_error_type(http_status), param, code);
	if (!e)
		return NULL;
	char *s = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	return s;
}

char *vs_oai_err_body(const struct vs_oai_err *e)
{
	return vs_oai_error_body(e->status, e->message, e->param, e->code);
}

static void copy_field(char *dst, size_t cap, const char *src)
{
	if (!src) {
		dst[0] = '\0';
		return;
	}
	snprintf(dst, cap, "%s", src);
	vs_oai_utf8_trim_tail(dst);
}

void vs_oai_err_set(struct vs_oai_err *e, int status, const char *param, const char *code,
                    const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	copy_field(e->param, sizeof(e->param), param);
	copy_field(e->code, sizeof(e->code), code);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	/* truncation may have split a sequence; quoted client bytes may be junk */
	vs_oai_utf8_trim_tail(e->message);
	vs_oai_utf8_sanitize(e->message);
}

static bool in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

bool vs_oai_check_model(const char *model, const char *const *accepted, const char *hint,
                        struct vs_oai_err *err)
{
	char list[256];
	char shown[68];

	if (strlen(model) < 64 && (!accepted || in_list(model, accepted)))
		return true;
	if (!hint) {
		/* "a, b, c"; a too long list is cut, the message stays useful */
		size_t off = 0;
		list[0] = '\0';
		for (size_t i = 0; accepted && accepted[i] && off < sizeof(list); i++) {
			int n = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
			                 accepted[i]);
			if (n < 0)
				break;
			off += (size_t)n;
		}
		hint = list;
	}
	/* quote at most 64 bytes of what the client sent */
	snprintf(shown, sizeof(shown), "%.64s", model);
	vs_oai_utf8_trim_tail(shown);
	vs_oai_err_set(err, 400, "model", "model_not_found",
	               "The model '%s' does not exist. Available models: %s.", shown,
	               *hint ? hint : "(none)");
	return false;
}
