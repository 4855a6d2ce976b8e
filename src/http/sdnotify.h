/* sdnotify.h - telling systemd how the front is: READY, STATUS, the
 * watchdog, RELOADING, STOPPING (sd_notify(3)); see sdnotify.c.
 *
 * Every function is a no-op when the process was not started with
 * NOTIFY_SOCKET (no systemd, or Type=simple): then nothing runs and no
 * thread exists. Called from the main thread only.
 */
#ifndef VS_HTTP_SDNOTIFY_H
#define VS_HTTP_SDNOTIFY_H

struct vs_service;

/* Every listening socket of the process listens (the HTTP daemons of svcs
 * and any Wyoming port): READY=1 with the first STATUS=, and the notifier
 * thread starts (STATUS= updates; WATCHDOG=1 when systemd asked for a
 * watchdog). svcs stay valid until vs_sd_stopping(). Returns 0, or -errno
 * when the thread cannot start (logged; the service runs on without it). */
int vs_sd_ready(struct vs_service *const *svcs, int n);
/* Around a reload (SIGHUP): RELOADING=1 before, READY=1 after. */
void vs_sd_reloading(void);
void vs_sd_reloaded(void);
/* Shutdown begins: STOPPING=1, and the notifier thread ends (no more pings:
 * systemd stops watching a unit that is stopping). */
void vs_sd_stopping(void);

#endif
