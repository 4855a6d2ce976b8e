/* upload.c - POST /v1/audio/transcriptions: multipart parsing, spooling and
 * the ASR job.
 *
 * DESIGN
 * libmicrohttpd's post processor parses multipart/form-data as the body
 * streams in. The `file` part goes straight to an unlinked temporary file
 * (O_TMPFILE), never to memory; the worker receives that descriptor over the
 * socket (SCM_RIGHTS) and decodes it with seeking (m4a keeps its index at the
 * end). Other fields are small and capped (MAX_FORM_FIELD_KB). When the worker
 * answers, the front renders the OpenAI response format from the worker's
 * verbose_json object. With stream=true the worker also sends each segment
 * as it is decoded, and the answer is a stream of transcript.text.delta
 * events ending with transcript.text.done (stream.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "http/http.h"

#define PP_BUFFER 65536

enum {
	F_MODEL,
	F_LANGUAGE,
	F_PROMPT,
	F_FORMAT,
	F_TEMPERATURE,
	F_GRANULARITIES,
	F_GRAMMAR, /* F_GRAMMAR and F_KEYWORDS are bounded by ASR_MAX_GRAMMAR_KB */
	F_GRAMMAR_NAME,
	F_KEYWORDS,
	F_KEYWORDS_NAME,
	F_STREAM,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
        "model",           "language",     "prompt",
        "response_format", "temperature",  "timestamp_granularities",
        "grammar",         "grammar_name", "keywords",
        "keywords_name",   "stream",
};

struct vs_upload {
	struct MHD_PostProcessor *pp;
	int fd;
	size_t file_bytes;
	int file_parts;
	char *fields[F_COUNT];
	size_t field_len[F_COUNT];
	size_t field_max;
	size_t grammar_max;
	bool bad;
	struct vs_oai_err err;
};

void vs_upload_free(struct vs_upload *u)
{
	if (!u)
		return;
	if (u->pp)
		MHD_destroy_post_processor(u->pp);
	if (u->fd >= 0)
		close(u->fd);
	for (int i = 0; i < F_COUNT; i++)
		free(u->fields[i]);
	free(u);
}

int vs_spool_open(void)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || errno != EOPNOTSUPP)
		return fd >= 0 ? fd : -errno;
	/* file systems without O_TMPFILE: create, then unlink at once */
	char path[4096];
	snprintf(path, sizeof(path), "%s/voicestack-upload-XXXXXX", dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int field_index(const char *key)
{
	size_t n = strlen(key);
	/* "timestamp_granularities[]" is the array form OpenAI clients send */
	if (n > 2 && strcmp(key + n - 2, "[]") == 0)
		n -= 2;
	for (int i = 0; i < F_COUNT; i++)
		if (strlen(field_names[i]) == n && strncmp(field_names[i], key, n) == 0)
			return i;
	return -1;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
	struct vs_upload *u = cls;
	(void)kind, (void)content_type, (void)transfer_encoding;

	if (!key)
		return MHD_YES;
	if (strcmp(key, "file") == 0) {
		if (off == 0 && ++u->file_parts > 1) {
			vs_oai_err_set(&u->err, 400, "file", "invalid_value",
			               "Only one file may be uploaded per request");
			u->bad = true;
			return MHD_NO;
		}
		(void)filename;
		size_t done = 0;
		while (done < size) {
			ssize_t w = write(u->fd, data + done, size - done);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				vs_oai_err_set(&u->err, 500, "file", "spool_failed",
				               "Could not store the upload: %s", strerror(errno));
				vs_error("event=spool_write_failed err=\"%s\"", strerror(errno));
				u->bad = true;
				return MHD_NO;
			}
			done += (size_t)w;
		}
		u->file_bytes += size;
		return MHD_YES;
	}
	int i = field_index(key);
	if (i < 0)
		return MHD_YES; /* unknown fields are ignored, and not stored */
	bool repeat = i == F_GRANULARITIES && off == 0 && u->fields[i];
	size_t add = size + (repeat ? 1 : 0);
	if ((i == F_GRAMMAR || i == F_KEYWORDS) && u->field_len[i] + add > u->grammar_max) {
		vs_oai_err_set(&u->err, 413, field_names[i], "grammar_too_large",
		               "Field '%s' is longer than %zu bytes (ASR_MAX_GRAMMAR_KB)",
		               field_names[i], u->grammar_max);
		u->bad = true;
		return MHD_NO;
	}
	if (i != F_GRAMMAR && i != F_KEYWORDS && u->field_len[i] + add > u->field_max) {
		vs_oai_err_set(&u->err, 400, field_names[i], "string_above_max_length",
		               "Field '%s' is longer than %zu bytes (MAX_FORM_FIELD_KB)",
		               field_names[i], u->field_max);
		u->bad = true;
		return MHD_NO;
	}
	if (off == 0 && u->fields[i] && !repeat)
		u->field_len[i] = 0; /* a repeated scalar field: the last one wins */
	char *nb = realloc(u->fields[i], u->field_len[i] + add + 1);
	if (!nb)
		return MHD_NO;
	if (repeat)
		nb[u->field_len[i]++] = ',';
	memcpy(nb + u->field_len[i], data, size);
	u->field_len[i] += size;
	nb[u->field_len[i]] = 0;
	u->fields[i] = nb;
	return MHD_YES;
}

int vs_upload_begin(struct vs_req *r)
{
	struct vs_upload *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->fd = -1;
	u->field_max = (size_t)r->svc->cfg->max_form_field_kb * 1024;
	u->grammar_max = (size_t)r->svc->cfg->asr_max_grammar_kb * 1024;
	r->up = u;
	u->pp = MHD_create_post_processor(r->conn, PP_BUFFER, on_part, u);
	if (!u->pp) {
		vs_req_set_error(
		        r, 400, NULL, "invalid_multipart",
		        "Could not parse the multipart/form-data body (missing boundary?)");
		return -EINVAL;
	}
	int fd = vs_spool_open();
	if (fd < 0) {
		vs_error("event=spool_open_failed err=\"%s\"", strerror(-fd));
		vs_req_set_error(r, 500, NULL, "spool_failed", "Could not store the upload");
		return fd;
	}
	u->fd = fd;
	return 0;
}

int vs_upload_feed(struct vs_req *r, const char *data, size_t len)
{
	struct vs_upload *u = r->up;
	if (MHD_post_process(u->pp, data, len) == MHD_NO) {
		if (u->bad)
			vs_req_set_body(r, u->err.status, vs_oai_err_body(&u->err),
			                "application/json");
		else
			vs_req_set_error(r, 400, NULL, "invalid_multipart",
			                 "Malformed multipart/form-data body");
		return -EINVAL;
	}
	return 0;
}

/* ---- the job ---- */

/* the worker's ERROR frame, into r->err */
static void take_error(struct vs_req *r, struct vs_frame *f)
{
	json_t *j = vs_frame_json(f);
	const char *p = json_string_value(json_object_get(j, "param"));
	vs_oai_err_set(&r->err, (int)json_integer_value(json_object_get(j, "status")), p,
	               json_string_value(json_object_get(j, "code")), "%s",
	               json_string_value(json_object_get(j, "message")) ?: "engine error");
	if (r->err.status < 400)
		r->err.status = 500;
	json_decref(j);
}

/* the decoded length of the upload (the RESULT's duration): audio in, for
 * the metrics */
static void note_audio_in(struct vs_req *r)
{
	json_t *d = json_object_get(r->result, "duration");
	r->has_audio_in = json_is_number(d);
	r->audio_in_s = json_number_value(d);
}

bool vs_asr_take_answer(struct vs_req *r, struct vs_frame *f)
{
	if (f->type == VS_MSG_RESULT) {
		r->result = vs_frame_json(f);
		if (!r->result)
			vs_oai_err_set(&r->err, 500, NULL, "engine_error",
			               "Malformed worker answer");
		note_audio_in(r);
	} else if (f->type == VS_MSG_ERROR) {
		take_error(r, f);
	} else {
		return false; /* SEGMENT frames: only a streamed answer uses them */
	}
	r->answered = true;
	return true;
}

/* A streamed transcription's frames: each SEGMENT becomes a delta event
 * at once, RESULT the done event and the end of the stream. */
static void asr_stream_frame(struct vs_req *r, struct vs_frame *f)
{
	json_t *j = vs_frame_json(f);
	if (f->type == VS_MSG_SEGMENT) {
		vs_sse_event_locked(
		        r, vs_oai_transcript_delta(json_string_value(json_object_get(j, "text")),
		                                   r->sse_deltas++ > 0));
		json_decref(j);
		return;
	}
	r->result = j;
	note_audio_in(r);
	if (!j) {
		vs_oai_err_set(&r->err, 500, NULL, "engine_error", "Malformed worker answer");
		if (r->stream_started)
			vs_stream_fail_locked(r);
		return;
	}
	vs_sse_event_locked(
	        r, vs_oai_transcript_done(json_string_value(json_object_get(j, "text")),
	                                  json_number_value(json_object_get(j, "duration"))));
	r->stream_end = true;
}

static bool asr_on_frame(struct vs_job *job, struct vs_frame *f)
{
	struct vs_req *r = (struct vs_req *)job;
	bool last = f->type == VS_MSG_RESULT || f->type == VS_MSG_ERROR;
	pthread_mutex_lock(&r->mu);
	if (r->sse && (f->type == VS_MSG_SEGMENT || f->type == VS_MSG_RESULT)) {
		asr_stream_frame(r, f);
	} else if (vs_asr_take_answer(r, f) && f->type == VS_MSG_ERROR && r->stream_started) {
		vs_stream_fail_locked(r);
	}
	if (!last) {
		pthread_mutex_unlock(&r->mu);
		return true;
	}
	vs_req_resume_locked(r);
	/* the events are all there but a slow client still reads them: bounded */
	if (r->stream_started && r->slen > r->soff)
		vs_watcher_drain(r);
	pthread_mutex_unlock(&r->mu);
	vs_req_worker_done(r); /* the worker is idle: the slot is free before the reply */
	return true;
}

static void job_on_fail(struct vs_job *job, int status, const char *message, const char *code)
{
	struct vs_req *r = (struct vs_req *)job;
	pthread_mutex_lock(&r->mu);
	vs_oai_err_set(&r->err, status, NULL, code, "%s", message);
	r->answered = true;
	if (r->stream_started) {
		vs_stream_fail_locked(r);
		/* a stream still buffered for a slow client: its drain is bounded */
		if (r->slen > r->soff)
			vs_watcher_drain(r);
	}
	vs_req_resume_locked(r);
	pthread_mutex_unlock(&r->mu);
	/* the worker is gone (crash, timeout): release the slot now, not when a
	 * slow client has finished reading what was buffered */
	vs_req_worker_done(r);
}

const struct vs_job_ops vs_asr_job_ops = {
        .on_frame = asr_on_frame,
        .on_fail = job_on_fail,
};

void vs_job_on_fail(struct vs_job *job, int status, const char *message, const char *code)
{
	job_on_fail(job, status, message, code);
}

void vs_asr_render(struct vs_req *r)
{
	char *body = NULL;
	const char *ctype = NULL;
	if (vs_transcript_render(r->result, r->response_format, r->want_words, &body, &ctype) < 0) {
		vs_req_set_error(r, 500, NULL, "render_failed", "Could not render the transcript");
		return;
	}
	vs_req_set_body(r, 200, body, ctype);
}

/* The request's grammar or keyword list (checked; an operator's read from
 * ASR_GRAMMAR_DIR into *named), before any work: an engine without the
 * capability, a bad name or text is refused here, not by a worker. */
static int grammar_of(struct vs_req *r, const struct vs_transcription_fields *f,
                      struct vs_grammar_req *g, char **named, struct vs_oai_err *err)
{
	const struct vs_config *cfg = r->svc->cfg;
	struct vs_grammar_limits lim = {
	        .supported = r->asked->spec->engine->grammars,
	        .engine = r->asked->spec->id,
	        .max_bytes = (size_t)cfg->asr_max_grammar_kb * 1024,
	};
	int rc = vs_transcription_grammar(f, &lim, g, err);
	if (rc == 0 && g->name)
		rc = vs_grammar_dir_read(cfg->asr_grammar_dir, g, lim.max_bytes, named, err);
	if (rc == 0 && g->kind != VS_GRAMMAR_NONE)
		vs_info("event=grammar_request kind=%s source=%s bytes=%zu",
		        vs_grammar_kind_field(g->kind), g->name ? g->name : "request",
		        strlen(*named ? *named : g->text));
	return rc;
}

int vs_asr_body_done(struct vs_req *r)
{
	struct vs_upload *u = r->up;
	struct vs_transcription_opts o = {0};
	struct vs_oai_err err = {0};
	struct vs_grammar_req g = {0};

	int complete = MHD_destroy_post_processor(u->pp);
	u->pp = NULL;
	if (complete == MHD_NO && !u->file_parts) {
		vs_req_set_error(r, 400, NULL, "invalid_multipart",
		                 "Malformed or truncated multipart/form-data body");
		return -EINVAL;
	}
	struct vs_transcription_fields f = {
	        .model = u->fields[F_MODEL],
	        .language = u->fields[F_LANGUAGE],
	        .prompt = u->fields[F_PROMPT],
	        .response_format = u->fields[F_FORMAT],
	        .temperature = u->fields[F_TEMPERATURE],
	        .timestamp_granularities = u->fields[F_GRANULARITIES],
	        .grammar = u->fields[F_GRAMMAR],
	        .grammar_name = u->fields[F_GRAMMAR_NAME],
	        .keywords = u->fields[F_KEYWORDS],
	        .keywords_name = u->fields[F_KEYWORDS_NAME],
	        .stream = u->fields[F_STREAM],
	        .has_file = u->file_parts > 0,
	        .file_bytes = u->file_bytes,
	};
	if (vs_transcription_validate(&f, r->svc->model_names, r->svc->models_hint, &o, &err) < 0) {
		vs_req_set_body(r, err.status, vs_oai_err_body(&err), "application/json");
		return -EINVAL;
	}
	r->asked = vs_service_model(r->svc, o.model);
	char *named = NULL;
	if (grammar_of(r, &f, &g, &named, &err) < 0) {
		vs_transcription_opts_free(&o);
		vs_req_set_body(r, err.status, vs_oai_err_body(&err), "application/json");
		return -EINVAL;
	}
	snprintf(r->response_format, sizeof(r->response_format), "%s", o.response_format);
	snprintf(r->model, sizeof(r->model), "%s", o.model);
	r->want_words = o.want_words;
	if (o.stream)
		vs_route_sse(r);
	json_t *payload = json_pack("{s:s, s:s?, s:f, s:b, s:b}", "language", o.language, "prompt",
	                            o.prompt, "temperature", o.temperature, "want_words",
	                            o.want_words, "stream", o.stream);
	vs_transcription_opts_free(&o);
	if (payload && g.kind != VS_GRAMMAR_NONE)
		json_object_set_new(payload, vs_grammar_kind_field(g.kind),
		                    json_string(named ? named : g.text));
	free(named);
	if (!payload) {
		vs_req_set_error(r, 500, NULL, "internal_error", "Out of memory");
		return -ENOMEM;
	}
	r->payload = payload;
	return 0;
}

void vs_asr_submit(struct vs_req *r)
{
	struct vs_upload *u = r->up;

	lseek(u->fd, 0, SEEK_SET);
	r->job.ops = &vs_asr_job_ops;
	r->phase = P_WORKING;
	int e = vs_pool_submit(r->m->pool, r->mslot, &r->job, VS_MSG_TRANSCRIBE, r->payload, u->fd);
	json_decref(r->payload);
	r->payload = NULL;
	/* the worker holds its own reference to the spooled file now */
	close(u->fd);
	u->fd = -1;
	if (e < 0) {
		r->phase = P_REPLY;
		vs_req_set_error(r, 503, NULL, "worker_unavailable",
		                 "Could not start the worker of model %s (engine %s): %s",
		                 r->m->spec->id, r->m->spec->engine->name, strerror(-e));
	}
}
