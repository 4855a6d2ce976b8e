/* slots.c - see slots.h (the lane rules are in its DESIGN). */
#include "admit/slots.h"

#include <errno.h>
#include <string.h>

void vs_slots_init(struct vs_slots *s, int max, int max_queue, double queue_timeout_s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->max = max > VS_SLOTS_MAX ? VS_SLOTS_MAX : max;
	s->limit = s->max;
	s->max_queue = max_queue;
	s->queue_timeout_s = queue_timeout_s;
	s->low_max_skips = VS_SLOTS_LOW_MAX_SKIPS;
}

int vs_slots_set_lanes(struct vs_slots *s, int reserved, int low_max_skips)
{
	pthread_mutex_lock(&s->mu);
	/* one slot always serves every lane, or normal requests never would */
	s->reserved = reserved > s->max - 1 ? s->max - 1 : reserved < 0 ? 0 : reserved;
	s->low_max_skips = low_max_skips < 1 ? 1 : low_max_skips;
	reserved = s->reserved;
	pthread_mutex_unlock(&s->mu);
	return reserved;
}

static enum vs_lane lane_of(const struct vs_waiter *w)
{
	return (unsigned)w->lane < VS_LANES ? w->lane : VS_LANE_NORMAL;
}

/* May a request of `lane` take one more slot (one may be busy under the
 * limit, and the reservation allows it)? */
static bool lane_may_take(const struct vs_slots *s, enum vs_lane lane)
{
	if (s->active >= s->limit)
		return false;
	if (lane == VS_LANE_HIGH)
		return true;
	/* under a lowered limit the reservation shrinks: one slot serves all */
	int reserved = s->reserved < s->limit ? s->reserved : s->limit - 1;
	return s->active - s->lane[VS_LANE_HIGH].active < s->limit - reserved;
}

/* Does anyone wait in `lane` or a more urgent one? By the invariant (see
 * slots.h) never while lane_may_take is true; checked anyway so that a
 * newcomer can never pass a waiter of its own lane. */
static bool waiting_ahead(const struct vs_slots *s, enum vs_lane lane)
{
	for (int i = 0; i < VS_LANES; i++) {
		if (s->head[vs_lane_by_rank[i]])
			return true;
		if (vs_lane_by_rank[i] == lane)
			break;
	}
	return false;
}

static void occupy(struct vs_slots *s, int slot, enum vs_lane lane)
{
	s->busy[slot] = true;
	s->slot_lane[slot] = (unsigned char)lane;
	s->active++;
	s->lane[lane].active++;
}

/* a free slot for a newcomer of w's lane, or -1 */
static int take_free(struct vs_slots *s, struct vs_waiter *w)
{
	enum vs_lane lane = lane_of(w);
	if (!lane_may_take(s, lane) || waiting_ahead(s, lane))
		return -1;
	for (int i = 0; i < s->max; i++) {
		if (!s->busy[i]) {
			occupy(s, i, lane);
			w->state = VS_WAIT_GRANTED;
			w->slot = i;
			return i;
		}
	}
	return -1;
}

int vs_slots_acquire(struct vs_slots *s, struct vs_waiter *w, uint64_t now_ms)
{
	enum vs_lane lane = lane_of(w);
	struct vs_lane_counts *lc = &s->lane[lane];
	int r;
	pthread_mutex_lock(&s->mu);
	r = take_free(s, w);
	if (r >= 0) {
		/* granted */
	} else if (s->max_queue <= 0) {
		s->rejected_busy++;
		lc->rejected_busy++;
		r = -EBUSY;
	} else if (lc->depth >= s->max_queue) {
		s->rejected_queue_full++;
		lc->rejected_queue_full++;
		r = -ENOSPC;
	} else {
		w->next = NULL;
		w->state = VS_WAIT_QUEUED;
		w->slot = -1;
		w->enqueued_ms = now_ms;
		w->deadline_ms = now_ms + (uint64_t)(s->queue_timeout_s * 1000.0);
		if (s->tail[lane])
			s->tail[lane]->next = w;
		else
			s->head[lane] = w;
		s->tail[lane] = w;
		s->depth++;
		lc->depth++;
		r = VS_SLOT_QUEUED;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int vs_slots_try(struct vs_slots *s, struct vs_waiter *w)
{
	int r;
	pthread_mutex_lock(&s->mu);
	r = take_free(s, w);
	pthread_mutex_unlock(&s->mu);
	return r >= 0 ? r : -EBUSY;
}

static void unlink_waiter(struct vs_slots *s, struct vs_waiter *w)
{
	enum vs_lane lane = lane_of(w);
	struct vs_waiter **pp = &s->head[lane], *prev = NULL;
	while (*pp && *pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = w->next;
	if (s->tail[lane] == w)
		s->tail[lane] = prev;
	w->next = NULL;
	s->depth--;
	s->lane[lane].depth--;
	if (lane == VS_LANE_LOW && !s->head[lane])
		s->low_skips = 0; /* the bound is per waiting low request */
}

/* Who gets a slot that just came free (see slots.h), or NULL (none waits
 * that may take it, or the limit is reached): high first, then normal,
 * then low, except when low has been passed over low_max_skips times in a
 * row while it could have taken the slot. */
static struct vs_waiter *next_waiter(struct vs_slots *s)
{
	if (!lane_may_take(s, VS_LANE_HIGH))
		return NULL; /* over the limit (it was lowered): the slot closes */
	bool others = lane_may_take(s, VS_LANE_NORMAL); /* the rule for normal and low */
	struct vs_waiter *low = others ? s->head[VS_LANE_LOW] : NULL;
	struct vs_waiter *w = s->head[VS_LANE_HIGH];
	if (!w && others)
		w = s->head[VS_LANE_NORMAL];
	if (low && (!w || s->low_skips >= s->low_max_skips)) {
		s->low_skips = 0;
		return low;
	}
	if (w && low)
		s->low_skips++;
	return w;
}

/* slot (free) goes to waiter w, which leaves its queue */
static void grant(struct vs_slots *s, struct vs_waiter *w, int slot)
{
	unlink_waiter(s, w);
	occupy(s, slot, lane_of(w));
	w->state = VS_WAIT_GRANTED;
	w->slot = slot;
	w->wake(w);
}

static void release_locked(struct vs_slots *s, int slot)
{
	if (slot < 0 || slot >= s->max || !s->busy[slot])
		return;
	s->busy[slot] = false;
	s->active--;
	s->lane[s->slot_lane[slot]].active--;
	struct vs_waiter *w = next_waiter(s);
	/* hand the slot over directly: nobody else can take it meanwhile */
	if (w)
		grant(s, w, slot);
}

void vs_slots_release(struct vs_slots *s, int slot)
{
	pthread_mutex_lock(&s->mu);
	release_locked(s, slot);
	pthread_mutex_unlock(&s->mu);
}

void vs_slots_cancel(struct vs_slots *s, struct vs_waiter *w)
{
	pthread_mutex_lock(&s->mu);
	if (w->state == VS_WAIT_QUEUED)
		unlink_waiter(s, w);
	else if (w->state == VS_WAIT_GRANTED)
		release_locked(s, w->slot);
	w->state = VS_WAIT_NONE;
	w->slot = -1;
	pthread_mutex_unlock(&s->mu);
}

void vs_slots_expire(struct vs_slots *s, uint64_t now_ms)
{
	pthread_mutex_lock(&s->mu);
	/* FIFO with one timeout: a lane's expired waiters are at its head */
	for (int l = 0; l < VS_LANES; l++) {
		while (s->head[l] && s->head[l]->deadline_ms <= now_ms) {
			struct vs_waiter *w = s->head[l];
			unlink_waiter(s, w);
			w->state = VS_WAIT_EXPIRED;
			s->queue_timeouts++;
			s->lane[l].queue_timeouts++;
			w->wake(w);
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void vs_slots_set_limit(struct vs_slots *s, int limit)
{
	struct vs_waiter *w;
	pthread_mutex_lock(&s->mu);
	s->limit = limit < 1 ? 1 : limit > s->max ? s->max : limit;
	/* capacity given back: to waiters, as releases would */
	while ((w = next_waiter(s))) {
		int slot = 0;
		while (slot < s->max && s->busy[slot])
			slot++;
		grant(s, w, slot); /* active < limit <= max: a slot is free */
	}
	pthread_mutex_unlock(&s->mu);
}

void vs_slots_snapshot(struct vs_slots *s, struct vs_slots_snapshot *out)
{
	pthread_mutex_lock(&s->mu);
	out->max = s->max;
	out->limit = s->limit;
	out->active = s->active;
	out->available = s->active < s->limit ? s->limit - s->active : 0;
	out->depth = s->depth;
	out->max_queue = s->max_queue;
	out->queue_timeout_s = s->queue_timeout_s;
	out->reserved = s->reserved;
	out->low_max_skips = s->low_max_skips;
	memcpy(out->lanes, s->lane, sizeof(out->lanes));
	pthread_mutex_unlock(&s->mu);
}
