/* vad.c - energy voice activity detection and the WAV header of a turn
 * (media/vad.h). Pure arithmetic, no FFmpeg: runs in the front. */
#include "media/vad.h"

#include <math.h>
#include <string.h>

void vs_vad_init(struct vs_vad *v, int rate, double threshold, int silence_ms)
{
	memset(v, 0, sizeof(*v));
	v->frame = rate * VS_VAD_FRAME_MS / 1000;
	if (v->frame < 1)
		v->frame = 1;
	double db = -60.0 + 40.0 * threshold;
	v->level = pow(10.0, db / 10.0);
	v->stop_frames = (silence_ms + VS_VAD_FRAME_MS - 1) / VS_VAD_FRAME_MS;
	if (v->stop_frames < 1)
		v->stop_frames = 1;
}

size_t vs_vad_room(const struct vs_vad *v)
{
	return (size_t)(v->frame - v->n);
}

enum vs_vad_event vs_vad_push(struct vs_vad *v, const uint8_t *le16, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* little-endian whatever the host: the wire format says so */
		int16_t s = (int16_t)(uint16_t)(le16[2 * i] | (uint16_t)le16[2 * i + 1] << 8);
		double x = s / 32768.0;
		v->acc += x * x;
	}
	v->n += (int)n;
	if (v->n < v->frame)
		return VS_VAD_NONE;
	bool loud = v->acc / v->n > v->level;
	v->n = 0;
	v->acc = 0;
	if (loud == v->speech) {
		v->run = 0;
		return VS_VAD_NONE;
	}
	v->run++;
	if (!v->speech && v->run >= VS_VAD_START_FRAMES) {
		v->speech = true;
		v->run = 0;
		return VS_VAD_START;
	}
	if (v->speech && v->run >= v->stop_frames) {
		v->speech = false;
		v->run = 0;
		return VS_VAD_STOP;
	}
	return VS_VAD_NONE;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

void vs_wav_header(uint8_t h[VS_WAV_HEADER_BYTES], int rate, uint32_t data_bytes)
{
	memcpy(h, "RIFF", 4);
	put32(h + 4, 36 + data_bytes);
	memcpy(h + 8, "WAVEfmt ", 8);
	put32(h + 16, 16);                  /* fmt chunk size */
	put16(h + 20, 1);                   /* PCM */
	put16(h + 22, 1);                   /* mono */
	put32(h + 24, (uint32_t)rate);      /* sample rate */
	put32(h + 28, (uint32_t)rate * 2u); /* byte rate */
	put16(h + 32, 2);                   /* block align */
	put16(h + 34, 16);                  /* bits per sample */
	memcpy(h + 36, "data", 4);
	put32(h + 40, data_bytes);
}
