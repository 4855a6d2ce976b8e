/* log.h - one line per event on stderr: time, level, key=value fields.
 *
 *   2026-11-27T08:39:29.123Z level=info proc=front pid=123 event=reject reason=slot ...
 *
 * Thread- and process-safe: each line is formatted into one buffer (at most
 * 2 KiB, longer lines are cut) and written with one write(2), so lines of
 * threads and of workers sharing stderr never interleave. Lines below the
 * level (default info) cost one comparison. Under systemd, when stderr is
 * the journal's stream (JOURNAL_STREAM), each line starts with its syslog
 * priority ("<4>2026-..." for a warning), so `journalctl -p warning` works.
 * The caller that makes a decision logs it once; library code returns
 * errors instead of logging.
 */
#ifndef VS_LOG_H
#define VS_LOG_H

enum vs_log_level { VS_LOG_DEBUG = 0, VS_LOG_INFO, VS_LOG_WARN, VS_LOG_ERROR };

void vs_log_set_level(enum vs_log_level l);
enum vs_log_level vs_log_get_level(void);
/* "debug|info|warning|warn|error" (case-insensitive) -> level, -EINVAL otherwise */
int vs_log_parse_level(const char *s);
void vs_log_set_tag(const char *tag); /* e.g. "asr-worker"; printed as proc= */

void vs_log(enum vs_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define vs_debug(...) vs_log(VS_LOG_DEBUG, __VA_ARGS__)
#define vs_info(...) vs_log(VS_LOG_INFO, __VA_ARGS__)
#define vs_warn(...) vs_log(VS_LOG_WARN, __VA_ARGS__)
#define vs_error(...) vs_log(VS_LOG_ERROR, __VA_ARGS__)

#endif
