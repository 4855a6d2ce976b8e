/* metrics.h - a small Prometheus registry: counters, gauges, histograms.
 *
 * DESIGN
 * Owns every metric the front exports and their rendering in the text
 * exposition format 0.0.4 (GET /metrics). Modules register their metrics once
 * at start-up (registration is idempotent: the same name, kind and labels give
 * back the same handle, so two modules may share a metric) and update them
 * from any thread. No dependencies beyond libc and pthreads.
 *
 * Bounded memory: at most VS_METRIC_MAX_LABELS labels per metric and
 * VS_METRIC_MAX_SERIES label-value combinations per metric; further
 * combinations are counted in one series whose label values are all
 * "overflow". Label values longer than VS_METRIC_LABEL_VALUE_MAX bytes are
 * truncated and invalid UTF-8 bytes are replaced with '?', because callers may
 * pass client-supplied strings and Prometheus rejects invalid UTF-8.
 *
 * Concurrency: one mutex per metric guards its series; the registry list has
 * its own mutex. Updates are short (a lookup among a handful of series) and
 * speech requests are slow, so a lock per update costs nothing measurable.
 *
 * label_names and label_values are arrays: label_names is NULL-terminated
 * (NULL or {NULL} = no labels); label_values has one entry per label name (may
 * be NULL when the metric has no labels; a NULL entry counts as "").
 */
#ifndef VS_METRICS_H
#define VS_METRICS_H

#include <stddef.h>

#define VS_METRIC_MAX_LABELS 4
#define VS_METRIC_MAX_SERIES 256
#define VS_METRIC_MAX_BUCKETS 32
#define VS_METRIC_LABEL_VALUE_MAX 128

struct vs_metric;

/* Register (or find) a metric. Returns NULL when a name is invalid, the name
 * is taken by a metric of another kind/labels/buckets, the limits above are
 * exceeded, or memory runs out. Handles stay valid until vs_metrics_reset(). */
struct vs_metric *vs_metric_counter(const char *name, const char *help,
                                    const char *const *label_names);
struct vs_metric *vs_metric_gauge(const char *name, const char *help,
                                  const char *const *label_names);
/* buckets: finite, strictly increasing upper bounds; +Inf is always added. */
struct vs_metric *vs_metric_histogram(const char *name, const char *help,
                                      const char *const *label_names, const double *buckets,
                                      size_t n);
/* A gauge without labels whose value is fn(opaque), called at render time
 * (from the rendering thread; fn must not call into this registry). */
struct vs_metric *vs_metric_gauge_fn(const char *name, const char *help, double (*fn)(void *opaque),
                                     void *opaque);

/* Updates. m may be NULL (ignored), so a failed registration is not fatal.
 * Counters ignore negative and NaN increments; histograms ignore NaN. */
void vs_counter_add(struct vs_metric *m, const char *const *label_values, double v);
void vs_counter_inc(struct vs_metric *m, const char *const *label_values);
void vs_gauge_set(struct vs_metric *m, const char *const *label_values, double v);
void vs_gauge_add(struct vs_metric *m, const char *const *label_values, double v);
void vs_histogram_observe(struct vs_metric *m, const char *const *label_values, double v);

/* The whole registry as exposition text (Content-Type:
 * "text/plain; version=0.0.4; charset=utf-8"), malloc'd; NULL on ENOMEM.
 * Metrics appear in registration order, series in creation order. */
char *vs_metrics_render(void);

/* Frees every metric; previous handles become invalid. For tests; must not
 * run concurrently with any other call. */
void vs_metrics_reset(void);

#endif
