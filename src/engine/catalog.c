/* catalog.c - the engines this build knows: names, kinds, model names.
 *
 * DESIGN
 * Data only, no engine code: the front validates ASR_ENGINE / TTS_ENGINE and
 * a request's "model" against this table, lists /v1/models from it, and so
 * never links pocketsphinx, espeak-ng or FFmpeg (they load in workers only;
 * registry.c maps an entry to its code in the worker binary). The test
 * engines are listed like the real ones so integration tests can select them
 * through ASR_ENGINE / TTS_ENGINE without a special build. Also here, for the
 * same reason: each engine's capabilities (devices, compute types, voices),
 * the names every engine shares (the OpenAI voices) and the list helpers
 * that start-up (src/engine_settings.c) and every load() check them with.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/engine_impl.h"

/* The engine's own names for the data it loads (the worker's --model, the
 * CLI). Which names clients may send is the model catalogue's business
 * (models.c: ids and aliases, OpenAI's names among them), not the engine's. */
static const char *const ps_models[] = {"pocketsphinx-en-us", "pocketsphinx", "en-us", NULL};
static const char *const espeak_models[] = {"espeak-ng", NULL};
static const char *const flite_models[] = {"flite", NULL};
static const char *const test_asr_models[] = {"test-asr", NULL};
static const char *const test_tts_models[] = {"test-tts", NULL};

const char *const vs_engine_cpu_only[] = {"cpu", NULL};
/* the bundled pocketsphinx model is US English (language_ok() in
 * pocketsphinx.c); the test engine answers "en" whatever it is given */
static const char *const english[] = {"en", NULL};

const char *const vs_openai_voices[VS_N_OPENAI_VOICES + 1] = {
        [VS_VOICE_ALLOY] = "alloy",   [VS_VOICE_ASH] = "ash",
        [VS_VOICE_BALLAD] = "ballad", [VS_VOICE_CORAL] = "coral",
        [VS_VOICE_ECHO] = "echo",     [VS_VOICE_FABLE] = "fable",
        [VS_VOICE_ONYX] = "onyx",     [VS_VOICE_NOVA] = "nova",
        [VS_VOICE_SAGE] = "sage",     [VS_VOICE_SHIMMER] = "shimmer",
        [VS_VOICE_VERSE] = "verse",   [VS_VOICE_MARIN] = "marin",
        [VS_VOICE_CEDAR] = "cedar",   NULL,
};

/* Option table entries; beams are probabilities (smaller = wider = slower),
 * the other ranges are where pocketsphinx does something sensible. */
#define OPT_NUM(k, h, lo, hi)                                                                      \
	{                                                                                          \
		.key = k, .help = h, .type = VS_OPT_NUMBER, .min = lo, .max = hi                   \
	}
#define OPT_INT(k, h, lo, hi)                                                                      \
	{                                                                                          \
		.key = k, .help = h, .type = VS_OPT_INTEGER, .min = lo, .max = hi                  \
	}
#define OPT_BOOL(k, h)                                                                             \
	{                                                                                          \
		.key = k, .help = h, .type = VS_OPT_BOOL                                           \
	}
#define OPT_PATH(k, h)                                                                             \
	{                                                                                          \
		.key = k, .help = h, .type = VS_OPT_PATH                                           \
	}
#define PS_BEAM(k, h) OPT_NUM(k, h, 1e-300, 1.0)
#define PS_WEIGHT(k, h) OPT_NUM(k, h, 0.01, 100.0)
#define PS_PENALTY(k, h) OPT_NUM(k, h, 1e-300, 1000.0)
#define PS_PROB(k, h) OPT_NUM(k, h, 1e-300, 1.0)

/* The pocketsphinx decoder settings worth tuning, each the
 * pocketsphinx_continuous flag of the same name ("-beam"); an option not
 * given keeps the library's default (in parentheses), so a model with none
 * decodes exactly as pocketsphinx_continuous does. hmm/lm/dict: an
 * operator's own model. */
static const struct vs_engine_option ps_options[] = {
        OPT_PATH("hmm", "acoustic model directory (pocketsphinx-en-us's en-us)"),
        OPT_PATH("lm", "language model file, binary or ARPA (en-us.lm.bin)"),
        OPT_PATH("dict", "pronunciation dictionary (cmudict-en-us.dict)"),
        PS_BEAM("beam", "beam of every frame, smaller is wider and slower (1e-48)"),
        PS_BEAM("wbeam", "beam of word exits (7e-29)"),
        PS_BEAM("pbeam", "beam of phone transitions (1e-48)"),
        PS_BEAM("lpbeam", "beam of a word's last phone (1e-40)"),
        PS_BEAM("lponlybeam", "beam of single-phone words' last phone (7e-29)"),
        PS_BEAM("fwdflatbeam", "beam of the second (flat lexicon) pass (1e-64)"),
        PS_BEAM("fwdflatwbeam", "beam of word exits in the second pass (7e-29)"),
        PS_WEIGHT("lw", "language model weight of the first pass (6.5)"),
        PS_WEIGHT("fwdflatlw", "language model weight of the second pass (8.5)"),
        PS_WEIGHT("bestpathlw", "language model weight of the lattice search (9.5)"),
        PS_PENALTY("wip", "word insertion penalty (0.65)"),
        PS_PENALTY("pip", "phone insertion penalty (1.0)"),
        PS_PENALTY("nwpen", "new word transition penalty (1.0)"),
        OPT_NUM("uw", "unigram weight (1.0)", 0.0, 1.0),
        PS_PROB("silprob", "silence word transition probability (0.005)"),
        PS_PROB("fillprob", "filler word transition probability (1e-8)"),
        OPT_INT("maxhmmpf", "most active HMMs per frame, -1 = no limit (30000)", -1, 1e7),
        OPT_INT("maxwpf", "most distinct word exits per frame, -1 = no limit (-1)", -1, 1e7),
        OPT_INT("topn", "Gaussians scored per codebook, more is slower and finer (4)", 1, 128),
        OPT_INT("ds", "score the Gaussians of every Nth frame only (1)", 1, 10),
        OPT_INT("pl_window", "phone lookahead window in frames, 0 = none (5)", 0, 40),
        PS_BEAM("pl_beam", "beam of the phone lookahead (1e-10)"),
        PS_BEAM("pl_pbeam", "beam of phone transitions in the lookahead (1e-10)"),
        OPT_NUM("pl_weight", "weight of the lookahead's penalties (3.0)", 0.0, 100.0),
        OPT_BOOL("fwdflat", "run the second (flat lexicon) pass (yes)"),
        OPT_BOOL("bestpath", "run the lattice (best path) search (yes)"),
        OPT_NUM("vad_threshold", "speech/noise log-ratio of the voice activity detector (2.0)", 0.0,
                100.0),
        {.key = NULL},
};

/* pocketsphinx-accurate: chosen by bench/tune_asr.py on human speech, 5
 * frame offsets of each clip (docs/MODELS.md: the split, the grid, every
 * setting tried). Word error rate, defaults -> these, on 2026-11-27:
 *   TUNE     (385 words) 37.1% -> 31.9%, CPU real-time factor 0.23 -> 0.35
 *   HELD-OUT (290 words) 35.9% -> 29.7%, CPU real-time factor 0.29 -> 0.44
 * (1.25-1.5x the CPU over two runs; RTF measured on a busy machine).
 * topn=16 scores more Gaussians per frame (finer acoustic scores); a
 * heavier language model in the final lattice search (bestpathlw 9.5 ->
 * 11.4) removes insertions. Lower LM weights, wip, pip, silprob, wider
 * beams, maxhmmpf, pl_window, vad_threshold and fwdflat did not remove 3
 * errors on TUNE and stay at the defaults.
 * Reproduce: make tune-asr (= python3 bench/tune_asr.py --bin
 * build/voicestack); these settings alone against the defaults:
 * python3 bench/tune_asr.py --bin build/voicestack --eval topn=16,bestpathlw=11.4 */
const char *const vs_ps_accurate_options[] = {"topn=16", "bestpathlw=11.4", NULL};

const struct vs_engine_info vs_engine_pocketsphinx_info = {
        .name = "pocketsphinx",
        .kind = VS_ENGINE_ASR,
        .typical_rss_mb = 110, /* 101 MB after load, 131 MB after decoding 40 s */
        .model_names = ps_models,
        .devices = vs_engine_cpu_only,
        .grammars = true,
        .url = "https://github.com/cmusphinx/pocketsphinx",
        .languages = english,
        .options = ps_options,
};
const struct vs_engine_info vs_engine_espeak_ng_info = {
        .name = "espeak-ng",
        .kind = VS_ENGINE_TTS,
        .typical_rss_mb = 35,
        .model_names = espeak_models,
        .devices = vs_engine_cpu_only,
        .voices = vs_openai_voices,
        .url = "https://github.com/espeak-ng/espeak-ng",
};
const struct vs_engine_info vs_engine_test_asr_info = {
        .name = "test-asr",
        .kind = VS_ENGINE_ASR,
        .typical_rss_mb = 10,
        .model_names = test_asr_models,
        .devices = vs_engine_cpu_only,
        .url = "",
        .languages = english,
};
const struct vs_engine_info vs_engine_test_tts_info = {
        .name = "test-tts",
        .kind = VS_ENGINE_TTS,
        .typical_rss_mb = 10,
        .model_names = test_tts_models,
        .devices = vs_engine_cpu_only,
        .voices = vs_openai_voices,
        .url = "",
};

static const struct vs_engine_option flite_options[] = {
        {.key = "voice",
         .help = "the model's voice, a built-in one: slt, rms, awb or kal16; every OpenAI voice "
                 "name is a pitch variant of it (default: the names spread over all four)",
         .type = VS_OPT_TEXT},
        {.key = "voice_file",
         .help = "path of a clustergen .flitevox voice file, loaded with the model: the model's "
                 "voice (as voice=), also requestable by its file name without .flitevox",
         .type = VS_OPT_PATH},
        {.key = NULL},
};

const struct vs_engine_info vs_engine_flite_info = {
        .name = "flite",
        .kind = VS_ENGINE_TTS,
        .typical_rss_mb = 30,
        .model_names = flite_models,
        .devices = vs_engine_cpu_only,
        .voices = vs_openai_voices,
        .options = flite_options,
        .url = "http://cmuflite.org",
};

static const struct vs_engine_info *const engines[] = {
        &vs_engine_pocketsphinx_info, /* ASR default: first ASR entry */
        &vs_engine_espeak_ng_info,    /* TTS default: first TTS entry */
        &vs_engine_test_asr_info,     &vs_engine_test_tts_info, &vs_engine_flite_info, NULL,
};

const struct vs_engine_info *vs_engine_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; engines[i]; i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}

const struct vs_engine_info *vs_engine_default(enum vs_engine_kind kind)
{
	for (size_t i = 0; engines[i]; i++)
		if (engines[i]->kind == kind)
			return engines[i];
	return NULL;
}

const struct vs_engine_info *const *vs_engine_all(void)
{
	return engines;
}

int vs_openai_voice_index(const char *name)
{
	for (int i = 0; name && i < VS_N_OPENAI_VOICES; i++)
		if (strcasecmp(vs_openai_voices[i], name) == 0)
			return i;
	return -1;
}

bool vs_engine_list_has(const char *const *list, const char *v)
{
	if (!list || !v)
		return false;
	for (; *list; list++)
		if (strcmp(*list, v) == 0)
			return true;
	return false;
}

void vs_engine_list_join(const char *const *list, char *buf, size_t len)
{
	size_t used = 0;

	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; list && list[i] && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", list[i]);

		if (n < 0)
			break;
		used += (size_t)n; /* may pass len: snprintf truncated, loop ends */
	}
}

bool vs_engine_accepts_model(const struct vs_engine_info *info, const char *model)
{
	return info && vs_engine_list_has(info->model_names, model);
}

void vs_engine_model_list(const struct vs_engine_info *info, char *buf, size_t len)
{
	vs_engine_list_join(info ? info->model_names : NULL, buf, len);
}

/* One field of vs_engine_check_config(): what = "model", "device", ... */
static int check_one(const struct vs_engine_info *info, const char *what, const char *v,
                     const char *const *list, char *err, size_t errlen)
{
	char names[512];

	if (!v || !*v || vs_engine_list_has(list, v))
		return 0;
	vs_engine_list_join(list, names, sizeof(names));
	if (list)
		snprintf(err, errlen, "%s %s '%.64s' is not available (available: %s)", info->name,
		         what, v, names);
	else
		snprintf(err, errlen, "%s has no choice of %s ('%.64s' given)", info->name, what,
		         v);
	return -EINVAL;
}

static const struct vs_engine_option *find_option(const struct vs_engine_info *info,
                                                  const char *key)
{
	for (const struct vs_engine_option *o = info ? info->options : NULL; o && o->key; o++)
		if (strcmp(o->key, key) == 0)
			return o;
	return NULL;
}

bool vs_engine_has_option(const struct vs_engine_info *info, const char *key)
{
	return find_option(info, key) != NULL;
}

int vs_engine_option_bool(const char *v)
{
	static const char *const yes[] = {"yes", "true", "1", NULL};
	static const char *const no[] = {"no", "false", "0", NULL};

	for (size_t i = 0; v && yes[i]; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* NULL if v is a valid value of o, else what is wrong with it */
static const char *option_value_problem(const struct vs_engine_option *o, const char *v)
{
	char *end = NULL;
	double d;

	switch (o->type) {
	case VS_OPT_TEXT: return NULL;
	case VS_OPT_PATH: return *v ? NULL : "an empty path";
	case VS_OPT_BOOL: return vs_engine_option_bool(v) < 0 ? "not yes or no" : NULL;
	case VS_OPT_INTEGER:
		errno = 0;
		d = (double)strtoll(v, &end, 10);
		if (!*v || *end || errno)
			return "not a whole number";
		break;
	case VS_OPT_NUMBER:
		errno = 0;
		d = strtod(v, &end);
		if (!*v || *end || errno || !isfinite(d))
			return "not a number";
		break;
	default: return "of an unknown type";
	}
	return d < o->min || d > o->max ? "out of range" : NULL;
}

const char *vs_engine_option(const struct vs_engine_config *cfg, const char *key)
{
	const char *v = NULL;
	size_t kl = strlen(key);

	for (const char *const *o = cfg ? cfg->options : NULL; o && *o; o++)
		if (strncmp(*o, key, kl) == 0 && (*o)[kl] == '=')
			v = *o + kl + 1;
	return v;
}

/* every "key=value" of cfg->options names an option of the engine */
static int check_options(const struct vs_engine_info *info, const struct vs_engine_config *cfg,
                         char *err, size_t errlen)
{
	for (const char *const *o = cfg->options; o && *o; o++) {
		const char *eq = strchr(*o, '=');
		char key[64];

		snprintf(key, sizeof(key), "%.*s", eq ? (int)(eq - *o) : 63, *o);
		const struct vs_engine_option *opt = eq ? find_option(info, key) : NULL;
		if (!opt) {
			snprintf(err, errlen, "%s has no option '%.64s'", info->name, key);
			return -EINVAL;
		}
		const char *problem = option_value_problem(opt, eq + 1);
		if (!problem)
			continue;
		if (opt->type == VS_OPT_NUMBER || opt->type == VS_OPT_INTEGER)
			snprintf(err, errlen, "%s option %s='%.64s' is %s (%g to %g)", info->name,
			         key, eq + 1, problem, opt->min, opt->max);
		else
			snprintf(err, errlen, "%s option %s='%.64s' is %s", info->name, key, eq + 1,
			         problem);
		return -EINVAL;
	}
	return 0;
}

int vs_engine_check_config(const struct vs_engine_info *info, const struct vs_engine_config *cfg,
                           char *err, size_t errlen)
{
	int r;

	if (!cfg)
		return 0;
	r = check_options(info, cfg, err, errlen);
	if (r < 0)
		return r;
	r = check_one(info, "model", cfg->model, info->model_names, err, errlen);
	if (r == 0)
		r = check_one(info, "device", cfg->device, info->devices, err, errlen);
	if (r == 0)
		r = check_one(info, "compute type", cfg->compute_type, info->compute_types, err,
		              errlen);
	return r;
}
