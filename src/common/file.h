/* file.h - reading a small settings file whole (.env, API keys).
 *
 * DESIGN
 * Files an operator writes and the server reads at start-up (and on
 * SIGHUP) are small and read in one go: opened O_CLOEXEC (a worker spawned
 * meanwhile must not inherit them), a regular file only (a FIFO or device
 * would block or never end), bounded in size, read with EINTR retried. No
 * logging: the one-line reason goes to the caller's buffer.
 */
#ifndef VS_COMMON_FILE_H
#define VS_COMMON_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/* Reads path whole: 0 with *buf (malloc'd, NUL-terminated; the caller frees
 * it), *len and, when st is not NULL, *st (its fstat) set; or a negative
 * errno with "PATH: why" in err (-EINVAL not a regular file, -EFBIG over
 * max_bytes). A file that shrinks while read gives what was there. */
int vs_file_read(const char *path, size_t max_bytes, char **buf, size_t *len, struct stat *st,
                 char *err, size_t errlen);

#endif
