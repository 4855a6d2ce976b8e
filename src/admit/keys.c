/* keys.c - API keys: parsing, the set in force, the constant-time check.
 *
 * DESIGN
 * See keys.h for the file format and why only digests are kept. The parser
 * works on a buffer (so the fuzz driver and the unit tests feed it text);
 * vs_keys_init/reload read the file whole (common/file.h), bounded. The set in force
 * is swapped under k->mu, which guards only the pointer: hashing and
 * comparing run outside it, so a check costs one lock/unlock and an atomic
 * increment, and a reload never waits for requests.
 */
#include <errno.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "admit/keys.h"
#include "common/file.h"
#include "common/text.h"

_Static_assert(SHA256_DIGEST_SIZE == VS_API_KEY_DIGEST, "digest size");

struct vs_keyset {
	int refs; /* atomic */
	int n;
	struct vs_api_key keys[];
};

static void digest_of(const char *key, size_t len, uint8_t out[VS_API_KEY_DIGEST])
{
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, len, (const uint8_t *)key);
	sha256_digest(&c, SHA256_DIGEST_SIZE, out);
}

/* ---- parsing ---- */

static bool key_ok(const char *s, size_t n)
{
	if (n == 0 || n > VS_API_KEY_MAX || s[0] == '#')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One line (without its '\n', a trailing '\r' dropped): *has_key false for
 * a blank or comment line; otherwise k filled. The message never quotes a
 * token: it may be a key. */
static const char *parse_line(const char *p, size_t n, struct vs_api_key *k, bool *has_key)
{
	const char *tok[4];
	size_t len[4];
	int ntok = 0;

	*has_key = false;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)p[i] < 0x20 && !blank(p[i])) || p[i] == 0x7f)
			return "a control character (or NUL byte) in the line";
	for (size_t i = 0; i < n;) {
		if (blank(p[i])) {
			i++;
			continue;
		}
		if (p[i] == '#' && ntok != 0 && ntok < 2)
			return "a key needs a name: KEY NAME [LANE]";
		if (p[i] == '#')
			break; /* a comment line, or a comment after the fields */
		if (ntok == 3)
			return "more than three fields: KEY NAME [LANE], then only a # comment";
		tok[ntok] = p + i;
		while (i < n && !blank(p[i]))
			i++;
		len[ntok] = (size_t)(p + i - tok[ntok]);
		ntok++;
	}
	if (ntok == 0)
		return NULL;
	if (ntok == 1)
		return "a key needs a name: KEY NAME [LANE]";
	if (!key_ok(tok[0], len[0]))
		return "the key must be 1 to 256 printable ASCII characters without blanks";
	if (!vs_label_ok(tok[1], len[1], VS_API_KEY_NAME_MAX))
		return "the name must be 1 to 64 of A-Z a-z 0-9 . _ -";
	k->lane = VS_LANE_NORMAL;
	if (ntok == 3 && !vs_lane_parse(tok[2], len[2], &k->lane))
		return "the lane must be high, normal or low";
	memcpy(k->name, tok[1], len[1]);
	k->name[len[1]] = '\0';
	digest_of(tok[0], len[0], k->digest);
	*has_key = true;
	return NULL;
}

static struct vs_keyset *set_grow(struct vs_keyset *s, int *cap)
{
	int want = *cap ? *cap * 2 : 8;
	if (want > VS_API_KEYS_MAX)
		want = VS_API_KEYS_MAX;
	struct vs_keyset *ns = realloc(s, sizeof(*s) + (size_t)want * sizeof(struct vs_api_key));
	if (ns)
		*cap = want;
	return ns;
}

/* the set's keys point back at it once it no longer moves */
static void set_finish(struct vs_keyset *s)
{
	s->refs = 1;
	for (int i = 0; i < s->n; i++)
		s->keys[i].set = s;
}

int vs_keyset_parse(const char *text, size_t len, struct vs_keyset **out, char *err, size_t errlen)
{
	struct vs_keyset *s = NULL;
	int cap = 0, line = 0;
	const char *why = NULL;

	*out = NULL;
	for (size_t pos = 0; pos < len && !why;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		size_t eol = n;
		struct vs_api_key k = {0};
		bool has_key;

		line++;
		if (eol > 0 && text[pos + eol - 1] == '\r')
			eol--;
		why = parse_line(text + pos, eol, &k, &has_key);
		pos += n + 1;
		if (why || !has_key)
			continue;
		for (int i = 0; s && i < s->n && !why; i++)
			if (memcmp(s->keys[i].digest, k.digest, sizeof(k.digest)) == 0)
				why = "this key is already on an earlier line";
		if (!why && (s ? s->n : 0) == VS_API_KEYS_MAX)
			why = "more than 1000 keys";
		if (!why && (s ? s->n : 0) == cap) {
			struct vs_keyset *ns = set_grow(s, &cap);
			if (!ns) {
				free(s);
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			if (!s)
				ns->n = 0;
			s = ns;
		}
		if (!why)
			s->keys[s->n++] = k;
	}
	if (why) {
		snprintf(err, errlen, "line %d: %s", line, why);
		free(s);
		return -EINVAL;
	}
	if (!s) {
		snprintf(err, errlen, "no key (every line is blank or a comment)");
		return -EINVAL;
	}
	set_finish(s);
	*out = s;
	return 0;
}

int vs_keyset_single(const char *key, struct vs_keyset **out, char *err, size_t errlen)
{
	size_t n = strlen(key);
	struct vs_keyset *s;

	*out = NULL;
	if (!key_ok(key, n)) {
		snprintf(err, errlen,
		         "the key must be 1 to 256 printable ASCII characters without blanks");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s) + sizeof(struct vs_api_key));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->n = 1;
	snprintf(s->keys[0].name, sizeof(s->keys[0].name), "default");
	s->keys[0].lane = VS_LANE_NORMAL;
	digest_of(key, n, s->keys[0].digest);
	set_finish(s);
	*out = s;
	return 0;
}

int vs_keyset_count(const struct vs_keyset *set)
{
	return set ? set->n : 0;
}

const struct vs_api_key *vs_keyset_key(const struct vs_keyset *set, int i)
{
	return set && i >= 0 && i < set->n ? &set->keys[i] : NULL;
}

const struct vs_api_key *vs_keyset_match(const struct vs_keyset *set, const char *presented,
                                         size_t len)
{
	uint8_t d[VS_API_KEY_DIGEST];
	const struct vs_api_key *found = NULL;

	if (!set)
		return NULL;
	digest_of(presented, len, d);
	/* every key, whatever matched: keys are unique, so at most one does */
	for (int i = 0; i < set->n; i++) {
		int eq = memeql_sec(d, set->keys[i].digest, sizeof(d));
		found = eq ? &set->keys[i] : found;
	}
	return found;
}

void vs_keyset_put(struct vs_keyset *set)
{
	if (set && __atomic_sub_fetch(&set->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(set);
}

/* ---- the keys in force ---- */

static int load_file(struct vs_keys *k, struct vs_keyset **set, char *err, size_t errlen)
{
	char *text, why[256];
	size_t len;
	struct stat st;
	int r = vs_file_read(k->path, VS_API_KEYS_FILE_MAX, &text, &len, &st, err, errlen);

	if (r < 0)
		return r;
	r = vs_keyset_parse(text, len, set, why, sizeof(why));
	/* the buffer held keys: wipe it before it goes back to the allocator */
	explicit_bzero(text, len);
	free(text);
	if (r < 0) {
		snprintf(err, errlen, "%s %s", k->path, why);
		return r;
	}
	k->others_can_read = (st.st_mode & S_IROTH) != 0;
	return 0;
}

int vs_keys_init(struct vs_keys *k, const char *file, const char *key, char *err, size_t errlen)
{
	char why[256];
	int r = 0;

	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->mu, NULL);
	if (file && *file) {
		if (strlen(file) >= sizeof(k->path)) {
			snprintf(err, errlen, "the path is too long");
			return -ENAMETOOLONG;
		}
		snprintf(k->path, sizeof(k->path), "%s", file);
		k->from_file = true;
		r = load_file(k, &k->cur, err, errlen);
	} else if (key && *key) {
		r = vs_keyset_single(key, &k->cur, why, sizeof(why));
		if (r < 0)
			snprintf(err, errlen, "%s", why);
	} else {
		return 0;
	}
	k->on = r == 0;
	return r;
}

int vs_keys_reload(struct vs_keys *k, char *err, size_t errlen)
{
	struct vs_keyset *set = NULL, *old;

	if (!k->on || !k->from_file) {
		snprintf(err, errlen, "no API_KEYS_FILE to re-read");
		return -ENOTSUP;
	}
	int r = load_file(k, &set, err, errlen);
	if (r < 0)
		return r;
	pthread_mutex_lock(&k->mu);
	old = k->cur;
	k->cur = set;
	pthread_mutex_unlock(&k->mu);
	vs_keyset_put(old); /* freed now, or when its last request ends */
	return 0;
}

int vs_keys_count(struct vs_keys *k)
{
	pthread_mutex_lock(&k->mu);
	int n = vs_keyset_count(k->cur);
	pthread_mutex_unlock(&k->mu);
	return n;
}

const struct vs_api_key *vs_keys_check(struct vs_keys *k, const char *presented, size_t len)
{
	pthread_mutex_lock(&k->mu);
	struct vs_keyset *set = k->cur;
	if (set)
		__atomic_add_fetch(&set->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&k->mu);
	const struct vs_api_key *key = vs_keyset_match(set, presented, len);
	if (!key)
		vs_keyset_put(set);
	return key;
}

void vs_api_key_release(const struct vs_api_key *key)
{
	if (key)
		vs_keyset_put(key->set);
}

void vs_keys_destroy(struct vs_keys *k)
{
	vs_keyset_put(k->cur);
	k->cur = NULL;
	k->on = false;
	pthread_mutex_destroy(&k->mu);
}
