/* stats.h - what the front counts, as Prometheus metrics (stats.c).
 *
 * DESIGN
 * obs depends on common only: it knows neither requests nor services. The
 * HTTP front hands it plain records: one vs_request_record per finished
 * request (filled by http/server.c from its struct vs_req), and, when
 * /metrics is scraped, one vs_service_sample per service and one memory
 * reading (filled by http/health.c from the slots, the pool and the guard).
 * Services are told apart by an index 0..VS_STATS_MAX_SERVICES-1 (the pool
 * counts they report are totals; stats.c exports the difference).
 */
#ifndef VS_STATS_H
#define VS_STATS_H

#include <stdbool.h>
#include <stdint.h>

#define VS_STATS_MAX_SERVICES 2
#define VS_STATS_MAX_MODELS 16 /* per service */
#define VS_STATS_MAX_LANES 3   /* priority lanes: high, normal, low */

/* one finished request */
struct vs_request_record {
	const char *service;       /* "asr" | "tts" */
	const char *route;         /* a route table path or "other", never the client's URL */
	const char *model;         /* the catalogue id that served it; NULL = none */
	int status;                /* 499: the client left */
	double duration_s;         /* request start to the end */
	double queue_wait_s;       /* < 0 when the request never queued */
	const char *reject_reason; /* NULL, or "memory", "slot", "size", ... */
	const char *key;           /* the API key's name (never the key); NULL = none */
	const char *lane;          /* its priority lane ("normal" when none was given) */
	/* what real-time factor is made of, for a request that succeeded with
	 * audio: the worker's time on it and the audio it took or gave; the
	 * time from its start to its first byte of speech (TTS). A field counts
	 * only when its has_ flag is set. */
	bool has_work, has_audio_in, has_audio_out, has_ttfb;
	double work_s, audio_in_s, audio_out_s, ttfb_s;
};

/* one service's slots and queue, sampled at scrape time */
struct vs_service_sample {
	const char *service;
	int active, max, available, depth, max_queue;
	int reserved; /* slots only the high lane may take */
	struct {
		const char *name; /* NULL: unused entry */
		int active, depth;
	} lanes[VS_STATS_MAX_LANES];
};

/* one model of a service, sampled at scrape time */
struct vs_model_sample {
	const char *service, *model;
	int active, max, depth;                     /* the model's own slots and queue */
	uint64_t loads, unloads, crashes, timeouts; /* totals since start */
	bool loaded;
	double rss_bytes;
};

/* registers the metrics (idempotent) */
void vs_stats_init(void);
void vs_stats_request_done(const struct vs_request_record *rec);
void vs_stats_client_gone(const char *service, const char *phase);
/* gauges and counters of a scrape; index < VS_STATS_MAX_SERVICES */
void vs_stats_sample_service(int index, const struct vs_service_sample *s);
/* index < VS_STATS_MAX_SERVICES, model < VS_STATS_MAX_MODELS */
void vs_stats_sample_model(int index, int model, const struct vs_model_sample *s);
/* a request served by model `to` because `from` could not be admitted */
void vs_stats_degraded(const char *service, const char *from, const char *to);
void vs_stats_sample_memory(double mem_percent, double swap_percent, double available_bytes);
/* voicestack_build_info{version, microhttpd, jansson} 1 (set once at start) */
void vs_stats_build_info(const char *version, const char *microhttpd, const char *jansson);
/* the outcome label of a finished request: ok, refused, client_error,
 * server_error, timeout, client_gone */
const char *vs_stats_outcome(int status, const char *reject_reason);

/* process.c: process_* metrics of this process, the standard Prometheus
 * names (read from /proc/self when /metrics is scraped) */
void vs_process_metrics_init(void);
void vs_process_metrics_sample(void);

#endif
