/* replay_main.c - runs a fuzz driver over files, for the normal (gcc) build.
 *
 * DESIGN
 * Linked with one fuzz/fuzz_<name>.c instead of libFuzzer, so every seed and
 * every reproducer in fuzz/corpus/<name>/ is replayed by `meson test` and by
 * tests/run_all.sh: a fixed bug stays fixed. Arguments are files or
 * directories (one level, sorted by name so the output is stable). A crash
 * or a failed FUZZ_CHECK aborts the whole process, so the last "[ RUN ]"
 * line names the culprit. The closing lines mimic cmocka's, because
 * tests/run_all.sh counts "[  PASSED  ] N test(s)." over all unit binaries;
 * here N is the number of inputs replayed. No input at all is a failure: an
 * empty or misplaced corpus must not pass silently.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPLAY_MAX_BYTES (16u << 20) /* corpus files are small; this catches a wrong path */

/* Reads the whole regular file at path into a malloc'd buffer (never NULL on
 * success, even when empty: drivers get a valid pointer). Returns 0 or -errno. */
static int slurp(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_size > (off_t)REPLAY_MAX_BYTES) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			goto out;
		}
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

/* Replays one file; returns 1 if replayed, a negative errno if unreadable. */
static int replay_file(const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int r = slurp(path, &data, &len);

	if (r < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(-r));
		return r;
	}
	printf("[ RUN      ] %s (%zu bytes)\n", path, len);
	fflush(stdout); /* the line must be out before a crash */
	LLVMFuzzerTestOneInput(data, len);
	printf("[       OK ] %s\n", path);
	free(data);
	return 1;
}

static int not_hidden(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Replays every regular file in dir. Returns the count or a negative errno. */
static int replay_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, not_hidden, alphasort), count = 0, r = 0;

	if (n < 0) {
		r = -errno;
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return r;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (r == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			int one = replay_file(path);
			if (one < 0)
				r = one;
			else
				count++;
		}
		free(names[i]);
	}
	free(names);
	return r < 0 ? r : count;
}

int main(int argc, char **argv)
{
	int total = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		int r;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		r = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
		if (r < 0)
			return 1;
		total += r;
	}
	if (total == 0) {
		fprintf(stderr, "usage: %s CORPUS_DIR|FILE...  (no input replayed)\n", argv[0]);
		return 1;
	}
	printf("[==========] %d test(s) run.\n", total);
	printf("[  PASSED  ] %d test(s).\n", total);
	return 0;
}
