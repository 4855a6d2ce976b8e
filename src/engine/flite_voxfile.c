/* flite_voxfile.c - loads a flite voice file (.flitevox) for the flite
 * engine (its "voice_file" option) without letting a bad file take the
 * worker down.
 *
 * DESIGN
 * flite_voice_load() reads a clustergen voice that flite or festvox dumped,
 * and trusts the file: measured with flite 2.2, a real voice file cut short
 * after its first 300 bytes crashes it (SIGSEGV), and one cut at 3000 bytes
 * "loads" and leaves a voice that is garbage; its other errors call exit()
 * unless cst_errjmp is set. A voice file comes from the operator, not from a
 * client, but a damaged one must fail the model's load with a reason, not
 * kill the worker (or the one-shot CLI) with a signal. So the file is first
 * tried in a child process (probe()): fork, load it, speak one word, _exit.
 * Only if that child succeeded is the file loaded here, with cst_errjmp set.
 * The cost is a second load of the file at model load (~40 ms for slt's
 * 2.5 MB), never per request.
 *
 * fork() is safe here because load() runs before the process has a second
 * thread (the TTS pipeline's encoder thread exists only during a request),
 * and the child calls only flite, alarm() and _exit(). The child dies with
 * its parent (PR_SET_PDEATHSIG) and after PROBE_SECONDS (alarm), so the
 * parent's waitpid() cannot hang on it.
 *
 * Paths only: flite would also read "http:" and "file:" URLs (cst_urlp()),
 * and a worker must not open network connections on an option's say-so.
 */
#include "engine/flite_voxfile.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* flite's headers declare functions with empty parameter lists */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <flite/flite.h>
#pragma GCC diagnostic pop

/* the English front end a voice file names as its language (no header
 * declares them; libflite_usenglish and libflite_cmulex export them) */
void usenglish_init(cst_voice *v);
cst_lexicon *cmu_lex_init(void);

#define SUFFIX ".flitevox"
/* longest a probe may take to load a voice and speak a word: slt's 2.5 MB
 * takes 0.05 s, so this only bounds a pathological file */
#define PROBE_SECONDS 30
/* probe child exit statuses */
enum { PROBE_OK = 0, PROBE_UNLOADABLE = 10, PROBE_MUTE = 11 };

/* flite_voice_load() finds the front end through flite_lang_list; flite's
 * own CLI fills it, the library does not. Once per process. */
static void add_languages(void)
{
	static bool added;

	if (added)
		return;
	/* what flite's and festvox's dumps of English voices give as language */
	flite_add_lang("eng", usenglish_init, cmu_lex_init);
	flite_add_lang("usenglish", usenglish_init, cmu_lex_init);
	added = true;
}

void *vs_flite_guarded(void *(*fn)(void *arg), void *arg)
{
	jmp_buf jb;
	void *r;

	cst_errjmp = &jb;
	if (setjmp(jb)) {
		cst_errjmp = NULL;
		return NULL;
	}
	r = fn(arg);
	cst_errjmp = NULL;
	return r;
}

static void *load_call(void *path)
{
	return flite_voice_load(path);
}

static void *speak_call(void *voice)
{
	return flite_text_to_wave("Hello.", voice);
}

static _Noreturn void probe_child(const char *path)
{
	static const int crash[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	cst_voice *v;
	cst_wave *w;

	/* a crash must end this child, whatever handler the parent had (a test
	 * framework's, a sanitizer's) */
	for (size_t i = 0; i < sizeof(crash) / sizeof(crash[0]); i++)
		signal(crash[i], SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(PROBE_SECONDS);
	v = vs_flite_guarded(load_call, (void *)path);
	if (!v)
		_exit(PROBE_UNLOADABLE);
	w = vs_flite_guarded(speak_call, v);
	_exit(w && w->num_samples > 0 ? PROBE_OK : PROBE_MUTE);
}

/* Loads and speaks with the file in a child process: 0 if that worked, or
 * -EINVAL with what went wrong. */
static int probe(const char *path, char *err, size_t errlen)
{
	pid_t pid;
	int st, e;

	pid = fork();
	if (pid < 0) {
		e = errno;
		snprintf(err, errlen, "voice_file '%s': cannot try it (fork: %s)", path,
		         strerror(e));
		return -e;
	}
	if (pid == 0)
		probe_child(path);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			e = errno;
			snprintf(err, errlen, "voice_file '%s': cannot try it (waitpid: %s)", path,
			         strerror(e));
			return -e;
		}
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == PROBE_OK)
		return 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == PROBE_UNLOADABLE)
		snprintf(err, errlen,
		         "voice_file '%s': flite cannot load it (not a clustergen voice file, "
		         "or not an English one)",
		         path);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == PROBE_MUTE)
		snprintf(err, errlen, "voice_file '%s': flite loads it but cannot speak with it",
		         path);
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		snprintf(err, errlen, "voice_file '%s': flite took more than %d s to load it", path,
		         PROBE_SECONDS);
	else if (WIFSIGNALED(st))
		snprintf(err, errlen,
		         "voice_file '%s': flite crashed trying it (signal %d; a damaged or "
		         "truncated file?)",
		         path, WTERMSIG(st));
	else
		snprintf(err, errlen, "voice_file '%s': flite exited with status %d loading it",
		         path, WEXITSTATUS(st));
	return -EINVAL;
}

/* A local, readable, regular file: 0 or a negative errno with the reason. */
static int check_path(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd, e;

	if (cst_urlp(path)) {
		snprintf(err, errlen, "voice_file '%s' is a URL: give the path of a local file",
		         path);
		return -EINVAL;
	}
	/* O_NONBLOCK: a FIFO must not block the load */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "voice_file '%s': %s", path, strerror(e));
		return -e;
	}
	e = fstat(fd, &sb) < 0 ? errno : 0;
	close(fd);
	if (e || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "voice_file '%s' is not a regular file", path);
		return -EINVAL;
	}
	return 0;
}

int vs_flite_voxfile_load(const char *path, cst_voice **out, char *err, size_t errlen)
{
	int rc;

	*out = NULL;
	rc = check_path(path, err, errlen);
	if (rc < 0)
		return rc;
	add_languages();
	rc = probe(path, err, errlen);
	if (rc < 0)
		return rc;
	*out = vs_flite_guarded(load_call, (void *)path);
	if (!*out) {
		/* the probe loaded it: only a change of the file since can get here */
		snprintf(err, errlen, "voice_file '%s': flite cannot load it", path);
		return -EINVAL;
	}
	return 0;
}

int vs_flite_voxfile_name(const char *path, char *buf, size_t len)
{
	const char *base = strrchr(path, '/');
	size_t n, sl = strlen(SUFFIX);

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n >= sl && strcmp(base + n - sl, SUFFIX) == 0)
		n -= sl;
	if (n == 0 || n >= len)
		return -EINVAL;
	memcpy(buf, base, n);
	buf[n] = '\0';
	return 0;
}
