/* slots.c - see slots.h. */
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
}

static int take_free(struct vs_slots *s)
{
	if (s->active >= s->limit)
		return -1;
	for (int i = 0; i < s->max; i++) {
		if (!s->busy[i]) {
			s->busy[i] = true;
			s->active++;
			return i;
		}
	}
	return -1;
}

int vs_slots_acquire(struct vs_slots *s, struct vs_waiter *w, uint64_t now_ms)
{
	int r;
	pthread_mutex_lock(&s->mu);
	/* FIFO fairness: while others wait, a newcomer does not jump the queue */
	r = s->head ? -1 : take_free(s);
	if (r >= 0) {
		w->state = VS_WAIT_GRANTED;
		w->slot = r;
	} else if (s->max_queue <= 0) {
		s->rejected_busy++;
		r = -EBUSY;
	} else if (s->depth >= s->max_queue) {
		s->rejected_queue_full++;
		r = -ENOSPC;
	} else {
		w->next = NULL;
		w->state = VS_WAIT_QUEUED;
		w->slot = -1;
		w->enqueued_ms = now_ms;
		w->deadline_ms = now_ms + (uint64_t)(s->queue_timeout_s * 1000.0);
		if (s->tail)
			s->tail->next = w;
		else
			s->head = w;
		s->tail = w;
		s->depth++;
		r = VS_SLOT_QUEUED;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int vs_slots_try(struct vs_slots *s, struct vs_waiter *w)
{
	int r;
	pthread_mutex_lock(&s->mu);
	r = s->head ? -1 : take_free(s);
	if (r >= 0) {
		w->state = VS_WAIT_GRANTED;
		w->slot = r;
	}
	pthread_mutex_unlock(&s->mu);
	return r >= 0 ? r : -EBUSY;
}

static void unlink_waiter(struct vs_slots *s, struct vs_waiter *w)
{
	struct vs_waiter **pp = &s->head, *prev = NULL;
	while (*pp && *pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = w->next;
	if (s->tail == w)
		s->tail = prev;
	w->next = NULL;
	s->depth--;
}

static void release_locked(struct vs_slots *s, int slot)
{
	if (slot < 0 || slot >= s->max || !s->busy[slot])
		return;
	struct vs_waiter *w = s->head;
	/* over the limit (it was lowered): the slot closes instead */
	if (w && s->active <= s->limit) {
		/* hand the slot over directly: it stays busy */
		unlink_waiter(s, w);
		w->state = VS_WAIT_GRANTED;
		w->slot = slot;
		w->wake(w);
		return;
	}
	s->busy[slot] = false;
	s->active--;
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
	/* FIFO with one timeout: expired waiters are always at the head */
	while (s->head && s->head->deadline_ms <= now_ms) {
		struct vs_waiter *w = s->head;
		unlink_waiter(s, w);
		w->state = VS_WAIT_EXPIRED;
		s->queue_timeouts++;
		w->wake(w);
	}
	pthread_mutex_unlock(&s->mu);
}

void vs_slots_set_limit(struct vs_slots *s, int limit)
{
	pthread_mutex_lock(&s->mu);
	s->limit = limit < 1 ? 1 : limit > s->max ? s->max : limit;
	/* capacity given back: to the oldest waiters, as a release would */
	while (s->head && s->active < s->limit) {
		struct vs_waiter *w = s->head;
		int slot = take_free(s);
		if (slot < 0)
			break;
		unlink_waiter(s, w);
		w->state = VS_WAIT_GRANTED;
		w->slot = slot;
		w->wake(w);
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
	pthread_mutex_unlock(&s->mu);
}
