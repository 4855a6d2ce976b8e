/* fuzz_dotenv.c - libFuzzer driver for vs_dotenv_parse (src/config/dotenv.h).
 *
 * DESIGN
 * The input is a .env file's bytes. Checks what config.c relies on: every
 * key handed to the callback is non-empty and made of key characters only,
 * line numbers never go backwards, a callback error is returned unchanged
 * (a key named STOP makes the callback fail), and a syntax error leaves a
 * NUL-terminated "line N: reason" in err.
 */
#include "fuzz.h"
#include "config/dotenv.h"

#include <errno.h>
#include <string.h>

struct seen {
	int last_line;
	int pairs;
};

static int on_pair(const char *key, const char *value, int line, void *opaque)
{
	struct seen *s = opaque;

	FUZZ_CHECK(key[0] != '\0');
	FUZZ_CHECK(strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                       "0123456789_.-") == strlen(key));
	FUZZ_CHECK(line > s->last_line);
	(void)strlen(value); /* must be a readable, terminated string */
	s->last_line = line;
	s->pairs++;
	return strcmp(key, "STOP") == 0 ? -ECANCELED : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = {0};
	char err[256];

	memset(err, 'x', sizeof(err));
	int rc = vs_dotenv_parse((const char *)data, size, on_pair, &s, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ECANCELED);
	if (rc == -EINVAL) {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		FUZZ_CHECK(strncmp(err, "line ", 5) == 0);
	}
	return 0;
}
