/* decode.c - any uploaded audio file (fd) -> mono s16 PCM at the engine rate.
 *
 * DESIGN: called by the ASR worker with the fd of the spooled upload (a
 * tmpfile/memfd passed over the socketpair). The input is untrusted, so:
 *  - it is read through a custom AVIOContext doing pread() at our own offset
 *    (never via a path, and the fd's shared file offset is neither used nor
 *    moved: the front may still hold the same open file description). The
 *    whole file, from byte 0, is the input;
 *  - only audio demuxers are allowed (format_whitelist) and no nested opens
 *    (protocol_whitelist "none": no playlists/drefs reaching other files);
 *  - decode errors in a packet are skipped as ffmpeg(1) does, truncated files
 *    decode up to the damage, and only "nothing decodable" is an error;
 *  - FFmpeg's single allocations are capped (av_max_alloc, process-wide in
 *    the worker) and an FFmpeg ENOMEM while demuxing/decoding is reported
 *    as corrupt input (-EINVAL), since a hostile size is its likely cause;
 *    -ENOMEM is kept for our own allocations;
 *  - the output is bounded by max_seconds: first against the duration the
 *    container declares (before decoding: a long upload costs nothing),
 *    then while decoding, so a file whose header says nothing or lies costs
 *    at most max_seconds of decoding before -EFBIG. Durations FFmpeg only
 *    estimates from the bit rate are not trusted for refusing (VBR mp3);
 *  - a sample rate outside VS_DECODE_MIN_RATE..VS_DECODE_MAX_RATE, in the
 *    header or in a decoded frame, is refused (-ERANGE): few bytes at 1 Hz
 *    are hours of audio once resampled.
 * Headerless PCM (Wyoming's audio, vs_decode_fd_raw) names its raw demuxer
 * (u8, s16le, s24le, s32le) with the rate and channel layout it cannot say
 * itself; nothing is probed, and only that demuxer is allowed.
 * The resampler (libswresample) is built from the first decoded frame, not
 * from the container header (HE-AAC doubles its rate, headers may lie or be
 * empty) and rebuilt if a later frame changes format/rate/layout (concatenated
 * mp3, chained Ogg). FFmpeg's logging is silenced: library code does not print.
 */
#include "media/media.h"
#include "media/format.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libswresample/swresample.h>

#define IO_BUF_SIZE (64 * 1024)
/* hard cap even with max_seconds <= 0: 2^31 samples (37 h at 16 kHz) keeps
 * sizes far from overflow */
#define HARD_MAX_SAMPLES ((size_t)1 << 31)
/* cap on any single FFmpeg allocation: a corrupt header claiming a huge table
 * fails (as ENOMEM, reported as corrupt input) instead of costing the worker
 * up to the default 2 GiB; real audio needs a few MiB at most */
#define AV_MAX_ALLOC ((size_t)256 << 20)
#define CORRUPT "audio file is corrupt (implausible sizes)"
/* demuxers an upload may use (OpenAI accepts flac mp3 mp4 mpeg mpga m4a ogg
 * wav webm); "mov" covers mp4/m4a, "matroska" covers webm, "aac" is raw ADTS */
#define FORMAT_WHITELIST "wav,w64,mp3,ogg,flac,mov,matroska,aac,aiff,caf,au,mpeg,amr,wv"

struct fdio {
	int fd;
	int64_t pos;
	int64_t size;
};

struct dec {
	int out_rate;
	size_t max_samples;
	int16_t *pcm;
	size_t n, cap;
	SwrContext *swr;
	int in_fmt, in_rate;
	AVChannelLayout in_layout;
	char *err;
	size_t errlen;
};

static int fd_read(void *opaque, uint8_t *buf, int len)
{
	struct fdio *io = opaque;
	ssize_t r;

	do {
		r = pread(io->fd, buf, (size_t)len, io->pos);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return AVERROR(errno);
	if (r == 0)
		return AVERROR_EOF;
	io->pos += r;
	return (int)r;
}

static int64_t fd_seek(void *opaque, int64_t off, int whence)
{
	struct fdio *io = opaque;
	int64_t pos;

	whence &= ~AVSEEK_FORCE;
	switch (whence) {
	case AVSEEK_SIZE: return io->size;
	case SEEK_SET: pos = off; break;
	case SEEK_CUR: pos = io->pos + off; break;
	case SEEK_END: pos = io->size + off; break;
	default: return AVERROR(EINVAL);
	}
	if (pos < 0)
		return AVERROR(EINVAL);
	io->pos = pos;
	return pos;
}

static int reserve(struct dec *d, size_t more)
{
	size_t want = d->n + more, cap = d->cap ? d->cap : 16384;
	int16_t *p;

	if (want <= d->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	p = realloc(d->pcm, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	d->pcm = p;
	d->cap = cap;
	return 0;
}

/* Converts nb input samples (NULL: drain the resampler) into d->pcm. */
static int convert(struct dec *d, const uint8_t **in, int nb)
{
	int room, got;
	uint8_t *out;

	for (;;) {
		room = swr_get_out_samples(d->swr, nb);
		if (room < 0)
			return vs_media_seterr(d->err, d->errlen, -EINVAL,
			                       "audio resampling failed");
		room += 32;
		if (reserve(d, (size_t)room) < 0)
			return vs_media_seterr(d->err, d->errlen, -ENOMEM, "out of memory");
		out = (uint8_t *)(d->pcm + d->n);
		got = swr_convert(d->swr, &out, room, in, nb);
		if (got < 0)
			return vs_media_seterr(d->err, d->errlen, -EINVAL,
			                       "audio resampling failed");
		d->n += (size_t)got;
		if (d->n > d->max_samples)
			return -EFBIG;
		/* input is consumed in one call; draining loops until empty */
		if (in || got == 0)
			return 0;
	}
}

static void drop_swr(struct dec *d)
{
	swr_free(&d->swr);
	av_channel_layout_uninit(&d->in_layout);
}

static int check_rate(int rate, char *err, size_t errlen)
{
	if (rate >= VS_DECODE_MIN_RATE && rate <= VS_DECODE_MAX_RATE)
		return 0;
	return vs_media_seterr(err, errlen, -ERANGE,
	                       "the audio's sample rate of %d Hz is outside the accepted range "
	                       "%d to %d Hz",
	                       rate, VS_DECODE_MIN_RATE, VS_DECODE_MAX_RATE);
}

/* (Re)build the resampler for this frame's format when it differs. */
static int setup_swr(struct dec *d, const AVFrame *f)
{
	AVChannelLayout in = {0}, mono = AV_CHANNEL_LAYOUT_MONO;
	int ret;

	if (f->ch_layout.nb_channels <= 0 || f->sample_rate <= 0 || f->format < 0)
		return vs_media_seterr(d->err, d->errlen, -EINVAL,
		                       "decoded audio has no channels or rate");
	ret = check_rate(f->sample_rate, d->err, d->errlen);
	if (ret < 0)
		return ret;
	if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
		av_channel_layout_default(&in, f->ch_layout.nb_channels);
	else if (av_channel_layout_copy(&in, &f->ch_layout) < 0)
		return vs_media_seterr(d->err, d->errlen, -ENOMEM, "out of memory");

	if (d->swr && d->in_fmt == f->format && d->in_rate == f->sample_rate &&
	    av_channel_layout_compare(&d->in_layout, &in) == 0) {
		av_channel_layout_uninit(&in);
		return 0;
	}
	if (d->swr) {
		/* the stream changed mid-way: keep what the old resampler holds */
		ret = convert(d, NULL, 0);
		drop_swr(d);
		if (ret < 0) {
			av_channel_layout_uninit(&in);
			return ret;
		}
	}
	ret = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_S16, d->out_rate, &in, f->format,
	                          f->sample_rate, 0, NULL);
	if (ret >= 0)
		ret = swr_init(d->swr);
	if (ret < 0) {
		av_channel_layout_uninit(&in);
		drop_swr(d);
		return vs_media_seterr(d->err, d->errlen,
		                       ret == AVERROR(ENOMEM) ? -ENOMEM : -EINVAL,
		                       "unsupported audio layout (%d channels, %d Hz)",
		                       f->ch_layout.nb_channels, f->sample_rate);
	}
	d->in_layout = in;
	d->in_fmt = f->format;
	d->in_rate = f->sample_rate;
	return 0;
}

/* Pull every frame the decoder has ready. *bad counts decode errors. */
static int receive_all(struct dec *d, AVCodecContext *cc, AVFrame *f, int *bad)
{
	int ret;

	for (;;) {
		ret = avcodec_receive_frame(cc, f);
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			return 0;
		if (ret < 0) {
			/* corrupt packet (ENOMEM too: a size the allocator cap
			 * refused): skipped, as ffmpeg(1) does */
			(*bad)++;
			return 0;
		}
		if (f->nb_samples > 0) {
			ret = setup_swr(d, f);
			if (ret >= 0)
				ret = convert(d, (const uint8_t **)f->extended_data, f->nb_samples);
		}
		av_frame_unref(f);
		if (ret < 0)
			return ret;
	}
}

/* FFmpeg's raw demuxer of a headerless PCM format; NULL when there is none */
static const char *raw_demuxer(int width)
{
	static const char *const names[] = {NULL, "u8", "s16le", "s24le", "s32le"};
	return width >= 1 && width <= 4 ? names[width] : NULL;
}

/* the options that tell the raw demuxer the format its input does not say */
static int raw_options(const struct vs_raw_format *raw, AVDictionary **opts, char *err,
                       size_t errlen)
{
	AVChannelLayout layout = {0};
	char desc[64];

	if (!raw_demuxer(raw->width) || raw->channels < 1 || raw->channels > VS_RAW_MAX_CHANNELS)
		return vs_media_seterr(err, errlen, -EINVAL,
		                       "unsupported PCM format: %d-byte samples, %d channels "
		                       "(1 to 4 bytes, 1 to %d channels)",
		                       raw->width, raw->channels, VS_RAW_MAX_CHANNELS);
	av_channel_layout_default(&layout, raw->channels);
	if (av_channel_layout_describe(&layout, desc, sizeof(desc)) < 0)
		return vs_media_seterr(err, errlen, -EINVAL, "no layout for %d channels",
		                       raw->channels);
	av_dict_set(opts, "format_whitelist", raw_demuxer(raw->width), 0);
	av_dict_set_int(opts, "sample_rate", raw->rate, 0);
	av_dict_set(opts, "ch_layout", desc, 0);
	return 0;
}

static int open_input(struct fdio *io, const struct vs_raw_format *raw, AVFormatContext **fmtp,
                      AVIOContext **pbp, char *err, size_t errlen)
{
	AVFormatContext *fmt = NULL;
	AVDictionary *opts = NULL;
	const AVInputFormat *forced = NULL;
	uint8_t *buf;
	int ret;

	if (raw) {
		ret = raw_options(raw, &opts, err, errlen);
		if (ret < 0)
			return ret;
		forced = av_find_input_format(raw_demuxer(raw->width));
		if (!forced) {
			av_dict_free(&opts);
			return vs_media_seterr(err, errlen, -EINVAL, "no %s demuxer in FFmpeg",
			                       raw_demuxer(raw->width));
		}
	}

	buf = av_malloc(IO_BUF_SIZE);
	if (buf)
		*pbp = avio_alloc_context(buf, IO_BUF_SIZE, 0, io, fd_read, NULL, fd_seek);
	if (!buf || !*pbp) {
		av_free(buf);
		av_dict_free(&opts);
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	fmt = avformat_alloc_context();
	if (!fmt) {
		av_dict_free(&opts);
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	fmt->pb = *pbp;
	fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
	if (!raw) /* a raw format is named: nothing is probed */
		av_dict_set(&opts, "format_whitelist", FORMAT_WHITELIST, 0);
	av_dict_set(&opts, "protocol_whitelist", "none", 0);
	/* fmt is freed by avformat_open_input on failure */
	ret = avformat_open_input(&fmt, NULL, forced, &opts);
	av_dict_free(&opts);
	if (ret == AVERROR(ENOMEM))
		return vs_media_seterr(err, errlen, -EINVAL, CORRUPT);
	if (ret < 0)
		return vs_media_seterr(err, errlen, -EINVAL,
		                       "could not recognise the audio format");
	*fmtp = fmt;
	return 0;
}

static int open_decoder(AVFormatContext *fmt, int *idx, AVCodecContext **ccp, char *err,
                        size_t errlen)
{
	const AVCodec *codec = NULL;
	AVCodecContext *cc;
	AVStream *st;
	int ret;

	/* failure here is not fatal (ffmpeg(1) only warns): the decoder may
	 * still know what the probe could not fill in */
	avformat_find_stream_info(fmt, NULL);
	ret = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
	if (ret == AVERROR_DECODER_NOT_FOUND) {
		ret = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
		return vs_media_seterr(
		        err, errlen, -EINVAL, "no decoder for the audio codec (%s)",
		        ret >= 0 ? avcodec_get_name(fmt->streams[ret]->codecpar->codec_id)
		                 : "unknown");
	}
	if (ret < 0 || !codec)
		return vs_media_seterr(err, errlen, -EINVAL, "no audio stream found");
	*idx = ret;
	st = fmt->streams[ret];
	for (unsigned i = 0; i < fmt->nb_streams; i++)
		if ((int)i != *idx)
			fmt->streams[i]->discard = AVDISCARD_ALL;

	cc = avcodec_alloc_context3(codec);
	if (!cc)
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	*ccp = cc;
	if (avcodec_parameters_to_context(cc, st->codecpar) < 0)
		return vs_media_seterr(err, errlen, -ENOMEM, "out of memory");
	/* 0 = not in the header: the decoded frames are checked instead */
	if (st->codecpar->sample_rate > 0 && check_rate(st->codecpar->sample_rate, err, errlen) < 0)
		return -ERANGE;
	cc->pkt_timebase = st->time_base;
	cc->thread_count = 1; /* workers are sized per core already */
	ret = avcodec_open2(cc, codec, NULL);
	if (ret < 0)
		return vs_media_seterr(err, errlen, -EINVAL, "could not open the %s audio decoder",
		                       codec->name);
	return 0;
}

/* Seconds of audio the container declares for stream idx, 0 if unknown or
 * only estimated from the bit rate. */
static double declared_seconds(const AVFormatContext *fmt, int idx)
{
	const AVStream *st = fmt->streams[idx];

	if (fmt->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE)
		return 0;
	if (st->duration != AV_NOPTS_VALUE && st->duration > 0 && st->time_base.den > 0)
		return (double)st->duration * av_q2d(st->time_base);
	if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
		return (double)fmt->duration / AV_TIME_BASE;
	return 0;
}

static int decode_all(struct dec *d, AVFormatContext *fmt, AVCodecContext *cc, int idx)
{
	AVPacket *pkt = av_packet_alloc();
	AVFrame *f = av_frame_alloc();
	int ret = 0, bad = 0;

	if (!pkt || !f) {
		ret = vs_media_seterr(d->err, d->errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ret = av_read_frame(fmt, pkt);
		if (ret < 0)
			break; /* EOF, or damage: keep what decoded so far */
		if (pkt->stream_index == idx) {
			ret = avcodec_send_packet(cc, pkt);
			if (ret < 0)
				bad++;
			ret = receive_all(d, cc, f, &bad);
		}
		av_packet_unref(pkt);
		if (ret < 0)
			goto out;
	}
	/* flush the decoder (codec delay), then the resampler (filter delay) */
	ret = avcodec_send_packet(cc, NULL);
	if (ret >= 0)
		ret = receive_all(d, cc, f, &bad);
	else
		ret = 0;
	if (ret >= 0 && d->swr)
		ret = convert(d, NULL, 0);
	if (ret >= 0 && d->n == 0)
		ret = vs_media_seterr(d->err, d->errlen, -EINVAL,
		                      bad ? "audio could not be decoded (corrupt data)"
		                          : "audio contains no samples");
out:
	av_packet_free(&pkt);
	av_frame_free(&f);
	return ret;
}

/* Frees everything vs_decode_fd built; returns ret. */
static int finish(struct dec *d, AVFormatContext **fmt, AVIOContext **pb, AVCodecContext **cc,
                  int ret)
{
	free(d->pcm);
	d->pcm = NULL;
	drop_swr(d);
	avcodec_free_context(cc);
	avformat_close_input(fmt);
	if (*pb)
		av_freep(&(*pb)->buffer);
	avio_context_free(pb);
	return ret;
}

int vs_decode_fd(int fd, int out_rate, double max_seconds, int16_t **pcm, size_t *n_samples,
                 char *err, size_t errlen)
{
	return vs_decode_fd_raw(fd, NULL, out_rate, max_seconds, pcm, n_samples, err, errlen);
}

int vs_decode_fd_raw(int fd, const struct vs_raw_format *raw, int out_rate, double max_seconds,
                     int16_t **pcm, size_t *n_samples, char *err, size_t errlen)
{
	struct fdio io = {.fd = fd};
	struct dec d = {.out_rate = out_rate,
	                .max_samples = HARD_MAX_SAMPLES,
	                .err = err,
	                .errlen = errlen};
	AVFormatContext *fmt = NULL;
	AVIOContext *pb = NULL;
	AVCodecContext *cc = NULL;
	struct stat sb;
	int ret, idx = -1;

	if (err && errlen)
		err[0] = '\0';
	if (!pcm || !n_samples || fd < 0 || out_rate < 1000 || out_rate > 384000)
		return vs_media_seterr(err, errlen, -EINVAL, "invalid decode arguments");
	*pcm = NULL;
	*n_samples = 0;
	av_log_set_level(AV_LOG_QUIET);
	av_max_alloc(AV_MAX_ALLOC);
	if (max_seconds > 0 && max_seconds * out_rate < (double)HARD_MAX_SAMPLES)
		d.max_samples = (size_t)ceil(max_seconds * out_rate);

	if (fstat(fd, &sb) < 0)
		return vs_media_seterr(err, errlen, -EINVAL, "cannot stat the audio file");
	/* a spooled upload (tmpfile/memfd); pipes can't seek to an m4a index */
	if (!S_ISREG(sb.st_mode))
		return vs_media_seterr(err, errlen, -EINVAL, "audio input is not a regular file");
	io.size = sb.st_size;
	if (io.size == 0)
		return vs_media_seterr(err, errlen, -EINVAL, "audio file is empty");
	if (raw && check_rate(raw->rate, err, errlen) < 0)
		return -ERANGE;

	ret = open_input(&io, raw, &fmt, &pb, err, errlen);
	if (ret >= 0)
		ret = open_decoder(fmt, &idx, &cc, err, errlen);
	if (ret >= 0 && max_seconds > 0) {
		double declared = declared_seconds(fmt, idx);
		if (declared > max_seconds)
			return finish(&d, &fmt, &pb, &cc,
			              vs_media_seterr(err, errlen, -EFBIG,
			                              "the file declares %.1f seconds of audio",
			                              declared));
	}
	if (ret >= 0)
		ret = decode_all(&d, fmt, cc, idx);
	if (ret == -EFBIG)
		vs_media_seterr(err, errlen, -EFBIG, "more than %g seconds of audio decoded",
		                (double)d.max_samples / out_rate);
	if (ret >= 0) {
		*pcm = d.pcm;
		*n_samples = d.n;
		d.pcm = NULL;
	}
	return finish(&d, &fmt, &pb, &cc, ret);
}
