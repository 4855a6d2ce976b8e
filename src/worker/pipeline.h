/* pipeline.h - the one decode -> engine -> render path, used by the worker
 * process (answers go to the front as frames) and by the one-shot CLI
 * commands `voicestack transcribe` / `speak` (answers go to stdout or a
 * file). Both run in the worker binary: the front maps no engine or FFmpeg.
 */
#ifndef VS_PIPELINE_H
#define VS_PIPELINE_H

#include <jansson.h>
#include <stddef.h>

#include "engine/engine.h"
#include "media/media.h"

/* Why a pipeline failed, in the OpenAI error's terms: the worker sends it
 * as an ERROR frame, the CLI prints message. */
struct vs_pipeline_err {
	int status;        /* HTTP status: 400, 413, 500 */
	const char *param; /* "file", "language", "voice", "response_format" or NULL */
	const char *code;  /* "invalid_audio", ... or NULL */
	char message[700];
};

/* Decodes the audio file fd (16 kHz mono, at most max_audio_s seconds; raw:
 * the format of a headerless PCM file, NULL for any audio file),
 * transcribes it and returns the OpenAI verbose_json object (caller
 * json_decref's), or NULL and *e. With p->on_segment set, every segment is
 * handed to it once, in order: as the engine decodes it when the engine
 * streams, else after the engine returns (engine.h); a negative return
 * (the front went away: -EPIPE) ends the transcription with that error. */
json_t *vs_pipeline_transcribe(const struct vs_engine_ops *ops, void *ctx, int fd,
                               const struct vs_raw_format *raw, double max_audio_s,
                               const struct vs_asr_params *p, struct vs_pipeline_err *e);

/* Synthesizes p->text and encodes it as `format`, handing encoded bytes to
 * sink as they are produced. Bytes written before the engine's first
 * samples (a wav or ogg header) are held back until then, so an engine that
 * refuses the request (unknown voice) fails before any byte is out.
 * 0 and *samples, *bytes; -EPIPE when the sink went away, or another
 * negative errno and *e. */
int vs_pipeline_speak(const struct vs_engine_ops *ops, void *ctx, const struct vs_tts_params *p,
                      const char *format, vs_bytes_sink_fn sink, void *opaque, size_t *samples,
                      size_t *bytes, struct vs_pipeline_err *e);

#endif
