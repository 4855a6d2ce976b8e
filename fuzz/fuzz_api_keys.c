/* fuzz_api_keys.c - libFuzzer driver for vs_keyset_parse (src/admit/keys.h).
 *
 * DESIGN
 * The input is an API key file's bytes (API_KEYS_FILE). Checks what the
 * front relies on: a parse succeeds with 1..VS_API_KEYS_MAX keys, each named
 * with 1..64 of [A-Za-z0-9._-] (the name goes into logs and metric labels
 * as is) in one of the three lanes, and the first token of the first key
 * line matches its own key and not its prefix; a failure leaves no set and
 * a NUL-terminated "line N: why" (or "no key ...").
 */
#include "fuzz.h"
#include "admit/keys.h"

#include <errno.h>
#include <string.h>

/* the first key of text: first token of the first line that is not blank
 * or a comment (the parser accepted the file, so it is well formed) */
static size_t first_key(const char *t, size_t n, const char **key)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (t[i] == ' ' || t[i] == '\t'))
			i++;
		if (i < n && t[i] != '#' && t[i] != '\n' && t[i] != '\r') {
			size_t s = i;
			while (i < n && t[i] != ' ' && t[i] != '\t')
				i++;
			*key = t + s;
			return i - s;
		}
		while (i < n && t[i] != '\n')
			i++;
		i++;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vs_keyset *s = NULL;
	char err[256];
	const char *text = (const char *)data;

	memset(err, 'x', sizeof(err));
	int rc = vs_keyset_parse(text, size, &s, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc < 0) {
		FUZZ_CHECK(s == NULL);
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		FUZZ_CHECK(strncmp(err, "line ", 5) == 0 || strncmp(err, "no key", 6) == 0);
		return 0;
	}
	int n = vs_keyset_count(s);
	FUZZ_CHECK(n >= 1 && n <= VS_API_KEYS_MAX);
	for (int i = 0; i < n; i++) {
		const struct vs_api_key *k = vs_keyset_key(s, i);
		size_t len = strlen(k->name);
		FUZZ_CHECK(len >= 1 && len <= VS_API_KEY_NAME_MAX);
		FUZZ_CHECK(strspn(k->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                           "0123456789._-") == len);
		FUZZ_CHECK(k->lane == VS_LANE_HIGH || k->lane == VS_LANE_NORMAL ||
		           k->lane == VS_LANE_LOW);
	}
	const char *key = NULL;
	size_t klen = first_key(text, size, &key);
	FUZZ_CHECK(klen >= 1 && klen <= VS_API_KEY_MAX);
	FUZZ_CHECK(vs_keyset_match(s, key, klen) == vs_keyset_key(s, 0));
	FUZZ_CHECK(vs_keyset_match(s, key, klen - 1) != vs_keyset_key(s, 0));
	vs_keyset_put(s);
	return 0;
}
