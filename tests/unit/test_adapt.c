/* test_adapt.c - auto slot count and the memory-pressure shrink (adapt.c),
 * and the slot limit it drives (slots.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "admit/adapt.h"
#include "admit/slots.h"

static void test_auto_slots(void **state)
{
	struct vs_auto_slots a;
	(void)state;
	/* 24 GiB, 1 GiB used, threshold 90%: room = 23 - 2.4 GiB, 190+ models of
	 * 110 MB fit; the 2 cores cap it */
	assert_int_equal(vs_auto_slots(&a, 24576, 23552, 90, "ps", 110, false, 2, 64), 2);
	assert_int_equal(a.cores, 2);
	assert_true(a.fit > 100);
	/* 512 MiB, half used, threshold 60%: 51 MB room, no 110 MB model fits:
	 * still one slot */
	assert_int_equal(vs_auto_slots(&a, 512, 256, 60, "ps", 110, true, 8, 64), 1);
	assert_int_equal(a.fit, 0);
	assert_true(a.room_mb > 51 && a.room_mb < 52);
	/* 4 GiB, 1 GiB used, threshold 90%: 2662 MB room, 24 models, 8 cores -> 8;
	 * 64 cores -> the 24 that fit */
	assert_int_equal(vs_auto_slots(&a, 4096, 3072, 90, "ps", 110, false, 8, 64), 8);
	assert_int_equal(vs_auto_slots(&a, 4096, 3072, 90, "ps", 110, false, 64, 64), 24);
	/* over the threshold already: room negative, one slot */
	assert_int_equal(vs_auto_slots(&a, 1000, 50, 90, "ps", 110, false, 4, 64), 1);
	/* capped by the most slots there can be */
	assert_int_equal(vs_auto_slots(&a, 1e6, 1e6, 90, "t", 1, false, 128, 64), 64);
}

static void test_pressure_hysteresis(void **state)
{
	struct vs_pressure_ctl c = {.shrink_pct = 20, .calm_s = 30};
	(void)state;
	assert_int_equal(vs_pressure_step(&c, true, 5, 1000), VS_PRESSURE_KEEP);
	assert_int_equal(vs_pressure_step(&c, true, 25, 2000), VS_PRESSURE_SHRINK);
	assert_int_equal(vs_pressure_step(&c, true, 30, 3000), VS_PRESSURE_KEEP); /* once */
	/* under the bound but not under half: stays shrunk */
	assert_int_equal(vs_pressure_step(&c, true, 15, 4000), VS_PRESSURE_KEEP);
	/* calm, but not for 30 s yet */
	assert_int_equal(vs_pressure_step(&c, true, 5, 10000), VS_PRESSURE_KEEP);
	assert_int_equal(vs_pressure_step(&c, true, 5, 39000), VS_PRESSURE_KEEP);
	/* a new stall restarts the calm period */
	assert_int_equal(vs_pressure_step(&c, true, 12, 39500), VS_PRESSURE_KEEP);
	assert_int_equal(vs_pressure_step(&c, true, 5, 40000), VS_PRESSURE_KEEP);
	assert_int_equal(vs_pressure_step(&c, true, 5, 69000), VS_PRESSURE_KEEP);
	assert_int_equal(vs_pressure_step(&c, true, 5, 70000), VS_PRESSURE_RESTORE);
	assert_int_equal(vs_pressure_step(&c, true, 5, 71000), VS_PRESSURE_KEEP);
	/* unknown pressure (no PSI) or off: never acts */
	assert_int_equal(vs_pressure_step(&c, false, 99, 80000), VS_PRESSURE_KEEP);
	c.shrink_pct = 0;
	assert_int_equal(vs_pressure_step(&c, true, 99, 90000), VS_PRESSURE_KEEP);
	assert_int_equal(vs_pressure_limit(4), 2);
	assert_int_equal(vs_pressure_limit(3), 1);
	assert_int_equal(vs_pressure_limit(1), 1);
}

static int woken;
static void wake(struct vs_waiter *w)
{
	(void)w;
	woken++;
}

/* lowering the limit lets busy slots finish and admits nobody over it;
 * raising it wakes waiters at once */
static void test_slot_limit(void **state)
{
	struct vs_slots s;
	struct vs_waiter w[4] = {{.wake = wake}, {.wake = wake}, {.wake = wake}, {.wake = wake}};
	struct vs_slots_snapshot snap;
	(void)state;
	vs_slots_init(&s, 4, 4, 30);
	assert_true(vs_slots_acquire(&s, &w[0], 0) >= 0);
	assert_true(vs_slots_acquire(&s, &w[1], 0) >= 0);
	vs_slots_set_limit(&s, 1);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.limit, 1);
	assert_int_equal(snap.available, 0);
	assert_int_equal(vs_slots_acquire(&s, &w[2], 0), VS_SLOT_QUEUED);
	/* one busy slot finishes: 1 still busy = the limit, the waiter waits */
	vs_slots_cancel(&s, &w[0]);
	assert_int_equal(w[2].state, VS_WAIT_QUEUED);
	assert_int_equal(woken, 0);
	vs_slots_set_limit(&s, 4);
	assert_int_equal(w[2].state, VS_WAIT_GRANTED);
	assert_int_equal(woken, 1);
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.active, 2);
	assert_int_equal(snap.available, 2);
	vs_slots_set_limit(&s, 0); /* clamped to 1 */
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.limit, 1);
	vs_slots_set_limit(&s, 99); /* clamped to max */
	vs_slots_snapshot(&s, &snap);
	assert_int_equal(snap.limit, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_auto_slots),
	        cmocka_unit_test(test_pressure_hysteresis),
	        cmocka_unit_test(test_slot_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
