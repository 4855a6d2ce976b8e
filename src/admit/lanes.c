/* lanes.c - lane names, see lanes.h. */
#include "admit/lanes.h"

#include <string.h>
#include <strings.h>

const enum vs_lane vs_lane_by_rank[VS_LANES] = {VS_LANE_HIGH, VS_LANE_NORMAL, VS_LANE_LOW};

static const char *const names[VS_LANES] = {
        [VS_LANE_HIGH] = "high",
        [VS_LANE_NORMAL] = "normal",
        [VS_LANE_LOW] = "low",
};

const char *vs_lane_name(enum vs_lane lane)
{
	return (unsigned)lane < VS_LANES ? names[lane] : "normal";
}

bool vs_lane_parse(const char *s, size_t n, enum vs_lane *out)
{
	for (int i = 0; s && i < VS_LANES; i++) {
		if (strlen(names[i]) == n && strncasecmp(names[i], s, n) == 0) {
			*out = (enum vs_lane)i;
			return true;
		}
	}
	return false;
}
