/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum vs_log_level min_level = VS_LOG_INFO;
static const char *proc_tag = "front";

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
	char line[2048];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n;

	if (l < min_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	             "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s pid=%d ",
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
