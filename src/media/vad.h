/* vad.h - an energy voice activity detector for streamed pcm16 (the
 * realtime session's server VAD), and the WAV header its turns travel in.
 *
 * DESIGN
 * No FFmpeg and no allocation: the front runs it on the audio a realtime
 * client appends, so it must stay cheap and link nothing. OpenAI describes
 * its server_vad as deciding "based on audio volume"; this is that: the
 * audio is cut into 20 ms frames, a frame whose mean power is above the
 * threshold is speech. Speech starts after VS_VAD_START_FRAMES speech frames
 * in a row (a click is not speech) and stops after silence_ms of non-speech
 * frames in a row. threshold 0..1 (OpenAI's scale) maps linearly onto
 * -60..-20 dBFS: 0.5 is -40 dBFS, above the -45..-50 dBFS of room noise in
 * read speech recordings and below the -30..-15 dBFS of the speech itself.
 * The caller feeds at most vs_vad_room() samples at a time, so it knows the
 * exact sample at which an event happened.
 */
#ifndef VS_MEDIA_VAD_H
#define VS_MEDIA_VAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_VAD_FRAME_MS 20
#define VS_VAD_START_FRAMES 3

enum vs_vad_event { VS_VAD_NONE = 0, VS_VAD_START, VS_VAD_STOP };

struct vs_vad {
	int frame;       /* samples per frame */
	double level;    /* mean square power at the threshold, on a 0..1 full scale */
	int stop_frames; /* non-speech frames in a row that end speech */
	int n;           /* samples of the current frame so far */
	double acc;      /* their sum of squares */
	int run;         /* frames in a row that disagree with `speech` */
	bool speech;
};

/* rate: samples per second; threshold 0..1; silence_ms > 0 */
void vs_vad_init(struct vs_vad *v, int rate, double threshold, int silence_ms);
/* samples (>= 1) that complete the current frame */
size_t vs_vad_room(const struct vs_vad *v);
/* n <= vs_vad_room() samples of s16le bytes; an event when they complete a
 * frame that starts or stops speech */
enum vs_vad_event vs_vad_push(struct vs_vad *v, const uint8_t *le16, size_t n);

/* The 44-byte header of a canonical WAV file of data_bytes of s16le mono
 * PCM at rate (the worker's FFmpeg reads and resamples it like any upload). */
#define VS_WAV_HEADER_BYTES 44
void vs_wav_header(uint8_t out[VS_WAV_HEADER_BYTES], int rate, uint32_t data_bytes);

#endif
