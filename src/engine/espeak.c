/* espeak.c - the "espeak-ng" TTS engine (espeak-ng 1.51, speak_lib.h API).
 *
 * DESIGN
 * espeak-ng is a process-global library: one initialisation, one current
 * voice, one synthesis callback. That matches the worker model (one engine
 * per process, one request at a time), so the per-request sink lives in a
 * file-static `cur` that is set for the duration of synthesize() only.
 *
 * espeak_Initialize() must run only after exec in the worker, never in a
 * process that later forks (the library keeps global state and, in other
 * output modes, threads), and it changes the process locale (LC_CTYPE becomes
 * C.UTF-8 or similar): worker code must not rely on LC_CTYPE afterwards.
 * It is called with espeakINITIALIZE_DONT_EXIT so a missing data directory
 * fails load() instead of exiting; load() then proves the data is usable by
 * selecting a voice.
 *
 * Streaming: AUDIO_OUTPUT_SYNCHRONOUS with ~100 ms buffers makes espeak_Synth()
 * call synth_cb() with each block of PCM as soon as it is generated, on the
 * caller's thread; the block goes straight to the sink, so the first audio
 * leaves long before a long text is finished. A sink error makes synth_cb()
 * return 1, which tells espeak-ng to stop.
 *
 * Voices: the OpenAI names map to distinct espeak-ng voice+variant pairs
 * (table below; the variants live in espeak-ng-data/voices/!v). Any espeak-ng
 * voice listed by espeak_ListVoices() also works, by file name ("en-us",
 * "de", "en-gb-x-rp"), identifier ("gmw/en-US"), name, or a language code it
 * lists ("en-gb": the voice preferred for it), optionally with a
 * "+variant" from voices/!v ("en-us+f2"); see find_voice() for why this is a
 * whitelist. MBROLA voices are excluded (not installed).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <espeak-ng/speak_lib.h>

#include "engine/engine_impl.h"

#define BUFLENGTH_MS 100
#define VOICE_NAME_MAX 64

/* espeakRATE in words per minute. speak_lib.h documents 80..450, but the
 * Debian espeak-ng 1.51 is built with libsonic, which handles faster rates:
 * measured, the output keeps shrinking in proportion up to 5000 wpm (10000
 * gives silence); below 80 espeak-ng silently uses 80. So speed * 175 is
 * clamped to 80..700: 700 = 4.0 * 175 is the fastest OpenAI speed, and speeds
 * below 80/175 = 0.46 all sound like 0.46. */
#define RATE_NORMAL espeakRATE_NORMAL
#define RATE_MIN espeakRATE_MINIMUM
#define RATE_MAX 700

/* The espeak-ng voice+variant each OpenAI voice maps to, and its gender. */
static const struct {
	const char *espeak, *gender;
} openai_map[VS_N_OPENAI_VOICES] = {
        [VS_VOICE_ALLOY] = {"en-us+m3", "male"},
        [VS_VOICE_ASH] = {"en-us+m1", "male"},
        [VS_VOICE_BALLAD] = {"en-gb-x-rp+m7", "male"},
        [VS_VOICE_CORAL] = {"en-us+f2", "female"},
        [VS_VOICE_ECHO] = {"en-us+m2", "male"},
        [VS_VOICE_FABLE] = {"en+m6", "male"},
        [VS_VOICE_ONYX] = {"en-us+m4", "male"},
        [VS_VOICE_NOVA] = {"en-us+f3", "female"},
        [VS_VOICE_SAGE] = {"en+f4", "female"},
        [VS_VOICE_SHIMMER] = {"en-us+f5", "female"},
        [VS_VOICE_VERSE] = {"en-gb-scotland+m5", "male"},
        [VS_VOICE_MARIN] = {"en-us+f1", "female"},
        [VS_VOICE_CEDAR] = {"en-gb-x-rp+m8", "male"},
};

struct espeak_engine {
	int rate;
	char data_path[PATH_MAX];
};

static bool loaded; /* espeak-ng allows one initialisation per process */

/* the request in flight: valid only inside synthesize() */
static struct {
	vs_pcm_sink_fn sink;
	void *opaque;
	int rc;
} cur;

static int synth_cb(short *wav, int n, espeak_EVENT *events)
{
	int rc;

	if (!wav || !cur.sink) /* NULL wav: end of synthesis */
		return 0;
	if (cur.rc < 0)
		return 1;
	if (n <= 0)
		return 0;
	rc = cur.sink(cur.opaque, wav, (size_t)n);
	if (rc < 0) {
		cur.rc = rc;
		return 1; /* abort synthesis */
	}
	return 0;
}

static int espeak_engine_load(const struct vs_engine_config *cfg, void **ctx, char *err,
                              size_t errlen)
{
	struct espeak_engine *e;
	const char *path = NULL;
	int rate, rc;

	*ctx = NULL;
	/* the same lists that checked the settings at start-up */
	rc = vs_engine_check_config(&vs_engine_espeak_ng_info, cfg, err, errlen);
	if (rc < 0)
		return rc;
	if (loaded) {
		snprintf(err, errlen, "espeak-ng is already loaded in this process");
		return -EBUSY;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, BUFLENGTH_MS, NULL,
	                         espeakINITIALIZE_DONT_EXIT);
	if (rate <= 0) {
		snprintf(err, errlen, "espeak-ng initialisation failed (%d)", rate);
		free(e);
		return -EIO;
	}
	loaded = true;
	espeak_SetSynthCallback(synth_cb);
	espeak_Info(&path);
	snprintf(e->data_path, sizeof(e->data_path), "%s", path ? path : "");
	if (espeak_SetVoiceByName("en-us") != EE_OK) {
		snprintf(err, errlen, "espeak-ng data not usable (data path '%s')", e->data_path);
		espeak_Terminate();
		loaded = false;
		free(e);
		return -ENOENT;
	}
	e->rate = rate;
	*ctx = e;
	return 0;
}

static void espeak_engine_unload(void *ctx)
{
	if (!ctx)
		return;
	espeak_Terminate();
	loaded = false;
	free(ctx);
}

static int espeak_engine_sample_rate(void *ctx)
{
	const struct espeak_engine *e = ctx;

	return e ? e->rate : 0;
}

/* ---- voices ---- */

/* The espeak-ng voice (not MBROLA) that `base` names, by file name ("en-us"),
 * identifier ("gmw/en-US") or voice name ("English (America)"), case
 * insensitively; NULL if none. A whitelist rather than trusting
 * espeak_SetVoiceByName(): that falls back to MBROLA voices (whose data and
 * binary are not installed: it forks to look for mbrola, prints to stderr and
 * leaves a broken current voice) and builds file paths from the name. */
static const espeak_VOICE *find_voice(const char *base)
{
	/* NULL spec: every voice except variants and MBROLA voices */
	const espeak_VOICE **v = espeak_ListVoices(NULL);
	const espeak_VOICE *by_lang = NULL;
	int best_prio = 256;
	size_t i;

	for (i = 0; v && v[i]; i++) {
		const char *id = v[i]->identifier, *file, *l;

		if (!id || strncmp(id, "mb/", 3) == 0)
			continue;
		file = strrchr(id, '/');
		file = file ? file + 1 : id;
		if (strcasecmp(base, file) == 0 || strcasecmp(base, id) == 0 ||
		    (v[i]->name && strcasecmp(base, v[i]->name) == 0))
			return v[i];
		/* else remember the preferred voice for a language code ("en-gb") */
		for (l = v[i]->languages; l && l[0]; l += strlen(l + 1) + 2) {
			if ((unsigned char)l[0] < best_prio && strcasecmp(base, l + 1) == 0) {
				best_prio = (unsigned char)l[0];
				by_lang = v[i];
			}
		}
	}
	return by_lang;
}

/* espeak-ng ignores an unknown "+variant"; we want it rejected. A numeric
 * variant "+3" means "m3", as in espeak-ng's ExtractVoiceVariantName(). */
static bool variant_exists(const struct espeak_engine *e, const char *variant)
{
	char path[PATH_MAX + 128];
	const char *p;

	if (!*variant || strlen(variant) > VOICE_NAME_MAX)
		return false;
	for (p = variant; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return false; /* no '/', no "..": it becomes a path */
	snprintf(path, sizeof(path), "%s/voices/!v/%s%s", e->data_path,
	         isdigit((unsigned char)variant[0]) ? "m" : "", variant);
	return access(path, R_OK) == 0;
}

static void unknown_voice(const char *voice, char *err, size_t errlen)
{
	char names[256];

	vs_engine_list_join(vs_openai_voices, names, sizeof(names));
	snprintf(err, errlen,
	         "unknown voice '%.64s' (use %s, or an espeak-ng voice such as en-us, en, de, fr, "
	         "optionally with a variant: en-us+f2)",
	         voice, names);
}

static int select_voice(const struct espeak_engine *e, const char *voice, char *err, size_t errlen)
{
	int ov;
	const espeak_VOICE *ev;
	char base[VOICE_NAME_MAX + 1], full[2 * VOICE_NAME_MAX + 2];
	const char *plus;
	size_t blen;

	if (!voice || !*voice)
		voice = vs_openai_voices[VS_VOICE_ALLOY];
	ov = vs_openai_voice_index(voice);
	if (ov >= 0)
		return espeak_SetVoiceByName(openai_map[ov].espeak) == EE_OK ? 0 : -EIO;
	plus = strchr(voice, '+');
	blen = plus ? (size_t)(plus - voice) : strlen(voice);
	if (blen == 0 || blen > VOICE_NAME_MAX)
		goto unknown;
	memcpy(base, voice, blen);
	base[blen] = '\0';
	ev = find_voice(base);
	if (!ev || strlen(ev->identifier) > VOICE_NAME_MAX)
		goto unknown;
	if (plus && !variant_exists(e, plus + 1))
		goto unknown;
	snprintf(full, sizeof(full), "%s%s%s", ev->identifier, plus ? "+" : "",
	         plus ? plus + 1 : "");
	return espeak_SetVoiceByName(full) == EE_OK ? 0 : -EIO;
unknown:
	unknown_voice(voice, err, errlen);
	return -EINVAL;
}

static int espeak_engine_synthesize(void *ctx, const struct vs_tts_params *p, vs_pcm_sink_fn sink,
                                    void *opaque, char *err, size_t errlen)
{
	const struct espeak_engine *e = ctx;
	double speed = p->speed;
	long rate;
	espeak_ERROR er;
	int rc;

	rc = select_voice(e, p->voice, err, errlen);
	if (rc == -EIO)
		snprintf(err, errlen, "espeak-ng could not load voice '%.64s'",
		         p->voice && *p->voice ? p->voice : vs_openai_voices[VS_VOICE_ALLOY]);
	if (rc < 0)
		return rc;
	/* after the voice: loading a voice may reset the rate */
	if (!(speed > 0.0) || !isfinite(speed))
		speed = 1.0;
	rate = lround(RATE_NORMAL * speed);
	rate = rate < RATE_MIN ? RATE_MIN : rate > RATE_MAX ? RATE_MAX : rate;
	espeak_SetParameter(espeakRATE, (int)rate, 0);

	cur.sink = sink;
	cur.opaque = opaque;
	cur.rc = 0;
	er = espeak_Synth(p->text ? p->text : "", p->text ? strlen(p->text) + 1 : 1, 0,
	                  POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL);
	rc = cur.rc;
	memset(&cur, 0, sizeof(cur));
	if (rc < 0)
		return rc; /* the sink's own error: it knows why */
	if (er != EE_OK) {
		snprintf(err, errlen, "espeak-ng synthesis failed (error %d)", (int)er);
		return -EIO;
	}
	return 0;
}

/* The OpenAI names first, then every usable espeak-ng voice by the name
 * synthesize() accepts for it: its file name in lower case ("gmw/en-US" ->
 * "en-us"). MBROLA voices are left out. */
static int espeak_engine_list_voices(void *ctx, struct vs_voice **out, size_t *n_out)
{
	const espeak_VOICE **ev = espeak_ListVoices(NULL);
	struct vs_voice *v;
	size_t n_ev = 0, n = 0, i, j;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	while (ev && ev[n_ev])
		n_ev++;
	v = calloc(VS_N_OPENAI_VOICES + n_ev, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < VS_N_OPENAI_VOICES && rc == 0; i++)
		rc = vs_voices_add(v, &n, vs_openai_voices[i], "en", openai_map[i].gender);
	for (i = 0; i < n_ev && rc == 0; i++) {
		const espeak_VOICE *x = ev[i];
		const char *file, *lang;
		char name[VOICE_NAME_MAX + 1];
		bool dup = false;

		if (!x->identifier || strncmp(x->identifier, "mb/", 3) == 0)
			continue;
		file = strrchr(x->identifier, '/');
		file = file ? file + 1 : x->identifier;
		if (strlen(file) > VOICE_NAME_MAX)
			continue;
		for (j = 0; file[j]; j++)
			name[j] = (char)tolower((unsigned char)file[j]);
		name[j] = '\0';
		for (j = 0; j < n && !dup; j++)
			dup = strcmp(v[j].name, name) == 0;
		if (dup)
			continue;
		/* languages: priority byte, then a NUL-terminated name */
		lang = x->languages && x->languages[0] ? x->languages + 1 : name;
		rc = vs_voices_add(v, &n, name, lang,
		                   x->gender == 1   ? "male"
		                   : x->gender == 2 ? "female"
		                                    : "");
	}
	if (rc < 0) {
		vs_voices_free(v, n);
		return rc;
	}
	*out = v;
	*n_out = n;
	return 0;
}

const struct vs_engine_ops vs_engine_espeak_ng = {
        .version = VS_ENGINE_API_VERSION,
        .info = &vs_engine_espeak_ng_info,
        .load = espeak_engine_load,
        .unload = espeak_engine_unload,
        .synthesize = espeak_engine_synthesize,
        .list_voices = espeak_engine_list_voices,
        .sample_rate = espeak_engine_sample_rate,
};
