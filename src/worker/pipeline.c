/* pipeline.c - decode -> engine -> render, once (see pipeline.h).
 *
 * DESIGN
 * Errors are classified here, where they are known (a decoder's -EFBIG is
 * "audio too long", an engine's -EINVAL is the client's language or voice),
 * into the status/param/code the front answers with; the CLI prints the same
 * message. No logging: the caller decides what a failure means.
 */
#include "worker/pipeline.h"
#include "worker/tts_pipeline.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai.h"

__attribute__((format(printf, 5, 6))) static void set_err(struct vs_pipeline_err *e, int status,
                                                          const char *param, const char *code,
                                                          const char *fmt, ...)
{
	va_list ap;
	e->status = status;
	e->param = param;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

/* The caller's on_segment, counting what the engine reported itself. */
struct seg_relay {
	int (*fn)(void *opaque, const struct vs_segment *seg);
	void *opaque;
	size_t reported;
};

static int relay_segment(void *opaque, const struct vs_segment *seg)
{
	struct seg_relay *r = opaque;
	r->reported++;
	return r->fn(r->opaque, seg);
}

/* Segments the engine did not report as it went (it does not stream): now,
 * so a streaming caller gets every segment exactly once. */
static int report_rest(struct seg_relay *r, const struct vs_transcript *t)
{
	for (size_t i = r->reported; r->fn && i < t->n_segments; i++) {
		int rc = r->fn(r->opaque, &t->segments[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

json_t *vs_pipeline_transcribe(const struct vs_engine_ops *ops, void *ctx, int fd,
                               const struct vs_raw_format *raw, double max_audio_s,
                               const struct vs_asr_params *p, struct vs_pipeline_err *e)
{
	struct vs_transcript t = {0};
	char err[512] = "";
	int16_t *pcm = NULL;
	size_t n = 0;
	struct seg_relay relay = {.fn = p->on_segment, .opaque = p->segment_opaque};
	struct vs_asr_params ep = *p;

	int r = vs_decode_fd_raw(fd, raw, 16000, max_audio_s, &pcm, &n, err, sizeof(err));
	if (r == -EFBIG) {
		set_err(e, 413, "file", "audio_too_long",
		        "Audio is longer than the limit of %g seconds (ASR_MAX_AUDIO_SECONDS): %s",
		        max_audio_s, err);
		return NULL;
	}
	if (r == -ERANGE) {
		set_err(e, 400, "file", "unsupported_sample_rate", "Unsupported audio: %s", err);
		return NULL;
	}
	if (r < 0) {
		set_err(e, 400, "file", "invalid_audio", "Could not decode the uploaded audio: %s",
		        err[0] ? err : strerror(-r));
		return NULL;
	}
	if (relay.fn) {
		ep.on_segment = relay_segment;
		ep.segment_opaque = &relay;
	}
	r = ops->transcribe(ctx, pcm, n, &ep, &t, err, sizeof(err));
	free(pcm);
	if (r == 0)
		r = report_rest(&relay, &t);
	if (r == -EBADMSG) { /* the request's grammar or keyword list */
		set_err(e, 400, p->grammar ? "grammar" : "keywords",
		        p->grammar ? "invalid_grammar" : "invalid_keywords", "%s", err);
		vs_transcript_free(&t);
		return NULL;
	}
	if (r < 0) {
		bool client = r == -EINVAL;
		set_err(e, client ? 400 : 500, client ? "language" : NULL,
		        client ? "unsupported_value" : "engine_error", "%s",
		        err[0] && r != -EPIPE ? err : strerror(-r));
		vs_transcript_free(&t);
		return NULL;
	}
	json_t *out = vs_transcript_to_verbose_json(&t, p->want_words);
	vs_transcript_free(&t);
	if (!out)
		set_err(e, 500, NULL, "engine_error", "out of memory");
	return out;
}

int vs_pipeline_speak(const struct vs_engine_ops *ops, void *ctx, const struct vs_tts_params *p,
                      const char *format, vs_bytes_sink_fn sink, void *opaque, size_t *samples,
                      size_t *bytes, struct vs_pipeline_err *e)
{
	struct vs_tts_result res = {0};
	char err[512] = "";

	/* synthesis and encoding overlap there (tts_pipeline.c) */
	int r = vs_tts_synthesize(ops, ctx, p, format, sink, opaque, &res, err, sizeof(err));
	*samples = res.samples;
	*bytes = res.bytes;
	if (r < 0 && r != -EPIPE) {
		bool client = r == -EINVAL;
		if (res.stage == VS_TTS_FORMAT)
			set_err(e, client ? 400 : 500, "response_format", NULL, "%s",
			        err[0] ? err : strerror(-r));
		else
			set_err(e, client ? 400 : 500, client ? "voice" : NULL,
			        client ? "invalid_value" : "engine_error", "%s",
			        err[0] ? err : strerror(-r));
	}
	return r;
}
