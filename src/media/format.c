/* format.c - the speech output formats (mp3, opus, aac, flac, wav, pcm).
 *
 * DESIGN: a static table is the single source of truth for what the TTS
 * endpoint can return; the request parser (src/api) and the HTTP layer ask
 * vs_format_valid/vs_format_name/vs_format_mime
 * (front process, no FFmpeg call), encode.c reads the muxer/encoder columns
 * (worker process). Every format is 24 kHz mono like OpenAI's. Muxer options
 * are chosen for a non-seekable stream:
 *  - mp3: no ID3v2 tag and no Xing frame (it can't be rewritten without
 *    seeking), so the body is bare MPEG audio frames like OpenAI's.
 *  - opus: Ogg pages cut every 100 ms of audio (default 1 s). The muxer
 *    holds one page back (to flag the last one), so the first audio leaves
 *    after ~0.2-0.3 s of audio instead of ~2 s; costs ~2.5 kb/s of page
 *    headers on top of 32 kb/s.
 *    Encoder complexity 6, not libopus's default 10: at 32 kb/s libopus is in
 *    its speech modes, whose complexity-10 search made opus 2.8x slower
 *    than `espeak-ng --stdout | ffmpeg -f opus` (2.4 s vs 0.84 s for 4000
 *    characters; complexity 6: 0.65 s; `make bench` section 4), while speech
 *    at this bitrate gains little from the deeper search.
 *  - flac: no 8 KiB padding block (nothing will ever fill it in a stream).
 *  - wav: sizes stay 0xFFFFFFFF (the muxer can't seek back), see encode.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include "media/format.h"
#include "media/media.h"

#include <stddef.h>
#include <string.h>

static const struct vs_format_desc formats[] = {
        {"mp3", "audio/mpeg", "mp3", "libmp3lame", 64000, "id3v2_version=0:write_xing=0", -1},
        {"opus", "audio/ogg", "ogg", "libopus", 32000, "page_duration=100000", 6},
        {"aac", "audio/aac", "adts", "aac", 64000, NULL, -1},
        {"flac", "audio/flac", "flac", "flac", 0, "metadata_header_padding=0", -1},
        {"wav", "audio/wav", "wav", "pcm_s16le", 0, NULL, -1},
        {"pcm", "audio/pcm", "s16le", "pcm_s16le", 0, NULL, -1},
};

const struct vs_format_desc *vs_format_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(formats[i].name, name) == 0)
			return &formats[i];
	return NULL;
}

const char *vs_format_name(size_t i)
{
	return i < sizeof(formats) / sizeof(formats[0]) ? formats[i].name : NULL;
}

int vs_format_valid(const char *format)
{
	return vs_format_find(format) != NULL;
}

const char *vs_format_mime(const char *format)
{
	const struct vs_format_desc *f = vs_format_find(format);

	return f ? f->mime : NULL;
}

int vs_media_seterr(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}
