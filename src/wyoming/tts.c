/* tts.c - text to speech over Wyoming: synthesize, and streamed text
 * (synthesize-start, synthesize-chunk, synthesize-stop -> synthesize-stopped).
 *
 * DESIGN
 * Each synthesis is one request: its text, model and voice become the JSON
 * body POST /v1/audio/speech would get, parsed by the same code
 * (vs_tts_parse: the same limits, the same 400s), with response_format pcm
 * (24 kHz mono s16, VS_SPEECH_RATE), then admission and the worker as a
 * speech request. The audio goes out as the worker produces it:
 * audio-start at the first bytes, audio-chunks of 1024 samples, audio-stop
 * at the end (an error before any audio is just the error event).
 *
 * Streamed text is cut into sentences (a . ! ? followed by white space, or
 * a newline; a run longer than TTS_MAX_INPUT_CHARS is cut at a space): what
 * is complete when the connection has no synthesis running goes out as one
 * request, so the first sentence is heard while later text still arrives,
 * and each request is admitted on its own (a long stream does not hold a
 * slot while the text trickles in). Each request's audio is its own
 * audio-start .. audio-stop, as the reference (wyoming-piper) sends per
 * sentence; synthesize-stopped follows the last. The compatibility
 * `synthesize` a streaming client also sends carries the same text: inside
 * the stream it is ignored, and after synthesize-stop one whose text is the
 * stream's (white space aside) is ignored once, so it is never spoken twice.
 * After a refusal the rest of the stream is dropped and synthesize-stop
 * still gets synthesize-stopped.
 *
 * Voices: `voice.name` is "MODEL:VOICE" as describe lists them, or a model
 * (its voice from `speaker`), or a voice of the default model; `language`
 * alone selects nothing (every voice says which language it speaks).
 * Requests wait in the connection's list (items) while one runs; the text
 * waiting is bounded by 4 x TTS_MAX_INPUT_CHARS bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "wyoming/wy.h"

/* ---- the text a streaming client has sent, for the compatibility copy ---- */

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

/* FNV-1a of the text with white space runs made one space, ends trimmed */
static void hash_feed(uint64_t *h, bool *space, bool *any, const char *s)
{
	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			*space = *any;
			continue;
		}
		if (*space)
			*h = (*h ^ ' ') * FNV_PRIME;
		*space = false;
		*any = true;
		*h = (*h ^ (unsigned char)*s) * FNV_PRIME;
	}
}

static uint64_t hash_of(const char *s)
{
	uint64_t h = FNV_OFFSET;
	bool space = false, any = false;
	hash_feed(&h, &space, &any, s ? s : "");
	return any ? h : 0;
}

/* ---- requests waiting for the connection ---- */

static void item_free(struct wy_item *it)
{
	free(it->text);
	free(it->model);
	free(it->voice);
	free(it);
}

static size_t max_pending(struct wy_conn *c)
{
	return (size_t)c->srv->svc->cfg->tts_max_input_chars * 4;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void enqueue(struct wy_conn *c, enum wy_item_kind kind, const char *text, size_t len,
                    const char *model, const char *voice, bool stream)
{
	struct wy_item *it = calloc(1, sizeof(*it));
	if (!it || (text && !(it->text = strndup(text, len)))) {
		free(it);
		wy_send_error(c, 500, "internal_error", "Out of memory");
		return;
	}
	it->kind = kind;
	it->stream = stream;
	it->model = dup_or_null(model);
	it->voice = dup_or_null(voice);
	c->items_bytes += len;
	*c->items_tail = it;
	c->items_tail = &it->next;
}

static struct wy_item *pop(struct wy_conn *c)
{
	struct wy_item *it = c->items;
	if (it) {
		c->items = it->next;
		if (!c->items)
			c->items_tail = &c->items;
		c->items_bytes -= it->text ? strlen(it->text) : 0;
	}
	return it;
}

void wy_tts_free(struct wy_conn *c)
{
	struct wy_item *it;
	while ((it = pop(c)))
		item_free(it);
	free(c->pending);
	free(c->stream_model);
	free(c->stream_voice);
	c->pending = c->stream_model = c->stream_voice = NULL;
	c->pending_len = 0;
}

void wy_tts_enqueue_describe(struct wy_conn *c)
{
	enqueue(c, WI_DESCRIBE, NULL, 0, NULL, NULL, false);
}

/* ---- voices ---- */

/* "MODEL:VOICE", a model and its speaker, or a voice of the default model
 * (model NULL); strings point into v */
static void resolve_voice(struct wy_conn *c, json_t *v, char *buf, size_t len, const char **model,
                          const char **voice)
{
	const char *name = wy_str(v, "name"), *speaker = wy_str(v, "speaker");
	const char *colon = name ? strchr(name, ':') : NULL;
	struct vs_service *svc = c->srv->svc;

	*model = NULL;
	*voice = speaker && *speaker ? speaker : NULL;
	if (!name || !*name)
		return;
	if (colon && (size_t)(colon - name) < len) {
		snprintf(buf, len, "%.*s", (int)(colon - name), name);
		if (vs_service_model(svc, buf)) {
			*model = buf;
			*voice = colon + 1;
			return;
		}
	}
	if (vs_service_model(svc, name))
		*model = name;
	else
		*voice = name;
}

/* ---- events ---- */

static bool too_much_waiting(struct wy_conn *c, size_t more)
{
	if (c->items_bytes + c->pending_len + more <= max_pending(c))
		return false;
	char msg[200];
	snprintf(msg, sizeof(msg),
	         "Text is arriving faster than it is spoken: more than %zu bytes would wait (4 x "
	         "TTS_MAX_INPUT_CHARS)",
	         max_pending(c));
	wy_send_error(c, 400, "string_above_max_length", msg);
	return true;
}

static void on_synthesize(struct wy_conn *c, json_t *d)
{
	const char *text = wy_str(d, "text"), *model, *voice;
	char buf[VS_MODEL_ID_MAX];
	uint64_t h = hash_of(text);

	if (c->streaming)
		return; /* the compatibility copy of the text being streamed */
	if (c->last_stream_hash && h == c->last_stream_hash) {
		c->last_stream_hash = 0; /* the copy sent after synthesize-stop */
		return;
	}
	c->last_stream_hash = 0;
	if (text && too_much_waiting(c, strlen(text)))
		return;
	resolve_voice(c, json_object_get(d, "voice"), buf, sizeof(buf), &model, &voice);
	/* no text: the request has no input, which parsing refuses as HTTP does */
	enqueue(c, WI_SPEAK, text ? text : NULL, text ? strlen(text) : 0, model, voice, false);
}

static void on_start(struct wy_conn *c, json_t *d)
{
	const char *model, *voice;
	char buf[VS_MODEL_ID_MAX];

	resolve_voice(c, json_object_get(d, "voice"), buf, sizeof(buf), &model, &voice);
	free(c->pending);
	free(c->stream_model);
	free(c->stream_voice);
	c->pending = NULL;
	c->pending_len = 0;
	c->stream_model = dup_or_null(model);
	c->stream_voice = dup_or_null(voice);
	c->streaming = true;
	c->stream_stop = c->stream_failed = false;
	c->stream_hash = FNV_OFFSET;
	c->stream_space = c->stream_any = false;
	c->last_stream_hash = 0;
}

/* the end of the last sentence in p[0..n) (after its . ! ? or newline), 0 if none */
static size_t sentence_end(const char *p, size_t n)
{
	size_t cut = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n')
			cut = i + 1;
		else if ((p[i] == '.' || p[i] == '!' || p[i] == '?') && i + 1 < n &&
		         isspace((unsigned char)p[i + 1]))
			cut = i + 1;
	}
	return cut;
}

/* where to cut a run of max bytes without a sentence end: its last space,
 * else the last UTF-8 character boundary */
static size_t forced_cut(const char *p, size_t max)
{
	size_t i = max;
	while (i > max / 2 && !isspace((unsigned char)p[i - 1]))
		i--;
	if (i > max / 2)
		return i;
	for (i = max; i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80; i--)
		;
	return i ? i : max;
}

static bool blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)p[i]))
			return false;
	return true;
}

/* moves p's complete sentences (all of it when flush) to the items */
static void split(struct wy_conn *c, bool flush)
{
	size_t max = (size_t)c->srv->svc->cfg->tts_max_input_chars; /* bytes >= characters */

	for (;;) {
		size_t n = c->pending_len, cut;
		if (n == 0)
			return;
		if (n > max)
			cut = forced_cut(c->pending, max);
		else if ((cut = sentence_end(c->pending, n)) == 0 && flush)
			cut = n;
		if (cut == 0)
			return;
		if (!blank(c->pending, cut))
			enqueue(c, WI_SPEAK, c->pending, cut, c->stream_model, c->stream_voice,
			        true);
		memmove(c->pending, c->pending + cut, n - cut);
		c->pending_len = n - cut;
	}
}

static void on_chunk(struct wy_conn *c, json_t *d)
{
	const char *text = wy_str(d, "text");
	size_t n = text ? strlen(text) : 0;

	if (!c->streaming || c->stream_failed || c->stream_stop || n == 0)
		return;
	if (too_much_waiting(c, n)) {
		c->stream_failed = true;
		return;
	}
	char *nb = realloc(c->pending, c->pending_len + n + 1);
	if (!nb) {
		wy_send_error(c, 500, "internal_error", "Out of memory");
		c->stream_failed = true;
		return;
	}
	c->pending = nb;
	memcpy(c->pending + c->pending_len, text, n + 1);
	c->pending_len += n;
	hash_feed(&c->stream_hash, &c->stream_space, &c->stream_any, text);
	split(c, false);
}

/* synthesize-stopped once the stream's last audio is out */
static void maybe_stopped(struct wy_conn *c)
{
	if (!c->streaming || !c->stream_stop || (c->job && c->job->stream))
		return;
	for (struct wy_item *it = c->items; it; it = it->next)
		if (it->stream)
			return;
	wy_send(c, "synthesize-stopped", NULL, NULL, 0);
	c->last_stream_hash = c->stream_any ? c->stream_hash : 0;
	c->streaming = c->stream_stop = c->stream_failed = false;
}

static void on_stop(struct wy_conn *c)
{
	if (!c->streaming) {
		/* a stop without a stream: say it is over, as clients expect */
		wy_send(c, "synthesize-stopped", NULL, NULL, 0);
		return;
	}
	if (!c->stream_failed)
		split(c, true);
	c->stream_stop = true;
	maybe_stopped(c);
}

void wy_tts_event(struct wy_conn *c, struct vs_wy_event *ev)
{
	if (strcmp(ev->type, "synthesize") == 0)
		on_synthesize(c, ev->data);
	else if (strcmp(ev->type, "synthesize-start") == 0)
		on_start(c, ev->data);
	else if (strcmp(ev->type, "synthesize-chunk") == 0)
		on_chunk(c, ev->data);
	else
		on_stop(c);
}

/* ---- one synthesis ---- */

static void start_speak(struct wy_conn *c, struct wy_item *it)
{
	struct vs_service *svc = c->srv->svc;
	struct wy_job *j = wy_job_new(c, WJ_SYNTHESIZE);
	if (!j) {
		wy_send_error(c, 500, "internal_error", "Out of memory");
		return;
	}
	struct vs_req *r = &j->r;
	struct vs_model_rt *m = vs_service_model(svc, it->model);
	j->stream = it->stream;
	/* the body POST /v1/audio/speech would carry, parsed as it would be */
	json_t *body = json_pack("{s:s, s:s?, s:s, s:s}", "model",
	                         it->model ? it->model : svc->models[0].spec->id, "input", it->text,
	                         "voice",
	                         it->voice                      ? it->voice
	                         : m && m->spec->engine->voices ? m->spec->engine->voices[0]
	                                                        : vs_openai_voices[0],
	                         "response_format", "pcm");
	r->json = body ? json_dumps(body, JSON_COMPACT) : NULL;
	r->json_len = r->json ? strlen(r->json) : 0;
	json_decref(body);
	if (!r->json) {
		vs_req_set_error(r, 500, NULL, "internal_error", "Out of memory");
		wy_job_refused(j);
		return;
	}
	if (vs_tts_parse(r) < 0) {
		wy_job_refused(j);
		return;
	}
	if (wy_job_admit(j) == 1)
		wy_job_model(j);
}

void wy_tts_next(struct wy_conn *c)
{
	while (!c->job && c->items && !c->gone && !c->closing) {
		struct wy_item *it = c->items;
		if (it->kind == WI_DESCRIBE) {
			if (!wy_info_step(c))
				break; /* a voice list is being fetched */
			item_free(pop(c));
			continue;
		}
		it = pop(c);
		if (!(it->stream && c->stream_failed))
			start_speak(c, it);
		item_free(it);
	}
	maybe_stopped(c);
}

int wy_tts_submit(struct wy_job *j)
{
	vs_tts_submit(&j->r); /* the speech request's own submission (http/tts.c) */
	return j->r.phase == P_REPLY ? -EIO : 0;
}

bool wy_tts_pump(struct wy_job *j)
{
	struct wy_conn *c = j->c;
	struct vs_req *r = &j->r;
	json_t *fmt =
	        json_pack("{s:i, s:i, s:i}", "rate", VS_SPEECH_RATE, "width", 2, "channels", 1);
	bool resume = false, done;
	int slot;

	pthread_mutex_lock(&r->mu);
	while (r->soff < r->slen && vs_wy_buf_pending(&c->out) < WY_OUT_HIGH) {
		size_t n = r->slen - r->soff;
		if (n > WY_CHUNK_BYTES)
			n = WY_CHUNK_BYTES;
		if (!r->stream_end && n > 1)
			n &= ~(size_t)1; /* whole samples while more may come */
		if (!j->audio_started) {
			wy_send(c, "audio-start", fmt, NULL, 0);
			j->audio_started = true;
		}
		wy_send(c, "audio-chunk", fmt, r->sbuf + r->soff, n);
		r->soff += n;
		j->audio_sent += n;
		r->resp_bytes += n;
		if (!r->stream_end && r->slen - r->soff == 1)
			break; /* half a sample: its other byte is on its way */
	}
	if (r->soff == r->slen)
		r->soff = r->slen = 0;
	if (r->worker_paused && r->slen - r->soff < WY_STREAM_LOW) {
		r->worker_paused = false;
		resume = true;
	}
	slot = r->mslot;
	done = r->answered && r->soff == r->slen;
	pthread_mutex_unlock(&r->mu);
	/* outside r.mu: the pool's lock comes first */
	if (resume && slot >= 0)
		vs_pool_resume_reading(r->m->pool, slot);
	if (done && r->err.status) {
		wy_job_refused(j);
	} else if (done) {
		if (!j->audio_started) /* no sample at all: still one (empty) audio stream */
			wy_send(c, "audio-start", fmt, NULL, 0);
		wy_send(c, "audio-stop", NULL, NULL, 0);
		wy_job_finish(j, 200);
	}
	json_decref(fmt);
	return done;
}
