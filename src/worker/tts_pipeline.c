/* tts_pipeline.c - one speech request: engine PCM -> encoder -> byte sink.
 *
 * DESIGN
 * Synthesis and encoding overlap on two threads, as in
 * `espeak-ng --stdout | ffmpeg ...`:
 *
 *   calling thread: engine->synthesize() --sink--> ring of PCM samples
 *                   (bounded: VS_TTS_QUEUE_SAMPLES)      |
 *   encoder thread: <-------------------------------------+
 *                   resample + encode + mux -> out() (AUDIO frames)
 *
 * Only the calling thread ever calls the engine (espeak-ng is a
 * process-global, non-thread-safe library); only the encoder thread touches
 * the encoder after it is created, and calls out(). The caller joins the
 * encoder thread before returning, so the worker's ERROR/END frame never
 * races an AUDIO frame on the socket.
 *
 * Backpressure: out() blocks when the front stops reading (it stops reading
 * a slow client's worker); then the ring fills and the engine's sink blocks,
 * so a worker holds at most the ring (64 KiB of PCM) plus the encoder's own
 * small buffers, whatever the length of the text.
 *
 * Errors stay exact. Encoded bytes go to out() as they are produced, except
 * the very first: a container header (wav, ogg) is written when the encoder
 * is created, before the engine has said a word, and once the front has sent
 * it the HTTP status is 200. So the encoder thread holds bytes back until it
 * takes the engine's first samples, and an engine that refuses the request
 * (unknown voice) fails before any byte left: the worker answers 400. An
 * engine failing later stops the encoder thread without finishing the
 * stream (the front cuts it short); out() failing (-EPIPE) makes the
 * engine's next sink call return that error, which stops the engine.
 *
 * Bytes are handed to out() as soon as the encoder has caught up with the
 * engine, and gathered into pieces of up to 16 KiB while it is behind, so
 * the first byte is not delayed and a long mp3 is not sent as thousands of
 * 200-byte frames.
 *
 * Chosen over encoding on the engine's thread (the code before: total time
 * = synthesis + encoding) and over a thread per engine call (the engine
 * keeps the calling thread, so nothing about engines changes).
 */
#include "worker/tts_pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* samples the encoder thread takes per step: small enough that the first
 * engine block (100 ms) is encoded at once, large enough to amortise the
 * lock */
#define TAKE_SAMPLES 4096
/* encoded bytes gathered into one AUDIO frame while the encoder is behind */
#define COALESCE_BYTES 16384

struct pipe {
	pthread_mutex_t mu;
	pthread_cond_t can_put, can_take;
	int16_t ring[VS_TTS_QUEUE_SAMPLES];
	size_t head, len; /* under mu */
	bool eof;         /* under mu: the engine returned 0 */
	bool abandon;     /* under mu: the engine failed, do not finish */
	int enc_err;      /* under mu: the encoder thread failed (sticky) */
	size_t samples;   /* engine thread only */

	/* encoder thread only (after creation) */
	struct vs_encoder *enc;
	vs_bytes_sink_fn out;
	void *opaque;
	bool started;  /* the engine's first samples were taken: bytes may flow */
	bool sent;     /* some bytes left */
	uint8_t *pend; /* encoded bytes not yet given to out() */
	size_t pend_len, pend_cap, bytes;
};

/* ---- encoder thread ---- */

static int flush(struct pipe *q)
{
	int r = 0;

	if (q->started && q->pend_len) {
		q->bytes += q->pend_len;
		q->sent = true;
		r = q->out(q->opaque, q->pend, q->pend_len);
		q->pend_len = 0;
	}
	return r;
}

/* The encoder's byte sink: appends to pend, which leaves in COALESCE_BYTES
 * pieces (see flush_if_idle() for the rest). */
static int hold_or_send(void *opaque, const uint8_t *data, size_t len)
{
	struct pipe *q = opaque;

	if (q->pend_len + len > q->pend_cap) {
		size_t cap = q->pend_len + len + COALESCE_BYTES;
		uint8_t *nb = realloc(q->pend, cap);

		if (!nb)
			return -ENOMEM;
		q->pend = nb;
		q->pend_cap = cap;
	}
	memcpy(q->pend + q->pend_len, data, len);
	q->pend_len += len;
	return q->pend_len >= COALESCE_BYTES ? flush(q) : 0;
}

static bool queue_empty(struct pipe *q)
{
	bool empty;

	pthread_mutex_lock(&q->mu);
	empty = q->len == 0;
	pthread_mutex_unlock(&q->mu);
	return empty;
}

/* Bytes leave at once while nothing has left yet (first byte) or when the
 * encoder is about to wait for the engine (it has caught up, so holding
 * bytes back would only delay them); otherwise they gather up to
 * COALESCE_BYTES. Without this an mp3 went out as one AUDIO frame per
 * 24 ms packet (~200 bytes), and relaying them cost the front more CPU than
 * the bytes are worth. */
static int flush_if_idle(struct pipe *q)
{
	if (!q->pend_len || (q->sent && !queue_empty(q)))
		return 0;
	return flush(q);
}

/* Takes up to max samples into buf; 0 with *done at the end of the input. */
static size_t take(struct pipe *q, int16_t *buf, size_t max, bool *done)
{
	size_t n, first;

	pthread_mutex_lock(&q->mu);
	while (q->len == 0 && !q->eof && !q->abandon)
		pthread_cond_wait(&q->can_take, &q->mu);
	*done = q->abandon || (q->len == 0 && q->eof);
	n = *done && q->abandon ? 0 : (q->len < max ? q->len : max);
	first = VS_TTS_QUEUE_SAMPLES - q->head;
	first = first < n ? first : n;
	memcpy(buf, q->ring + q->head, first * sizeof(*buf));
	memcpy(buf + first, q->ring, (n - first) * sizeof(*buf));
	q->head = (q->head + n) % VS_TTS_QUEUE_SAMPLES;
	q->len -= n;
	pthread_cond_signal(&q->can_put);
	pthread_mutex_unlock(&q->mu);
	return n;
}

static int encode_all(struct pipe *q)
{
	int16_t buf[TAKE_SAMPLES];
	bool done = false;
	int r = 0;

	while (r == 0) {
		size_t n = take(q, buf, TAKE_SAMPLES, &done);

		if (n == 0 && done)
			break;
		q->started = true; /* the engine has said something: headers may go */
		r = vs_encoder_write(q->enc, buf, n);
		if (r == 0)
			r = flush_if_idle(q);
	}
	pthread_mutex_lock(&q->mu);
	done = q->abandon;
	pthread_mutex_unlock(&q->mu);
	if (r < 0 || done)
		return r;
	q->started = true; /* also for an engine that produced no samples at all */
	r = vs_encoder_finish(q->enc);
	if (r == 0)
		r = flush(q);
	return r;
}

static void *encoder_thread(void *arg)
{
	struct pipe *q = arg;
	int r = encode_all(q);

	pthread_mutex_lock(&q->mu);
	q->enc_err = r;
	pthread_cond_signal(&q->can_put); /* an engine waiting for room stops */
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* ---- engine thread ---- */

/* the engine's PCM sink: copies into the ring, waiting for room */
static int put(void *opaque, const int16_t *pcm, size_t n)
{
	struct pipe *q = opaque;
	int r = 0;

	pthread_mutex_lock(&q->mu);
	while (n > 0) {
		size_t tail, room, k, first;

		while (q->len == VS_TTS_QUEUE_SAMPLES && q->enc_err == 0)
			pthread_cond_wait(&q->can_put, &q->mu);
		if (q->enc_err < 0) {
			r = q->enc_err;
			break;
		}
		tail = (q->head + q->len) % VS_TTS_QUEUE_SAMPLES;
		room = VS_TTS_QUEUE_SAMPLES - q->len;
		k = n < room ? n : room;
		first = VS_TTS_QUEUE_SAMPLES - tail;
		first = first < k ? first : k;
		memcpy(q->ring + tail, pcm, first * sizeof(*pcm));
		memcpy(q->ring, pcm + first, (k - first) * sizeof(*pcm));
		q->len += k;
		q->samples += k;
		pcm += k;
		n -= k;
		pthread_cond_signal(&q->can_take);
	}
	pthread_mutex_unlock(&q->mu);
	return r;
}

int vs_tts_synthesize(const struct vs_engine_ops *ops, void *ctx, const struct vs_tts_params *p,
                      const char *format, vs_bytes_sink_fn out, void *opaque,
                      struct vs_tts_result *res, char *err, size_t errlen)
{
	struct pipe *q = calloc(1, sizeof(*q));
	pthread_t th;
	int r, er;

	memset(res, 0, sizeof(*res));
	res->stage = VS_TTS_FORMAT;
	if (!q) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	q->out = out;
	q->opaque = opaque;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->can_put, NULL);
	pthread_cond_init(&q->can_take, NULL);
	r = vs_encoder_new(format, ops->sample_rate(ctx), hold_or_send, q, &q->enc, err, errlen);
	if (r < 0)
		goto out;
	res->stage = VS_TTS_SYNTH;
	r = -pthread_create(&th, NULL, encoder_thread, q);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the encoder thread: %s", strerror(-r));
		goto out;
	}
	r = ops->synthesize(ctx, p, put, q, err, errlen);
	pthread_mutex_lock(&q->mu);
	if (r < 0)
		q->abandon = true;
	q->eof = true;
	pthread_cond_signal(&q->can_take);
	pthread_mutex_unlock(&q->mu);
	pthread_join(th, NULL);
	/* the engine's error wins: when it was the sink's, the engine returns it */
	er = q->enc_err;
	if (r == 0 && er < 0) {
		r = er;
		if (r != -EPIPE)
			snprintf(err, errlen, "encoding failed: %s", strerror(-r));
	}
	res->samples = q->samples;
	res->bytes = q->bytes;
out:
	vs_encoder_free(q->enc);
	free(q->pend);
	pthread_cond_destroy(&q->can_take);
	pthread_cond_destroy(&q->can_put);
	pthread_mutex_destroy(&q->mu);
	free(q);
	if (r == 0)
		res->stage = VS_TTS_OK;
	return r;
}
