/* wy.h - private to src/wyoming: the server, its connections and their jobs.
 *
 * DESIGN
 * Threads. Each service's Wyoming thread (server.c) owns its connections:
 * it alone reads and writes their sockets, parses events and moves jobs
 * from state to state. Two other threads touch a job, never a connection:
 * the reactor (pool job callbacks, with the pool lock held) and whoever
 * releases a slot (a wake, with the slots lock held). Both only record what
 * happened in the job's struct vs_req under r.mu (answer, audio bytes,
 * `woken`) and kick the connection: an atomic flag and the server's eventfd,
 * no lock. The Wyoming thread then does the rest, so it never waits on a
 * worker and takes the pool and slots locks only through http.h's
 * functions, never while holding r.mu (lock order: pool, slots, r.mu).
 *
 * Lifetime. A job lives inside its connection's life; the Wyoming thread
 * frees it after vs_req_release_slot (slots and queue places given back)
 * and a pass through the pool's lock (vs_pool_detach as a barrier), so no
 * callback or wake can still be running on it. The connection outlives
 * its job; the server outlives its connections.
 *
 * A job is one request, as an HTTP request is: `transcribe` .. `audio-stop`,
 * one `synthesize` (or one sentence batch of a streamed synthesis), or the
 * voices of one model for `describe`. A connection runs one job at a time.
 */
#ifndef VS_WY_H
#define VS_WY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"
#include "media/media.h"
#include "wyoming/event.h"
#include "wyoming/wyoming.h"

/* 1024 samples of 16-bit PCM per audio-chunk, as the reference servers send */
#define WY_CHUNK_BYTES 2048
/* output buffered for a client before its socket takes more (TTS audio is
 * pulled from the job only below this) */
#define WY_OUT_HIGH (128 * 1024)
/* audio the reactor may buffer for a job before it stops reading the worker
 * (backpressure, as tts.c's STREAM_HIGH / STREAM_LOW) */
#define WY_STREAM_HIGH (256 * 1024)
#define WY_STREAM_LOW (64 * 1024)

enum wy_kind { WJ_TRANSCRIBE, WJ_SYNTHESIZE, WJ_VOICES };

enum wy_state {
	WJ_NEW,
	WJ_SVC_QUEUED,   /* waits for a slot of the service */
	WJ_HOLDING,      /* holds the service's slot (ASR: audio arriving) */
	WJ_MODEL_QUEUED, /* waits for a slot of its model */
	WJ_WORKING,      /* a worker is on it */
};

struct wy_conn;

struct wy_job {
	struct vs_req r; /* first: the pool calls back with &r.job */
	struct wy_conn *c;
	enum wy_kind kind;
	enum wy_state state;
	bool woken;           /* a slot or queue place changed (r.mu) */
	struct vs_pool *pool; /* where it was submitted: the barrier before free */
	int pool_slot;
	uint64_t started_ms;
	/* transcription: the audio, spooled as it arrives */
	int spool;
	struct vs_raw_format fmt;
	uint64_t audio_bytes;
	bool audio_done; /* audio-stop came */
	char language[16];
	/* synthesis */
	bool stream;         /* one sentence batch of a synthesize-start stream */
	bool audio_started;  /* audio-start sent */
	uint64_t audio_sent; /* bytes of audio-chunk payload sent */
};

/* a synthesis or a describe waiting for the connection's job to end */
enum wy_item_kind { WI_SPEAK, WI_DESCRIBE };
struct wy_item {
	struct wy_item *next;
	enum wy_item_kind kind;
	bool stream;
	/* WI_SPEAK, malloc'd: the text, and the request's "model" and "voice"
	 * (NULL: the defaults) as the HTTP body would carry them */
	char *text, *model, *voice;
};

struct vs_wy_server;

struct wy_conn {
	struct wy_conn *prev, *next;
	struct vs_wy_server *srv;
	int fd;
	unsigned id;
	char client[48];
	struct vs_wy_parser parser;
	struct vs_wy_buf out;
	atomic_bool kick;
	uint32_t events; /* epoll interest now */
	bool closing;    /* an error ended the connection: flush, then a lingering close */
	bool gone;       /* the client hung up: freed by the loop */
	uint64_t linger_until_ms;
	uint64_t last_rx_ms; /* last byte from the client */
	uint64_t last_tx_ms; /* last byte the client took (or when output became pending) */
	struct wy_job *job;
	unsigned jobs; /* for request ids */
	/* speech to text: what `transcribe` asked for the next audio */
	char asr_model[64], asr_language[16];
	bool drop_audio; /* the audio's request was refused: its chunks are dropped */
	/* text to speech */
	struct wy_item *items, **items_tail;
	size_t items_bytes;
	bool streaming, stream_stop, stream_failed;
	char *stream_model, *stream_voice; /* of synthesize-start (malloc'd, NULL: default) */
	char *pending;
	size_t pending_len;
	uint64_t stream_hash, last_stream_hash; /* of the streamed text, see tts.c */
	bool stream_space, stream_any;
	/* describe on the TTS port: the next model whose voices are asked for */
	int describe_next;
	bool describe_failed[VS_MODELS_MAX];
};

struct vs_wy_server {
	struct vs_service *svc;
	int lfd, epfd, efd;
	int port;
	pthread_t thread;
	atomic_bool quiesce, stop;
	bool quiesced;
	struct wy_conn *conns;
	int n_conns;
	unsigned next_id;
	struct vs_wy_limits lim;
};

/* server.c */
void wy_kick(struct wy_conn *c);
/* appends one event to c's output (written by the loop) */
void wy_send(struct wy_conn *c, const char *type, json_t *data, const void *payload, size_t len);
/* an `error` event {text, code, status}: what the HTTP API would answer */
void wy_send_error(struct wy_conn *c, int status, const char *code, const char *text);
/* a protocol error: the error event, then the connection ends (lingering close) */
void wy_fatal(struct wy_conn *c, const char *code, const char *text);

/* job.c: a request through admission and the pool */
struct wy_job *wy_job_new(struct wy_conn *c, enum wy_kind kind);
/* the guard (503) and a slot of the service: 1 held, 0 queued, -1 refused
 * (the error sent, the job ended) */
int wy_job_admit(struct wy_job *j);
/* r.asked is set: the model's slot, then the work; or its queue; or the
 * refusal (error sent, job ended) */
void wy_job_model(struct wy_job *j);
/* the kick: a wake, an answer, audio; advances the job */
void wy_job_poll(struct wy_job *j);
/* ends the job with the HTTP status it would have had; frees it */
void wy_job_finish(struct wy_job *j, int status);
/* sends the job's refusal or failure (r.body, else r.err) and ends it */
void wy_job_refused(struct wy_job *j);
/* the client is gone (or the server stops): cancels the work; frees it */
void wy_job_abandon(struct wy_job *j, const char *why);
extern const struct vs_job_ops wy_job_ops;

/* asr.c: the speech-to-text events; the job's work and answer */
void wy_asr_event(struct wy_conn *c, struct vs_wy_event *ev);
int wy_asr_submit(struct wy_job *j);
void wy_asr_answered(struct wy_job *j);
/* the audio session may go on to the model (audio-stop came, slot held) */
void wy_asr_held(struct wy_job *j);
void wy_asr_reset(struct wy_conn *c);

/* tts.c: the text-to-speech events, items and audio */
void wy_tts_event(struct wy_conn *c, struct vs_wy_event *ev);
int wy_tts_submit(struct wy_job *j);
/* moves audio to the client; true when the job is over (and ended) */
bool wy_tts_pump(struct wy_job *j);
/* the connection has no job: start the next item, if any */
void wy_tts_next(struct wy_conn *c);
void wy_tts_free(struct wy_conn *c);
/* a describe waits its turn behind the syntheses already asked for */
void wy_tts_enqueue_describe(struct wy_conn *c);

/* info.c: describe -> info */
void wy_info_describe(struct wy_conn *c);
/* a WI_DESCRIBE item runs: true when info is sent; false while a voice
 * list is fetched (a job) */
bool wy_info_step(struct wy_conn *c);
int wy_info_voices_submit(struct wy_job *j);
void wy_info_voices_answered(struct wy_job *j);

/* json helpers */
const char *wy_str(json_t *o, const char *key);

#endif
