/* text.h - the one character class of names that go into logs, headers and
 * metric labels as they are: request ids, API key names. */
#ifndef VS_COMMON_TEXT_H
#define VS_COMMON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* s[0..n) is 1..max of [A-Za-z0-9._-] */
static inline bool vs_label_ok(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

#endif
