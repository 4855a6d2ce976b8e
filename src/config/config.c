/* config.c - the settings table, parsing and validation, see config.h.
 *
 * DESIGN
 * `vs_settings[]` is the single source of truth: one row per setting with its
 * name, type, bounds, default (as text, parsed by the same code as user
 * input, so a default can never bypass validation), unit, help and the offset
 * of its field in struct vs_config. Loading, --help, `voicestack config` and
 * docs/CONFIG.md are all loops over that table; adding a setting is one row
 * plus one struct field. The .env syntax lives in dotenv.c, the printers in
 * config_print.c.
 *
 * Config knows no engine: ASR_ENGINE and TTS_ENGINE are text here, and their
 * valid values and defaults come from the caller's vs_config_check array
 * (the engine registry's answers, src/engine_settings.c), so a typo is still
 * an error naming its source and a new engine needs no change here. The
 * other engine settings (model, device, compute type) are the original
 * specification's vocabulary; whether an engine can use a value is decided
 * at start-up against the engine's capability lists.
 *
 * Called once by the front at start-up (and by tests); not thread-safe, no
 * logging: errors are one line in the caller's err buffer.
 *
 * Why over 600 lines: about half the file is the table itself (one row of
 * name, bounds, default and help per setting, ~70 settings). Splitting the
 * rows across files would give up the one place a reader finds every
 * setting; the parsing and validation below the table are ~300 lines.
 */
#include "config/table.h"

#include "config/dotenv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool check_host(const char *v, char *allowed, size_t len);
static bool check_grammar_dir(const char *v, char *allowed, size_t len);
static bool check_api_key(const char *v, char *allowed, size_t len);
static bool check_origins(const char *v, char *allowed, size_t len);

#define F(field) offsetof(struct vs_config, field)
#define INT(n, fld, lo, hi, d, u) n, T_INT, F(fld), lo, hi, NULL, NULL, d, u
/* an integer, or the word "auto" (stored as 0; lo must be > 0) */
#define INT_AUTO(n, fld, lo, hi, d, u) n, T_INT, F(fld), lo, hi, "auto", NULL, d, u
#define DBL(n, fld, lo, hi, d, u) n, T_DOUBLE, F(fld), lo, hi, NULL, NULL, d, u
#define BOOL(n, fld, d) n, T_BOOL, F(fld), 0, 0, NULL, NULL, d, ""
#define STR(n, fld, chk, d) n, T_STRING, F(fld), 0, 0, NULL, chk, d, ""
#define ENUM(n, fld, choices, d) n, T_ENUM, F(fld), 0, 0, choices, NULL, d, ""
#define SECRET(n, fld, chk, d) n, T_SECRET, F(fld), 0, 0, NULL, chk, d, ""

/* Order is the order of --help, `voicestack config` and docs/CONFIG.md. */
const struct vs_setting vs_settings[] = {
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

        /* access: API keys and CORS */
        {STR("API_KEYS_FILE", api_keys_file, NULL, ""),
         "File of API keys, one per line: `KEY NAME [LANE]` (LANE high, normal or low; `#` "
         "comments; see docs/API.md). Set, every route but /health and /health/ready needs "
         "`Authorization: Bearer KEY` or `X-API-Key: KEY` (401 otherwise); the key's NAME shows "
         "in the access log and /metrics, the key never. Re-read on SIGHUP: a file that does not "
         "parse keeps the keys in force. Empty = no keys (the loopback default expects a proxy "
         "in front)."},
        {SECRET("API_KEY", api_key, check_api_key, ""),
         "One API key (named `default`, lane normal) instead of a file; not with API_KEYS_FILE. "
         "Never printed (`voicestack config` shows `(set)`); give it in the environment or the "
         ".env file rather than as a flag, which other users can see in `ps`."},
        {BOOL("AUTH_PROTECT_STATUS", auth_protect_status, "true"),
         "With API keys: /metrics and /health/detailed need a key too, since they show the "
         "models, the load and the memory of the machine. false leaves them open to a scraper "
         "or dashboard that cannot send one. /health and /health/ready are always open."},
        {STR("ALLOW_ORIGINS", allow_origins, check_origins, ""),
         "CORS: the browser origins allowed to call the API, comma-separated (e.g. "
         "`https://app.example, http://localhost:3000`), or `*` for any. Their preflight "
         "(OPTIONS) gets 204 without a key and without admission; every answer to them carries "
         "Access-Control-Allow-Origin. Empty = no CORS headers."},

        /* resource guard */
        {INT("MEMORY_THRESHOLD_PERCENT", memory_threshold_percent, 1, 100, "90", "%"),
         "Reject requests with 503 while RAM usage is above this percentage."},
        {INT("SWAP_THRESHOLD_PERCENT", swap_threshold_percent, 1, 100, "80", "%"),
         "Reject requests with 503 while swap usage is above this percentage."},
        {DBL("MEMORY_PRESSURE_REFUSE_PERCENT", memory_pressure_refuse_percent, 0, 100, "0", "%"),
         "Refuse new work with 503 (`reason` pressure, Retry-After 30) while tasks stall on memory "
         "more than this share of the last 10 s (Linux PSI `some avg10` of /proc/pressure/memory "
         "or of the service's cgroup v2, whichever is higher); 0 = off. Ignored where the kernel "
         "has no PSI."},
        {DBL("MEMORY_PRESSURE_SHRINK_PERCENT", memory_pressure_shrink_percent, 0, 100, "0", "%"),
         "Adaptive slots: while PSI `some avg10` is above this, each service admits at most half "
         "its slots (at least 1; requests in flight finish); the full count comes back once "
         "avg10 has stayed below half this value for MEMORY_PRESSURE_CALM_SECONDS. Each change is "
         "logged once (event=slots_shrunk / slots_restored). Checked every 100 ms on a reading at "
         "most 250 ms old. 0 = off."},
        {DBL("MEMORY_PRESSURE_CALM_SECONDS", memory_pressure_calm_seconds, 1, 3600, "30",
             "seconds"),
         "How long memory pressure must stay below half of MEMORY_PRESSURE_SHRINK_PERCENT before "
         "the slots come back."},
        {INT("MAX_UPLOAD_SIZE_MB", max_upload_size_mb, 1, 4096, "100", "MB"),
         "Reject uploads larger than this with 413."},

        /* ASR service */
        {STR("ASR_ENGINE", asr_engine, NULL, ""), "Speech recognition engine."},
        {STR("ASR_MODEL", asr_model, NULL, ""),
         "Default transcription model: a model id or alias of the catalogue (`voicestack models`); "
         "empty = the first model of ASR_ENGINE. The names of OpenAI and of the original "
         "specification (whisper-1, base, small, large-v3, ...) are aliases of the default model "
         "unless MODELS_FILE gives them to another; any other name is ignored with a warning."},
        {BOOL("ASR_DEGRADE_UNDER_LOAD", asr_degrade_under_load, "false"),
         "When the requested model cannot be admitted (its slots and queue are full, or loading "
         "it would pass MEMORY_THRESHOLD_PERCENT) and its fallback can, the fallback serves the "
         "request (X-Voicestack-Model says which; a request opts out with "
         "`X-Voicestack-Degrade: never`). false = the specification's 429."},
        {ENUM("ASR_COMPUTE_TYPE", asr_compute_type,
              "default|auto|int8|int8_float16|int8_float32|int8_bfloat16|int16|float16|bfloat16|"
              "float32",
              "int8"),
         "Numeric precision, for engines that have the choice (faster-whisper style); the "
         "built-in engines have none and ignore it (with a warning when it is set)."},
        {ENUM("ASR_DEVICE", asr_device, "cpu|cuda|auto", "cpu"),
         "Device the ASR engine runs on; a device the engine cannot use is ignored with a "
         "warning (the built-in engines run on the CPU only)."},
        {BOOL("ASR_VAD_ENABLED", asr_vad_enabled, "true"),
         "Voice activity detection: skip silence before recognition."},
        {INT_AUTO("ASR_MAX_CONCURRENT_REQUESTS", asr_max_concurrent_requests, 1, 64, "2",
                  "requests"),
         "Transcriptions running at the same time; more wait in the queue or get 429. `auto`: as "
         "many as the largest ASR model fits in the memory free under MEMORY_THRESHOLD_PERCENT "
         "(its measured size, or before any load its engine's typical size), capped by the CPU "
         "cores, at least 1; decided at start-up, shown with its derivation in /health/detailed."},
        {INT("ASR_MAX_QUEUE", asr_max_queue, 0, 1024, "0", "requests"),
         "Transcription requests that may wait for a free slot, per priority lane (high, normal "
         "and low each have a queue this long); 0 = reject at once with 429."},
        {DBL("ASR_QUEUE_TIMEOUT_SECONDS", asr_queue_timeout_seconds, 0.1, 3600, "30", "seconds"),
         "Longest wait in the ASR queue; a request still waiting then gets 429."},
        {INT("ASR_RESERVED_SLOTS", asr_reserved_slots, 0, 63, "0", "slots"),
         "Of ASR_MAX_CONCURRENT_REQUESTS, slots only `high`-lane requests may take, so an urgent "
         "transcription starts at once while `normal` and `low` traffic fill the rest: at most "
         "ASR_MAX_CONCURRENT_REQUESTS minus this many transcriptions of those lanes run at once "
         "(a count, not particular slots; `high` may take any free slot). Also applied to each "
         "model's own slots, at most its slots minus 1. Must be below "
         "ASR_MAX_CONCURRENT_REQUESTS (with `auto`, it is cut to the slots found minus 1, with "
         "a warning; so it is while memory pressure lowers the slots in use). 0 = no "
         "reservation (the specification's behaviour)."},
        {DBL("ASR_IDLE_TIMEOUT_MINUTES", asr_idle_timeout_minutes, 0, 525600, "60", "minutes"),
         "Unload the ASR model after this long without requests (it reloads on the next one); "
         "0 disables; fractions allowed (0.05 = 3 seconds)."},

        /* TTS service */
        {STR("TTS_ENGINE", tts_engine, NULL, ""), "Speech synthesis engine."},
        {STR("TTS_MODEL", tts_model, NULL, ""),
         "Default speech model: a model id or alias of the catalogue; empty = the first model of "
         "TTS_ENGINE (tts-1 is an alias of the default model unless MODELS_FILE gives it to "
         "another; tts-1-hd and gpt-4o-mini-tts are flite's). Any other name is ignored with a "
         "warning."},
        {BOOL("TTS_DEGRADE_UNDER_LOAD", tts_degrade_under_load, "false"),
         "As ASR_DEGRADE_UNDER_LOAD, for speech."},
        {ENUM("TTS_DEVICE", tts_device, "cpu|cuda|mps|auto", "cpu"),
         "Device the TTS engine runs on; a device the engine cannot use is ignored with a "
         "warning (the built-in engines run on the CPU only)."},
        {INT_AUTO("TTS_MAX_CONCURRENT_REQUESTS", tts_max_concurrent_requests, 1, 64, "2",
                  "requests"),
         "Syntheses running at the same time; more wait in the queue or get 429. `auto`: as for "
         "ASR_MAX_CONCURRENT_REQUESTS."},
        {INT("TTS_MAX_QUEUE", tts_max_queue, 0, 1024, "0", "requests"),
         "Synthesis requests that may wait for a free slot, per priority lane; 0 = reject at "
         "once with 429."},
        {DBL("TTS_QUEUE_TIMEOUT_SECONDS", tts_queue_timeout_seconds, 0.1, 3600, "30", "seconds"),
         "Longest wait in the TTS queue; a request still waiting then gets 429."},
        {INT("TTS_RESERVED_SLOTS", tts_reserved_slots, 0, 63, "0", "slots"),
         "As ASR_RESERVED_SLOTS, for speech (below TTS_MAX_CONCURRENT_REQUESTS)."},
        {DBL("TTS_IDLE_TIMEOUT_MINUTES", tts_idle_timeout_minutes, 0, 525600, "60", "minutes"),
         "Unload the TTS model after this long without requests (it reloads on the next one); "
         "0 disables; fractions allowed."},
        {DBL("TTS_DRAIN_TIMEOUT_SECONDS", tts_drain_timeout_seconds, 1, 86400, "300", "seconds"),
         "Longest time a client may take to read the rest of a speech answer once its worker has "
         "finished (or failed); a slower client is disconnected (event=stream_drain_timeout). The "
         "slot is free as soon as the worker is."},

        /* both services */
        {STR("MODELS_FILE", models_file, NULL, ""),
         "Model catalogue file: one model per line, `ID SERVICE ENGINE key=value...` (keys: slots, "
         "idle_minutes, fallback, aliases and the engine's options; see docs/MODELS.md). It "
         "replaces the built-in catalogue; `voicestack models` prints the effective one in this "
         "format. Empty = the built-in models."},
        {BOOL("ALLOW_CLIENT_PRIORITY", allow_client_priority, "false"),
         "Let a client choose its request's lane with the header `X-Voicestack-Priority: "
         "high|normal|low` (any case). false = the header is refused with 400 "
         "priority_not_allowed (never ignored), and the lane is the API key's, or `normal`. "
         "Only for trusted clients: a `high` request may use the reserved slots."},
        {INT("LOW_LANE_MAX_SKIPS", low_lane_max_skips, 1, 1000, "8", "hand-overs"),
         "The bound on how long `low` requests wait: a slot that comes free goes to the oldest "
         "waiting request of the most urgent lane that may take it (high, then normal, then "
         "low), but while `low` requests wait and may take it, at most this many slots in a row "
         "go to the other lanes; the next goes to the oldest `low` request. The count starts "
         "again when a `low` request gets a slot or none waits. Applies to every queue "
         "(service and model); requests still wait at most *_QUEUE_TIMEOUT_SECONDS."},
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
         "REQUEST_TIMEOUT_SECONDS: the default ASR engine runs at about 0.15 x real time on one "
         "core, 0.5 "
         "is assumed for a busy machine, so keep ASR_MAX_AUDIO_SECONDS x 0.5 <= "
         "REQUEST_TIMEOUT_SECONDS (a start-up warning says when it is not). Sample rates outside "
         "8000..384000 Hz are refused with 400."},
        {INT("MAX_FORM_FIELD_KB", max_form_field_kb, 1, 1024, "4", "KB"),
         "Largest multipart form field other than the file (model, prompt, ...); a larger one "
         "gets 400."},
        {INT("ASR_MAX_GRAMMAR_KB", asr_max_grammar_kb, 1, 1024, "64", "KB"),
         "Largest JSGF grammar or keyword list a transcription may carry (form fields `grammar`, "
         "`keywords`) or name (`grammar_name`, `keywords_name`); a larger one gets 413. Replaces "
         "MAX_FORM_FIELD_KB for those two fields."},
        {STR("ASR_GRAMMAR_DIR", asr_grammar_dir, check_grammar_dir, ""),
         "Directory of operator-installed grammars (NAME.gram, JSGF) and keyword lists (NAME.kws) "
         "that a transcription names with `grammar_name` / `keywords_name`; empty = none (such a "
         "request gets 400). An absolute path; read at each request, so files may be added "
         "while the server runs."},
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

        /* realtime transcription sessions (GET /v1/realtime, WebSocket) */
        {DBL("REALTIME_MAX_SESSION_SECONDS", realtime_max_session_seconds, 1, 86400, "1800",
             "seconds"),
         "Longest realtime transcription session (OpenAI's limit is 30 minutes); the client "
         "then gets an error event `session_expired` and the WebSocket closes, mid-turn or not."},
        {DBL("REALTIME_IDLE_TIMEOUT_SECONDS", realtime_idle_timeout_seconds, 1, 86400, "60",
             "seconds"),
         "A realtime session whose client sends no event for this long, while none of its "
         "turns is being transcribed, ends (error event `idle_timeout`, close 1000)."},
        {DBL("REALTIME_MAX_BUFFER_SECONDS", realtime_max_buffer_seconds, 1, 3600, "120", "seconds"),
         "Audio a realtime session may hold not yet transcribed (its buffer and its committed "
         "turns), at 24 kHz pcm16: 120 s is 5.8 MB. Audio past it is dropped with an error "
         "event `input_audio_buffer_full`. Keep it at most ASR_MAX_AUDIO_SECONDS."},
        {INT("REALTIME_MAX_EVENT_KB", realtime_max_event_kb, 1, 65536, "1024", "KB"),
         "Largest client event (one WebSocket message) of a realtime session; 1024 KB of "
         "base64 is about 16 s of audio in one append. A larger one gets an error event "
         "`event_too_large` and the session closes with 1009."},
        /* Wyoming */
        {INT("WYOMING_ASR_PORT", wyoming_asr_port, 0, 65535, "0", ""),
         "TCP port of the Wyoming protocol's speech-to-text service (Home Assistant's voice "
         "protocol; the reference server wyoming-faster-whisper uses 10300), on HOST; 0 = off. "
         "Off by default: the protocol has no authentication, and 10300 is often taken by a "
         "reference server on the same host. Same admission, slots and workers as "
         "/v1/audio/transcriptions (docs/API.md)."},
        {INT("WYOMING_TTS_PORT", wyoming_tts_port, 0, 65535, "0", ""),
         "TCP port of the Wyoming text-to-speech service (the reference wyoming-piper uses "
         "10200), on HOST; 0 = off (see WYOMING_ASR_PORT)."},
        {INT("WYOMING_MAX_DATA_KB", wyoming_max_data_kb, 1, 10240, "64", "KB"),
         "Largest Wyoming event header line, and largest data part (data_length); an event "
         "over it gets an error event and the connection is closed."},
        {INT("WYOMING_MAX_PAYLOAD_KB", wyoming_max_payload_kb, 1, 65536, "1024", "KB"),
         "Largest Wyoming event payload (payload_length, e.g. one audio-chunk); an event over "
         "it gets an error event and the connection is closed. The audio of a transcription "
         "is bounded as an upload is (MAX_UPLOAD_SIZE_MB, ASR_MAX_AUDIO_SECONDS)."},
        {DBL("WYOMING_IDLE_TIMEOUT_SECONDS", wyoming_idle_timeout_seconds, 1, 86400, "300",
             "seconds"),
         "A Wyoming connection that sends nothing for this long while no request of it is "
         "under way is closed. While audio arrives, UPLOAD_STALL_TIMEOUT_SECONDS and "
         "BODY_TIMEOUT_SECONDS apply as to an upload."},

        /* process model */
        {INT("WORKER_NICE", worker_nice, 0, 19, "10", ""),
         "Niceness added to engine worker processes so the HTTP front stays responsive."},
        {INT("HTTP_THREADS", http_threads, 1, 64, "2", "threads"),
         "Threads of the HTTP front (libmicrohttpd); engines run in worker processes."},
};

#define N_SETTINGS (sizeof(vs_settings) / sizeof(vs_settings[0]))
const size_t vs_n_settings = N_SETTINGS;
_Static_assert(N_SETTINGS <= VS_CONFIG_MAX_SETTINGS, "raise VS_CONFIG_MAX_SETTINGS");

static const char *const source_names[] = {"default", ".env", "environment", "flag"};

/* Seconds of work per second of audio assumed when checking
 * ASR_MAX_AUDIO_SECONDS against REQUEST_TIMEOUT_SECONDS. Measured here:
 * the default ASR engine transcribes 49.5 s of librivox speech in 7.2 s (0.15, model
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

/* Empty, or an absolute path: a relative one would depend on the directory
 * the service happens to start in. Whether it exists is checked at each
 * request (a missing file is a 400 naming the grammar), so an operator can
 * create it later. */
static bool check_grammar_dir(const char *v, char *allowed, size_t len)
{
	snprintf(allowed, len, "empty, or an absolute directory path");
	return v && (v[0] == '\0' || v[0] == '/');
}

/* Printable ASCII without blanks: it travels in an HTTP header, and the key
 * file's keys follow the same rule (admit/keys.h). */
static bool check_api_key(const char *v, char *allowed, size_t len)
{
	snprintf(allowed, len, "empty, or 1 to %d printable ASCII characters without blanks",
	         VS_STR_MAX - 1);
	if (!v)
		return false;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
	return true;
}

/* one origin: http(s)://host[:port], no path (what a browser sends in Origin) */
static bool origin_ok(const char *o, size_t n)
{
	size_t skip = n >= 7 && strncasecmp(o, "http://", 7) == 0    ? 7
	              : n >= 8 && strncasecmp(o, "https://", 8) == 0 ? 8
	                                                             : 0;
	if (skip == 0 || skip == n)
		return false;
	for (size_t i = skip; i < n; i++)
		if (!isalnum((unsigned char)o[i]) && !strchr(".-:[]", o[i]))
			return false;
	return true;
}

/* empty, `*`, or a comma-separated list of origins */
static bool check_origins(const char *v, char *allowed, size_t len)
{
	snprintf(allowed, len,
	         "empty, `*`, or origins (http://host[:port] or https://host[:port], no path) "
	         "separated by commas");
	if (!v)
		return false;
	if (strcmp(v, "*") == 0 || v[0] == '\0')
		return true;
	for (const char *p = v; *p;) {
		p += strspn(p, " ");
		size_t n = strcspn(p, ", ");
		if (!origin_ok(p, n))
			return false;
		p += n;
		p += strspn(p, " ");
		if (*p == ',' && *++p == '\0')
			return false; /* a trailing comma */
		if (*p && p[-1] != ',')
			return false; /* blanks inside an entry */
	}
	return true;
}

/* ---- parsing one value ---- */

/* The caller's check for s, NULL if none. */
static const struct vs_config_check *check_of(const struct vs_setting *s,
                                              const struct vs_config_check *checks)
{
	for (; checks && checks->setting; checks++)
		if (strcmp(checks->setting, s->name) == 0)
			return checks;
	return NULL;
}

const char *vs_setting_default(const struct vs_setting *s, const struct vs_config_check *checks)
{
	const struct vs_config_check *x = check_of(s, checks);

	return x && x->def ? x->def : s->def;
}

void vs_setting_describe(const struct vs_setting *s, const struct vs_config_check *checks,
                         char *buf, size_t len)
{
	const struct vs_config_check *x = check_of(s, checks);

	switch (s->type) {
	case T_INT:
		snprintf(buf, len, "an integer from %.0f to %.0f%s", s->min, s->max,
		         s->choices ? ", or auto" : "");
		break;
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
	case T_SECRET:
		if (x && x->check)
			x->check(NULL, buf, len);
		else if (s->check)
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
static bool parse_value(const struct vs_setting *s, const char *v, struct vs_config *c,
                        const struct vs_config_check *checks)
{
	const struct vs_config_check *x = check_of(s, checks);
	void *field = (char *)c + s->off;
	char allowed[256], *end;

	switch (s->type) {
	case T_INT: {
		if (s->choices && strcmp(v, "auto") == 0) {
			*(int *)field = 0; /* resolved at start-up */
			return true;
		}
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
	case T_SECRET:
		if (strlen(v) >= VS_STR_MAX || has_control_chars(v) ||
		    (x && x->check ? !x->check(v, allowed, sizeof(allowed))
		                   : s->check && !s->check(v, allowed, sizeof(allowed))))
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
static int set_value(struct vs_config *c, const struct vs_setting *s, const char *v,
                     enum vs_config_source src, const char *where,
                     const struct vs_config_check *checks, char *err, size_t errlen)
{
	char shown[80], allowed[256];

	if (!parse_value(s, v, c, checks)) {
		if (s->type == T_SECRET)
			snprintf(shown, sizeof(shown), "(hidden)");
		else
			show_value(v, shown, sizeof(shown));
		vs_setting_describe(s, checks, allowed, sizeof(allowed));
		snprintf(err, errlen, "%s=%s (from %s): must be %s", s->name, shown, where,
		         allowed);
		return -EINVAL;
	}
	c->source[s - vs_settings] = (unsigned char)src;
	return 0;
}

static const struct vs_setting *find_setting(const char *name)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(vs_settings[i].name, name) == 0)
			return &vs_settings[i];
	return NULL;
}

/* --max-upload-size-mb (n bytes of `flag`, after the dashes) -> MAX_UPLOAD_SIZE_MB */
static const struct vs_setting *find_flag(const char *flag, size_t n)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const char *name = vs_settings[i].name;
		size_t k = 0;

		while (k < n && name[k] && flag[k] == (name[k] == '_' ? '-' : tolower(name[k])))
			k++;
		if (k == n && name[k] == '\0')
			return &vs_settings[i];
	}
	return NULL;
}

/* ---- loading ---- */

int vs_config_defaults(struct vs_config *c, const struct vs_config_check *checks)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (set_value(c, &vs_settings[i], vs_setting_default(&vs_settings[i], checks),
		              VS_SRC_DEFAULT, "default", checks, err, sizeof(err)) < 0)
			return -EINVAL; /* a broken table; the unit test catches it */
	return 0;
}

struct dotenv_ctx {
	struct vs_config *c;
	const char *path;
	const struct vs_config_check *checks;
	char *err;
	size_t errlen;
};

static int on_dotenv(const char *key, const char *value, int line, void *opaque)
{
	struct dotenv_ctx *d = opaque;
	const struct vs_setting *s = find_setting(key);
	char where[VS_STR_MAX + 32];

	if (!s) /* the file may be shared with other programs */
		return 0;
	snprintf(where, sizeof(where), "%s line %d", d->path, line);
	return set_value(d->c, s, value, VS_SRC_DOTENV, where, d->checks, d->err, d->errlen);
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

static int load_dotenv(struct vs_config *c, const char *path, const struct vs_config_check *checks,
                       char *err, size_t errlen)
{
	struct dotenv_ctx d = {c, path ? path : ".env", checks, err, errlen};
	int r = vs_dotenv_read(d.path, on_dotenv, &d, err, errlen);

	if (r == -ENOENT && !path) /* ./.env is optional, a named file is not */
		return 0;
	return r;
}

static int load_environment(struct vs_config *c, const struct vs_config_check *checks, char *err,
                            size_t errlen)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const char *v = getenv(vs_settings[i].name);
		if (v && set_value(c, &vs_settings[i], v, VS_SRC_ENV, "environment", checks, err,
		                   errlen) < 0)
			return -EINVAL;
	}
	return 0;
}

/* Apply setting flags; compact everything else to the front of argv. */
static int load_flags(struct vs_config *c, const struct vs_config_check *checks, int argc,
                      char **argv, int *rest_argc, char *err, size_t errlen)
{
	int i, keep = argc > 0 ? 1 : 0; /* argv[0] stays */
	char where[VS_STR_MAX];

	for (i = 1; i < argc; i++) {
		char *a = argv[i], *eq, *value;
		const struct vs_setting *s;

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
		if (set_value(c, s, value, VS_SRC_FLAG, where, checks, err, errlen) < 0)
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
	if (c->api_keys_file[0] && c->api_key[0]) {
		snprintf(err, errlen,
		         "API_KEYS_FILE (from %s) and API_KEY (from %s): set one of them (put the "
		         "single key in the file, as `KEY default normal`)",
		         vs_config_source_name(vs_config_source_of(c, "API_KEYS_FILE")),
		         vs_config_source_name(vs_config_source_of(c, "API_KEY")));
		return -EINVAL;
	}
	static const char *const svc[] = {"ASR", "TTS"};
	const int reserved[] = {c->asr_reserved_slots, c->tts_reserved_slots};
	const int slots[] = {c->asr_max_concurrent_requests, c->tts_max_concurrent_requests};
	for (int i = 0; i < 2; i++) {
		/* auto (0) is decided at start-up, which cuts the reservation to
		 * the slots found - 1 with a warning */
		if (reserved[i] < slots[i] || slots[i] == 0)
			continue;
		/* normal requests would never get a slot */
		snprintf(err, errlen,
		         "%s_RESERVED_SLOTS=%d: must be less than %s_MAX_CONCURRENT_REQUESTS=%d, "
		         "which leaves at least one slot for normal and low requests",
		         svc[i], reserved[i], svc[i], slots[i]);
		return -EINVAL;
	}
	if (c->asr_port == c->tts_port && c->asr_port != 0) {
		snprintf(err, errlen,
		         "ASR_PORT=%d (from %s) and TTS_PORT=%d (from %s): must differ",
		         c->asr_port, vs_config_source_name(vs_config_source_of(c, "ASR_PORT")),
		         c->tts_port, vs_config_source_name(vs_config_source_of(c, "TTS_PORT")));
		return -EINVAL;
	}
	return 0;
}

int vs_config_load(struct vs_config *c, const struct vs_config_check *checks, int argc, char **argv,
                   int *rest_argc, char *err, size_t errlen)
{
	const char *env_file;
	int r;

	if (errlen)
		err[0] = '\0';
	if (rest_argc)
		*rest_argc = argc;
	r = vs_config_defaults(c, checks);
	if (r < 0) {
		snprintf(err, errlen, "internal error: a default in the settings table is invalid");
		return r;
	}
	r = find_env_file(argc, argv, &env_file, err, errlen);
	if (r >= 0)
		r = load_dotenv(c, env_file, checks, err, errlen);
	if (r >= 0)
		r = load_environment(c, checks, err, errlen);
	if (r >= 0)
		r = load_flags(c, checks, argc, argv, rest_argc, err, errlen);
	if (r >= 0)
		r = check_together(c, err, errlen);
	return r < 0 ? r : 0;
}

/* ---- queries ---- */

enum vs_config_source vs_config_source_of(const struct vs_config *c, const char *name)
{
	const struct vs_setting *s = find_setting(name);
	return s ? (enum vs_config_source)c->source[s - vs_settings] : VS_SRC_DEFAULT;
}

const char *vs_config_source_name(enum vs_config_source s)
{
	return (unsigned)s < sizeof(source_names) / sizeof(source_names[0]) ? source_names[s] : "?";
}

const char *vs_config_setting_name(size_t i)
{
	return i < N_SETTINGS ? vs_settings[i].name : NULL;
}

/* ---- warnings ---- */

void vs_config_warnings(const struct vs_config *c, void (*fn)(const char *msg, void *opaque),
                        void *opaque)
{
	char msg[640];

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
	/* Wyoming has no authentication: a key set does not protect its ports */
	if ((c->api_keys_file[0] || c->api_key[0]) &&
	    (c->wyoming_asr_port || c->wyoming_tts_port)) {
		snprintf(msg, sizeof(msg),
		         "API keys are on but the Wyoming protocol has no authentication: anyone "
		         "who "
		         "reaches WYOMING_ASR_PORT=%d / WYOMING_TTS_PORT=%d is served without a "
		         "key; "
		         "keep those ports on a trusted network or firewall them",
		         c->wyoming_asr_port, c->wyoming_tts_port);
		fn(msg, opaque);
	}
	/* the worker refuses a turn longer than ASR_MAX_AUDIO_SECONDS (413) */
	if (c->realtime_max_buffer_seconds > c->asr_max_audio_seconds) {
		snprintf(msg, sizeof(msg),
		         "REALTIME_MAX_BUFFER_SECONDS=%g is above ASR_MAX_AUDIO_SECONDS=%g; a "
		         "realtime turn longer than the latter fails (413)",
		         c->realtime_max_buffer_seconds, c->asr_max_audio_seconds);
		fn(msg, opaque);
	}
	if (!c->api_keys_file[0] && !c->api_key[0] &&
	    vs_config_source_of(c, "AUTH_PROTECT_STATUS") != VS_SRC_DEFAULT)
		fn("AUTH_PROTECT_STATUS has no effect without API_KEYS_FILE or API_KEY (every "
		   "route is open)",
		   opaque);
	static const char *const svc[] = {"ASR", "TTS"};
	const int queue[] = {c->asr_max_queue, c->tts_max_queue};
	const int reserved[] = {c->asr_reserved_slots, c->tts_reserved_slots};
	for (size_t i = 0; i < 2; i++) {
		/* only a high request may use them, and nothing can make one high
		 * (API_KEY alone is normal; a key file may have high keys) */
		if (reserved[i] > 0 && !c->allow_client_priority && !c->api_keys_file[0]) {
			snprintf(
			        msg, sizeof(msg),
			        "%s_RESERVED_SLOTS=%d are kept for high-priority requests, but "
			        "ALLOW_CLIENT_PRIORITY=false and there is no API_KEYS_FILE to give "
			        "a key the high lane: they will stay idle",
			        svc[i], reserved[i]);
			fn(msg, opaque);
		}
	}
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
