/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum vs_log_level min_level = VS_LOG_INFO;
static const char *proc_tag = "front";
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static bool to_journal;

/* systemd.exec(5), JOURNAL_STREAM: set to "device:inode" of the stream the
 * service's stderr was connected to; only when our stderr still is that
 * stream (not redirected by a wrapper or a test) do the lines go to the
 * journal. Workers inherit both the variable and the stream, so they prefix
 * their lines too. */
static void detect_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0)
		to_journal = (unsigned long long)st.st_dev == dev &&
		             (unsigned long long)st.st_ino == ino;
}

void vs_log_set_level(enum vs_log_level l)
{
	min_level = l;
}
enum vs_log_level vs_log_get_level(void)
{
	return min_level;
}
void vs_log_set_tag(const char *tag)
{
	proc_tag = tag;
}

int vs_log_parse_level(const char *s)
{
	static const struct {
		const char *name;
		enum vs_log_level l;
	} names[] = {
	        {"debug", VS_LOG_DEBUG}, {"info", VS_LOG_INFO},   {"warning", VS_LOG_WARN},
	        {"warn", VS_LOG_WARN},   {"error", VS_LOG_ERROR},
	};
	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return (int)names[i].l;
	return -EINVAL;
}

void vs_log(enum vs_log_level l, const char *fmt, ...)
{
	static const char *const lname[] = {"debug", "info", "warn", "error"};
	/* syslog priorities, as sd-daemon.h's SD_DEBUG ... SD_ERR: the journal
	 * files a line starting "<N>" under priority N (journalctl -p) */
	static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
	char line[2048], pfx[4] = "";
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	if (l < min_level)
		return;
	pthread_once(&journal_once, detect_journal);
	if (to_journal)
		snprintf(pfx, sizeof(pfx), "<%d>", prio[l]);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	             "%s%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s pid=%d ", pfx,
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             (long)(tv.tv_usec / 1000), lname[l], proc_tag, (int)getpid());
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* one write per line so lines from threads and workers never interleave */
	size_t len = strnlen(line, sizeof(line) - 2);
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
