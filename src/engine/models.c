/* models.c - the model catalogue: built-in models, MODELS_FILE, printing.
 *
 * DESIGN
 * See models.h for the format. Everything is checked here, before any
 * worker starts: a line's engine exists and serves the line's service, each
 * key is known (a limit, or an option the engine lists), numbers parse, and
 * vs_models_finish() checks what needs the whole file. Strings are copied
 * (the text may be freed), the structure is fixed-size otherwise.
 */
#include "engine/models.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* names clients written for OpenAI or for the original specification send;
 * unclaimed ones go to the service's default model (vs_models_finish) */
static const char *const std_asr_names[] = {"whisper-1",
                                            "gpt-4o-transcribe",
                                            "gpt-4o-mini-transcribe",
                                            "tiny",
                                            "base",
                                            "small",
                                            "medium",
                                            "large",
                                            "large-v2",
                                            "large-v3",
                                            "turbo",
                                            NULL};
static const char *const std_tts_names[] = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", NULL};

static int fail(char *err, size_t errlen, const char *source, int line, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const char *source, int line, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err, errlen, "%s:%d: %s", source, line, msg);
	else
		snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}

static void model_free(struct vs_model *m)
{
	for (int i = 0; i < m->n_options; i++)
		free(m->options[i]);
	for (int i = 0; i < m->n_aliases; i++)
		free(m->aliases[i]);
	memset(m, 0, sizeof(*m));
}

void vs_models_free(struct vs_models *ms)
{
	for (int i = 0; i < ms->n; i++)
		model_free(&ms->m[i]);
	ms->n = 0;
}

static bool name_ok(const char *s)
{
	if (!*s || strlen(s) >= VS_MODEL_ID_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.:", *s))
			return false;
	return true;
}

/* sets option "key=value", replacing an earlier value of the same key */
static int set_option(struct vs_model *m, const char *kv, size_t klen)
{
	char *copy = strdup(kv);

	if (!copy)
		return -ENOMEM;
	for (int i = 0; i < m->n_options; i++)
		if (strncmp(m->options[i], kv, klen + 1) == 0) {
			free(m->options[i]);
			m->options[i] = copy;
			return 0;
		}
	if (m->n_options == VS_MODEL_OPTIONS_MAX) {
		free(copy);
		return -ENOSPC;
	}
	m->options[m->n_options++] = copy;
	return 0;
}

static bool has_alias(const struct vs_model *m, const char *name)
{
	for (int i = 0; i < m->n_aliases; i++)
		if (strcmp(m->aliases[i], name) == 0)
			return true;
	return false;
}

static int add_alias(struct vs_model *m, const char *name)
{
	if (has_alias(m, name))
		return 0;
	if (m->n_aliases == VS_MODEL_ALIASES_MAX)
		return -ENOSPC;
	if (!(m->aliases[m->n_aliases] = strdup(name)))
		return -ENOMEM;
	m->n_aliases++;
	return 0;
}

/* aliases=a,b,c replaces the aliases given so far */
static int set_aliases(struct vs_model *m, const char *list, char *why, size_t whylen)
{
	char buf[1024], *save = NULL;

	for (int i = 0; i < m->n_aliases; i++)
		free(m->aliases[i]);
	m->n_aliases = 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *a = strtok_r(buf, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		if (!name_ok(a)) {
			snprintf(why, whylen,
			         "alias '%.64s' is not a name (letters, digits, - _ . :)", a);
			return -EINVAL;
		}
		if (add_alias(m, a) < 0) {
			snprintf(why, whylen, "more than %d aliases", VS_MODEL_ALIASES_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

/* one key=value of a line; why gets the reason of a refusal */
static int set_key(struct vs_model *m, const char *kv, char *why, size_t whylen)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : 0;
	const char *v = eq ? eq + 1 : NULL;
	char key[64], *end;

	if (!eq || klen == 0 || klen >= sizeof(key)) {
		snprintf(why, whylen, "'%.64s' is not key=value", kv);
		return -EINVAL;
	}
	snprintf(key, sizeof(key), "%.*s", (int)klen, kv);
	if (strcmp(key, "slots") == 0) {
		long n = strtol(v, &end, 10);
		if (!*v || *end || n < 0 || n > 64) {
			snprintf(why, whylen, "slots=%.32s is not a number 0..64", v);
			return -EINVAL;
		}
		m->slots = (int)n;
	} else if (strcmp(key, "idle_minutes") == 0) {
		double d = strtod(v, &end);
		if (!*v || *end || !(d >= 0 && d <= 525600)) {
			snprintf(why, whylen, "idle_minutes=%.32s is not a number 0..525600", v);
			return -EINVAL;
		}
		m->idle_minutes = d;
	} else if (strcmp(key, "fallback") == 0) {
		if (*v && !name_ok(v)) {
			snprintf(why, whylen, "fallback '%.64s' is not a model id", v);
			return -EINVAL;
		}
		snprintf(m->fallback, sizeof(m->fallback), "%s", v);
	} else if (strcmp(key, "aliases") == 0) {
		return set_aliases(m, v, why, whylen);
	} else if (vs_engine_has_option(m->engine, key)) {
		if (set_option(m, kv, klen) < 0) {
			snprintf(why, whylen, "more than %d options", VS_MODEL_OPTIONS_MAX);
			return -EINVAL;
		}
	} else {
		char names[512] = "";
		size_t used = 0;
		for (const struct vs_engine_option *o = m->engine->options; o && o->key; o++)
			used += (size_t)snprintf(names + used,
			                         used < sizeof(names) ? sizeof(names) - used : 0,
			                         ", %s", o->key);
		snprintf(why, whylen,
		         "unknown key '%s' (keys: slots, idle_minutes, fallback, aliases%s)", key,
		         names);
		return -EINVAL;
	}
	return 0;
}

static void model_init(struct vs_model *m, const char *id, const struct vs_engine_info *engine)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->kind = engine->kind;
	m->engine = engine;
	m->idle_minutes = -1;
	m->fallback_index = -1;
}

int vs_models_add(struct vs_models *ms, const char *id, const struct vs_engine_info *engine)
{
	for (int i = 0; i < ms->n; i++)
		if (ms->m[i].kind == engine->kind && strcmp(ms->m[i].id, id) == 0)
			return -EEXIST;
	if (ms->n == VS_MODELS_MAX)
		return -ENOSPC;
	model_init(&ms->m[ms->n++], id, engine);
	return 0;
}

/* one built-in model: keys as a MODELS_FILE line would give them */
static void builtin(struct vs_models *ms, const char *id, const char *engine,
                    const char *const *keys)
{
	const struct vs_engine_info *e = vs_engine_find(engine);
	char why[256];

	if (!e || vs_models_add(ms, id, e) < 0)
		return;
	for (; keys && *keys; keys++)
		if (set_key(&ms->m[ms->n - 1], *keys, why, sizeof(why)) < 0)
			abort(); /* a built-in line this build refuses: a programming error */
}

void vs_models_builtin(struct vs_models *ms)
{
	static const char *const ps[] = {"aliases=pocketsphinx-en-us,en-us", NULL};
	static const char *const flite[] = {"aliases=tts-1-hd,gpt-4o-mini-tts",
	                                    "fallback=espeak-ng", NULL};
	const char *accurate[VS_MODEL_OPTIONS_MAX + 2];
	int n = 0;

	vs_models_free(ms);
	builtin(ms, "pocketsphinx", "pocketsphinx", ps);
	accurate[n++] = "fallback=pocketsphinx";
	for (int i = 0; vs_ps_accurate_options[i] && n < VS_MODEL_OPTIONS_MAX; i++)
		accurate[n++] = vs_ps_accurate_options[i];
	accurate[n] = NULL;
	builtin(ms, "pocketsphinx-accurate", "pocketsphinx", accurate);
	builtin(ms, "espeak-ng", "espeak-ng", NULL);
	builtin(ms, "flite", "flite", flite);
}

/* splits a line into words at blanks; returns the count (at most max) */
static int split(char *line, char **words, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *w = strtok_r(line, " \t\r", &save); w && n < max;
	     w = strtok_r(NULL, " \t\r", &save))
		words[n++] = w;
	return n;
}

static int parse_line(struct vs_models *ms, char *line, const char *source, int lineno, char *err,
                      size_t errlen)
{
	char *w[3 + 2 * VS_MODEL_OPTIONS_MAX];
	char why[512];
	int n = split(line, w, (int)(sizeof(w) / sizeof(w[0])));
	const struct vs_engine_info *e;
	enum vs_engine_kind kind;

	if (n == 0)
		return 0;
	if (n < 3)
		return fail(err, errlen, source, lineno,
		            "expected ID SERVICE ENGINE [key=value...]");
	if (!name_ok(w[0]))
		return fail(err, errlen, source, lineno,
		            "model id '%.64s' is not a name (letters, digits, - _ . :)", w[0]);
	if (strcmp(w[1], "asr") == 0)
		kind = VS_ENGINE_ASR;
	else if (strcmp(w[1], "tts") == 0)
		kind = VS_ENGINE_TTS;
	else
		return fail(err, errlen, source, lineno, "service '%.32s' is not asr or tts", w[1]);
	e = vs_engine_find(w[2]);
	if (!e || e->kind != kind)
		return fail(err, errlen, source, lineno,
		            "'%.64s' is not an %s engine of this build", w[2], w[1]);
	int r = vs_models_add(ms, w[0], e);
	if (r == -EEXIST)
		return fail(err, errlen, source, lineno, "model '%s' is defined twice", w[0]);
	if (r < 0)
		return fail(err, errlen, source, lineno, "more than %d models", VS_MODELS_MAX);
	for (int i = 3; i < n; i++)
		if (set_key(&ms->m[ms->n - 1], w[i], why, sizeof(why)) < 0)
			return fail(err, errlen, source, lineno, "model '%s': %s", w[0], why);
	return 0;
}

int vs_models_parse(struct vs_models *ms, const char *text, const char *source, char *err,
                    size_t errlen)
{
	char *copy = strdup(text ? text : "");
	char *line;
	int lineno = 0, r = 0;

	vs_models_free(ms);
	if (!copy)
		return fail(err, errlen, source, 0, "out of memory");
	/* strsep, not strtok: empty lines must count for the line numbers */
	for (char *p = copy; (line = strsep(&p, "\n")) != NULL && r == 0;) {
		char *hash = strchr(line, '#');
		lineno++;
		if (hash)
			*hash = '\0';
		r = parse_line(ms, line, source, lineno, err, errlen);
	}
	free(copy);
	if (r < 0)
		vs_models_free(ms);
	return r;
}

int vs_models_find(const struct vs_models *ms, enum vs_engine_kind kind, const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < ms->n; i++)
		if (ms->m[i].kind == kind && strcmp(ms->m[i].id, name) == 0)
			return i;
	for (int i = 0; i < ms->n; i++)
		if (ms->m[i].kind == kind && has_alias(&ms->m[i], name))
			return i;
	return -1;
}

int vs_models_default(const struct vs_models *ms, enum vs_engine_kind kind)
{
	for (int i = 0; i < ms->n; i++)
		if (ms->m[i].kind == kind)
			return i;
	return -1;
}

void vs_models_make_default(struct vs_models *ms, int i)
{
	int first = i >= 0 && i < ms->n ? vs_models_default(ms, ms->m[i].kind) : -1;
	struct vs_model keep;

	if (first < 0 || first == i)
		return;
	keep = ms->m[i];
	memmove(&ms->m[first + 1], &ms->m[first], (size_t)(i - first) * sizeof(ms->m[0]));
	ms->m[first] = keep;
}

static const char *svc_name(enum vs_engine_kind k)
{
	return k == VS_ENGINE_ASR ? "asr" : "tts";
}

/* the names of model i (id, aliases) are no other model's of its service */
static int check_names(const struct vs_models *ms, int i, char *err, size_t errlen)
{
	const struct vs_model *m = &ms->m[i];

	for (int a = -1; a < m->n_aliases; a++) {
		const char *name = a < 0 ? m->id : m->aliases[a];
		for (int j = 0; j < ms->n; j++) {
			const struct vs_model *o = &ms->m[j];
			if (j == i || o->kind != m->kind)
				continue;
			if (strcmp(o->id, name) == 0 || has_alias(o, name))
				return fail(
				        err, errlen, NULL, 0,
				        "%s name '%s' belongs to both model '%s' and model '%s'",
				        svc_name(m->kind), name, m->id, o->id);
		}
	}
	return 0;
}

/* default model of kind takes each standard name no model claims */
static int give_std_names(struct vs_models *ms, enum vs_engine_kind kind)
{
	int d = vs_models_default(ms, kind);
	const char *const *names = kind == VS_ENGINE_ASR ? std_asr_names : std_tts_names;

	for (; d >= 0 && *names; names++)
		if (vs_models_find(ms, kind, *names) < 0 && add_alias(&ms->m[d], *names) < 0)
			return -ENOSPC;
	return 0;
}

int vs_models_finish(struct vs_models *ms, unsigned need, int asr_slots, int tts_slots, char *err,
                     size_t errlen)
{
	for (unsigned k = VS_ENGINE_ASR; k <= VS_ENGINE_TTS; k++)
		if ((need & k) && vs_models_default(ms, (enum vs_engine_kind)k) < 0)
			return fail(err, errlen, NULL, 0, "no %s model in the catalogue",
			            svc_name((enum vs_engine_kind)k));
	for (int i = 0; i < ms->n; i++) {
		struct vs_model *m = &ms->m[i];
		int max = m->kind == VS_ENGINE_ASR ? asr_slots : tts_slots;
		int r = check_names(ms, i, err, errlen);

		if (r < 0)
			return r;
		if (m->slots > max)
			return fail(
			        err, errlen, NULL, 0,
			        "model '%s': slots=%d is more than %s_MAX_CONCURRENT_REQUESTS=%d",
			        m->id, m->slots, m->kind == VS_ENGINE_ASR ? "ASR" : "TTS", max);
		m->fallback_index = -1;
		if (!m->fallback[0])
			continue;
		for (int j = 0; j < ms->n; j++)
			if (ms->m[j].kind == m->kind && strcmp(ms->m[j].id, m->fallback) == 0)
				m->fallback_index = j;
		if (m->fallback_index < 0 || m->fallback_index == i)
			return fail(err, errlen, NULL, 0,
			            "model '%s': fallback '%s' is not another %s model of the "
			            "catalogue",
			            m->id, m->fallback, svc_name(m->kind));
	}
	if (give_std_names(ms, VS_ENGINE_ASR) < 0 || give_std_names(ms, VS_ENGINE_TTS) < 0)
		return fail(err, errlen, NULL, 0, "too many aliases for the default model");
	return 0;
}

void vs_models_print(const struct vs_models *ms, FILE *f, int asr_slots, int tts_slots,
                     double asr_idle_minutes, double tts_idle_minutes)
{
	fprintf(f, "# ID SERVICE ENGINE key=value...   (voicestack models; a valid MODELS_FILE)\n");
	for (int i = 0; i < ms->n; i++) {
		const struct vs_model *m = &ms->m[i];
		bool asr = m->kind == VS_ENGINE_ASR;
		int slots = m->slots ? m->slots : asr ? asr_slots : tts_slots;
		double idle = m->idle_minutes >= 0 ? m->idle_minutes
		              : asr                ? asr_idle_minutes
		                                   : tts_idle_minutes;

		fprintf(f, "%s %s %s slots=%d idle_minutes=%g", m->id, svc_name(m->kind),
		        m->engine->name, slots, idle);
		if (m->fallback[0])
			fprintf(f, " fallback=%s", m->fallback);
		for (int a = 0; a < m->n_aliases; a++)
			fprintf(f, "%s%s", a ? "," : " aliases=", m->aliases[a]);
		for (int o = 0; o < m->n_options; o++)
			fprintf(f, " %s", m->options[o]);
		fputc('\n', f);
	}
}
