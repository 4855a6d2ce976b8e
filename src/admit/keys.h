/* keys.h - API keys: the key file, the keys in force, their names and lanes.
 *
 * DESIGN
 * A key set is what one reading of API_KEYS_FILE (or API_KEY alone) gave:
 * for each key its name, its lane and the SHA-256 of the key. The key itself
 * is not kept: a presented key is hashed and its digest compared with every
 * digest of the set (nettle's memeql_sec, no early exit, nothing that
 * depends on where two keys differ), so the time a check takes tells nothing
 * about a key.
 *
 * struct vs_keys holds the set in force. A reload (SIGHUP) parses the file
 * into a new set and swaps it in under a mutex; a file that does not parse
 * changes nothing. Sets are reference-counted: a request keeps the key it
 * presented (its name and lane) for its whole life, even across a reload
 * that removes that key, and the old set is freed when its last request
 * ends.
 *
 * No HTTP knowledge (the front's auth.c reads the headers) and no logging:
 * errors go to the caller's buffer, and no message ever contains a key or
 * any other token of a key file's line (a token may be a key put in the
 * wrong column).
 *
 * The file: one key per line, `KEY NAME [LANE]`, blanks between; empty
 * lines and lines whose first non-blank is `#` are skipped, and `#` after
 * the last field starts a comment. KEY: 1..VS_API_KEY_MAX printable ASCII
 * characters (0x21-0x7e), not starting with `#`, each key once. NAME:
 * 1..VS_API_KEY_NAME_MAX of [A-Za-z0-9._-] (it goes into logs and metric
 * labels as is); several keys may share a name (rotation). LANE: high,
 * normal (the default) or low.
 */
#ifndef VS_KEYS_H
#define VS_KEYS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admit/lanes.h" /* a key's lane */

#define VS_API_KEY_MAX 256
#define VS_API_KEY_NAME_MAX 64
#define VS_API_KEYS_MAX 1000               /* keys in one file */
#define VS_API_KEYS_FILE_MAX (1024 * 1024) /* bytes */
#define VS_API_KEY_DIGEST 32               /* SHA-256 */

struct vs_keyset;

struct vs_api_key {
	char name[VS_API_KEY_NAME_MAX + 1];
	enum vs_lane lane;
	uint8_t digest[VS_API_KEY_DIGEST]; /* SHA-256 of the key; the key is not kept */
	struct vs_keyset *set;             /* the set holding it (its reference) */
};

/* Parses a key file's text (len bytes, NUL bytes are an error). 0 with *out
 * set (one reference, at least one key), or -EINVAL with "line N: why" in
 * err. */
int vs_keyset_parse(const char *text, size_t len, struct vs_keyset **out, char *err, size_t errlen);
/* One key named "default" in the normal lane (API_KEY). 0, or -EINVAL. */
int vs_keyset_single(const char *key, struct vs_keyset **out, char *err, size_t errlen);
int vs_keyset_count(const struct vs_keyset *set);
const struct vs_api_key *vs_keyset_key(const struct vs_keyset *set, int i);
/* The key of set whose digest is the presented key's, or NULL; compares with
 * every key of the set whatever it finds. No reference is taken. */
const struct vs_api_key *vs_keyset_match(const struct vs_keyset *set, const char *presented,
                                         size_t len);
void vs_keyset_put(struct vs_keyset *set); /* drops one reference; NULL ok */

/* The keys in force. on == false: API keys are off (every request passes). */
struct vs_keys {
	bool on;
	bool from_file;       /* API_KEYS_FILE (reloadable), not API_KEY */
	bool others_can_read; /* the file is readable by other users (a warning) */
	char path[4096];
	pthread_mutex_t mu; /* guards cur */
	struct vs_keyset *cur;
};

/* Off when both file and key are NULL or empty; otherwise loads the file
 * (path) or the one key. 0, or <0 with err ("PATH line N: why", "PATH: No
 * such file..."). Does not log. */
int vs_keys_init(struct vs_keys *k, const char *file, const char *key, char *err, size_t errlen);
/* Re-reads the file: 0 with the new set in force, or <0 with err set and the
 * old set still in force; -ENOTSUP when the keys come from API_KEY. */
int vs_keys_reload(struct vs_keys *k, char *err, size_t errlen);
int vs_keys_count(struct vs_keys *k);
/* The presented key's entry in the set in force, with a reference the caller
 * drops with vs_api_key_release(); NULL when no key matches. */
const struct vs_api_key *vs_keys_check(struct vs_keys *k, const char *presented, size_t len);
void vs_api_key_release(const struct vs_api_key *key); /* NULL ok */
void vs_keys_destroy(struct vs_keys *k);

#endif
