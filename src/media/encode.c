/* encode.c - streaming speech encoder: engine PCM -> mp3/opus/aac/flac/wav/pcm.
 *
 * DESIGN: the TTS worker creates one encoder per request, writes PCM chunks
 * as the engine synthesises them and the encoded bytes leave through the
 * sink as soon as a packet is muxed, so the client hears the start while the
 * rest is still synthesised. Pipeline per write():
 *     s16 mono @in_rate -> swresample -> AVAudioFifo -> encoder frames of
 *     codec frame_size (pts counted in samples) -> muxer -> write-only,
 *     non-seekable AVIOContext -> sink (avio_flush after every packet).
 * Because the output can't seek back, muxers that normally patch their
 * header at the end leave it as written at the start:
 *  - wav: RIFF and data sizes stay 0xFFFFFFFF (what OpenAI's streamed wav
 *    does). ffprobe/ffmpeg and python's wave read it to EOF; the reported
 *    frame count is "unknown/huge". The format is made bitexact so the header
 *    is the canonical 44 bytes (no LIST/ISFT chunk).
 *  - flac: STREAMINFO says "total samples unknown" (0) and has no MD5, as
 *    the FLAC format allows; ffmpeg decodes it all, ffprobe shows no duration.
 *  - mp3: no Xing/LAME frame, so decoders don't know the encoder delay and
 *    padding (~60 ms more samples) - the same as any streamed mp3.
 *  - aac (ADTS) keeps the encoder's 1024 priming samples: no container to
 *    signal them.
 * The format table (muxer, encoder, bit rate, options) lives in format.c.
 * Errors are sticky: after a failure every call returns the same error.
 */
#include "media/format.h"
#include "media/media.h"

#include <errno.h>
#include <stdlib.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libswresample/swresample.h>

#define IO_BUF_SIZE 4096
#define CHUNK_IN 4096       /* input samples resampled per step: bounds scratch */
#define VAR_FRAME_SIZE 1024 /* frame size for codecs that take any (pcm) */

#if LIBAVFORMAT_VERSION_MAJOR >= 61
#define AVIO_WBUF const uint8_t
#else
#define AVIO_WBUF uint8_t
#endif

struct vs_encoder {
	const struct vs_format_desc *desc;
	vs_bytes_sink_fn sink;
	void *opaque;
	AVFormatContext *oc;
	AVIOContext *pb;
	AVCodecContext *cc;
	AVStream *st;
	SwrContext *swr;
	AVAudioFifo *fifo;
	AVFrame *frame;
	AVPacket *pkt;
	uint8_t *scratch;
	int scratch_cap; /* samples */
	int frame_size;
	int pad_last; /* codec needs full frames: pad the last with silence */
	int64_t next_pts;
	int sink_err;
	int state; /* 0 open, 1 finished, < 0 sticky error */
};

/* AVERROR(errno) is -errno; FFmpeg's own tags are not errnos */
static int av2errno(int averr)
{
	if (averr > -4096)
		return averr;
	return -EIO;
}

static int sink_write(void *opaque, AVIO_WBUF *buf, int len)
{
	struct vs_encoder *e = opaque;
	int ret;

	if (e->sink_err)
		return e->sink_err;
	if (len <= 0)
		return 0;
	ret = e->sink(e->opaque, buf, (size_t)len);
	if (ret < 0) {
		e->sink_err = ret;
		return ret;
	}
	return len;
}

/* the failure of a call: the sink's own error wins over what FFmpeg made of it */
static int fail(struct vs_encoder *e, int ret)
{
	if (e->sink_err)
		ret = e->sink_err;
	if (ret >= 0)
		ret = -EIO;
	e->state = ret;
	return ret;
}

static enum AVSampleFormat pick_sample_fmt(const AVCodec *c)
{
	const enum AVSampleFormat *f = c->sample_fmts;

	if (!f)
		return AV_SAMPLE_FMT_S16;
	for (int i = 0; f[i] != AV_SAMPLE_FMT_NONE; i++)
		if (f[i] == AV_SAMPLE_FMT_S16 || f[i] == AV_SAMPLE_FMT_S16P)
			return f[i];
	return f[0];
}

/* Send one frame (NULL: flush) and mux every packet that comes out. */
static int encode(struct vs_encoder *e, AVFrame *frame)
{
	int ret = avcodec_send_frame(e->cc, frame);

	if (ret < 0)
		return av2errno(ret);
	for (;;) {
		ret = avcodec_receive_packet(e->cc, e->pkt);
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			return 0;
		if (ret < 0)
			return av2errno(ret);
		e->pkt->stream_index = e->st->index;
		av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
		ret = av_write_frame(e->oc, e->pkt);
		av_packet_unref(e->pkt);
		if (ret < 0)
			return av2errno(ret);
		avio_flush(e->pb); /* the packet leaves now, not when 4 KiB piled up */
		if (e->sink_err)
			return e->sink_err;
	}
}

/* Encode whole frames from the FIFO; with last, also the remainder. */
static int drain_fifo(struct vs_encoder *e, int last)
{
	AVFrame *f = e->frame;
	int avail, n, ret;

	while ((avail = av_audio_fifo_size(e->fifo)) >= e->frame_size || (last && avail > 0)) {
		n = avail < e->frame_size ? avail : e->frame_size;
		/* the encoder may still hold a reference to the previous buffers */
		f->nb_samples = e->frame_size;
		ret = av_frame_make_writable(f);
		if (ret < 0)
			return av2errno(ret);
		if (av_audio_fifo_read(e->fifo, (void **)f->data, n) != n)
			return -EIO;
		if (n < e->frame_size && e->pad_last) {
			av_samples_set_silence(f->data, n, e->frame_size - n, 1, f->format);
			n = e->frame_size;
		}
		f->nb_samples = n;
		f->pts = e->next_pts;
		e->next_pts += n;
		ret = encode(e, f);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Resample nb input samples (in NULL: drain the resampler) into the FIFO. */
static int resample(struct vs_encoder *e, const int16_t *in, int nb)
{
	int room, got;

	for (;;) {
		room = swr_get_out_samples(e->swr, nb) + 32;
		if (room > e->scratch_cap) {
			av_freep(&e->scratch);
			e->scratch = av_malloc((size_t)room *
			                       (size_t)av_get_bytes_per_sample(e->cc->sample_fmt));
			if (!e->scratch)
				return -ENOMEM;
			e->scratch_cap = room;
		}
		got = swr_convert(e->swr, &e->scratch, room, in ? (const uint8_t **)&in : NULL, nb);
		if (got < 0)
			return av2errno(got);
		if (got > 0 && av_audio_fifo_write(e->fifo, (void **)&e->scratch, got) != got)
			return -ENOMEM;
		if (in || got == 0)
			return 0;
	}
}

static int setup_codec(struct vs_encoder *e, char *err, size_t errlen)
{
	const AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
	const AVCodec *codec = avcodec_find_encoder_by_name(e->desc->encoder);
	AVCodecContext *cc;
	int ret;

	if (!codec)
		return vs_media_seterr(err, errlen, -ENOTSUP, "encoder %s is not available",
		                       e->desc->encoder);
	cc = e->cc = avcodec_alloc_context3(codec);
	if (!cc)
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	cc->sample_rate = VS_SPEECH_RATE;
	cc->sample_fmt = pick_sample_fmt(codec);
	if (av_channel_layout_copy(&cc->ch_layout, &mono) < 0)
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	cc->time_base = (AVRational){1, VS_SPEECH_RATE};
	if (e->desc->bit_rate)
		cc->bit_rate = e->desc->bit_rate;
	if (e->desc->compression_level >= 0)
		cc->compression_level = e->desc->compression_level;
	cc->thread_count = 1;
	cc->flags |= AV_CODEC_FLAG_BITEXACT; /* no "Lavc" version string in the stream */
	if (e->oc->oformat->flags & AVFMT_GLOBALHEADER)
		cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	ret = avcodec_open2(cc, codec, NULL);
	if (ret < 0)
		return vs_media_seterr(err, errlen, av2errno(ret), "cannot open encoder %s",
		                       codec->name);

	if (cc->frame_size <= 0 || (codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE))
		e->frame_size = VAR_FRAME_SIZE;
	else
		e->frame_size = cc->frame_size;
	e->pad_last = cc->frame_size > 0 &&
	              !(codec->capabilities &
	                (AV_CODEC_CAP_SMALL_LAST_FRAME | AV_CODEC_CAP_VARIABLE_FRAME_SIZE));

	e->st = avformat_new_stream(e->oc, NULL);
	if (!e->st)
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	e->st->time_base = cc->time_base;
	ret = avcodec_parameters_from_context(e->st->codecpar, cc);
	if (ret < 0)
		return vs_media_seterr(err, errlen, av2errno(ret), "cannot set stream parameters");
	return 0;
}

static int setup_pipeline(struct vs_encoder *e, int in_rate, char *err, size_t errlen)
{
	AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
	AVCodecContext *cc = e->cc;
	int ret;

	ret = swr_alloc_set_opts2(&e->swr, &mono, cc->sample_fmt, cc->sample_rate, &mono,
	                          AV_SAMPLE_FMT_S16, in_rate, 0, NULL);
	if (ret >= 0)
		ret = swr_init(e->swr);
	if (ret < 0)
		return vs_media_seterr(err, errlen, av2errno(ret), "cannot set up the resampler");
	e->fifo = av_audio_fifo_alloc(cc->sample_fmt, 1, 2 * e->frame_size);
	e->frame = av_frame_alloc();
	e->pkt = av_packet_alloc();
	if (!e->fifo || !e->frame || !e->pkt)
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	e->frame->format = cc->sample_fmt;
	e->frame->sample_rate = cc->sample_rate;
	e->frame->nb_samples = e->frame_size;
	if (av_channel_layout_copy(&e->frame->ch_layout, &mono) < 0 ||
	    av_frame_get_buffer(e->frame, 0) < 0)
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

static int write_header(struct vs_encoder *e, char *err, size_t errlen)
{
	AVDictionary *opts = NULL;
	uint8_t *buf = av_malloc(IO_BUF_SIZE);
	int ret;

	if (buf)
		e->pb = avio_alloc_context(buf, IO_BUF_SIZE, 1, e, NULL, sink_write, NULL);
	if (!buf || !e->pb) {
		av_free(buf);
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	e->pb->seekable = 0;
	e->oc->pb = e->pb;
	/* no encoder/version tags: canonical headers (44-byte wav) */
	e->oc->flags |= AVFMT_FLAG_BITEXACT;
	if (e->desc->mux_opts && av_dict_parse_string(&opts, e->desc->mux_opts, "=", ":", 0) < 0) {
		av_dict_free(&opts);
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	ret = avformat_write_header(e->oc, &opts);
	av_dict_free(&opts);
	if (ret >= 0) {
		avio_flush(e->pb);
		ret = e->sink_err ? e->sink_err : e->pb->error;
	}
	if (ret < 0)
		return vs_media_seterr(err, errlen, e->sink_err ? e->sink_err : av2errno(ret),
		                       "cannot write the %s header", e->desc->name);
	return 0;
}

int vs_encoder_new(const char *format, int in_rate, vs_bytes_sink_fn sink, void *opaque,
                   struct vs_encoder **out, char *err, size_t errlen)
{
	const struct vs_format_desc *desc = vs_format_find(format);
	struct vs_encoder *e;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!out)
		return vs_media_seterr(err, errlen, -EINVAL, "invalid encoder arguments");
	*out = NULL;
	if (!desc)
		return vs_media_seterr(err, errlen, -EINVAL, "unsupported output format");
	if (!sink || in_rate < 1000 || in_rate > 384000)
		return vs_media_seterr(err, errlen, -EINVAL, "invalid encoder arguments");
	av_log_set_level(AV_LOG_QUIET);

	e = calloc(1, sizeof(*e));
	if (!e)
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	e->desc = desc;
	e->sink = sink;
	e->opaque = opaque;
	ret = avformat_alloc_output_context2(&e->oc, NULL, desc->muxer, NULL);
	if (ret < 0 || !e->oc)
		ret = vs_media_seterr(err, errlen, -ENOTSUP, "muxer %s is not available",
		                      desc->muxer);
	if (ret >= 0)
		ret = setup_codec(e, err, errlen);
	if (ret >= 0)
		ret = setup_pipeline(e, in_rate, err, errlen);
	if (ret >= 0)
		ret = write_header(e, err, errlen);
	if (ret < 0) {
		vs_encoder_free(e);
		return ret;
	}
	*out = e;
	return 0;
}

int vs_encoder_write(struct vs_encoder *e, const int16_t *pcm, size_t n_samples)
{
	int ret;

	if (!e)
		return -EINVAL;
	if (e->state)
		return e->state < 0 ? e->state : -EINVAL;
	if (!pcm && n_samples)
		return -EINVAL;
	while (n_samples > 0) {
		int nb = n_samples > CHUNK_IN ? CHUNK_IN : (int)n_samples;

		ret = resample(e, pcm, nb);
		if (ret >= 0)
			ret = drain_fifo(e, 0);
		if (ret < 0)
			return fail(e, ret);
		pcm += nb;
		n_samples -= (size_t)nb;
	}
	return 0;
}

int vs_encoder_finish(struct vs_encoder *e)
{
	int ret;

	if (!e)
		return -EINVAL;
	if (e->state)
		return e->state < 0 ? e->state : -EINVAL;
	ret = resample(e, NULL, 0);
	if (ret >= 0)
		ret = drain_fifo(e, 1);
	if (ret >= 0)
		ret = encode(e, NULL);
	if (ret >= 0)
		ret = av2errno(av_write_trailer(e->oc));
	if (ret >= 0) {
		avio_flush(e->pb);
		if (e->sink_err || e->pb->error < 0)
			ret = e->sink_err ? e->sink_err : av2errno(e->pb->error);
	}
	if (ret < 0)
		return fail(e, ret);
	e->state = 1;
	return 0;
}

void vs_encoder_free(struct vs_encoder *e)
{
	if (!e)
		return;
	if (e->oc)
		e->oc->pb = NULL; /* ours, freed below */
	avformat_free_context(e->oc);
	if (e->pb)
		av_freep(&e->pb->buffer);
	avio_context_free(&e->pb);
	avcodec_free_context(&e->cc);
	swr_free(&e->swr);
	if (e->fifo)
		av_audio_fifo_free(e->fifo);
	av_frame_free(&e->frame);
	av_packet_free(&e->pkt);
	av_freep(&e->scratch);
	free(e);
}
