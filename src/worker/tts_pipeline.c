/* tts_pipeline.c - one speech request: engine PCM -> encoder -> byte sink.
 *
 * DESIGN
 * Encoded bytes go to the sink as they are produced: the client hears the
 * first sentence while the engine is still on the last. Except the very
 * first bytes: a container header (wav, ogg) is written before the engine
 * has said a word, and once the front has sent it the HTTP status is 200.
 * So bytes are held back until the engine delivers its first samples, and
 * an engine that refuses the request (unknown voice) still gets a 400.
 */
#include "worker/tts_pipeline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct synth_state {
	struct vs_encoder *enc;
	vs_bytes_sink_fn out;
	void *opaque;
	size_t bytes, samples;
	bool engine_started;
	uint8_t *held;
	size_t held_len;
};

static int send_bytes(struct synth_state *s, const uint8_t *data, size_t len)
{
	s->bytes += len;
	return s->out(s->opaque, data, len);
}

static int hold_or_send(void *opaque, const uint8_t *data, size_t len)
{
	struct synth_state *s = opaque;

	if (!s->engine_started) {
		uint8_t *nb = realloc(s->held, s->held_len + len);
		if (!nb)
			return -ENOMEM;
		memcpy(nb + s->held_len, data, len);
		s->held = nb;
		s->held_len += len;
		return 0;
	}
	return send_bytes(s, data, len);
}

static int release_held(struct synth_state *s)
{
	int r = 0;

	s->engine_started = true;
	if (s->held_len)
		r = send_bytes(s, s->held, s->held_len);
	free(s->held);
	s->held = NULL;
	s->held_len = 0;
	return r;
}

static int pcm_to_encoder(void *opaque, const int16_t *pcm, size_t n)
{
	struct synth_state *s = opaque;

	if (!s->engine_started) {
		int r = release_held(s);
		if (r < 0)
			return r;
	}
	s->samples += n;
	return vs_encoder_write(s->enc, pcm, n);
}

int vs_tts_synthesize(const struct vs_engine_ops *ops, void *ctx, const struct vs_tts_params *p,
                      const char *format, vs_bytes_sink_fn out, void *opaque,
                      struct vs_tts_result *res, char *err, size_t errlen)
{
	struct synth_state s = {.out = out, .opaque = opaque};
	int r;

	memset(res, 0, sizeof(*res));
	r = vs_encoder_new(format, ops->sample_rate(ctx), hold_or_send, &s, &s.enc, err, errlen);
	if (r < 0) {
		res->stage = VS_TTS_FORMAT;
		return r;
	}
	r = ops->synthesize(ctx, p, pcm_to_encoder, &s, err, errlen);
	if (r == 0 && !s.engine_started)
		r = release_held(&s); /* an engine that produced no samples at all */
	if (r == 0)
		r = vs_encoder_finish(s.enc);
	vs_encoder_free(s.enc);
	free(s.held);
	res->samples = s.samples;
	res->bytes = s.bytes;
	res->stage = r < 0 ? VS_TTS_SYNTH : VS_TTS_OK;
	return r;
}
