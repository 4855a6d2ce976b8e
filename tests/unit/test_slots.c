/* test_slots.c - concurrency slots, the FIFO queue and its priority lanes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "admit/lanes.h"
#include "admit/slots.h"

static int woken;
static void wake(struct vs_waiter *w)
{
	(void)w;
	woken++;
}

static void test_no_queue_rejects_when_all_slots_busy(void **state)
{
	struct vs_slots s;
	struct vs_waiter a = {.wake = wake}, b = {.wake = wake}, c = {.wake = wake};
	(void)state;
	vs_slots_init(&s, 2, 0, 30);
	assert_int_equal(vs_slots_acquire(&s, &a, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &b, 0), 1);
	assert_int_equal(vs_slots_acquire(&s, &c, 0), -EBUSY);
	vs_slots_cancel(&s, &a); /* request a ends: its slot comes back */
	assert_int_equal(vs_slots_acquire(&s, &c, 0), 0);
	struct vs_slots_snapshot snap;
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.active, 2);
	assert_int_equal(snap.available, 0);
	vs_slots_cancel(&s, &b);
	vs_slots_cancel(&s, &c);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 2);
}

static void test_queue_is_fifo_and_hands_slot_over(void **state)
{
	struct vs_slots s;
	struct vs_waiter a = {.wake = wake}, q1 = {.wake = wake}, q2 = {.wake = wake},
	                 q3 = {.wake = wake};
	(void)state;
	woken = 0;
	vs_slots_init(&s, 1, 2, 30);
	assert_int_equal(vs_slots_acquire(&s, &a, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &q1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &q2, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &q3, 0), -ENOSPC); /* queue full */
	vs_slots_cancel(&s, &a);
	assert_int_equal(woken, 1);
	assert_int_equal(q1.state, VS_WAIT_GRANTED);
	assert_int_equal(q1.slot, 0);
	assert_int_equal(q2.state, VS_WAIT_QUEUED);
	vs_slots_cancel(&s, &q1);
	assert_int_equal(q2.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &q2);
	struct vs_slots_snapshot snap;
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 1);
	assert_int_equal(snap.depth, 0);
}

static void test_queue_timeout_expires_waiters_in_order(void **state)
{
	struct vs_slots s;
	struct vs_waiter a = {.wake = wake}, q1 = {.wake = wake}, q2 = {.wake = wake};
	(void)state;
	woken = 0;
	vs_slots_init(&s, 1, 5, 1.0);
	assert_int_equal(vs_slots_acquire(&s, &a, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &q1, 100), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &q2, 600), VS_SLOT_QUEUED);
	vs_slots_expire(&s, 1099);
	assert_int_equal(woken, 0);
	vs_slots_expire(&s, 1100);
	assert_int_equal(q1.state, VS_WAIT_EXPIRED);
	assert_int_equal(q2.state, VS_WAIT_QUEUED);
	vs_slots_cancel(&s, &q1); /* expired: nothing to give back */
	vs_slots_cancel(&s, &q2); /* queued: just leaves the queue */
	struct vs_slots_snapshot snap;
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.depth, 0);
	assert_int_equal(snap.active, 1);
	vs_slots_cancel(&s, &a);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 1);
}

static void test_newcomer_does_not_jump_the_queue(void **state)
{
	struct vs_slots s;
	struct vs_waiter a = {.wake = wake}, q1 = {.wake = wake}, late = {.wake = wake};
	(void)state;
	vs_slots_init(&s, 1, 5, 30);
	assert_int_equal(vs_slots_acquire(&s, &a, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &q1, 0), VS_SLOT_QUEUED);
	vs_slots_cancel(&s, &a); /* hands over to q1 */
	assert_int_equal(vs_slots_acquire(&s, &late, 0), VS_SLOT_QUEUED);
	assert_int_equal(q1.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &q1);
	assert_int_equal(late.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &late);
}

/* ---- priority lanes ---- */

static struct vs_waiter lw(enum vs_lane lane)
{
	struct vs_waiter w = {.wake = wake, .lane = lane};
	return w;
}

static void test_reserved_slot_is_taken_only_by_high(void **state)
{
	struct vs_slots s;
	struct vs_waiter a = lw(VS_LANE_NORMAL), b = lw(VS_LANE_LOW), c = lw(VS_LANE_HIGH),
	                 d = lw(VS_LANE_HIGH);
	struct vs_slots_snapshot snap;
	(void)state;
	vs_slots_init(&s, 2, 0, 30);
	vs_slots_set_lanes(&s, 1, 8);
	assert_true(vs_slots_acquire(&s, &a, 0) >= 0);
	/* one slot is free, but it is the reserved one */
	assert_int_equal(vs_slots_acquire(&s, &b, 0), -EBUSY);
	assert_true(vs_slots_acquire(&s, &c, 0) >= 0);
	assert_int_equal(vs_slots_acquire(&s, &d, 0), -EBUSY);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.reserved, 1);
	assert_int_equal(snap.lanes[VS_LANE_NORMAL].active, 1);
	assert_int_equal(snap.lanes[VS_LANE_HIGH].active, 1);
	assert_int_equal(snap.lanes[VS_LANE_LOW].rejected_busy, 1);
	assert_int_equal(snap.lanes[VS_LANE_HIGH].rejected_busy, 1);
	assert_int_equal(snap.lanes[VS_LANE_NORMAL].rejected_busy, 0);
	vs_slots_cancel(&s, &a);
	vs_slots_cancel(&s, &c);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 2);
}

static void test_reservation_counts_slots_not_indexes(void **state)
{
	/* high may take any slot; the reservation is "at most max - reserved
	 * slots serve other lanes", so normal still gets the slot high left */
	struct vs_slots s;
	struct vs_waiter h1 = lw(VS_LANE_HIGH), n1 = lw(VS_LANE_NORMAL), n2 = lw(VS_LANE_NORMAL),
	                 h2 = lw(VS_LANE_HIGH);
	(void)state;
	vs_slots_init(&s, 2, 0, 30);
	vs_slots_set_lanes(&s, 1, 8);
	assert_true(vs_slots_acquire(&s, &h1, 0) >= 0);
	assert_true(vs_slots_acquire(&s, &n1, 0) >= 0);
	assert_int_equal(vs_slots_acquire(&s, &n2, 0), -EBUSY);
	assert_int_equal(vs_slots_acquire(&s, &h2, 0), -EBUSY);
	vs_slots_cancel(&s, &h1);
	assert_int_equal(vs_slots_acquire(&s, &n2, 0), -EBUSY); /* reserved again */
	assert_true(vs_slots_acquire(&s, &h2, 0) >= 0);
	vs_slots_cancel(&s, &n1);
	vs_slots_cancel(&s, &h2);
}

static void test_lane_queue_serves_high_first_fifo_within_a_lane(void **state)
{
	struct vs_slots s;
	struct vs_waiter hold = lw(VS_LANE_NORMAL), n1 = lw(VS_LANE_NORMAL), l1 = lw(VS_LANE_LOW),
	                 n2 = lw(VS_LANE_NORMAL), h1 = lw(VS_LANE_HIGH), h2 = lw(VS_LANE_HIGH);
	struct vs_waiter *order[] = {&h1, &h2, &n1, &n2, &l1};
	struct vs_slots_snapshot snap;
	(void)state;
	vs_slots_init(&s, 1, 5, 30);
	vs_slots_set_lanes(&s, 0, 100);
	assert_int_equal(vs_slots_acquire(&s, &hold, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &n1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &l1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &n2, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &h1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &h2, 0), VS_SLOT_QUEUED);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.depth, 5);
	assert_int_equal(snap.lanes[VS_LANE_HIGH].depth, 2);
	assert_int_equal(snap.lanes[VS_LANE_NORMAL].depth, 2);
	assert_int_equal(snap.lanes[VS_LANE_LOW].depth, 1);
	struct vs_waiter *prev = &hold;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		woken = 0;
		vs_slots_cancel(&s, prev); /* hands the one slot over */
		assert_int_equal(woken, 1);
		assert_int_equal(order[i]->state, VS_WAIT_GRANTED);
		assert_int_equal(order[i]->slot, 0);
		for (size_t j = i + 1; j < sizeof(order) / sizeof(order[0]); j++)
			assert_int_equal(order[j]->state, VS_WAIT_QUEUED);
		prev = order[i];
	}
	vs_slots_cancel(&s, prev);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 1);
	assert_int_equal(snap.depth, 0);
}

static void test_low_waits_at_most_max_skips_hand_overs(void **state)
{
	struct vs_slots s;
	struct vs_waiter hold = lw(VS_LANE_NORMAL), l1 = lw(VS_LANE_LOW), n[4],
	                 hi = lw(VS_LANE_HIGH);
	(void)state;
	for (int i = 0; i < 4; i++)
		n[i] = lw(VS_LANE_NORMAL);
	vs_slots_init(&s, 1, 8, 30);
	vs_slots_set_lanes(&s, 0, 2);
	assert_int_equal(vs_slots_acquire(&s, &hold, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &l1, 0), VS_SLOT_QUEUED);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vs_slots_acquire(&s, &n[i], 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &hi, 0), VS_SLOT_QUEUED);
	/* two hand-overs pass low by (high first, then a normal one) ... */
	vs_slots_cancel(&s, &hold);
	assert_int_equal(hi.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &hi);
	assert_int_equal(n[0].state, VS_WAIT_GRANTED);
	assert_int_equal(l1.state, VS_WAIT_QUEUED);
	/* ... the third goes to low, ahead of the normal ones queued before */
	vs_slots_cancel(&s, &n[0]);
	assert_int_equal(l1.state, VS_WAIT_GRANTED);
	assert_int_equal(n[1].state, VS_WAIT_QUEUED);
	vs_slots_cancel(&s, &l1);
	assert_int_equal(n[1].state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &n[1]);
	vs_slots_cancel(&s, &n[2]);
	vs_slots_cancel(&s, &n[3]);
	struct vs_slots_snapshot snap;
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 1);
	assert_int_equal(snap.depth, 0);
}

static void test_low_skip_count_starts_again_with_the_next_low_request(void **state)
{
	struct vs_slots s;
	struct vs_waiter hold = lw(VS_LANE_NORMAL), l1 = lw(VS_LANE_LOW), l2 = lw(VS_LANE_LOW),
	                 n1 = lw(VS_LANE_NORMAL), n2 = lw(VS_LANE_NORMAL), n3 = lw(VS_LANE_NORMAL);
	(void)state;
	vs_slots_init(&s, 1, 8, 30);
	vs_slots_set_lanes(&s, 0, 2);
	assert_int_equal(vs_slots_acquire(&s, &hold, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &l1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &n1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &n2, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &n3, 0), VS_SLOT_QUEUED);
	vs_slots_cancel(&s, &hold); /* one skip */
	assert_int_equal(n1.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &l1); /* low leaves (its client went away) */
	assert_int_equal(vs_slots_acquire(&s, &l2, 0), VS_SLOT_QUEUED);
	vs_slots_cancel(&s, &n1); /* the new low request's first skip, not its second */
	assert_int_equal(n2.state, VS_WAIT_GRANTED);
	assert_int_equal(l2.state, VS_WAIT_QUEUED);
	vs_slots_cancel(&s, &n2);
	assert_int_equal(n3.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &n3);
	assert_int_equal(l2.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &l2);
}

static void test_queue_bound_is_per_lane(void **state)
{
	struct vs_slots s;
	struct vs_waiter hold = lw(VS_LANE_NORMAL), n1 = lw(VS_LANE_NORMAL),
	                 n2 = lw(VS_LANE_NORMAL), h1 = lw(VS_LANE_HIGH), h2 = lw(VS_LANE_HIGH),
	                 l1 = lw(VS_LANE_LOW);
	struct vs_slots_snapshot snap;
	(void)state;
	vs_slots_init(&s, 1, 1, 30);
	vs_slots_set_lanes(&s, 0, 8);
	assert_int_equal(vs_slots_acquire(&s, &hold, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &n1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &n2, 0), -ENOSPC);
	/* a normal queue full never refuses high (or low) */
	assert_int_equal(vs_slots_acquire(&s, &h1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &l1, 0), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &h2, 0), -ENOSPC);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.depth, 3);
	assert_int_equal(snap.lanes[VS_LANE_NORMAL].rejected_queue_full, 1);
	assert_int_equal(snap.lanes[VS_LANE_HIGH].rejected_queue_full, 1);
	assert_int_equal(snap.lanes[VS_LANE_LOW].rejected_queue_full, 0);
	vs_slots_cancel(&s, &n1);
	vs_slots_cancel(&s, &h1);
	vs_slots_cancel(&s, &l1);
	vs_slots_cancel(&s, &hold);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 1);
}

static void test_a_freed_slot_stays_reserved_and_a_high_newcomer_takes_it(void **state)
{
	struct vs_slots s;
	struct vs_waiter a = lw(VS_LANE_NORMAL), b = lw(VS_LANE_HIGH), c = lw(VS_LANE_NORMAL),
	                 d = lw(VS_LANE_HIGH);
	struct vs_slots_snapshot snap;
	(void)state;
	woken = 0;
	vs_slots_init(&s, 2, 2, 30);
	vs_slots_set_lanes(&s, 1, 8);
	assert_true(vs_slots_acquire(&s, &a, 0) >= 0);
	assert_true(vs_slots_acquire(&s, &b, 0) >= 0);
	assert_int_equal(vs_slots_acquire(&s, &c, 0), VS_SLOT_QUEUED);
	/* high's slot comes back: normal c may not have it (a holds the one
	 * normal slot), so it stays free for the next high request */
	vs_slots_cancel(&s, &b);
	assert_int_equal(woken, 0);
	assert_int_equal(c.state, VS_WAIT_QUEUED);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 1);
	assert_int_equal(snap.depth, 1);
	assert_true(vs_slots_acquire(&s, &d, 0) >= 0); /* at once, though c waits */
	vs_slots_cancel(&s, &a);                       /* the normal slot: to c */
	assert_int_equal(c.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &c);
	vs_slots_cancel(&s, &d);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 2);
	assert_int_equal(snap.lanes[VS_LANE_NORMAL].active, 0);
	assert_int_equal(snap.lanes[VS_LANE_HIGH].active, 0);
}

static void test_try_respects_the_reservation(void **state)
{
	struct vs_slots s;
	struct vs_waiter a = lw(VS_LANE_NORMAL), b = lw(VS_LANE_NORMAL), c = lw(VS_LANE_HIGH);
	(void)state;
	vs_slots_init(&s, 2, 0, 30);
	vs_slots_set_lanes(&s, 1, 8);
	assert_true(vs_slots_try(&s, &a) >= 0);
	assert_int_equal(vs_slots_try(&s, &b), -EBUSY);
	assert_true(vs_slots_try(&s, &c) >= 0);
	vs_slots_cancel(&s, &a);
	vs_slots_cancel(&s, &c);
}

static void test_queue_timeout_expires_each_lane_in_order(void **state)
{
	struct vs_slots s;
	struct vs_waiter hold = lw(VS_LANE_NORMAL), n1 = lw(VS_LANE_NORMAL), h1 = lw(VS_LANE_HIGH),
	                 l1 = lw(VS_LANE_LOW);
	struct vs_slots_snapshot snap;
	(void)state;
	woken = 0;
	vs_slots_init(&s, 1, 4, 1.0);
	vs_slots_set_lanes(&s, 0, 8);
	assert_int_equal(vs_slots_acquire(&s, &hold, 0), 0);
	assert_int_equal(vs_slots_acquire(&s, &l1, 100), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &n1, 200), VS_SLOT_QUEUED);
	assert_int_equal(vs_slots_acquire(&s, &h1, 300), VS_SLOT_QUEUED);
	vs_slots_expire(&s, 1250);
	assert_int_equal(woken, 2);
	assert_int_equal(l1.state, VS_WAIT_EXPIRED);
	assert_int_equal(n1.state, VS_WAIT_EXPIRED);
	assert_int_equal(h1.state, VS_WAIT_QUEUED);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.lanes[VS_LANE_LOW].queue_timeouts, 1);
	assert_int_equal(snap.lanes[VS_LANE_NORMAL].queue_timeouts, 1);
	assert_int_equal(snap.lanes[VS_LANE_HIGH].depth, 1);
	vs_slots_cancel(&s, &hold);
	assert_int_equal(h1.state, VS_WAIT_GRANTED);
	vs_slots_cancel(&s, &h1);
	vs_slots_cancel(&s, &l1);
	vs_slots_cancel(&s, &n1);
}

static void test_a_lowered_limit_shrinks_the_reservation_and_keeps_lane_order(void **state)
{
	struct vs_slots s;
	struct vs_waiter a = lw(VS_LANE_NORMAL), b = lw(VS_LANE_NORMAL), h1 = lw(VS_LANE_HIGH),
	                 h2 = lw(VS_LANE_HIGH);
	(void)state;
	woken = 0;
	vs_slots_init(&s, 4, 4, 30);
	vs_slots_set_lanes(&s, 2, 8);
	vs_slots_set_limit(&s, 2); /* memory pressure: two slots, one of them high's */
	assert_true(vs_slots_acquire(&s, &a, 0) >= 0);
	assert_int_equal(vs_slots_acquire(&s, &b, 0), VS_SLOT_QUEUED);
	assert_true(vs_slots_acquire(&s, &h1, 0) >= 0);
	assert_int_equal(vs_slots_acquire(&s, &h2, 0), VS_SLOT_QUEUED);
	/* over the limit nothing is handed over, whatever the lane */
	vs_slots_set_limit(&s, 1);
	vs_slots_cancel(&s, &h1);
	assert_int_equal(woken, 0);
	assert_int_equal(h2.state, VS_WAIT_QUEUED);
	/* all four back: high first, then normal (2 may serve it again) */
	vs_slots_set_limit(&s, 4);
	assert_int_equal(woken, 2);
	assert_int_equal(h2.state, VS_WAIT_GRANTED);
	assert_int_equal(b.state, VS_WAIT_GRANTED);
	struct vs_slots_snapshot snap;
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.lanes[VS_LANE_HIGH].active, 1);
	assert_int_equal(snap.lanes[VS_LANE_NORMAL].active, 2);
	assert_int_equal(snap.depth, 0);
	vs_slots_cancel(&s, &a);
	vs_slots_cancel(&s, &b);
	vs_slots_cancel(&s, &h2);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.available, 4);
}

static void test_lane_names_parse_both_ways(void **state)
{
	enum vs_lane l = VS_LANE_NORMAL;
	(void)state;
	assert_true(vs_lane_parse("HIGH", 4, &l));
	assert_int_equal(l, VS_LANE_HIGH);
	assert_true(vs_lane_parse("low", 3, &l));
	assert_int_equal(l, VS_LANE_LOW);
	assert_true(vs_lane_parse("Normal", 6, &l));
	assert_int_equal(l, VS_LANE_NORMAL);
	assert_false(vs_lane_parse("urgent", 6, &l));
	assert_false(vs_lane_parse("", 0, &l));
	assert_false(vs_lane_parse("high,low", 8, &l));
	assert_false(vs_lane_parse(NULL, 0, &l));
	assert_int_equal(l, VS_LANE_NORMAL); /* untouched by a failed parse */
	assert_string_equal(vs_lane_name(VS_LANE_HIGH), "high");
	assert_string_equal(vs_lane_name(VS_LANE_NORMAL), "normal");
	assert_string_equal(vs_lane_name(VS_LANE_LOW), "low");
	/* a waiter nobody gave a lane is normal: the specification's behaviour */
	struct vs_waiter w = {0};
	assert_int_equal(w.lane, VS_LANE_NORMAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_no_queue_rejects_when_all_slots_busy),
	        cmocka_unit_test(test_queue_is_fifo_and_hands_slot_over),
	        cmocka_unit_test(test_queue_timeout_expires_waiters_in_order),
	        cmocka_unit_test(test_newcomer_does_not_jump_the_queue),
	        cmocka_unit_test(test_reserved_slot_is_taken_only_by_high),
	        cmocka_unit_test(test_reservation_counts_slots_not_indexes),
	        cmocka_unit_test(test_lane_queue_serves_high_first_fifo_within_a_lane),
	        cmocka_unit_test(test_low_waits_at_most_max_skips_hand_overs),
	        cmocka_unit_test(test_low_skip_count_starts_again_with_the_next_low_request),
	        cmocka_unit_test(test_queue_bound_is_per_lane),
	        cmocka_unit_test(test_a_freed_slot_stays_reserved_and_a_high_newcomer_takes_it),
	        cmocka_unit_test(test_try_respects_the_reservation),
	        cmocka_unit_test(test_queue_timeout_expires_each_lane_in_order),
	        cmocka_unit_test(test_a_lowered_limit_shrinks_the_reservation_and_keeps_lane_order),
	        cmocka_unit_test(test_lane_names_parse_both_ways),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
