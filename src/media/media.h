/* media.h - FFmpeg decode (any upload -> mono s16 PCM) and encode (speech
 * PCM -> mp3/opus/aac/flac/wav/pcm, streamed as produced).
 *
 * Library code: no logging; errors are negative errno plus a one-line reason
 * in err. Runs inside worker processes only (untrusted input is decoded where
 * a crash costs one request).
 */
#ifndef VS_MEDIA_H
#define VS_MEDIA_H

#include <stddef.h>
#include <stdint.h>

/* Decode the whole audio stream of fd into mono s16 at out_rate Hz, whatever
 * the input rate and channel layout. fd must be a regular file (tmpfile or
 * memfd: m4a keeps its index at the end, so the input must be seekable); it
 * is read with pread from byte 0 and its file offset is neither used nor
 * moved. Stops with -EFBIG when more than max_seconds of audio would be
 * produced (max_seconds <= 0: no limit).
 * The duration the container declares (wav, flac, m4a, ogg...) is checked
 * before anything is decoded; the decoded length while decoding.
 * A sample rate outside VS_DECODE_MIN_RATE..VS_DECODE_MAX_RATE (in the
 * header or in any decoded frame) is refused with -ERANGE before decoding
 * on: a 7 KB wav whose header says 1 Hz would be an hour of audio.
 * Returns 0, -EINVAL (not audio / no audio stream / undecodable / zero
 * samples / corrupt; err says which), -ERANGE, -EFBIG (err says how long),
 * -ENOMEM. *pcm is malloc'd,
 * caller frees. Process-wide side effects (fine in a worker): FFmpeg logging
 * silenced, FFmpeg single allocations capped at 256 MiB (av_max_alloc). */
int vs_decode_fd(int fd, int out_rate, double max_seconds, int16_t **pcm, size_t *n_samples,
                 char *err, size_t errlen);
/* Accepted input sample rates: 8 kHz is the lowest rate speech is recorded
 * at (telephony, AMR-NB, GSM); 384 kHz the highest any common format uses. */
#define VS_DECODE_MIN_RATE 8000
#define VS_DECODE_MAX_RATE 384000

/* Headerless PCM (the audio-chunks of the Wyoming protocol): interleaved
 * little-endian samples of `width` bytes, signed, except width 1, which is
 * unsigned 8-bit as in WAV files (what the protocol's reference converter
 * assumes). FFmpeg's raw demuxers (u8, s16le, s24le, s32le) read it. */
struct vs_raw_format {
	int rate, width, channels;
};
#define VS_RAW_MAX_CHANNELS 8 /* 7.1; more is no speech recording */
/* As vs_decode_fd, for a file of headerless PCM in format raw; a rate,
 * width or channel count outside the accepted ranges is -ERANGE / -EINVAL.
 * raw NULL: vs_decode_fd. */
int vs_decode_fd_raw(int fd, const struct vs_raw_format *raw, int out_rate, double max_seconds,
                     int16_t **pcm, size_t *n_samples, char *err, size_t errlen);

/* Output formats of POST /v1/audio/speech. */
int vs_format_valid(const char *format); /* 1 if mp3|opus|aac|flac|wav|pcm */
/* name of the i-th output format (table order), NULL past the end */
const char *vs_format_name(size_t i);
const char *vs_format_mime(const char *format); /* NULL if not valid */
#define VS_SPEECH_RATE 24000                    /* every output format is 24 kHz mono, as OpenAI */

/* Receives encoded bytes as they are produced. Return 0 or negative errno to
 * abort (the encoder call then returns it). */
typedef int (*vs_bytes_sink_fn)(void *opaque, const uint8_t *data, size_t len);

struct vs_encoder;

/* in_rate: sample rate of the PCM that will be written (engine's rate);
 * resampled to VS_SPEECH_RATE. */
int vs_encoder_new(const char *format, int in_rate, vs_bytes_sink_fn sink, void *opaque,
                   struct vs_encoder **out, char *err, size_t errlen);
/* Errors are sticky: after a failure (e.g. the sink's -EPIPE) every call
 * returns it. write/finish after a successful finish: -EINVAL. */
int vs_encoder_write(struct vs_encoder *e, const int16_t *pcm, size_t n_samples);
int vs_encoder_finish(struct vs_encoder *e); /* flush codec + trailer */
void vs_encoder_free(struct vs_encoder *e);  /* accepts NULL */

#endif
