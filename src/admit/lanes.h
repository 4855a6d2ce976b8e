/* lanes.h - the priority lanes a request is admitted in.
 *
 * DESIGN
 * Three lanes, high, normal (the default) and low. A request's lane comes
 * from its API key (admit/keys.h, the key file's LANE column), or from the
 * X-Voicestack-Priority header where ALLOW_CLIENT_PRIORITY lets clients
 * choose (src/http/route.c, vs_req_lane_of); slots.c serves waiters high
 * first, FIFO within a lane, keeps *_RESERVED_SLOTS for high and bounds how
 * long low waits. VS_LANE_NORMAL is 0 on purpose: anything that never set a
 * lane (a zeroed waiter, a request with no key and no header) is normal,
 * which is the specification's behaviour. Iterate in priority order with
 * vs_lane_by_rank[]. No HTTP knowledge; pure functions, thread-safe.
 */
#ifndef VS_LANES_H
#define VS_LANES_H

#include <stdbool.h>
#include <stddef.h>

enum vs_lane { VS_LANE_NORMAL = 0, VS_LANE_HIGH, VS_LANE_LOW, VS_LANES };

/* the lanes, most urgent first (the order queues are served in) */
extern const enum vs_lane vs_lane_by_rank[VS_LANES];

/* "high", "normal", "low" ("normal" for anything else) */
const char *vs_lane_name(enum vs_lane lane);

/* true and *out set when s[0..n) is a lane name (any case); false (and *out
 * untouched) otherwise, s NULL included */
bool vs_lane_parse(const char *s, size_t n, enum vs_lane *out);

#endif
