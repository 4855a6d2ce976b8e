/* config.h - every setting of Voice Stack, defined once.
 *
 * DESIGN
 * One table (config.c, `vs_settings[]`, Redis static_configs style) gives each
 * setting its name, type, bounds, default, unit and help text, and the offset
 * of its field in `struct vs_config`. That table drives: parsing from the
 * environment, a .env file and command-line flags; `voicestack --help`;
 * `voicestack config` (effective values and where each came from); and
 * docs/CONFIG.md (`voicestack config --markdown`, checked by a test).
 *
 * Precedence: flag > environment > .env file > default.
 * Flags are the setting name in lower case with '-' for '_':
 * MAX_UPLOAD_SIZE_MB -> --max-upload-size-mb 100 (or --max-upload-size-mb=100).
 * The .env file is ./.env, or the one named by --env-file PATH.
 * Every value given is validated, even one that a higher-precedence source
 * overrides, so a typo anywhere is found at start-up.
 *
 * Loaded once in the front at start-up, read-only afterwards (no locking).
 * Nothing here logs: errors go to an err buffer, warnings to a callback.
 *
 * Config includes no other layer (it sits just above common/): what only the
 * engine registry knows (engine names, the default engine) reaches it as
 * vs_config_check entries from the caller; whether an engine can use a
 * model, device or compute type is checked at start-up outside config
 * (src/engine_settings.c) against the engine's capability lists.
 */
#ifndef VS_CONFIG_H
#define VS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define VS_STR_MAX 256
/* room in struct vs_config for the per-setting source (config.c asserts it) */
#define VS_CONFIG_MAX_SETTINGS 96

enum vs_config_source { VS_SRC_DEFAULT = 0, VS_SRC_DOTENV, VS_SRC_ENV, VS_SRC_FLAG };

/* A check config cannot make itself, supplied by the caller: an array of
 * these, ended by an entry whose setting is NULL, goes to vs_config_load(),
 * vs_config_defaults() and the printers. NULL (no array) leaves every
 * setting to the table alone, where ASR_ENGINE and TTS_ENGINE are any text,
 * empty by default. */
struct vs_config_check {
	const char *setting; /* e.g. "ASR_ENGINE" */
	const char *def;     /* default in place of the table's; NULL keeps it */
	/* true if v is acceptable; always writes what is, completing "must be
	 * ...", into allowed (with v == NULL it only does that, for help and
	 * docs). NULL: the table's own check. */
	bool (*check)(const char *v, char *allowed, size_t len);
};

struct vs_config {
	char env[VS_STR_MAX];  /* ENV: free label, e.g. dev|production|test (informational) */
	char host[VS_STR_MAX]; /* HOST: numeric IPv4/IPv6 address to bind */
	int asr_port, tts_port;
	char log_level[VS_STR_MAX]; /* debug|info|warning|error, always lower case */

	/* access: API keys and CORS (src/admit/keys.c, src/http/auth.c) */
	char api_keys_file[VS_STR_MAX]; /* "" = none */
	char api_key[VS_STR_MAX];       /* a secret: never printed */
	bool auth_protect_status;       /* /metrics, /health/detailed need a key */
	char allow_origins[VS_STR_MAX]; /* "" = no CORS headers */

	/* resource guard */
	int memory_threshold_percent; /* 1..100 */
	int swap_threshold_percent;   /* 1..100 */
	int max_upload_size_mb;

	/* per service */
	char asr_engine[VS_STR_MAX], tts_engine[VS_STR_MAX]; /* validated by the caller's checks */
	char asr_model[VS_STR_MAX];                          /* "" = engine default */
	char tts_model[VS_STR_MAX];                          /* "" = TTS_ENGINE's first model */
	char models_file[VS_STR_MAX];                        /* "" = built-in catalogue */
	bool asr_degrade_under_load, tts_degrade_under_load;
	char asr_compute_type[VS_STR_MAX];
	char asr_device[VS_STR_MAX], tts_device[VS_STR_MAX];
	bool asr_vad_enabled;
	double asr_idle_timeout_minutes, tts_idle_timeout_minutes;    /* 0 disables */
	int asr_max_concurrent_requests, tts_max_concurrent_requests; /* 0 = auto */
	double memory_pressure_refuse_percent, memory_pressure_shrink_percent;
	double memory_pressure_calm_seconds;
	int asr_max_queue, tts_max_queue; /* 0 = reject at once */
	double asr_queue_timeout_seconds, tts_queue_timeout_seconds;
	/* priority lanes (src/admit/lanes.h) */
	int asr_reserved_slots, tts_reserved_slots; /* only high may take them */
	bool allow_client_priority;                 /* X-Voicestack-Priority accepted */
	int low_lane_max_skips;                     /* the bound on low's wait */
	double idle_check_interval_seconds;
	double request_timeout_seconds; /* 0 disables */
	double shutdown_grace_seconds;
	double tts_drain_timeout_seconds; /* reading the rest of a finished answer */

	/* request size limits (every client-controlled size is a setting) */
	int tts_max_input_chars;          /* 4096 */
	int max_json_body_kb;             /* TTS request body */
	double asr_max_audio_seconds;     /* decoded audio length */
	int max_form_field_kb;            /* multipart fields other than the file */
	int asr_max_grammar_kb;           /* grammar / keywords field, and operator files */
	char asr_grammar_dir[VS_STR_MAX]; /* operator grammars; "" = none */
	int max_connections;              /* per service */
	double upload_stall_timeout_seconds;
	double body_timeout_seconds;   /* whole request body */
	double header_timeout_seconds; /* request head, and idle keep-alive */
	int max_connections_per_ip;    /* 0 = no limit */

	/* realtime transcription sessions (src/http/realtime.c) */
	double realtime_max_session_seconds;
	double realtime_idle_timeout_seconds; /* no client event, no turn in work */
	double realtime_max_buffer_seconds;   /* audio held not yet transcribed */
	int realtime_max_event_kb;            /* one WebSocket message */
	/* the Wyoming protocol (Home Assistant) on its own ports */
	int wyoming_asr_port, wyoming_tts_port; /* 0 = off */
	int wyoming_max_data_kb;                /* header line, and data_length */
	int wyoming_max_payload_kb;             /* payload_length */
	double wyoming_idle_timeout_seconds;

	/* process model */
	int worker_nice;  /* added to workers' niceness so the front stays responsive */
	int http_threads; /* libmicrohttpd thread pool size */

	/* where each setting's value came from (enum vs_config_source), indexed
	 * like the table; read it with vs_config_source_of() */
	unsigned char source[VS_CONFIG_MAX_SETTINGS];
};

/* Fill c with the defaults only (no .env, environment or flags). For other
 * modules' tests. Returns 0 (-EINVAL only if the table or a check's default
 * is broken). */
int vs_config_defaults(struct vs_config *c, const struct vs_config_check *checks);

/* Fill c with defaults, then .env, environment, and the flags found in
 * argv[0..argc). --env-file PATH / --env-file=PATH is consumed here. Arguments
 * that are not settings (argv[0], unknown flags, positional words, and all
 * from a "--" on) are left for the caller: compacted, in order, to the front
 * of argv, their count returned in *rest_argc, argv[*rest_argc] set to NULL.
 * Returns 0, or -EINVAL (bad value, malformed .env, missing flag value) or
 * another negative errno (explicit --env-file cannot be read) with a one-line
 * message in err naming the setting, the value, its source and what is
 * allowed (the caller prints it and exits 2). Does not log. */
int vs_config_load(struct vs_config *c, const struct vs_config_check *checks, int argc, char **argv,
                   int *rest_argc, char *err, size_t errlen);

/* Where setting `name` (e.g. "ASR_PORT") got its value; VS_SRC_DEFAULT for an
 * unknown name. */
enum vs_config_source vs_config_source_of(const struct vs_config *c, const char *name);
/* "default", ".env", "environment", "flag" */
const char *vs_config_source_name(enum vs_config_source s);
/* Name of the i-th setting in table order, NULL when i is past the end. */
const char *vs_config_setting_name(size_t i);

/* Warnings for settings that contradict each other (one line each, logged
 * by the caller once at start-up); settings an engine cannot use are warned
 * about by src/engine_settings.c. Calls fn(msg, opaque) once per warning. */
void vs_config_warnings(const struct vs_config *c, void (*fn)(const char *msg, void *opaque),
                        void *opaque);

/* Print the settings as --help text / as `voicestack config` / as Markdown
 * (the whole of docs/CONFIG.md) / as the roff SETTINGS section of the man
 * page, in config_print.c. */
void vs_config_print_help(FILE *f, const struct vs_config_check *checks);
void vs_config_print_effective(const struct vs_config *c, FILE *f);
void vs_config_print_markdown(FILE *f, const struct vs_config_check *checks);
void vs_config_print_man(FILE *f, const struct vs_config_check *checks);

#endif
