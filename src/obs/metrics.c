/* metrics.c - Prometheus registry and text rendering; see metrics.h.
 *
 * DESIGN
 * A metric is a name, a kind, its label names and a fixed array of series
 * (one per label-value combination, created on first use). Series are never
 * removed, so label sets stay stable across scrapes, as Prometheus expects.
 * Histogram series keep non-cumulative bucket counts (the last one is +Inf);
 * rendering sums them, so _count always equals the +Inf bucket.
 */
#include "obs/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM, K_GAUGE_FN };

static const char *const kind_name[] = {"counter", "gauge", "histogram", "gauge"};

struct series {
	uint64_t hash;
	char *values[VS_METRIC_MAX_LABELS];
	double value;      /* counter, gauge */
	double sum;        /* histogram */
	uint64_t counts[]; /* histogram: nbounds + 1, not cumulative */
};

struct vs_metric {
	struct vs_metric *next;
	enum kind kind;
	char *name, *help;
	size_t nlabels;
	char *label_names[VS_METRIC_MAX_LABELS];
	double bounds[VS_METRIC_MAX_BUCKETS];
	size_t nbounds;
	double (*fn)(void *);
	void *opaque;

	pthread_mutex_t lock; /* guards the series below */
	struct series *series[VS_METRIC_MAX_SERIES];
	size_t nseries;
	struct series *overflow;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vs_metric *reg_head;
static struct vs_metric **reg_tail = &reg_head;

/* ---- names and label values ---- */

static bool valid_name(const char *s, bool allow_colon)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		             (allow_colon && c == ':');
		if (!alpha && !(p > s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* Copies s into out (VS_METRIC_LABEL_VALUE_MAX + 1 bytes): truncated at a
 * character boundary, invalid bytes replaced with '?'. */
static void sanitize(const char *s, char *out)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), o = 0;

	while (n > 0) {
		size_t len = utf8_len(p, n);
		size_t take = len ? len : 1; /* an invalid byte becomes one '?' */
		if (o + take > VS_METRIC_LABEL_VALUE_MAX)
			break;
		if (len)
			memcpy(out + o, p, len);
		else
			out[o] = '?';
		o += take;
		p += take;
		n -= take;
	}
	out[o] = '\0';
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return (h ^ 0xff) * 1099511628211u; /* separator: ("a","bc") != ("ab","c") */
}

/* ---- series ---- */

static void series_free(struct series *s, size_t nlabels)
{
	if (!s)
		return;
	for (size_t i = 0; i < nlabels; i++)
		free(s->values[i]);
	free(s);
}

static struct series *series_new(const struct vs_metric *m, const char *const *vals, uint64_t hash)
{
	size_t nc = m->kind == K_HISTOGRAM ? m->nbounds + 1 : 0;
	struct series *s = calloc(1, sizeof(*s) + nc * sizeof(s->counts[0]));

	if (!s)
		return NULL;
	s->hash = hash;
	for (size_t i = 0; i < m->nlabels; i++) {
		s->values[i] = strdup(vals[i]);
		if (!s->values[i]) {
			series_free(s, m->nlabels);
			return NULL;
		}
	}
	return s;
}

/* The series for these label values, created if needed. Lock held. NULL only
 * on ENOMEM (the update is then dropped). */
static struct series *get_series(struct vs_metric *m, const char *const *label_values)
{
	char buf[VS_METRIC_MAX_LABELS][VS_METRIC_LABEL_VALUE_MAX + 1];
	const char *vals[VS_METRIC_MAX_LABELS];
	uint64_t h = 14695981039346656037u;

	for (size_t i = 0; i < m->nlabels; i++) {
		sanitize(label_values ? label_values[i] : NULL, buf[i]);
		vals[i] = buf[i];
		h = fnv1a(h, vals[i]);
	}
	for (size_t i = 0; i < m->nseries; i++) {
		struct series *s = m->series[i];
		size_t j = 0;
		if (s->hash != h)
			continue;
		while (j < m->nlabels && strcmp(s->values[j], vals[j]) == 0)
			j++;
		if (j == m->nlabels)
			return s;
	}
	if (m->nseries < VS_METRIC_MAX_SERIES) {
		struct series *s = series_new(m, vals, h);
		if (s)
			m->series[m->nseries++] = s;
		return s;
	}
	if (!m->overflow) {
		for (size_t i = 0; i < m->nlabels; i++)
			vals[i] = "overflow";
		m->overflow = series_new(m, vals, 0);
	}
	return m->overflow;
}

/* ---- registration ---- */

static void metric_free(struct vs_metric *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nseries; i++)
		series_free(m->series[i], m->nlabels);
	series_free(m->overflow, m->nlabels);
	for (size_t i = 0; i < m->nlabels; i++)
		free(m->label_names[i]);
	free(m->name);
	free(m->help);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* Whether an existing metric has exactly this shape (so it can be shared). */
static bool same_shape(const struct vs_metric *a, const struct vs_metric *b)
{
	if (a->kind != b->kind || a->nlabels != b->nlabels || a->nbounds != b->nbounds)
		return false;
	if (a->kind == K_GAUGE_FN && (a->fn != b->fn || a->opaque != b->opaque))
		return false;
	for (size_t i = 0; i < a->nlabels; i++)
		if (strcmp(a->label_names[i], b->label_names[i]) != 0)
			return false;
	for (size_t i = 0; i < a->nbounds; i++)
		if (a->bounds[i] != b->bounds[i])
			return false;
	return true;
}

static struct vs_metric *reg(enum kind kind, const char *name, const char *help,
                             const char *const *label_names, const double *buckets, size_t n,
                             double (*fn)(void *), void *opaque)
{
	struct vs_metric *m, *old;

	if (!valid_name(name, true) || n > VS_METRIC_MAX_BUCKETS || (n && !buckets))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
			return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->kind = kind;
	m->fn = fn;
	m->opaque = opaque;
	m->nbounds = n;
	if (n)
		memcpy(m->bounds, buckets, n * sizeof(buckets[0]));
	m->name = strdup(name);
	m->help = strdup(help ? help : "");
	if (!m->name || !m->help)
		goto fail;
	for (size_t i = 0; label_names && label_names[i]; i++) {
		const char *l = label_names[i];
		/* "__" is reserved by Prometheus; "le" is the histogram bucket label */
		if (i >= VS_METRIC_MAX_LABELS || !valid_name(l, false) ||
		    strncmp(l, "__", 2) == 0 || (kind == K_HISTOGRAM && strcmp(l, "le") == 0))
			goto fail;
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->label_names[j], l) == 0)
				goto fail;
		m->label_names[i] = strdup(l);
		if (!m->label_names[i])
			goto fail;
		m->nlabels = i + 1;
	}
	/* a metric without labels has exactly one series: create it so it shows 0 */
	if (m->nlabels == 0 && kind != K_GAUGE_FN && !get_series(m, NULL))
		goto fail;

	pthread_mutex_lock(&reg_lock);
	for (old = reg_head; old; old = old->next)
		if (strcmp(old->name, name) == 0)
			break;
	if (!old) {
		*reg_tail = m;
		reg_tail = &m->next;
	}
	pthread_mutex_unlock(&reg_lock);
	if (!old)
		return m;
	bool same = same_shape(old, m);
	metric_free(m);
	return same ? old : NULL;
fail:
	metric_free(m);
	return NULL;
}

struct vs_metric *vs_metric_counter(const char *name, const char *help,
                                    const char *const *label_names)
{
	return reg(K_COUNTER, name, help, label_names, NULL, 0, NULL, NULL);
}

struct vs_metric *vs_metric_gauge(const char *name, const char *help,
                                  const char *const *label_names)
{
	return reg(K_GAUGE, name, help, label_names, NULL, 0, NULL, NULL);
}

struct vs_metric *vs_metric_histogram(const char *name, const char *help,
                                      const char *const *label_names, const double *buckets,
                                      size_t n)
{
	return reg(K_HISTOGRAM, name, help, label_names, buckets, n, NULL, NULL);
}

struct vs_metric *vs_metric_gauge_fn(const char *name, const char *help, double (*fn)(void *opaque),
                                     void *opaque)
{
	if (!fn)
		return NULL;
	return reg(K_GAUGE_FN, name, help, NULL, NULL, 0, fn, opaque);
}

/* ---- updates ---- */

static void update(struct vs_metric *m, enum kind kind, const char *const *label_values, double v,
                   bool add)
{
	if (!m || m->kind != kind)
		return;
	pthread_mutex_lock(&m->lock);
	struct series *s = get_series(m, label_values);
	if (s && kind == K_HISTOGRAM) {
		size_t i = 0;
		while (i < m->nbounds && v > m->bounds[i])
			i++;
		s->counts[i]++;
		s->sum += v;
	} else if (s) {
		s->value = add ? s->value + v : v;
	}
	pthread_mutex_unlock(&m->lock);
}

void vs_counter_add(struct vs_metric *m, const char *const *label_values, double v)
{
	if (v >= 0) /* also false for NaN: counters only go up */
		update(m, K_COUNTER, label_values, v, true);
}

void vs_counter_inc(struct vs_metric *m, const char *const *label_values)
{
	update(m, K_COUNTER, label_values, 1.0, true);
}

void vs_gauge_set(struct vs_metric *m, const char *const *label_values, double v)
{
	update(m, K_GAUGE, label_values, v, false);
}

void vs_gauge_add(struct vs_metric *m, const char *const *label_values, double v)
{
	update(m, K_GAUGE, label_values, v, true);
}

void vs_histogram_observe(struct vs_metric *m, const char *const *label_values, double v)
{
	if (!isnan(v))
		update(m, K_HISTOGRAM, label_values, v, true);
}

/* ---- rendering ---- */

/* Shortest text that parses back to the same double. */
static void put_double(FILE *f, double v)
{
	char buf[40];

	if (isnan(v)) {
		fputs("NaN", f);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", f);
		return;
	}
	/* whole numbers (counters, byte sizes) in full rather than as 4e+05 */
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		fprintf(f, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, f);
}

/* Help text escapes \ and newline; label values also escape '"'. */
static void put_escaped(FILE *f, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (quote && *s == '"')
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

/* {a="x",b="y"[,le="..."]}; nothing when there are no labels and no le. */
static void put_labels(FILE *f, const struct vs_metric *m, const struct series *s, const double *le)
{
	if (m->nlabels == 0 && !le)
		return;
	fputc('{', f);
	for (size_t i = 0; i < m->nlabels; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "", m->label_names[i]);
		put_escaped(f, s->values[i], true);
		fputc('"', f);
	}
	if (le) {
		fprintf(f, "%sle=\"", m->nlabels ? "," : "");
		put_double(f, *le);
		fputc('"', f);
	}
	fputc('}', f);
}

static void put_series(FILE *f, const struct vs_metric *m, const struct series *s)
{
	if (m->kind != K_HISTOGRAM) {
		fputs(m->name, f);
		put_labels(f, m, s, NULL);
		fputc(' ', f);
		put_double(f, s->value);
		fputc('\n', f);
		return;
	}
	uint64_t cum = 0;
	for (size_t i = 0; i <= m->nbounds; i++) {
		double le = i < m->nbounds ? m->bounds[i] : INFINITY;
		cum += s->counts[i];
		fprintf(f, "%s_bucket", m->name);
		put_labels(f, m, s, &le);
		fprintf(f, " %" PRIu64 "\n", cum);
	}
	fprintf(f, "%s_sum", m->name);
	put_labels(f, m, s, NULL);
	fputc(' ', f);
	put_double(f, s->sum);
	fprintf(f, "\n%s_count", m->name);
	put_labels(f, m, s, NULL);
	fprintf(f, " %" PRIu64 "\n", cum);
}

static void put_metric(FILE *f, struct vs_metric *m)
{
	fprintf(f, "# HELP %s ", m->name);
	put_escaped(f, m->help, false);
	fprintf(f, "\n# TYPE %s %s\n", m->name, kind_name[m->kind]);
	if (m->kind == K_GAUGE_FN) {
		/* called without any lock held: fn may take its own locks */
		fprintf(f, "%s ", m->name);
		put_double(f, m->fn(m->opaque));
		fputc('\n', f);
		return;
	}
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nseries; i++)
		put_series(f, m, m->series[i]);
	if (m->overflow)
		put_series(f, m, m->overflow);
	pthread_mutex_unlock(&m->lock);
}

char *vs_metrics_render(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	/* metrics are only appended and freed by reset (never concurrently), so
	 * the list can be walked without holding reg_lock while rendering; the
	 * lock only orders our read of each next pointer with its append */
	pthread_mutex_lock(&reg_lock);
	struct vs_metric *m = reg_head;
	pthread_mutex_unlock(&reg_lock);
	while (m) {
		put_metric(f, m);
		pthread_mutex_lock(&reg_lock);
		m = m->next;
		pthread_mutex_unlock(&reg_lock);
	}
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(text);
		return NULL;
	}
	return text;
}

void vs_metrics_reset(void)
{
	pthread_mutex_lock(&reg_lock);
	struct vs_metric *m = reg_head;
	reg_head = NULL;
	reg_tail = &reg_head;
	pthread_mutex_unlock(&reg_lock);
	while (m) {
		struct vs_metric *next = m->next;
		metric_free(m);
		m = next;
	}
}
