/* reactor.h - the front's one event thread: epoll over worker sockets, an
 * eventfd to wake it, and a 100 ms tick for timers (request timeouts, idle
 * unload, reaping, queue expiry, the suspended-connection watcher).
 *
 * The reactor knows nothing of workers: a source is a struct whose ready()
 * runs on the reactor thread when its fd is readable (or hung up). Started
 * on first use; vs_reactor_stop() joins it.
 */
#ifndef VS_REACTOR_H
#define VS_REACTOR_H

#include <stdbool.h>

struct vs_reactor_source {
	void (*ready)(struct vs_reactor_source *src);
};

/* Watches fd for input (level-triggered) until vs_reactor_del. 0 or -errno. */
int vs_reactor_add(int fd, struct vs_reactor_source *src);
/* reading=false stops reporting fd (backpressure) until called with true. */
void vs_reactor_set_reading(int fd, struct vs_reactor_source *src, bool reading);
void vs_reactor_del(int fd);

#define VS_REACTOR_MAX_TICKS 40 /* a pool per model (2 x VS_MODELS_MAX) and a few more */
/* fn(opaque) runs on the reactor thread every tick (~100 ms), in the order
 * registered. 0, or -ENOSPC when the table is full (logged once): a timer
 * that silently never ran would be worse than a start-up failure. */
int vs_reactor_add_tick(void (*fn)(void *opaque), void *opaque);
/* Forgets a tick; call after vs_reactor_stop (no tick is running then). */
void vs_reactor_remove_tick(void (*fn)(void *opaque), void *opaque);

/* Ends the reactor thread and closes its fds; after every vs_pool_stop. */
void vs_reactor_stop(void);

#endif
