/* adapt.c - see adapt.h. */
#include "admit/adapt.h"

#include <math.h>

int vs_auto_slots(struct vs_auto_slots *a, double total_mb, double available_mb, int threshold_pct,
                  const char *model, double model_mb, bool measured, int cores, int max_slots)
{
	/* the threshold leaves (100 - threshold)% of total as headroom that
	 * admission never spends: room is what is free above it */
	double room = available_mb - total_mb * (100.0 - threshold_pct) / 100.0;
	int fit = model_mb > 0 ? (int)floor((room > 0 ? room : 0) / model_mb) : max_slots;
	int n = fit < cores ? fit : cores;

	if (n > max_slots)
		n = max_slots;
	if (n < 1)
		n = 1; /* a service with no slot would refuse everything: one, and the
		        * memory guard and the cold-load check still protect the machine */
	a->slots = n;
	a->cores = cores;
	a->fit = fit;
	a->room_mb = room;
	a->model_mb = model_mb;
	a->model = model;
	a->measured = measured;
	return n;
}

int vs_pressure_step(struct vs_pressure_ctl *c, bool known, double avg10, uint64_t now_ms)
{
	if (c->shrink_pct <= 0 || !known)
		return VS_PRESSURE_KEEP;
	if (avg10 > c->shrink_pct) {
		c->calm_since_ms = 0;
		if (c->shrunk)
			return VS_PRESSURE_KEEP;
		c->shrunk = true;
		return VS_PRESSURE_SHRINK;
	}
	if (!c->shrunk)
		return VS_PRESSURE_KEEP;
	if (avg10 >= c->shrink_pct / 2) {
		c->calm_since_ms = 0;
		return VS_PRESSURE_KEEP;
	}
	if (!c->calm_since_ms)
		c->calm_since_ms = now_ms ? now_ms : 1;
	if ((double)(now_ms - c->calm_since_ms) < c->calm_s * 1000.0)
		return VS_PRESSURE_KEEP;
	c->shrunk = false;
	c->calm_since_ms = 0;
	return VS_PRESSURE_RESTORE;
}

int vs_pressure_limit(int max)
{
	return max / 2 > 1 ? max / 2 : 1;
}
