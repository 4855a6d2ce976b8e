/* asr.c - speech to text over Wyoming: transcribe, audio-start,
 * audio-chunk, audio-stop -> transcript.
 *
 * DESIGN
 * The audio is a request body that arrives in pieces: its request takes
 * the service's slot at audio-start (the guard and the queue first), as an
 * HTTP upload holds its slot while its body arrives, so a client that
 * vanishes mid-audio frees it at once and one that is refused learns it
 * before it has sent its audio. The PCM is spooled as it comes to an
 * unlinked temporary file (vs_spool_open, as uploads are) and bounded as an
 * upload is: MAX_UPLOAD_SIZE_MB of bytes, ASR_MAX_AUDIO_SECONDS of audio
 * (bytes / (rate x width x channels)), BODY_TIMEOUT_SECONDS and
 * UPLOAD_STALL_TIMEOUT_SECONDS (server.c). At audio-stop the model's slot is
 * taken and the file goes to the worker with its format ("pcm" in the
 * TRANSCRIBE frame): FFmpeg's raw demuxers read it there and convert any
 * rate, width and channel count the front accepts (8..384 kHz, 1..4 bytes,
 * 1..8 channels); the front links no FFmpeg and converts nothing.
 *
 * `transcribe` is checked as a transcription's fields are
 * (vs_transcription_validate: model, language) and applies to the next
 * audio only, as the reference resets it after each transcript. Lenient as
 * the reference: a chunk without audio-start starts the audio in the
 * chunk's format. A chunk in another format than its audio-start is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "wyoming/wy.h"

static void send_oai_error(struct wy_conn *c, const struct vs_oai_err *e)
{
	wy_send_error(c, e->status, e->code[0] ? e->code : vs_oai_error_default_code(e->status),
	              e->message);
}

/* rate, width and channels of an audio event; false (msg set) if absent or
 * outside what the worker's decoder accepts */
static bool format_of(json_t *d, struct vs_raw_format *f, char *msg, size_t len)
{
	json_t *rate = json_object_get(d, "rate"), *width = json_object_get(d, "width");
	json_t *ch = json_object_get(d, "channels");

	if (!json_is_integer(rate) || !json_is_integer(width) || !json_is_integer(ch)) {
		snprintf(msg, len, "Audio events need integer 'rate', 'width' and 'channels'");
		return false;
	}
	json_int_t r = json_integer_value(rate), w = json_integer_value(width);
	json_int_t n = json_integer_value(ch);
	if (r < VS_DECODE_MIN_RATE || r > VS_DECODE_MAX_RATE || w < 1 || w > 4 || n < 1 ||
	    n > VS_RAW_MAX_CHANNELS) {
		snprintf(msg, len,
		         "Unsupported audio format: rate %lld Hz, width %lld bytes, %lld channels "
		         "(accepted: %d to %d Hz, 1 to 4 bytes, 1 to %d channels)",
		         (long long)r, (long long)w, (long long)n, VS_DECODE_MIN_RATE,
		         VS_DECODE_MAX_RATE, VS_RAW_MAX_CHANNELS);
		return false;
	}
	f->rate = (int)r;
	f->width = (int)w;
	f->channels = (int)n;
	return true;
}

static void bad_format(struct wy_conn *c, const char *msg)
{
	wy_send_error(c, 400, "invalid_audio_format", msg);
	c->drop_audio = true;
}

void wy_asr_reset(struct wy_conn *c)
{
	c->asr_model[0] = c->asr_language[0] = '\0';
}

static void on_transcribe(struct wy_conn *c, json_t *d)
{
	struct vs_service *svc = c->srv->svc;
	const char *name = wy_str(d, "name");
	struct vs_transcription_fields f = {
	        .model = name && *name ? name : svc->models[0].spec->id,
	        .language = wy_str(d, "language"),
	        .has_file = true, /* the audio follows */
	        .file_bytes = 1,
	};
	struct vs_transcription_opts o;
	struct vs_oai_err err;

	wy_asr_reset(c);
	if (vs_transcription_validate(&f, svc->model_names, svc->models_hint, &o, &err) < 0) {
		send_oai_error(c, &err);
		return;
	}
	snprintf(c->asr_model, sizeof(c->asr_model), "%s", o.model);
	snprintf(c->asr_language, sizeof(c->asr_language), "%s", o.language);
	vs_transcription_opts_free(&o);
}

/* a request for the audio that starts now, in format f */
static void start_audio(struct wy_conn *c, const struct vs_raw_format *f)
{
	struct wy_job *j = wy_job_new(c, WJ_TRANSCRIBE);
	if (!j) {
		wy_send_error(c, 500, "internal_error", "Out of memory");
		c->drop_audio = true;
		return;
	}
	j->fmt = *f;
	j->spool = vs_spool_open();
	if (j->spool < 0) {
		vs_error("event=spool_open_failed protocol=wyoming err=\"%s\"",
		         strerror(-j->spool));
		vs_req_set_error(&j->r, 500, NULL, "spool_failed", "Could not store the upload");
		wy_job_refused(j);
		return;
	}
	wy_job_admit(j); /* held, queued (the audio is spooled meanwhile), or refused */
}

static void on_audio_start(struct wy_conn *c, json_t *d)
{
	struct vs_raw_format f;
	char msg[200];
	struct wy_job *j = c->job;

	if (j && j->audio_done) {
		wy_send_error(c, 409, "request_in_progress",
		              "A transcription is still under way on this connection; send the "
		              "next audio after its transcript");
		c->drop_audio = true;
		return;
	}
	c->drop_audio = false;
	if (!format_of(d, &f, msg, sizeof(msg))) {
		bad_format(c, msg);
		return;
	}
	if (j) {
		/* a new audio-start before audio-stop: the audio starts over, in the
		 * slot already held */
		if (ftruncate(j->spool, 0) < 0)
			vs_warn("event=spool_truncate_failed err=%d", errno);
		j->fmt = f;
		j->audio_bytes = 0;
		return;
	}
	start_audio(c, &f);
}

/* 413: the audio passed a limit of an upload */
static void too_much(struct wy_job *j, const char *code, const char *msg)
{
	j->r.reject_reason = "size";
	vs_req_set_error(&j->r, 413, "file", code, "%s", msg);
	vs_info("event=reject reason=size service=%s protocol=wyoming status=413 bytes=%llu "
	        "msg=\"%s\"",
	        j->r.svc->name, (unsigned long long)j->audio_bytes, msg);
	wy_job_refused(j);
}

static void append(struct wy_job *j, const uint8_t *p, size_t n)
{
	const struct vs_config *cfg = j->r.svc->cfg;
	uint64_t max_bytes = (uint64_t)cfg->max_upload_size_mb * 1024 * 1024;
	double per_s = (double)j->fmt.rate * j->fmt.width * j->fmt.channels;
	char msg[300];

	if (j->audio_bytes + n > max_bytes) {
		snprintf(msg, sizeof(msg), "Request body exceeds the limit of %llu bytes",
		         (unsigned long long)max_bytes);
		too_much(j, "request_too_large", msg);
		return;
	}
	if ((double)(j->audio_bytes + n) / per_s > cfg->asr_max_audio_seconds) {
		snprintf(msg, sizeof(msg),
		         "Audio is longer than the limit of %g seconds (ASR_MAX_AUDIO_SECONDS): "
		         "more "
		         "than %g seconds of audio received",
		         cfg->asr_max_audio_seconds, cfg->asr_max_audio_seconds);
		too_much(j, "audio_too_long", msg);
		return;
	}
	for (size_t done = 0; done < n;) {
		ssize_t w = write(j->spool, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			vs_error("event=spool_write_failed protocol=wyoming err=\"%s\"",
			         strerror(errno));
			vs_req_set_error(&j->r, 500, "file", "spool_failed",
			                 "Could not store the upload: %s", strerror(errno));
			wy_job_refused(j);
			return;
		}
		done += (size_t)w;
	}
	j->audio_bytes += n;
	j->r.body_bytes = j->audio_bytes;
}

static void on_audio_chunk(struct wy_conn *c, struct vs_wy_event *ev)
{
	struct wy_job *j = c->job;
	struct vs_raw_format f;
	char msg[200];
	bool has_format = json_object_get(ev->data, "rate") || json_object_get(ev->data, "width") ||
	                  json_object_get(ev->data, "channels");

	if (c->drop_audio || (j && j->audio_done))
		return;
	if (has_format && !format_of(ev->data, &f, msg, sizeof(msg))) {
		if (j) {
			vs_req_set_error(&j->r, 400, NULL, "invalid_audio_format", "%s", msg);
			wy_job_refused(j);
		} else {
			bad_format(c, msg);
		}
		return;
	}
	if (!j) {
		if (!has_format) {
			bad_format(c, "audio-chunk without audio-start needs 'rate', 'width' and "
			              "'channels'");
			return;
		}
		start_audio(c, &f);
		if (!(j = c->job))
			return;
	} else if (has_format && memcmp(&f, &j->fmt, sizeof(f)) != 0) {
		vs_req_set_error(&j->r, 400, NULL, "invalid_audio_format",
		                 "audio-chunk format (%d Hz, %d bytes, %d channels) differs from "
		                 "audio-start's (%d Hz, %d bytes, %d channels)",
		                 f.rate, f.width, f.channels, j->fmt.rate, j->fmt.width,
		                 j->fmt.channels);
		wy_job_refused(j);
		return;
	}
	append(j, ev->payload, ev->payload_len);
}

static void on_audio_stop(struct wy_conn *c)
{
	struct wy_job *j = c->job;

	if (c->drop_audio) {
		c->drop_audio = false; /* the refused audio ends here; nothing to answer */
		return;
	}
	if (!j) {
		wy_send_error(c, 400, "invalid_audio",
		              "audio-stop without audio-start: no audio to "
		              "transcribe");
		return;
	}
	if (j->audio_done)
		return;
	j->audio_done = true;
	/* this audio's request: what `transcribe` asked for (then forgotten) */
	snprintf(j->r.model, sizeof(j->r.model), "%s",
	         c->asr_model[0] ? c->asr_model : c->srv->svc->models[0].spec->id);
	snprintf(j->language, sizeof(j->language), "%s", c->asr_language);
	wy_asr_reset(c);
	if (j->state == WJ_HOLDING)
		wy_asr_held(j);
}

void wy_asr_event(struct wy_conn *c, struct vs_wy_event *ev)
{
	if (strcmp(ev->type, "transcribe") == 0)
		on_transcribe(c, ev->data);
	else if (strcmp(ev->type, "audio-start") == 0)
		on_audio_start(c, ev->data);
	else if (strcmp(ev->type, "audio-chunk") == 0)
		on_audio_chunk(c, ev);
	else
		on_audio_stop(c);
}

void wy_asr_held(struct wy_job *j)
{
	if (!j->audio_done)
		return; /* the audio still arrives, in the held slot */
	if (j->audio_bytes == 0) {
		vs_req_set_error(&j->r, 400, "file", "invalid_value",
		                 "The uploaded file is empty.");
		wy_job_refused(j);
		return;
	}
	j->r.asked = vs_service_model(j->r.svc, j->r.model);
	wy_job_model(j);
}

int wy_asr_submit(struct wy_job *j)
{
	struct vs_req *r = &j->r;
	json_t *p = json_pack("{s:s?, s:f, s:b, s:{s:i, s:i, s:i}}", "language",
	                      j->language[0] ? j->language : NULL, "temperature", 0.0, "want_words",
	                      0, "pcm", "rate", j->fmt.rate, "width", j->fmt.width, "channels",
	                      j->fmt.channels);
	if (!p)
		return -ENOMEM;
	int e = vs_pool_submit(r->m->pool, r->mslot, &r->job, VS_MSG_TRANSCRIBE, p, j->spool);
	json_decref(p);
	/* the worker holds its own reference to the spooled file now */
	close(j->spool);
	j->spool = -1;
	return e;
}

void wy_asr_answered(struct wy_job *j)
{
	struct wy_conn *c = j->c;
	struct vs_req *r = &j->r;

	if (r->err.status) {
		wy_job_refused(j);
		return;
	}
	json_t *d = json_pack("{s:s}", "text",
	                      json_string_value(json_object_get(r->result, "text")) ?: "");
	if (d && j->language[0])
		json_object_set_new(d, "language", json_string(j->language));
	wy_send(c, "transcript", d, NULL, 0);
	json_decref(d);
	wy_job_finish(j, 200);
}
