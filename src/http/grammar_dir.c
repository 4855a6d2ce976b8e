/* grammar_dir.c - operator-installed grammars and keyword lists
 * (ASR_GRAMMAR_DIR/NAME.gram, NAME.kws), named by a transcription's
 * `grammar_name` / `keywords_name`.
 *
 * DESIGN
 * The front reads the file and sends its text to the worker exactly as if
 * the client had sent it, so the worker and the engine know one path. Read
 * at each request (a few KB, local): an operator adds or edits a grammar
 * without a restart. The name was checked as plain (no '/', no '.') by
 * vs_transcription_grammar(), so it cannot leave the directory; the text is
 * checked by the same vs_grammar_check_text() as a client's, so the size
 * limit and the `import` refusal hold for operator files too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "http/http.h"

int vs_grammar_dir_read(const char *dir, const struct vs_grammar_req *g, size_t max_bytes,
                        char **text, struct vs_oai_err *err)
{
	const char *ext = g->kind == VS_GRAMMAR_JSGF ? "gram" : "kws";
	char path[4096];
	struct stat st;

	*text = NULL;
	if (!dir || !*dir) {
		vs_oai_err_set(err, 400, g->param, "grammar_not_found",
		               "No operator grammars are installed (ASR_GRAMMAR_DIR is not set).");
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "%s/%s.%s", dir, g->name, ext);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = fd < 0 ? errno : EISDIR;
		if (fd >= 0)
			close(fd);
		vs_oai_err_set(err, 400, g->param, "grammar_not_found",
		               "No %s named '%s' is installed.",
		               g->kind == VS_GRAMMAR_JSGF ? "grammar" : "keyword list", g->name);
		if (e != ENOENT)
			vs_warn("event=grammar_unreadable path=\"%s\" err=\"%s\"", path,
			        strerror(e));
		return -ENOENT;
	}
	/* one byte more than allowed tells "too large" from "exactly the limit" */
	size_t cap = (size_t)st.st_size < max_bytes ? (size_t)st.st_size : max_bytes + 1;
	char *buf = malloc(cap + 1);
	size_t n = 0;
	while (buf && n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (!buf) {
		vs_oai_err_set(err, 500, NULL, NULL, "Out of memory.");
		return -ENOMEM;
	}
	buf[n] = '\0';
	if (vs_grammar_check_text(g->kind, buf, n, max_bytes, g->param, err) < 0) {
		free(buf);
		return -EINVAL;
	}
	*text = buf;
	return 0;
}
