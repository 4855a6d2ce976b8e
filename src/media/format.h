/* format.h - internal to src/media: the table of speech output formats.
 *
 * One row per `response_format` of POST /v1/audio/speech: which FFmpeg muxer
 * and encoder produce it and with which options. Shared by format.c (the
 * public vs_format_valid/vs_format_mime) and encode.c (which builds the
 * pipeline from the row), so adding a format is one table row.
 */
#ifndef VS_MEDIA_FORMAT_H
#define VS_MEDIA_FORMAT_H

#include <stddef.h>
#include <stdint.h>

struct vs_format_desc {
	const char *name;      /* OpenAI response_format */
	const char *mime;      /* Content-Type of the response */
	const char *muxer;     /* libavformat short name */
	const char *encoder;   /* libavcodec encoder name */
	int64_t bit_rate;      /* 0: codec default / lossless */
	const char *mux_opts;  /* "k=v:k=v" muxer options, NULL: none */
	int compression_level; /* encoder effort; -1: codec default (libopus: complexity) */
};

/* NULL when name is not an output format */
const struct vs_format_desc *vs_format_find(const char *name);

/* Writes a printf-style reason into err (if any) and returns ret, so error
 * paths read `return vs_media_seterr(err, errlen, -EINVAL, "...")`. */
int vs_media_seterr(char *err, size_t errlen, int ret, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif
