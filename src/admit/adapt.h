/* adapt.h - admission that adapts to the machine: the slot count `auto`
 * derives at start-up, and the slot limit memory pressure shrinks.
 *
 * DESIGN
 * Pure policy, no I/O (the guard reads memory and PSI; start-up and the
 * reactor tick call these with its readings), so every rule is a unit test.
 *
 * auto slots (ASR_/TTS_MAX_CONCURRENT_REQUESTS=auto): as many slots as
 * models of the service's largest size fit in the memory that is still
 * free under MEMORY_THRESHOLD_PERCENT, capped by the CPU cores (each slot
 * is a process decoding on one core), at least 1. The size is what the
 * model's last load measured, or before any load the engine's typical
 * size (catalog.c), which the derivation says.
 *
 * pressure (MEMORY_PRESSURE_SHRINK_PERCENT): while PSI "some avg10" is above
 * the bound, at most half the slots (at least 1) may be busy; the limit is
 * restored once avg10 has stayed below half the bound for `calm_s` seconds
 * (hysteresis, so a stall that comes and goes does not flap the limit).
 */
#ifndef VS_ADAPT_H
#define VS_ADAPT_H

#include <stdbool.h>
#include <stdint.h>

struct vs_auto_slots {
	int slots;         /* the result */
	int cores;         /* the cap */
	int fit;           /* how many models fit (may be 0) */
	double room_mb;    /* memory free under the threshold */
	double model_mb;   /* the size assumed per slot */
	const char *model; /* the model of that size */
	bool measured;     /* model_mb from a load, not the engine's typical size */
};

/* Fills a: total/available MB of the machine (or cgroup), the threshold in
 * percent, the largest model's size and whether it was measured, the cores.
 * Returns a->slots, 1..max_slots. */
int vs_auto_slots(struct vs_auto_slots *a, double total_mb, double available_mb, int threshold_pct,
                  const char *model, double model_mb, bool measured, int cores, int max_slots);

struct vs_pressure_ctl {
	double shrink_pct; /* 0 = off */
	double calm_s;     /* below half the bound this long restores the limit */
	bool shrunk;
	uint64_t calm_since_ms; /* 0 = not calm */
};

enum { VS_PRESSURE_KEEP = 0, VS_PRESSURE_SHRINK = 1, VS_PRESSURE_RESTORE = 2 };

/* One reading (known: PSI available). Returns what to do with the limit. */
int vs_pressure_step(struct vs_pressure_ctl *c, bool known, double avg10, uint64_t now_ms);
/* the limit while shrunk: half of max, at least 1 */
int vs_pressure_limit(int max);

#endif
