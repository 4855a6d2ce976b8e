/* slots.h - per-service concurrency slots with an optional bounded FIFO queue.
 *
 * DESIGN
 * No HTTP knowledge. A request asks for a slot before its body is read:
 *   - a free slot: granted at once (slot index = worker index);
 *   - none free, queue has room (max_queue > 0): the waiter is queued; the
 *     caller suspends its connection and is woken through waiter->wake() when
 *     a slot is handed to it or its queue timeout passes;
 *   - none free and no room: refused (429 at once, the specification's
 *     behaviour with the default max_queue = 0).
 * A slot goes back as soon as its worker stops working for the request (the
 * last frame, a crash, a timeout, a client gone) and, whatever the path, at
 * the latest in the request's completion callback (the nginx limit_conn
 * way), so no exit path can leak it. The caller makes that release happen
 * once (it takes the slot number under its own lock; vs_slots_cancel is
 * idempotent). Release hands the slot straight to the oldest waiter (FIFO,
 * no thundering herd).
 *
 * Thread-safe. wake() is called with the slots lock held: it must only record
 * the outcome and resume the connection, never call back into slots.
 */
#ifndef VS_SLOTS_H
#define VS_SLOTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VS_SLOTS_MAX 64

enum vs_waiter_state { VS_WAIT_NONE = 0, VS_WAIT_QUEUED, VS_WAIT_GRANTED, VS_WAIT_EXPIRED };

struct vs_waiter {
	struct vs_waiter *next;
	enum vs_waiter_state state;
	int slot;             /* when GRANTED */
	uint64_t enqueued_ms; /* for the queue-wait histogram */
	uint64_t deadline_ms;
	void (*wake)(struct vs_waiter *w);
};

struct vs_slots {
	pthread_mutex_t mu;
	int max, active;
	int limit; /* slots that may be busy now, <= max (memory pressure shrinks it) */
	bool busy[VS_SLOTS_MAX];
	int max_queue, depth;
	double queue_timeout_s;
	struct vs_waiter *head, *tail;
	uint64_t rejected_busy, rejected_queue_full, queue_timeouts;
};

enum { VS_SLOT_QUEUED = -1000 };

void vs_slots_init(struct vs_slots *s, int max, int max_queue, double queue_timeout_s);

/* Returns a slot index >= 0, VS_SLOT_QUEUED (w is queued; wait for wake), or
 * -EBUSY (no slot, no queue) / -ENOSPC (queue full). now_ms: monotonic ms. */
int vs_slots_acquire(struct vs_slots *s, struct vs_waiter *w, uint64_t now_ms);

/* A free slot for w now (w GRANTED, slot returned), or -EBUSY: never
 * queues (a fallback model is tried this way when degrading). */
int vs_slots_try(struct vs_slots *s, struct vs_waiter *w);

/* Gives slot back; hands it to the oldest waiter if any. */
void vs_slots_release(struct vs_slots *s, int slot);

/* The request ends while queued or after being granted but before using the
 * slot: removes it from the queue, or releases the slot it was granted.
 * Safe to call in any state. */
void vs_slots_cancel(struct vs_slots *s, struct vs_waiter *w);

/* Expires waiters whose deadline passed (state EXPIRED, wake called). */
void vs_slots_expire(struct vs_slots *s, uint64_t now_ms);

/* Sets how many slots may be busy (1..max): lowering it lets requests in
 * flight finish and admits no new one above it; raising it hands the freed
 * capacity to waiters at once. */
void vs_slots_set_limit(struct vs_slots *s, int limit);

struct vs_slots_snapshot {
	int max, limit, active, available, depth, max_queue;
	double queue_timeout_s;
};
void vs_slots_snapshot(struct vs_slots *s, struct vs_slots_snapshot *out);

#endif
