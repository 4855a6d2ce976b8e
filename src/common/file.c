/* file.c - reading a small settings file whole, see file.h. */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vs_file_read(const char *path, size_t max_bytes, char **buf, size_t *len, struct stat *st,
                 char *err, size_t errlen)
{
	struct stat sb;
	char *b = NULL;
	size_t got = 0;
	int r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*buf = NULL;
	*len = 0;
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((size_t)sb.st_size > max_bytes) {
		r = -EFBIG;
		snprintf(err, errlen, "%s: larger than %zu bytes", path, max_bytes);
		goto out;
	}
	b = malloc((size_t)sb.st_size + 1);
	if (!b) {
		r = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, b + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0) /* the file shrank while we read: what is there */
			break;
		got += (size_t)n;
	}
	b[got] = '\0';
	*buf = b;
	*len = got;
	if (st)
		*st = sb;
	b = NULL;
out:
	free(b);
	close(fd);
	return r;
}
