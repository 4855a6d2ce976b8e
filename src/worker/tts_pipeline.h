/* tts_pipeline.h - one speech request: engine PCM -> encoder -> byte sink.
 *
 * Used by the TTS worker (worker_main.c); the byte sink is where the encoded
 * stream goes (AUDIO frames to the front). See tts_pipeline.c for the design.
 */
#ifndef VS_TTS_PIPELINE_H
#define VS_TTS_PIPELINE_H

#include <stddef.h>

#include "engine/engine.h"
#include "media/media.h"

/* At most this many PCM samples wait between the engine and the encoder;
 * past it the engine's sink blocks (backpressure: a worker whose reader
 * stopped reading stops synthesising instead of buffering the whole text). */
#define VS_TTS_QUEUE_SAMPLES 32768

/* Which step failed: decides the HTTP error the worker sends. */
enum vs_tts_stage {
	VS_TTS_OK = 0,
	VS_TTS_FORMAT, /* the encoder could not be set up (response_format) */
	VS_TTS_SYNTH,  /* the engine (-EINVAL: it refused the request) or encoding */
};

struct vs_tts_result {
	size_t samples;          /* PCM samples the engine produced */
	size_t bytes;            /* encoded bytes given to the sink */
	enum vs_tts_stage stage; /* where it failed when the call returns < 0 */
};

/* Synthesises p with the loaded engine (ops, ctx) and streams it encoded as
 * `format` to out(opaque, ...). Nothing reaches out before the engine has
 * produced its first samples (container headers are held back), so a
 * request the engine refuses fails with no byte sent. The engine is called
 * on the calling thread only. Returns 0 or a negative errno with a reason
 * in err; -EPIPE when out failed with it (the reader went away). */
int vs_tts_synthesize(const struct vs_engine_ops *ops, void *ctx, const struct vs_tts_params *p,
                      const char *format, vs_bytes_sink_fn out, void *opaque,
                      struct vs_tts_result *res, char *err, size_t errlen);

#endif
