/* time.h - the one clock of the code base.
 *
 * Milliseconds of CLOCK_MONOTONIC everywhere inside the code (deadlines,
 * durations, idle times); seconds and minutes exist only at the edges
 * (settings, headers, JSON). Monotonic, so a wall-clock jump never fires a
 * timeout or stretches one.
 */
#ifndef VS_COMMON_TIME_H
#define VS_COMMON_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t vs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
