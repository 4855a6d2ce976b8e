/* slots.h - concurrency slots with optional bounded queues, one per lane.
 *
 * DESIGN
 * No HTTP knowledge. A request asks for a slot before its body is read:
 *   - a free slot its lane may take: granted at once (slot index = worker
 *     index);
 *   - none, and its lane's queue has room (max_queue > 0): the waiter is
 *     queued; the caller suspends its connection and is woken through
 *     waiter->wake() when a slot is handed to it or its queue timeout passes;
 *   - none and no room: refused (429 at once, the specification's
 *     behaviour with the default max_queue = 0).
 * A slot goes back as soon as its worker stops working for the request (the
 * last frame, a crash, a timeout, a client gone) and, whatever the path, at
 * the latest in the request's completion callback (the nginx limit_conn
 * way), so no exit path can leak it. The caller makes that release happen
 * once (it takes the slot number under its own lock; vs_slots_cancel is
 * idempotent). Release hands the slot straight to one waiter (no thundering
 * herd).
 *
 * Priority lanes (admit/lanes.h; docs/CONFIG.md has the rule for users):
 *   - reserved: at most max - reserved slots serve normal and low requests
 *     at once; high may take any free slot. It is a count, not slot
 *     numbers, so a slot high leaves is open to the others again as soon
 *     as fewer than `reserved` slots would stay for high.
 *   - each lane has its own FIFO queue of up to max_queue waiters, so a
 *     normal queue full never refuses high;
 *   - a released slot goes to the oldest waiter of the most urgent lane
 *     that may take it (high, normal, low), except that while low requests
 *     wait and may take the slot, at most low_max_skips hand-overs in a row
 *     go to other lanes: the next one goes to the oldest low waiter. The
 *     count starts again when low is served or its queue empties.
 * The limit (memory pressure, vs_slots_set_limit) caps busy slots below
 * max; the reservation shrinks with it when it must, so that one slot
 * always serves every lane (at most limit - 1 reserved).
 * Invariant (what makes "no newcomer jumps the queue" hold per lane): no
 * slot stays free while a waiter that may take it waits. So a newcomer finds
 * a free slot it may take only when nobody waiting could have it.
 * With reserved = 0 and every waiter normal this is the one FIFO queue of
 * the specification.
 *
 * Thread-safe. wake() is called with the slots lock held: it must only record
 * the outcome and resume the connection, never call back into slots.
 */
#ifndef VS_SLOTS_H
#define VS_SLOTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "admit/lanes.h"

#define VS_SLOTS_MAX 64

enum vs_waiter_state { VS_WAIT_NONE = 0, VS_WAIT_QUEUED, VS_WAIT_GRANTED, VS_WAIT_EXPIRED };

struct vs_waiter {
	struct vs_waiter *next;
	enum vs_waiter_state state;
	enum vs_lane lane;    /* set by the caller before acquire (0 = normal) */
	int slot;             /* when GRANTED */
	uint64_t enqueued_ms; /* for the queue-wait histogram */
	uint64_t deadline_ms;
	void (*wake)(struct vs_waiter *w);
};

/* what one lane holds, waits for and was refused */
struct vs_lane_counts {
	int active, depth;
	uint64_t rejected_busy, rejected_queue_full, queue_timeouts;
};

struct vs_slots {
	pthread_mutex_t mu;
	int max, active;
	int limit; /* slots that may be busy now, <= max (memory pressure shrinks it) */
	bool busy[VS_SLOTS_MAX];
	unsigned char slot_lane[VS_SLOTS_MAX]; /* the lane a busy slot serves */
	int max_queue, depth;                  /* max_queue per lane; depth: all lanes */
	double queue_timeout_s;
	int reserved;      /* slots only high may take */
	int low_max_skips; /* hand-overs low may be passed over in a row */
	int low_skips;
	struct vs_waiter *head[VS_LANES], *tail[VS_LANES];
	struct vs_lane_counts lane[VS_LANES];
	uint64_t rejected_busy, rejected_queue_full, queue_timeouts;
};

enum { VS_SLOT_QUEUED = -1000 };

/* No reserved slots, low passed over at most VS_SLOTS_LOW_MAX_SKIPS times
 * until vs_slots_set_lanes says otherwise. */
#define VS_SLOTS_LOW_MAX_SKIPS 8
void vs_slots_init(struct vs_slots *s, int max, int max_queue, double queue_timeout_s);

/* Lane policy, before the slots are used: reserved is clamped to max - 1
 * (one slot always serves every lane), low_max_skips to >= 1. Returns the
 * reserved count in effect. */
int vs_slots_set_lanes(struct vs_slots *s, int reserved, int low_max_skips);

/* Returns a slot index >= 0, VS_SLOT_QUEUED (w is queued; wait for wake), or
 * -EBUSY (no slot, no queue) / -ENOSPC (w's lane queue full). w->lane says
 * the lane. now_ms: monotonic ms. */
int vs_slots_acquire(struct vs_slots *s, struct vs_waiter *w, uint64_t now_ms);

/* A free slot for w now (w GRANTED, slot returned), or -EBUSY: never
 * queues (a fallback model is tried this way when degrading). */
int vs_slots_try(struct vs_slots *s, struct vs_waiter *w);

/* Gives slot back; hands it to the next waiter (see DESIGN) if any. */
void vs_slots_release(struct vs_slots *s, int slot);

/* The request ends while queued or after being granted but before using the
 * slot: removes it from the queue, or releases the slot it was granted.
 * Safe to call in any state. */
void vs_slots_cancel(struct vs_slots *s, struct vs_waiter *w);

/* Expires waiters whose deadline passed (state EXPIRED, wake called). */
void vs_slots_expire(struct vs_slots *s, uint64_t now_ms);

/* Sets how many slots may be busy (1..max): lowering it lets requests in
 * flight finish and admits no new one above it; raising it hands the freed
 * capacity to waiters at once, in lane order as releases do. */
void vs_slots_set_limit(struct vs_slots *s, int limit);

struct vs_slots_snapshot {
	int max, limit, active, available, depth, max_queue;
	double queue_timeout_s;
	int reserved, low_max_skips;
	struct vs_lane_counts lanes[VS_LANES];
};
void vs_slots_snapshot(struct vs_slots *s, struct vs_slots_snapshot *out);

#endif
