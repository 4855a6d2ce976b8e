/* config.c - the settings table and everything it drives, see config.h.
 *
 * DESIGN
 * `settings[]` is the single source of truth: one row per setting with its
 * name, type, bounds, default (as text, parsed by the same code as user
 * input, so a default can never bypass validation), unit, help and the offset
 * of its field in struct vs_config. Loading, --help, `voicestack config` and
 * docs/CONFIG.md are all loops over that table; adding a setting is one row
 * plus one struct field. The .env syntax lives in dotenv.c.
 *
 * Called once by the front at start-up (and by tests); not thread-safe, no
 * logging: errors are one line in the caller's err buffer.
 */
#include "config.h"

#include "dotenv.h"
#include "engine/engine.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum type { T_INT, T_DOUBLE, T_BOOL, T_STRING, T_ENUM };

/* Validator of a T_STRING setting: always writes what it accepts into
 * `allowed` (completing "must be ..."); with v == NULL it only does that (for
 * help and docs). Returns true if v is acceptable. */
typedef bool (*check_fn)(const char *v, char *allowed, size_t len);

struct setting {
	const char *name;
	enum type type;
	size_t off;          /* of the field in struct vs_config */
	double min, max;     /* T_INT, T_DOUBLE */
	const char *choices; /* T_ENUM: "a|b|c", matched case-insensitively */
	check_fn check;      /* T_STRING: optional */
	const char *def;     /* default, as text */
	const char *unit;    /* "" if none */
	const char *help;
};

static bool check_host(const char *v, char *allowed, size_t len);
static bool check_asr_engine(const char *v, char *allowed, size_t len);
static bool check_tts_engine(const char *v, char *allowed, size_t len);

#define F(field) offsetof(struct vs_config, field)
#define INT(n, fld, lo, hi, d, u) n, T_INT, F(fld), lo, hi, NULL, NULL, d, u
#define DBL(n, fld, lo, hi, d, u) n, T_DOUBLE, F(fld), lo, hi, NULL, NULL, d, u
#define BOOL(n, fld, d) n, T_BOOL, F(fld), 0, 0, NULL, NULL, d, ""
#define STR(n, fld, chk, d) n, T_STRING, F(fld), 0, 0, NULL, chk, d, ""
#define ENUM(n, fld, choices, d) n, T_ENUM, F(fld), 0, 0, choices, NULL, d, ""

/* Order is the order of --help, `voicestack config` and docs/CONFIG.md. */
static const struct setting settings[] = {
        /* server */
        {STR("ENV", env, NULL, "dev"),
         "Deployment label, informational only (conventionally dev, development, production or "
         "test); shown by `voicestack config`, changes no behaviour."},
        {STR("HOST", host, check_host, "127.0.0.1"),
         "Address both services listen on. 0.0.0.0 listens on every interface (the original's "
         "default); the loopback default expects a reverse proxy in front."},
        {INT("ASR_PORT", asr_port, 0, 65535, "5001", ""),
         "TCP port of the ASR service (POST /v1/audio/transcriptions); 0 picks a free port, "
         "logged as event=listening."},
        {INT("TTS_PORT", tts_port, 0, 65535, "5002", ""),
         "TCP port of the TTS service (POST /v1/audio/speech); 0 picks a free port."},
        {ENUM("LOG_LEVEL", log_level, "debug|info|warning|error", "info"),
         "Least severe log level written to stderr."},

        /* resource guard */
        {INT("MEMORY_THRESHOLD_PERCENT", memory_threshold_percent, 1, 100, "90", "%"),
         "Reject requests with 503 while RAM usage is above this percentage."},
        {INT("SWAP_THRESHOLD_PERCENT", swap_threshold_percent, 1, 100, "80", "%"),
         "Reject requests with 503 while swap usage is above this percentage."},
        {INT("MAX_UPLOAD_SIZE_MB", max_upload_size_mb, 1, 4096, "100", "MB"),
         "Reject uploads larger than this with 413."},

        /* ASR service */
        {STR("ASR_ENGINE", asr_engine, check_asr_engine, "pocketsphinx"),
         "Speech recognition engine."},
        {STR("ASR_MODEL", asr_model, NULL, ""),
         "Model for the ASR engine; empty = the engine's own model. The names of OpenAI and of the "
         "original specification (whisper-1, base, small, medium, large-v3, ...) are aliases of "
         "it (GET /v1/models lists every accepted name); any other name is ignored with a "
         "warning."},
        {ENUM("ASR_COMPUTE_TYPE", asr_compute_type,
              "default|auto|int8|int8_float16|int8_float32|int8_bfloat16|int16|float16|bfloat16|"
              "float32",
              "int8"),
         "Numeric precision, for engines that have the choice (faster-whisper style); "
         "pocketsphinx has none and ignores it."},
        {ENUM("ASR_DEVICE", asr_device, "cpu|cuda|auto", "cpu"),
         "Device the ASR engine runs on; pocketsphinx runs on the CPU only."},
        {BOOL("ASR_VAD_ENABLED", asr_vad_enabled, "true"),
         "Voice activity detection: skip silence before recognition."},
        {INT("ASR_MAX_CONCURRENT_REQUESTS", asr_max_concurrent_requests, 1, 64, "2", "requests"),
         "Transcriptions running at the same time; more wait in the queue or get 429."},
        {INT("ASR_MAX_QUEUE", asr_max_queue, 0, 1024, "0", "requests"),
         "Transcription requests that may wait for a free slot; 0 = reject at once with 429."},
        {DBL("ASR_QUEUE_TIMEOUT_SECONDS", asr_queue_timeout_seconds, 0.1, 3600, "30", "seconds"),
         "Longest wait in the ASR queue; a request still waiting then gets 429."},
        {DBL("ASR_IDLE_TIMEOUT_MINUTES", asr_idle_timeout_minutes, 0, 525600, "60", "minutes"),
         "Unload the ASR model after this long without requests (it reloads on the next one); "
         "0 disables; fractions allowed (0.05 = 3 seconds)."},

        /* TTS service */
        {STR("TTS_ENGINE", tts_engine, check_tts_engine, "espeak-ng"), "Speech synthesis engine."},
        {ENUM("TTS_DEVICE", tts_device, "cpu|cuda|mps|auto", "cpu"),
         "Device the TTS engine runs on; espeak-ng runs on the CPU only."},
        {INT("TTS_MAX_CONCURRENT_REQUESTS", tts_max_concurrent_requests, 1, 64, "2", "requests"),
         "Syntheses running at the same time; more wait in the queue or get 429."},
        {INT("TTS_MAX_QUEUE", tts_max_queue, 0, 1024, "0", "requests"),
         "Synthesis requests that may wait for a free slot; 0 = reject at once with 429."},
        {DBL("TTS_QUEUE_TIMEOUT_SECONDS", tts_queue_timeout_seconds, 0.1, 3600, "30", "seconds"),
         "Longest wait in the TTS queue; a request still waiting then gets 429."},
        {DBL("TTS_IDLE_TIMEOUT_MINUTES", tts_idle_timeout_minutes, 0, 525600, "60", "minutes"),
         "Unload the TTS model after this long without requests (it reloads on the next one); "
         "0 disables; fractions allowed."},
        {DBL("TTS_DRAIN_TIMEOUT_SECONDS", tts_drain_timeout_seconds, 1, 86400, "300", "seconds"),
         "Longest time a client may take to read the rest of a speech answer once its worker has "
         "finished (or failed); a slower client is disconnected (event=stream_drain_timeout). The "
         "slot is free as soon as the worker is."},

        /* both services */
        {DBL("IDLE_CHECK_INTERVAL_SECONDS", idle_check_interval_seconds, 0.1, 3600, "60",
             "seconds"),
         "How often idle models are looked for (the original checked every 60 seconds)."},
        {DBL("REQUEST_TIMEOUT_SECONDS", request_timeout_seconds, 0, 86400, "300", "seconds"),
         "Longest processing time of one request (504 and the worker is killed); 0 disables. "
         "Bounds ASR_MAX_AUDIO_SECONDS: see there."},
        {DBL("SHUTDOWN_GRACE_SECONDS", shutdown_grace_seconds, 0, 300, "5", "seconds"),
         "On SIGTERM/SIGINT: how long in-flight replies may take to leave and workers to "
         "exit before they are SIGKILLed, so shutdown stays bounded."},
        {INT("TTS_MAX_INPUT_CHARS", tts_max_input_chars, 1, 1000000, "4096", "characters"),
         "Longest TTS `input` text, in characters."},
        {INT("MAX_JSON_BODY_KB", max_json_body_kb, 1, 10240, "64", "KB"),
         "Largest JSON request body (TTS); a larger one gets 413."},
        {DBL("ASR_MAX_AUDIO_SECONDS", asr_max_audio_seconds, 1, 86400, "600", "seconds"),
         "Longest audio accepted for transcription (413): checked against the duration the file "
         "declares before decoding, and while decoding. A clip this long must finish within "
         "REQUEST_TIMEOUT_SECONDS: pocketsphinx runs at about 0.15 x real time on one core, 0.5 "
         "is assumed for a busy machine, so keep ASR_MAX_AUDIO_SECONDS x 0.5 <= "
         "REQUEST_TIMEOUT_SECONDS (a start-up warning says when it is not). Sample rates outside "
         "8000..384000 Hz are refused with 400."},
        {INT("MAX_FORM_FIELD_KB", max_form_field_kb, 1, 1024, "4", "KB"),
         "Largest multipart form field other than the file (model, prompt, ...); a larger one "
         "gets 400."},
        {DBL("UPLOAD_STALL_TIMEOUT_SECONDS", upload_stall_timeout_seconds, 1, 3600, "30",
             "seconds"),
         "A client that sends no byte of its request body for this long is disconnected and its "
         "slot freed."},
        {DBL("BODY_TIMEOUT_SECONDS", body_timeout_seconds, 0.5, 86400, "300", "seconds"),
         "Longest time to receive a whole request body, however steadily it trickles in; the "
         "client then gets 408 and its slot is freed at once. TTS bodies are read before a slot "
         "is taken."},
        {DBL("HEADER_TIMEOUT_SECONDS", header_timeout_seconds, 0.5, 3600, "15", "seconds"),
         "Longest time a connection may take to send its request headers, and longest idle time "
         "of a keep-alive connection between requests; the connection is then closed."},
        {INT("MAX_CONNECTIONS_PER_IP", max_connections_per_ip, 0, 100000, "64", "connections"),
         "Open connections per client IP address and service; more are closed at once. 0 = no "
         "limit. Behind a reverse proxy every client has the proxy's address: raise it or set 0 "
         "there and limit per client in the proxy."},
        {INT("MAX_CONNECTIONS", max_connections, 1, 100000, "1000", "connections"),
         "Open client connections per service; more wait in the kernel's accept backlog until "
         "one closes. Queued and streaming requests hold one each."},

        /* process model */
        {INT("WORKER_NICE", worker_nice, 0, 19, "10", ""),
         "Niceness added to engine worker processes so the HTTP front stays responsive."},
        {INT("HTTP_THREADS", http_threads, 1, 64, "2", "threads"),
         "Threads of the HTTP front (libmicrohttpd); engines run in worker processes."},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))
_Static_assert(N_SETTINGS <= VS_CONFIG_MAX_SETTINGS, "raise VS_CONFIG_MAX_SETTINGS");

static const char *const source_names[] = {"default", ".env", "environment", "flag"};

/* Seconds of work per second of audio assumed when checking
 * ASR_MAX_AUDIO_SECONDS against REQUEST_TIMEOUT_SECONDS. Measured here:
 * pocketsphinx transcribes 49.5 s of librivox speech in 7.2 s (0.15, model
 * load included) on an idle core; 0.5 leaves room for two workers sharing
 * a busy machine. */
#define VS_ASR_CONSERVATIVE_RTF 0.5

/* ---- validators ---- */

static bool check_host(const char *v, char *allowed, size_t len)
{
	unsigned char addr[16];

	/* numeric only: a name would be resolved (DNS at start-up, maybe several
	 * addresses) and could silently expose the service */
	snprintf(allowed, len, "a numeric IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::1)");
	return v && (inet_pton(AF_INET, v, addr) == 1 || inet_pton(AF_INET6, v, addr) == 1);
}

/* Valid engine names come from the registry, so a new engine needs no change here. */
static bool check_engine(enum vs_engine_kind kind, const char *v, char *allowed, size_t len)
{
	const struct vs_engine_info *const *all = vs_engine_all();
	const struct vs_engine_info *ops;
	size_t n = 0;
	int w;

	w = snprintf(allowed, len,
	             "one of the %s engines built in:", kind == VS_ENGINE_ASR ? "ASR" : "TTS");
	for (; all && *all && w >= 0 && (size_t)w < len; all++)
		if ((*all)->kind == kind)
			w += snprintf(allowed + w, len - (size_t)w, "%s %s", n++ ? "," : "",
			              (*all)->name);
	ops = v ? vs_engine_find(v) : NULL;
	return ops && ops->kind == kind;
}

static bool check_asr_engine(const char *v, char *allowed, size_t len)
{
	return check_engine(VS_ENGINE_ASR, v, allowed, len);
}

static bool check_tts_engine(const char *v, char *allowed, size_t len)
{
	return check_engine(VS_ENGINE_TTS, v, allowed, len);
}

/* ---- parsing one value ---- */

/* What a setting accepts, completing "must be ...". */
static void describe(const struct setting *s, char *buf, size_t len)
{
	switch (s->type) {
	case T_INT: snprintf(buf, len, "an integer from %.0f to %.0f", s->min, s->max); break;
	case T_DOUBLE: snprintf(buf, len, "a number from %g to %g", s->min, s->max); break;
	case T_BOOL: snprintf(buf, len, "true or false (or 1/0, yes/no, on/off)"); break;
	case T_ENUM: { /* "a|b|c" -> "one of a, b, c" */
		size_t w = (size_t)snprintf(buf, len, "one of ");
		for (const char *p = s->choices; *p && w + 3 < len; p++) {
			if (*p == '|')
				buf[w++] = ',', buf[w++] = ' ';
			else
				buf[w++] = *p;
		}
		buf[w < len ? w : len - 1] = '\0';
		break;
	}
	case T_STRING:
		if (s->check)
			s->check(NULL, buf, len);
		else
			snprintf(buf, len,
			         "text of at most %d characters without control characters",
			         VS_STR_MAX - 1);
		break;
	}
}

static bool parse_bool(const char *v, bool *out)
{
	static const struct {
		const char *word;
		bool value;
	} words[] = {
	        {"true", true}, {"false", false}, {"1", true},  {"0", false},
	        {"yes", true},  {"no", false},    {"on", true}, {"off", false},
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcasecmp(v, words[i].word) == 0) {
			*out = words[i].value;
			return true;
		}
	}
	return false;
}

/* strtod/strtol accept things we do not want from a config file: leading
 * blanks, hex, "inf", "nan". Plain decimal only. */
static bool plain_decimal(const char *v, bool fraction)
{
	const char *ok = fraction ? "0123456789+-.eE" : "0123456789+-";
	return *v && strspn(v, ok) == strlen(v);
}

/* Find v among "a|b|c" (case-insensitive) and copy the choice, in its
 * canonical spelling, into out. */
static bool match_choice(const char *choices, const char *v, char *out, size_t len)
{
	size_t vlen = strlen(v);

	for (const char *p = choices; *p;) {
		size_t n = strcspn(p, "|");
		if (n == vlen && strncasecmp(p, v, n) == 0 && n < len) {
			memcpy(out, p, n);
			out[n] = '\0';
			return true;
		}
		p += n + (p[n] == '|');
	}
	return false;
}

static bool has_control_chars(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return true;
	return false;
}

/* Parse v into s's field of c. Returns true, or false if v is not acceptable. */
static bool parse_value(const struct setting *s, const char *v, struct vs_config *c)
{
	void *field = (char *)c + s->off;
	char allowed[256], *end;

	switch (s->type) {
	case T_INT: {
		if (!plain_decimal(v, false))
			return false;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (*end || errno || n < s->min || n > s->max)
			return false;
		*(int *)field = (int)n;
		return true;
	}
	case T_DOUBLE: {
		if (!plain_decimal(v, true))
			return false;
		errno = 0;
		double d = strtod(v, &end);
		if (*end || errno || !isfinite(d) || d < s->min || d > s->max)
			return false;
		*(double *)field = d;
		return true;
	}
	case T_BOOL: return parse_bool(v, field);
	case T_ENUM: return match_choice(s->choices, v, field, VS_STR_MAX);
	case T_STRING:
		if (strlen(v) >= VS_STR_MAX || has_control_chars(v) ||
		    (s->check && !s->check(v, allowed, sizeof(allowed))))
			return false;
		memcpy(field, v, strlen(v) + 1);
		return true;
	}
	return false;
}

/* The value as it goes into an error message: bounded, no control bytes,
 * quoted if empty or containing blanks. */
static void show_value(const char *v, char *buf, size_t len)
{
	char tmp[72];
	size_t n = 0;

	for (; *v && n < 64; v++)
		tmp[n++] = ((unsigned char)*v < 0x20 || *v == 0x7f) ? '?' : *v;
	tmp[n] = '\0';
	if (*v)
		snprintf(buf, len, "%s...", tmp);
	else if (n == 0 || strchr(tmp, ' '))
		snprintf(buf, len, "\"%s\"", tmp);
	else
		snprintf(buf, len, "%s", tmp);
}

/* Set setting s from text v given by source src; `where` says where it was
 * found, for the error message. */
static int set_value(struct vs_config *c, const struct setting *s, const char *v,
                     enum vs_config_source src, const char *where, char *err, size_t errlen)
{
	char shown[80], allowed[256];

	if (!parse_value(s, v, c)) {
		show_value(v, shown, sizeof(shown));
		describe(s, allowed, sizeof(allowed));
		snprintf(err, errlen, "%s=%s (from %s): must be %s", s->name, shown, where,
		         allowed);
		return -EINVAL;
	}
	c->source[s - settings] = (unsigned char)src;
	return 0;
}

static const struct setting *find_setting(const char *name)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

/* --max-upload-size-mb (n bytes of `flag`, after the dashes) -> MAX_UPLOAD_SIZE_MB */
static const struct setting *find_flag(const char *flag, size_t n)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const char *name = settings[i].name;
		size_t k = 0;

		while (k < n && name[k] && flag[k] == (name[k] == '_' ? '-' : tolower(name[k])))
			k++;
		if (k == n && name[k] == '\0')
			return &settings[i];
	}
	return NULL;
}

/* ---- loading ---- */

int vs_config_defaults(struct vs_config *c)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (set_value(c, &settings[i], settings[i].def, VS_SRC_DEFAULT, "default", err,
		              sizeof(err)) < 0)
			return -EINVAL; /* a broken table; the unit test catches it */
	return 0;
}

struct dotenv_ctx {
	struct vs_config *c;
	const char *path;
	char *err;
	size_t errlen;
};

static int on_dotenv(const char *key, const char *value, int line, void *opaque)
{
	struct dotenv_ctx *d = opaque;
	const struct setting *s = find_setting(key);
	char where[VS_STR_MAX + 32];

	if (!s) /* the file may be shared with other programs */
		return 0;
	snprintf(where, sizeof(where), "%s line %d", d->path, line);
	return set_value(d->c, s, value, VS_SRC_DOTENV, where, d->err, d->errlen);
}

static bool is_env_file_flag(const char *a)
{
	return strncmp(a, "--env-file", 10) == 0 && (a[10] == '\0' || a[10] == '=');
}

/* The .env named by the last --env-file (NULL if none); -EINVAL if one has no path. */
static int find_env_file(int argc, char **argv, const char **path, char *err, size_t errlen)
{
	*path = NULL;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (!is_env_file_flag(argv[i]))
			continue;
		if (argv[i][10] == '=')
			*path = argv[i] + 11;
		else
			*path = i + 1 < argc ? argv[++i] : "";
		if (**path == '\0') {
			snprintf(err, errlen, "--env-file: missing file name");
			return -EINVAL;
		}
	}
	return 0;
}

static int load_dotenv(struct vs_config *c, const char *path, char *err, size_t errlen)
{
	struct dotenv_ctx d = {c, path ? path : ".env", err, errlen};
	int r = vs_dotenv_read(d.path, on_dotenv, &d, err, errlen);

	if (r == -ENOENT && !path) /* ./.env is optional, a named file is not */
		return 0;
	return r;
}

static int load_environment(struct vs_config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const char *v = getenv(settings[i].name);
		if (v && set_value(c, &settings[i], v, VS_SRC_ENV, "environment", err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
}

/* Apply setting flags; compact everything else to the front of argv. */
static int load_flags(struct vs_config *c, int argc, char **argv, int *rest_argc, char *err,
                      size_t errlen)
{
	int i, keep = argc > 0 ? 1 : 0; /* argv[0] stays */
	char where[VS_STR_MAX];

	for (i = 1; i < argc; i++) {
		char *a = argv[i], *eq, *value;
		const struct setting *s;

		if (strcmp(a, "--") == 0)
			break;             /* the rest is the caller's, "--" included */
		if (is_env_file_flag(a)) { /* already handled by find_env_file() */
			i += a[10] == '\0';
			continue;
		}
		eq = strchr(a, '=');
		s = strncmp(a, "--", 2) == 0
		            ? find_flag(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2))
		            : NULL;
		if (!s) {
			argv[keep++] = a;
			continue;
		}
		if (eq) {
			value = eq + 1;
		} else if (s->type == T_BOOL) { /* "--asr-vad-enabled" alone means true */
			bool b;
			value = i + 1 < argc && parse_bool(argv[i + 1], &b) ? argv[++i] : "true";
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			snprintf(err, errlen, "%s: missing value", a);
			return -EINVAL;
		}
		snprintf(where, sizeof(where), "flag %.*s", (int)(eq ? eq - a : (long)strlen(a)),
		         a);
		if (set_value(c, s, value, VS_SRC_FLAG, where, err, errlen) < 0)
			return -EINVAL;
	}
	for (; i < argc; i++)
		argv[keep++] = argv[i];
	if (keep < argc)
		argv[keep] = NULL;
	if (rest_argc)
		*rest_argc = keep;
	return 0;
}

/* Checks that involve more than one setting. */
static int check_together(const struct vs_config *c, char *err, size_t errlen)
{
	if (c->asr_port == c->tts_port && c->asr_port != 0) {
		snprintf(err, errlen,
		         "ASR_PORT=%d (from %s) and TTS_PORT=%d (from %s): must differ",
		         c->asr_port, vs_config_source_name(vs_config_source_of(c, "ASR_PORT")),
		         c->tts_port, vs_config_source_name(vs_config_source_of(c, "TTS_PORT")));
		return -EINVAL;
	}
	return 0;
}

int vs_config_load(struct vs_config *c, int argc, char **argv, int *rest_argc, char *err,
                   size_t errlen)
{
	const char *env_file;
	int r;

	if (errlen)
		err[0] = '\0';
	if (rest_argc)
		*rest_argc = argc;
	r = vs_config_defaults(c);
	if (r < 0) {
		snprintf(err, errlen, "internal error: a default in the settings table is invalid");
		return r;
	}
	r = find_env_file(argc, argv, &env_file, err, errlen);
	if (r >= 0)
		r = load_dotenv(c, env_file, err, errlen);
	if (r >= 0)
		r = load_environment(c, err, errlen);
	if (r >= 0)
		r = load_flags(c, argc, argv, rest_argc, err, errlen);
	if (r >= 0)
		r = check_together(c, err, errlen);
	return r < 0 ? r : 0;
}

/* ---- queries ---- */

enum vs_config_source vs_config_source_of(const struct vs_config *c, const char *name)
{
	const struct setting *s = find_setting(name);
	return s ? (enum vs_config_source)c->source[s - settings] : VS_SRC_DEFAULT;
}

const char *vs_config_source_name(enum vs_config_source s)
{
	return (unsigned)s < sizeof(source_names) / sizeof(source_names[0]) ? source_names[s] : "?";
}

const char *vs_config_setting_name(size_t i)
{
	return i < N_SETTINGS ? settings[i].name : NULL;
}

static void format_value(const struct vs_config *c, const struct setting *s, char *buf, size_t len)
{
	const void *field = (const char *)c + s->off;

	switch (s->type) {
	case T_INT: snprintf(buf, len, "%d", *(const int *)field); break;
	case T_DOUBLE: snprintf(buf, len, "%.15g", *(const double *)field); break;
	case T_BOOL: snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false"); break;
	case T_ENUM:
	case T_STRING: snprintf(buf, len, "%s", (const char *)field); break;
	}
}

/* ---- warnings ---- */

/* Settings the built-in engines do not use. `uses` is the only value the
 * engine honours; NULL means it ignores the setting entirely, so only an
 * explicitly set value is worth a warning (the default int8 compute type is
 * the original's faster-whisper default and says nothing about the user). */
static const struct engine_use {
	const char *engine, *setting, *uses;
} engine_uses[] = {
        {"pocketsphinx", "ASR_COMPUTE_TYPE", NULL},
        {"pocketsphinx", "ASR_DEVICE", "cpu"},
        {"espeak-ng", "TTS_DEVICE", "cpu"},
};

static void warn_engine_uses(const struct vs_config *c, void (*fn)(const char *, void *),
                             void *opaque)
{
	char msg[640], value[VS_STR_MAX];

	for (size_t i = 0; i < sizeof(engine_uses) / sizeof(engine_uses[0]); i++) {
		const struct engine_use *u = &engine_uses[i];
		const struct setting *s = find_setting(u->setting);
		const char *engine =
		        strncmp(u->setting, "ASR_", 4) == 0 ? c->asr_engine : c->tts_engine;

		if (!s || strcmp(engine, u->engine) != 0)
			continue;
		format_value(c, s, value, sizeof(value));
		if (u->uses ? strcmp(value, u->uses) == 0
		            : c->source[s - settings] == VS_SRC_DEFAULT)
			continue;
		if (u->uses)
			snprintf(msg, sizeof(msg),
			         "%s=%s does not apply to engine %s (it runs on %s); "
			         "ignored",
			         s->name, value, engine, u->uses);
		else
			snprintf(msg, sizeof(msg), "%s=%s does not apply to engine %s; ignored",
			         s->name, value, engine);
		fn(msg, opaque);
	}
}

/* A model the engine does not list is dropped (with a warning) rather than
 * failing the start. The engine's list is the one its load() accepts, so a
 * name kept here always loads (the original's whisper names are aliases). */
static bool asr_model_ignored(const struct vs_config *c)
{
	const struct vs_engine_info *asr = vs_engine_find(c->asr_engine);
	return asr && c->asr_model[0] && !vs_engine_accepts_model(asr, c->asr_model);
}

const char *vs_config_asr_model(const struct vs_config *c)
{
	return c->asr_model[0] && !asr_model_ignored(c) ? c->asr_model : NULL;
}

void vs_config_warnings(const struct vs_config *c, void (*fn)(const char *msg, void *opaque),
                        void *opaque)
{
	const struct vs_engine_info *asr = vs_engine_find(c->asr_engine);
	char msg[640];

	warn_engine_uses(c, fn, opaque);
	if (asr && asr_model_ignored(c)) {
		snprintf(msg, sizeof(msg),
		         "ASR_MODEL=%s does not apply to engine %s (it uses %s); "
		         "ignored",
		         c->asr_model, asr->name,
		         asr->model_names && asr->model_names[0] ? asr->model_names[0]
		                                                 : "its own model");
		fn(msg, opaque);
	}
	if ((long)c->max_json_body_kb * 1024 < c->tts_max_input_chars) {
		snprintf(msg, sizeof(msg),
		         "MAX_JSON_BODY_KB=%d is too small for TTS_MAX_INPUT_CHARS"
		         "=%d; long inputs will be rejected as too large",
		         c->max_json_body_kb, c->tts_max_input_chars);
		fn(msg, opaque);
	}
	/* a maximal clip that cannot finish in time only ever gets a 504 */
	if (c->request_timeout_seconds > 0 &&
	    c->asr_max_audio_seconds * VS_ASR_CONSERVATIVE_RTF > c->request_timeout_seconds) {
		snprintf(msg, sizeof(msg),
		         "ASR_MAX_AUDIO_SECONDS=%g needs about %g s to transcribe "
		         "(at %g x real time) but REQUEST_TIMEOUT_SECONDS=%g; the longest clips "
		         "will "
		         "time out (504)",
		         c->asr_max_audio_seconds,
		         c->asr_max_audio_seconds * VS_ASR_CONSERVATIVE_RTF,
		         VS_ASR_CONSERVATIVE_RTF, c->request_timeout_seconds);
		fn(msg, opaque);
	}
	static const char *const svc[] = {"ASR", "TTS"};
	const int queue[] = {c->asr_max_queue, c->tts_max_queue};
	for (size_t i = 0; i < 2; i++) {
		char name[40];
		snprintf(name, sizeof(name), "%s_QUEUE_TIMEOUT_SECONDS", svc[i]);
		if (queue[i] == 0 && vs_config_source_of(c, name) != VS_SRC_DEFAULT) {
			snprintf(msg, sizeof(msg),
			         "%s has no effect while %s_MAX_QUEUE=0 (requests "
			         "never wait)",
			         name, svc[i]);
			fn(msg, opaque);
		}
	}
}

/* ---- printing ---- */

static const char *metavar(const struct setting *s)
{
	static const char *const names[] = {"N", "N", "BOOL", "TEXT", "WORD"};
	return names[s->type];
}

static void flag_name(const struct setting *s, char *buf, size_t len)
{
	size_t i = 0;

	snprintf(buf, len, "--");
	for (; s->name[i] && i + 3 < len; i++)
		buf[i + 2] = s->name[i] == '_' ? '-' : (char)tolower(s->name[i]);
	buf[i + 2] = '\0';
}

/* Print text word-wrapped at 80 columns, each line indented by `indent`. */
static void print_wrapped(FILE *f, int indent, const char *text)
{
	int col = 0;

	while (*text) {
		size_t n = strcspn(text, " ");
		if (col > 0 && col + 1 + (int)n > 80) {
			fputc('\n', f);
			col = 0;
		}
		if (col == 0)
			col = fprintf(f, "%*s", indent, "");
		else
			col += fprintf(f, " ");
		col += fprintf(f, "%.*s", (int)n, text);
		text += n;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

void vs_config_print_help(FILE *f)
{
	char flag[64], allowed[256], line[512];

	fprintf(f, "Settings (each also an environment variable or a .env line; precedence:\n"
	           "flag > environment > .env file > default):\n\n");
	fprintf(f, "  --env-file PATH\n");
	print_wrapped(f, 8,
	              "Read settings from PATH instead of ./.env; a missing file is an "
	              "error.");
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		flag_name(s, flag, sizeof(flag));
		describe(s, allowed, sizeof(allowed));
		fprintf(f, "  %s %s  (%s)\n", flag, metavar(s), s->name);
		snprintf(line, sizeof(line), "Default %s%s%s; %s.", s->def[0] ? s->def : "empty",
		         s->unit[0] ? " " : "", s->unit, allowed);
		print_wrapped(f, 8, line);
		print_wrapped(f, 8, s->help);
	}
}

void vs_config_print_effective(const struct vs_config *c, FILE *f)
{
	char value[VS_STR_MAX];

	for (size_t i = 0; i < N_SETTINGS; i++) {
		format_value(c, &settings[i], value, sizeof(value));
		fprintf(f, "%s=%s  (%s)\n", settings[i].name, value,
		        vs_config_source_name(c->source[i]));
	}
}

/* Markdown table cell: '|' would end the cell. */
static void md_cell(FILE *f, const char *text)
{
	fputs(" ", f);
	for (; *text; text++) {
		if (*text == '|')
			fputc('\\', f);
		fputc(*text, f);
	}
	fputs(" |", f);
}

static const char md_intro[] =
        "# Configuration\n"
        "\n"
        "<!-- Generated from the settings table in src/config/config.c by\n"
        "     `voicestack config --markdown`. Do not edit: tests/unit/test_config.c fails\n"
        "     when this file and the code differ. -->\n"
        "\n"
        "Every setting can be given in four ways; the first one present wins:\n"
        "\n"
        "1. a command-line flag: the name in lower case with `-` for `_`, e.g.\n"
        "   `--max-upload-size-mb 100` or `--max-upload-size-mb=100` (a boolean flag\n"
        "   alone, e.g. `--asr-vad-enabled`, means true);\n"
        "2. an environment variable, e.g. `MAX_UPLOAD_SIZE_MB=100`;\n"
        "3. a line of the `.env` file: `./.env` in the working directory if it exists, or\n"
        "   the file named by `--env-file PATH` (which must exist);\n"
        "4. the default.\n"
        "\n"
        "Every value given is checked at start-up, even one that a source of higher\n"
        "precedence overrides. A bad value stops the program with one line naming the\n"
        "setting, the value, where it came from and what is allowed, e.g.\n"
        "\n"
        "    MEMORY_THRESHOLD_PERCENT=150 (from environment): must be an integer from 1 to 100\n"
        "\n"
        "`voicestack config` prints the effective value of every setting and where it\n"
        "came from (`default`, `.env`, `environment` or `flag`); `voicestack --help`\n"
        "lists the flags.\n"
        "\n"
        "Values: booleans are `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off` (any\n"
        "case); numbers are plain decimal, and settings in minutes or seconds take\n"
        "fractions (`ASR_IDLE_TIMEOUT_MINUTES=0.05` is 3 seconds); choices are matched\n"
        "in any case.\n"
        "\n"
        "## The .env file\n"
        "\n"
        "- One `KEY=VALUE` per line; blanks around `=` are allowed.\n"
        "- Blank lines and lines starting with `#` are ignored.\n"
        "- `export KEY=VALUE` is accepted, so the file can also be sourced by a shell.\n"
        "- A value in single quotes is taken literally; in double quotes `\\\"`, `\\\\`,\n"
        "  `\\n` and `\\t` are unescaped. After the closing quote only a comment may follow.\n"
        "- In an unquoted value, `#` at its start or after a blank starts a comment;\n"
        "  trailing blanks are dropped.\n"
        "- Keys that are not settings of Voice Stack are ignored (the file may be shared\n"
        "  with other programs). Keys are case-sensitive. A line that is not `KEY=VALUE`\n"
        "  is an error.\n"
        "- No variable expansion (`${VAR}`) and no multi-line values. At most 1 MiB,\n"
        "  lines of at most 4096 bytes.\n"
        "\n"
        "## Compatibility with the original\n"
        "\n"
        "The settings of the original specification keep their names, defaults and\n"
        "behaviour: `MEMORY_THRESHOLD_PERCENT` 90, `SWAP_THRESHOLD_PERCENT` 80,\n"
        "`MAX_UPLOAD_SIZE_MB` 100, `ASR_/TTS_MAX_CONCURRENT_REQUESTS` 2,\n"
        "`ASR_/TTS_IDLE_TIMEOUT_MINUTES` 60 (0 disables), idle models looked for every 60\n"
        "seconds. The settings added by Voice Stack in C default to that behaviour too:\n"
        "`ASR_MAX_QUEUE` and `TTS_MAX_QUEUE` are 0, so a request that finds every slot\n"
        "busy gets 429 at once, as in the original; set them above 0 to let requests\n"
        "wait up to `*_QUEUE_TIMEOUT_SECONDS` instead. The limits\n"
        "(`TTS_MAX_INPUT_CHARS`, `MAX_JSON_BODY_KB`, `ASR_MAX_AUDIO_SECONDS`,\n"
        "`REQUEST_TIMEOUT_SECONDS`) bound what a client can make the server do.\n"
        "\n"
        "Differences: `HOST` defaults to 127.0.0.1 (the original listened on 0.0.0.0);\n"
        "the engines are pocketsphinx and espeak-ng, so `ASR_MODEL` defaults to empty\n"
        "(the engine's own model) and `ASR_COMPUTE_TYPE`, `ASR_DEVICE` and `TTS_DEVICE`\n"
        "are accepted, so a `.env` written for the original still loads, but a value\n"
        "the engine cannot use is ignored with one warning at start-up.\n"
        "\n"
        "## Settings\n"
        "\n"
        "| Setting | Flag | Default | Allowed | Unit | Description |\n"
        "| --- | --- | --- | --- | --- | --- |\n";

void vs_config_print_markdown(FILE *f)
{
	char flag[64], allowed[256], buf[320];

	fputs(md_intro, f);
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		flag_name(s, flag, sizeof(flag));
		describe(s, allowed, sizeof(allowed));
		fputs("|", f);
		snprintf(buf, sizeof(buf), "`%s`", s->name);
		md_cell(f, buf);
		snprintf(buf, sizeof(buf), "`%s`", flag);
		md_cell(f, buf);
		if (s->def[0])
			snprintf(buf, sizeof(buf), "`%s`", s->def);
		md_cell(f, s->def[0] ? buf : "*(empty)*");
		md_cell(f, allowed);
		md_cell(f, s->unit);
		md_cell(f, s->help);
		fputs("\n", f);
	}
}
