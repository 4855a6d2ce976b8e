/* openai_utf8.c - the little UTF-8 the API layer needs.
 *
 * DESIGN
 * OpenAI counts text limits in characters, not bytes (4096 x "é" is a valid
 * speech input), multipart fields arrive as arbitrary bytes, and jansson
 * refuses to build strings from invalid UTF-8. These helpers cover exactly
 * that: strict validation, counting, and making a message safe to embed.
 */
#include "api/openai.h"

#include <string.h>

/* Length of the valid sequence at s (n bytes available), 0 if invalid. */
static size_t seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		if (n < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0) /* overlong */
			return 0;
		if (c == 0xED && s[1] >= 0xA0) /* UTF-16 surrogate */
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
		    (s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90) /* overlong */
			return 0;
		if (c == 0xF4 && s[1] >= 0x90) /* above U+10FFFF */
			return 0;
		return 4;
	}
	return 0;
}

bool vs_oai_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t l = seq_len(p + i, len - i);
		if (!l)
			return false;
		i += l;
	}
	return true;
}

size_t vs_oai_utf8_chars(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

void vs_oai_utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t len = strlen(s);
	size_t i = 0;

	while (i < len) {
		size_t l = seq_len(p + i, len - i);
		if (l) {
			i += l;
		} else {
			p[i] = '?';
			i++;
		}
	}
}

void vs_oai_utf8_trim_tail(char *s)
{
	size_t len = strlen(s);
	size_t lead = len;

	/* back up over at most 3 continuation bytes to the last lead byte */
	while (lead > 0 && len - lead < 4 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80)
		lead--;
	if (lead == 0)
		return;
	lead--;
	unsigned char c = (unsigned char)s[lead];
	size_t want = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	if (len - lead < want)
		s[lead] = '\0';
}
