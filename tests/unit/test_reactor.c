/* test_reactor.c - the reactor's tick table refuses what it cannot run.
 *
 * A tick registered past the table's capacity used to be dropped silently:
 * the caller believed its timer ran (queue expiry, the connection watcher)
 * and it never did. Now the call fails with -ENOSPC, which the caller checks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/reactor.h"

static int fired[VS_REACTOR_MAX_TICKS + 1];

static void count(void *opaque)
{
	__atomic_add_fetch((int *)opaque, 1, __ATOMIC_SEQ_CST);
}

static void full_table_refuses_the_next_tick(void **state)
{
	(void)state;
	for (int i = 0; i < VS_REACTOR_MAX_TICKS; i++)
		assert_int_equal(vs_reactor_add_tick(count, &fired[i]), 0);
	assert_int_equal(vs_reactor_add_tick(count, &fired[VS_REACTOR_MAX_TICKS]), -ENOSPC);
	/* every accepted tick runs (TICK_MS is 100 ms) */
	for (int tries = 0; tries < 100 && __atomic_load_n(&fired[0], __ATOMIC_SEQ_CST) < 2;
	     tries++)
		usleep(20000);
	for (int i = 0; i < VS_REACTOR_MAX_TICKS; i++)
		assert_true(__atomic_load_n(&fired[i], __ATOMIC_SEQ_CST) >= 1);
	assert_int_equal(__atomic_load_n(&fired[VS_REACTOR_MAX_TICKS], __ATOMIC_SEQ_CST), 0);
	vs_reactor_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(full_table_refuses_the_next_tick),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
