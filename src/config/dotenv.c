/* dotenv.c - .env parser, see dotenv.h.
 *
 * DESIGN
 * Works line by line on a copy of each line (so the buffer is never
 * modified and a quoted value can be unescaped in place). Lenient where a
 * shared .env needs it (keys of other programs, `export`, CRLF line ends),
 * strict where a silent misreading would hide a typo: a line that is not
 * KEY=VALUE, an unterminated quote or text after a closing quote is an error.
 */
#include "dotenv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int is_key_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

/* After a closing quote only blanks and an optional comment may follow. */
static const char *rest_after_quote(const char *p)
{
	while (is_blank(*p))
		p++;
	return (*p == '\0' || *p == '#') ? NULL : p;
}

/* Unquote/unescape the value starting at v in place. Returns NULL or a reason. */
static const char *parse_value(char *v)
{
	char *out = v, *p;

	if (*v == '\'') {
		p = strchr(v + 1, '\'');
		if (!p)
			return "unterminated single quote";
		if (rest_after_quote(p + 1))
			return "unexpected text after closing quote";
		memmove(v, v + 1, (size_t)(p - v - 1));
		v[p - v - 1] = '\0';
		return NULL;
	}
	if (*v == '"') {
		for (p = v + 1; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1]) {
				p++;
				switch (*p) {
				case 'n': *out++ = '\n'; break;
				case 't': *out++ = '\t'; break;
				case '"':
				case '\\': *out++ = *p; break;
				default:
					*out++ = '\\';
					*out++ = *p;
					break; /* keep unknown escapes */
				}
				continue;
			}
			*out++ = *p;
		}
		if (*p != '"')
			return "unterminated double quote";
		if (rest_after_quote(p + 1))
			return "unexpected text after closing quote";
		*out = '\0';
		return NULL;
	}
	/* unquoted: a comment starts at '#' at the start or after a blank */
	for (p = v; *p; p++)
		if (*p == '#' && (p == v || is_blank(p[-1])))
			break;
	while (p > v && is_blank(p[-1]))
		p--;
	*p = '\0';
	return NULL;
}

/* Parse one line (NUL-terminated, no newline). Key and value point into it;
 * *key == NULL for a blank or comment line. Returns NULL or a reason. */
static const char *parse_line(char *s, char **key, char **value)
{
	char *p = s, *k;

	*key = *value = NULL;
	while (is_blank(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return NULL;
	if (strncmp(p, "export", 6) == 0 && is_blank(p[6]))
		for (p += 6; is_blank(*p); p++)
			;
	k = p;
	while (is_key_char(*p))
		p++;
	if (p == k)
		return "expected KEY=VALUE";
	char *kend = p;
	while (is_blank(*p))
		p++;
	if (*p != '=')
		return "expected KEY=VALUE";
	*kend = '\0';
	for (p++; is_blank(*p); p++)
		;
	*key = k;
	*value = p;
	return parse_value(p);
}

/* path, if not NULL, prefixes syntax errors ("PATH line N: ..."). */
static int parse_buf(const char *path, const char *buf, size_t len, vs_dotenv_fn fn, void *opaque,
                     char *err, size_t errlen)
{
	const char *pre = path ? path : "", *sep = path ? " " : "";
	char line[VS_DOTENV_LINE_MAX + 1];
	size_t pos = 0;
	int lineno = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t full = nl ? (size_t)(nl - (buf + pos)) : len - pos, n = full;
		const char *why;
		char *key, *value;

		lineno++;
		if (n > 0 && buf[pos + n - 1] == '\r') /* CRLF files from Windows editors */
			n--;
		if (n > VS_DOTENV_LINE_MAX) {
			snprintf(err, errlen, "%s%sline %d: longer than %d bytes", pre, sep, lineno,
			         VS_DOTENV_LINE_MAX);
			return -EINVAL;
		}
		if (memchr(buf + pos, '\0', n)) {
			snprintf(err, errlen, "%s%sline %d: contains a NUL byte", pre, sep, lineno);
			return -EINVAL;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += full + (nl ? 1 : 0);

		why = parse_line(line, &key, &value);
		if (why) {
			snprintf(err, errlen, "%s%sline %d: %s", pre, sep, lineno, why);
			return -EINVAL;
		}
		if (key) {
			int r = fn(key, value, lineno, opaque);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int vs_dotenv_parse(const char *buf, size_t len, vs_dotenv_fn fn, void *opaque, char *err,
                    size_t errlen)
{
	return parse_buf(NULL, buf, len, fn, opaque, err, errlen);
}

int vs_dotenv_read(const char *path, vs_dotenv_fn fn, void *opaque, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	int r = vs_file_read(path, VS_DOTENV_MAX_BYTES, &buf, &len, NULL, err, errlen);

	if (r < 0)
		return r;
	r = parse_buf(path, buf, len, fn, opaque, err, errlen);
	free(buf);
	return r;
}
