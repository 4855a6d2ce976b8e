/* dotenv.h - parse a .env file (KEY=VALUE lines) for the config layer.
 *
 * Only config.c calls this; it is separate so the parser can be tested and
 * fuzzed on a buffer without touching the file system. Syntax (docs/CONFIG.md):
 * `#` comment lines, blank lines, optional `export `, spaces around `=`,
 * '...' literal, "..." with \" \\ \n \t escapes, unquoted values end at
 * whitespace+`#`. No variable expansion, no multi-line values.
 */
#ifndef VS_DOTENV_H
#define VS_DOTENV_H

#include <stddef.h>

#define VS_DOTENV_MAX_BYTES (1024 * 1024) /* a .env larger than this is refused */
#define VS_DOTENV_LINE_MAX 4096

/* Called once per KEY=VALUE line, in file order; key and value are
 * NUL-terminated and valid only during the call. Return 0 to go on, or a
 * negative errno to stop (vs_dotenv_parse then returns it and leaves err to
 * the callback). */
typedef int (*vs_dotenv_fn)(const char *key, const char *value, int line, void *opaque);

/* Parse buf[0..len). Returns 0, the callback's error, or -EINVAL with
 * "line N: reason" in err for a malformed line. */
int vs_dotenv_parse(const char *buf, size_t len, vs_dotenv_fn fn, void *opaque, char *err,
                    size_t errlen);

/* Read and parse the file at path. Returns 0; -errno if it cannot be read
 * (-ENOENT lets the caller ignore a missing implicit ./.env), -EFBIG if over
 * VS_DOTENV_MAX_BYTES; or vs_dotenv_parse's error. err gets "PATH: reason" or
 * "PATH line N: reason", except for callback errors. */
int vs_dotenv_read(const char *path, vs_dotenv_fn fn, void *opaque, char *err, size_t errlen);

#endif
