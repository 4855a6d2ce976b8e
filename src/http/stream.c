/* stream.c - answers that stream: speech audio as it is encoded, and
 * server-sent events (a transcription with stream=true, speech with
 * stream_format "sse").
 *
 * DESIGN
 * Both kinds are the same machinery: the job callbacks (reactor thread,
 * tts.c and upload.c) append bytes to the request's buffer with
 * vs_stream_push_locked, and the MHD content reader below hands them to the
 * client with chunked encoding. The HTTP status is decided by the first
 * thing the worker sends: bytes or an event mean 200 and streaming starts;
 * an ERROR before that is an ordinary JSON error reply (server.c). So a 429,
 * a bad upload or an unknown voice is never hidden inside a stream.
 *
 * After the first byte a failure (engine error, worker crash, timeout) can
 * only end the stream: raw audio is cut (the chunked body ends without its
 * terminating chunk, so clients see an incomplete transfer); an event stream
 * gets one `data: {"error":{...}}` event and then ends cleanly, as OpenAI's
 * streams do, so the SDKs raise the error instead of a network failure.
 *
 * Backpressure: when a slow client lets more than STREAM_HIGH bytes pile up,
 * the reactor stops reading that worker until the reader drains below
 * STREAM_LOW; the worker then blocks on its socket and its engine pauses.
 * When the reader has nothing to send it suspends the connection and the
 * next frame resumes it, so no HTTP thread waits on a worker. A client that
 * leaves is seen by the watcher (suspended) or by MHD (writing), and the
 * completion callback or the watcher kills the worker and frees the slot,
 * exactly as for any request.
 */
#include <errno.h>
#include <nettle/base64.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http/http.h"
#include "media/media.h"

#define STREAM_HIGH (512 * 1024)
#define STREAM_LOW (128 * 1024)

bool vs_stream_push_locked(struct vs_req *r, const void *data, size_t len)
{
	size_t pending = r->slen - r->soff;
	uint8_t *nb = realloc(r->sbuf, r->slen + len);
	if (!nb) {
		r->stream_failed = true;
	} else {
		r->sbuf = nb;
		memcpy(r->sbuf + r->slen, data, len);
		r->slen += len;
		r->stream_bytes += len;
	}
	r->stream_started = true;
	r->answered = true;
	r->reader_waiting = false;
	vs_req_resume_locked(r);
	if (pending + len > STREAM_HIGH) {
		r->worker_paused = true;
		return false;
	}
	return true;
}

bool vs_sse_event_locked(struct vs_req *r, json_t *ev)
{
	size_t len = 0;
	char *line = vs_sse_data(ev, &len);
	json_decref(ev);
	if (!line) {
		r->stream_failed = true; /* out of memory: cut, never a wrong event */
		return true;
	}
	bool keep = vs_stream_push_locked(r, line, len);
	free(line);
	return keep;
}

bool vs_sse_audio_locked(struct vs_req *r, const uint8_t *data, size_t len)
{
	/* each delta is its own base64 text, so every event decodes alone and
	 * the decoded deltas joined are the audio file */
	char *b64 = malloc(BASE64_ENCODE_RAW_LENGTH(len) + 1);
	if (!b64) {
		r->stream_failed = true;
		return true;
	}
	base64_encode_raw(b64, len, data);
	b64[BASE64_ENCODE_RAW_LENGTH(len)] = 0;
	bool keep = vs_sse_event_locked(r, vs_oai_speech_delta(b64));
	free(b64);
	return keep;
}

void vs_stream_fail_locked(struct vs_req *r)
{
	if (r->sse) {
		/* the error event, then a clean end: the stream says what happened */
		vs_sse_event_locked(
		        r, vs_oai_error(r->err.message, vs_oai_error_type(r->err.status),
		                        r->err.param[0] ? r->err.param : NULL,
		                        r->err.code[0] ? r->err.code
		                                       : vs_oai_error_default_code(r->err.status)));
		r->stream_end = true;
	} else {
		r->stream_failed = true;
	}
	vs_warn("event=stream_failed service=%s route=%s status=%d code=%s request_id=%s "
	        "msg=\"%s\"",
	        r->svc->name, r->route_label, r->err.status, r->err.code[0] ? r->err.code : "-",
	        r->request_id, r->err.message);
	r->reader_waiting = false;
	vs_req_resume_locked(r);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct vs_req *r = cls;
	bool resume_worker = false, finished = false;
	int slot;
	ssize_t n;
	(void)pos;

	pthread_mutex_lock(&r->mu);
	slot = r->mslot;
	if (r->client_gone) {
		/* the watcher saw the hang-up while we waited for a frame */
		n = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (r->soff < r->slen) {
		size_t avail = r->slen - r->soff;
		n = (ssize_t)(avail < max ? avail : max);
		memcpy(buf, r->sbuf + r->soff, (size_t)n);
		r->soff += (size_t)n;
		r->resp_bytes += (uint64_t)n;
		if (r->soff == r->slen)
			r->soff = r->slen = 0;
		if (r->worker_paused && r->slen - r->soff < STREAM_LOW) {
			r->worker_paused = false;
			resume_worker = true;
		}
	} else if (r->stream_failed) {
		n = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (r->stream_end) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
		finished = true;
	} else {
		/* nothing yet: park the connection until the next frame arrives */
		r->reader_waiting = true;
		vs_req_suspend_locked(r);
		n = 0;
	}
	pthread_mutex_unlock(&r->mu);
	/* outside our lock: the pool lock comes first in the lock order */
	if (resume_worker && slot >= 0)
		vs_pool_resume_reading(r->m->pool, slot);
	if (finished)
		vs_req_release_slot(r); /* the worker is idle again; free it for the next client */
	return n;
}

int vs_stream_queue(struct vs_req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024,
	                                                              stream_reader, r, NULL);
	if (!resp)
		return -ENOMEM;
	if (r->sse) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
		/* nginx buffers proxied answers by default: events would arrive at
		 * the end, all at once */
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	} else {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        vs_format_mime(r->response_format));
	}
	vs_req_add_headers(r, resp);
	enum MHD_Result ok = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	r->status = 200;
	r->phase = P_STREAMING;
	return ok == MHD_YES ? 0 : -EIO;
}
