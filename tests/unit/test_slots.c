/* test_slots.c - concurrency slots and the FIFO queue. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_no_queue_rejects_when_all_slots_busy),
	        cmocka_unit_test(test_queue_is_fifo_and_hands_slot_over),
	        cmocka_unit_test(test_queue_timeout_expires_waiters_in_order),
	        cmocka_unit_test(test_newcomer_does_not_jump_the_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
