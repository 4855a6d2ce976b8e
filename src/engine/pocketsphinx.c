/* pocketsphinx.c - the "pocketsphinx" ASR engine (CMU pocketsphinx 5prealpha,
 * US English model from the Debian pocketsphinx-en-us package).
 *
 * DESIGN
 * load() builds one decoder (acoustic model, language model, dictionary: the
 * slow, memory-heavy part) and keeps it for the life of the worker process;
 * transcribe() reuses it for every request. Per-request state lives on
 * transcribe()'s stack and in the vs_transcript it fills. Before each request
 * the decoder's cross-utterance state is put back to what it was right after
 * load: ps_start_stream() resets the front end's sample counter (so segment
 * times start at 0) and its noise statistics, and the live cepstral-mean
 * (CMN) estimate, which pocketsphinx carries from one utterance to the next,
 * is restored from a snapshot taken at load. So a request's transcript does
 * not depend on the requests the worker served before it, and equals what a
 * fresh `pocketsphinx_continuous -infile` run prints for the same audio.
 *
 * Segmentation (cfg->vad, ASR_VAD_ENABLED, default true) is exactly the loop
 * of pocketsphinx_continuous's recognize_from_file(): feed 2048-sample
 * chunks with ps_process_raw(no_search=FALSE, full_utt=FALSE); when the front
 * end's voice activity detector (ps_get_in_speech) goes from speech back to
 * silence, end the utterance, collect it, start the next. The chunk size is
 * part of that behaviour (the VAD state is sampled once per chunk), so it is
 * the same 2048 as upstream. Silence between utterances is dropped by the
 * front end, so each utterance becomes one vs_segment, handed to
 * p->on_segment (streaming, engine.h) the moment it is collected.
 * With cfg->vad false the decoder is built with -remove_silence no and the
 * whole audio is decoded as one utterance (one segment). That keeps every
 * frame, so times are exact, but a long recording becomes one long search:
 * memory grows with the audio length (bounded by ASR_MAX_AUDIO_SECONDS).
 *
 * Times: in 5prealpha ps_seg_frames() adds the stream offset of the current
 * utterance (acmod_stream_offset: the front end's frame index where the VAD
 * opened the utterance, prespeech included), so the frames it returns are
 * already absolute within the stream started by ps_start_stream(). Verified
 * by decoding two recordings concatenated: the second file's words come out
 * shifted by exactly the first file's length. Frame rate is -frate (100/s).
 *
 * Logging: sphinxbase logs through a process-global callback; load() installs
 * one that drops everything but keeps the last error line, so a failed load
 * reports pocketsphinx's own reason in err instead of printing to stderr.
 * (Equivalent to -logfn /dev/null without opening a file.)
 * Fatal errors inside pocketsphinx call exit(): acceptable because engines
 * only run in worker processes (see engine.h).
 *
 * Grammars and keyword lists (vs_asr_params.grammar / .keywords) apply to
 * one request: the text is compiled into a search named REQ_SEARCH, made
 * current, and after the request (whatever its outcome) the decoder goes
 * back to the search it had after load (the free language model) and the
 * request's search is freed, so the next request never sees it. The
 * library's verdict decides: any error it logs while compiling (a word not
 * in the dictionary, an undefined rule, no public rule) refuses the request,
 * even where 5prealpha still returns success (it does for a missing kws
 * word and an undefined rule), with that message. The JSGF parser reports a
 * syntax error with a line number that is not reset between parses (flex
 * state), so the line is found by parsing prefixes: the first k lines fail
 * at a real token (not at the end of the input) exactly when the offending
 * token is within them, so a binary search over k names the line in
 * log2(lines) parses, and only for a grammar that failed. The flex scanner
 * echoes characters it cannot match to stdout; stdout points at /dev/null
 * while a request's text is compiled. The kws search reads its list from a
 * file path, so the list goes through a memfd (/proc/self/fd/N).
 *
 * Why over 600 lines: one engine, one file (the contract of engine.h: a new
 * engine is one file plus a catalog and a registry line); about a third is
 * the per-request grammar and keyword-list support, which talks to the same
 * decoder and its error log and would otherwise need a private header.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/jsgf.h>
#include <sphinxbase/logmath.h>

#include "engine/engine_impl.h"

#define MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
#define CHUNK_SAMPLES 2048 /* = pocketsphinx_continuous's read size; see DESIGN */
#define SAMPLE_RATE 16000

struct cmn_snapshot {
	int32 veclen;
	int32 nframe;
	mfcc_t *mean, *var, *sum; /* veclen each; var/sum NULL if the cmn_t has none */
};

struct ps_engine {
	cmd_ln_t *config;
	ps_decoder_t *ps;
	bool vad;
	int frate;
	struct cmn_snapshot cmn0;
	char *lm_search; /* the search after load (the free LM), restored after each request */
};

#define REQ_SEARCH "voicestack-request"

/* ---- logging ---- */

static char last_error[256];
/* the first error since the last clear_errors(): the cause; later lines
 * (e.g. "Failed to parse JSGF grammar") are consequences */
static char first_error[256];
static unsigned n_errors;

static void clear_errors(void)
{
	last_error[0] = first_error[0] = '\0';
	n_errors = 0;
}

static void __attribute__((format(printf, 3, 4)))
log_cb(void *user, err_lvl_t lvl, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (lvl != ERR_ERROR && lvl != ERR_FATAL)
		return;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	n = strlen(last_error);
	while (n > 0 && (last_error[n - 1] == '\n' || last_error[n - 1] == '\r'))
		last_error[--n] = '\0';
	if (n_errors++ == 0)
		memcpy(first_error, last_error, sizeof(first_error));
}

/* The message without sphinxbase's `ERROR: "file.c", line N: ` prefix. */
static const char *reason(const char *msg)
{
	const char *p = strstr(msg, "\", line ");
	const char *q = p ? strstr(p, ": ") : NULL;
	return q ? q + 2 : msg;
}

/* ---- CMN snapshot ---- */

static void cmn_snapshot_free(struct cmn_snapshot *s)
{
	free(s->mean);
	free(s->var);
	free(s->sum);
	memset(s, 0, sizeof(*s));
}

static mfcc_t *dup_vec(const mfcc_t *v, int32 n)
{
	mfcc_t *d;

	if (!v)
		return NULL;
	d = malloc((size_t)n * sizeof(*d));
	if (d)
		memcpy(d, v, (size_t)n * sizeof(*d));
	return d;
}

static int cmn_snapshot_take(struct ps_engine *e)
{
	feat_t *f = ps_get_feat(e->ps);
	cmn_t *c = f ? f->cmn_struct : NULL;
	struct cmn_snapshot *s = &e->cmn0;

	if (!c || c->veclen <= 0)
		return 0; /* no CMN configured: nothing carries over */
	s->veclen = c->veclen;
	s->nframe = c->nframe;
	s->mean = dup_vec(c->cmn_mean, c->veclen);
	s->var = dup_vec(c->cmn_var, c->veclen);
	s->sum = dup_vec(c->sum, c->veclen);
	if ((c->cmn_mean && !s->mean) || (c->cmn_var && !s->var) || (c->sum && !s->sum))
		return -ENOMEM;
	return 0;
}

static void cmn_snapshot_restore(struct ps_engine *e)
{
	feat_t *f = ps_get_feat(e->ps);
	cmn_t *c = f ? f->cmn_struct : NULL;
	const struct cmn_snapshot *s = &e->cmn0;
	size_t bytes = (size_t)s->veclen * sizeof(mfcc_t);

	if (!c || s->veclen != c->veclen || s->veclen <= 0)
		return;
	if (s->mean && c->cmn_mean)
		memcpy(c->cmn_mean, s->mean, bytes);
	if (s->var && c->cmn_var)
		memcpy(c->cmn_var, s->var, bytes);
	if (s->sum && c->sum)
		memcpy(c->sum, s->sum, bytes);
	c->nframe = s->nframe;
}

/* ---- load / unload ---- */

static void ps_engine_unload(void *ctx)
{
	struct ps_engine *e = ctx;

	if (!e)
		return;
	if (e->ps)
		ps_free(e->ps);
	if (e->config)
		cmd_ln_free_r(e->config);
	cmn_snapshot_free(&e->cmn0);
	free(e->lm_search);
	free(e);
}

/* The model files: an operator's own (options hmm, lm, dict) or the
 * en-us model. Checked before ps_init(), which exit()s on some missing
 * files instead of failing. */
static int model_files(const struct vs_engine_config *cfg, const char *paths[3], char *err,
                       size_t errlen)
{
	static const char *const keys[3] = {"hmm", "lm", "dict"};
	static const char *const defaults[3] = {
	        MODEL_DIR "/en-us",
	        MODEL_DIR "/en-us.lm.bin",
	        MODEL_DIR "/cmudict-en-us.dict",
	};
	char mdef[4096];

	for (int i = 0; i < 3; i++) {
		const char *v = vs_engine_option(cfg, keys[i]);
		paths[i] = v ? v : defaults[i];
	}
	/* an acoustic model directory is read through its mdef */
	snprintf(mdef, sizeof(mdef), "%s/mdef", paths[0]);
	const char *check[3] = {mdef, paths[1], paths[2]};
	for (int i = 0; i < 3; i++) {
		struct stat st;
		int rc = 0;

		if (access(check[i], R_OK) != 0)
			rc = -errno;
		else if (stat(check[i], &st) != 0 || !S_ISREG(st.st_mode))
			rc = -EISDIR;
		if (rc == 0)
			continue;
		snprintf(err, errlen, "pocketsphinx %s file %s: %s", keys[i], check[i],
		         strerror(-rc));
		/* an option the operator got wrong, as a bad value is */
		return vs_engine_option(cfg, keys[i]) ? -EINVAL : rc;
	}
	return 0;
}

/* The decoder options of cfg other than the files (already in the
 * configuration), by their pocketsphinx_continuous flag. Values were checked
 * by vs_engine_check_config(); an option not given keeps the library's
 * default, so no options = pocketsphinx_continuous's configuration. */
static void apply_options(cmd_ln_t *config, const struct vs_engine_config *cfg)
{
	for (const struct vs_engine_option *o = vs_engine_pocketsphinx_info.options; o->key; o++) {
		const char *v = vs_engine_option(cfg, o->key);
		char flag[64];

		if (!v || o->type == VS_OPT_PATH)
			continue;
		snprintf(flag, sizeof(flag), "-%s", o->key);
		if (o->type == VS_OPT_NUMBER)
			cmd_ln_set_float_r(config, flag, strtod(v, NULL));
		else if (o->type == VS_OPT_INTEGER)
			cmd_ln_set_int_r(config, flag, strtol(v, NULL, 10));
		else if (o->type == VS_OPT_BOOL)
			cmd_ln_set_int_r(config, flag, vs_engine_option_bool(v));
	}
}

static int ps_engine_load(const struct vs_engine_config *cfg, void **ctx, char *err, size_t errlen)
{
	const char *files[3]; /* hmm, lm, dict */
	struct ps_engine *e;
	int rc;

	*ctx = NULL;
	/* the same lists that checked the settings at start-up */
	rc = vs_engine_check_config(&vs_engine_pocketsphinx_info, cfg, err, errlen);
	if (rc < 0)
		return rc;
	rc = model_files(cfg, files, err, errlen);
	if (rc < 0)
		return rc;
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->vad = cfg ? cfg->vad : true;
	last_error[0] = '\0';
	/* logfp NULL also silences the configuration dump ps_init() writes
	 * straight to the log stream, bypassing the callback */
	err_set_logfp(NULL);
	err_set_callback(log_cb, NULL);
	e->config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", files[0], "-lm", files[1], "-dict",
	                        files[2], "-remove_silence", e->vad ? "yes" : "no", NULL);
	if (!e->config) {
		snprintf(err, errlen, "pocketsphinx configuration rejected: %s",
		         last_error[0] ? last_error : "unknown error");
		rc = -EINVAL;
		goto fail;
	}
	apply_options(e->config, cfg);
	e->ps = ps_init(e->config);
	if (!e->ps) {
		snprintf(err, errlen, "pocketsphinx failed to load the model: %s",
		         last_error[0] ? last_error : "unknown error");
		rc = -EIO;
		goto fail;
	}
	e->frate = cmd_ln_int32_r(e->config, "-frate");
	if (e->frate <= 0)
		e->frate = 100;
	/* The search ps_init made from -lm, by its name in 5prealpha
	 * (PS_DEFAULT_SEARCH, internal). Not ps_get_search(): it leaves its hash
	 * iterator unfreed (24 bytes a call, seen by LeakSanitizer). */
	e->lm_search = strdup("_default");
	rc = e->lm_search ? cmn_snapshot_take(e) : -ENOMEM;
	if (rc < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*ctx = e;
	return 0;
fail:
	ps_engine_unload(e);
	return rc;
}

/* ---- transcription ---- */

static bool language_ok(const char *l)
{
	return !l || !*l || strcasecmp(l, "en") == 0 || strcasecmp(l, "en-us") == 0 ||
	       strcasecmp(l, "en_us") == 0 || strcasecmp(l, "english") == 0;
}

/* <s>, </s>, <sil>, [NOISE], [SPEECH], ++GARBAGE++ (older models) */
static bool is_filler(const char *w)
{
	return w[0] == '<' || w[0] == '[' || strncmp(w, "++", 2) == 0;
}

/* Length of w without an alternate-pronunciation suffix: "the(2)" -> 3. */
static size_t base_len(const char *w)
{
	size_t n = strlen(w), i;

	if (n < 3 || w[n - 1] != ')')
		return n;
	for (i = n - 2; i > 0 && w[i] >= '0' && w[i] <= '9'; i--)
		;
	if (w[i] == '(' && i > 0 && i < n - 2)
		return i;
	return n;
}

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Append the utterance just ended (ps_end_utt done) to t, and report it to a
 * streaming caller at once. Utterances with no hypothesis produce nothing, as
 * pocketsphinx_continuous prints nothing. */
static int collect_utterance(struct ps_engine *e, struct vs_transcript *t,
                             const struct vs_asr_params *p, double duration)
{
	bool want_words = p && p->want_words;
	logmath_t *lmath = ps_get_logmath(e->ps);
	const char *hyp = ps_get_hyp(e->ps, NULL);
	size_t first_word = t->n_words;
	double seg_start = -1.0, seg_end = 0.0;
	ps_seg_t *it;

	if (!hyp || !*hyp)
		return 0;
	for (it = ps_seg_iter(e->ps); it; it = ps_seg_next(it)) {
		const char *w = ps_seg_word(it);
		int sf = 0, ef = 0;
		double start, end, prob;

		if (!w || is_filler(w))
			continue;
		ps_seg_frames(it, &sf, &ef);
		/* ef is the word's last frame, inclusive */
		start = clamp((double)sf / e->frate, 0.0, duration);
		end = clamp((double)(ef + 1) / e->frate, start, duration);
		if (seg_start < 0)
			seg_start = start;
		if (end > seg_end)
			seg_end = end;
		if (!want_words)
			continue;
		prob = clamp(logmath_exp(lmath, ps_seg_prob(it, NULL, NULL, NULL)), 0.0, 1.0);
		if (vs_transcript_add_word(t, w, base_len(w), start, end, prob) < 0) {
			ps_seg_free(it);
			return -ENOMEM;
		}
	}
	if (seg_start < 0) /* hypothesis without timed words: should not happen */
		seg_start = seg_end = 0.0;
	int rc = vs_transcript_add_segment(t, hyp, seg_start, seg_end, first_word);
	if (rc == 0 && p && p->on_segment)
		rc = p->on_segment(p->segment_opaque, &t->segments[t->n_segments - 1]);
	return rc;
}

/* pocketsphinx_continuous's recognize_from_file() loop over memory. */
static int decode_vad(struct ps_engine *e, const int16_t *pcm, size_t n, struct vs_transcript *t,
                      const struct vs_asr_params *p, double duration)
{
	bool utt_started = false;
	size_t off = 0;
	int rc;

	if (ps_start_utt(e->ps) < 0)
		return -EIO;
	while (off < n) {
		size_t k = n - off < CHUNK_SAMPLES ? n - off : CHUNK_SAMPLES;
		bool in_speech;

		if (ps_process_raw(e->ps, pcm + off, k, FALSE, FALSE) < 0) {
			ps_end_utt(e->ps);
			return -EIO;
		}
		off += k;
		in_speech = ps_get_in_speech(e->ps) != 0;
		if (in_speech && !utt_started)
			utt_started = true;
		if (!in_speech && utt_started) {
			ps_end_utt(e->ps);
			rc = collect_utterance(e, t, p, duration);
			if (rc < 0)
				return rc;
			if (ps_start_utt(e->ps) < 0)
				return -EIO;
			utt_started = false;
		}
	}
	ps_end_utt(e->ps);
	if (utt_started)
		return collect_utterance(e, t, p, duration);
	return 0;
}

/* cfg->vad == false: the whole audio is one utterance (-remove_silence no). */
static int decode_whole(struct ps_engine *e, const int16_t *pcm, size_t n, struct vs_transcript *t,
                        const struct vs_asr_params *p, double duration)
{
	size_t off;

	if (ps_start_utt(e->ps) < 0)
		return -EIO;
	for (off = 0; off < n; off += CHUNK_SAMPLES) {
		size_t k = n - off < CHUNK_SAMPLES ? n - off : CHUNK_SAMPLES;

		if (ps_process_raw(e->ps, pcm + off, k, FALSE, FALSE) < 0) {
			ps_end_utt(e->ps);
			return -EIO;
		}
	}
	ps_end_utt(e->ps);
	return collect_utterance(e, t, p, duration);
}

/* ---- per-request grammar / keyword list (see DESIGN) ---- */

/* stdout to /dev/null while the flex scanner may echo client bytes */
static int mute_stdout(void)
{
	int saved = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved >= 0 && null >= 0)
		dup2(null, STDOUT_FILENO);
	if (null >= 0)
		close(null);
	return saved;
}

static void unmute_stdout(int saved)
{
	fflush(stdout);
	if (saved < 0)
		return;
	dup2(saved, STDOUT_FILENO);
	close(saved);
}

/* true when the first k lines of text fail to parse at a real token, i.e.
 * the syntax error lies within them (not at the end of the input) */
static bool jsgf_fails_within(const char *text, unsigned k)
{
	const char *p = text;
	for (unsigned i = 0; i < k && *p; i++) {
		p += strcspn(p, "\n");
		if (*p)
			p++;
	}
	char *prefix = strndup(text, (size_t)(p - text));
	if (!prefix)
		return false;
	clear_errors();
	jsgf_t *g = jsgf_parse_string(prefix, NULL);
	free(prefix);
	if (g) {
		jsgf_grammar_free(g);
		return false;
	}
	return !strstr(first_error, "current token ''");
}

/* Line of the syntax error of a grammar that failed to parse; 0 when it
 * fails only at the end of the input (something left unclosed). */
static unsigned jsgf_error_line(const char *text)
{
	unsigned lines = 1;
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	if (!jsgf_fails_within(text, lines))
		return 0;
	unsigned lo = 1, hi = lines; /* the answer is in [lo, hi] */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (jsgf_fails_within(text, mid))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int set_jsgf(struct ps_engine *e, const char *text, char *err, size_t errlen)
{
	clear_errors();
	jsgf_t *g = jsgf_parse_string(text, NULL);
	if (!g) {
		unsigned line = jsgf_error_line(text);
		if (line)
			snprintf(err, errlen, "grammar line %u: syntax error", line);
		else
			snprintf(err, errlen,
			         "grammar: unexpected end (a rule, comment or "
			         "quote left open, or a missing ';')");
		return -EBADMSG;
	}
	jsgf_grammar_free(g);
	clear_errors();
	int rc = ps_set_jsgf_string(e->ps, REQ_SEARCH, text);
	if (rc < 0 || n_errors > 0) {
		snprintf(err, errlen, "grammar: %s",
		         first_error[0] ? reason(first_error) : "rejected by pocketsphinx");
		return -EBADMSG;
	}
	return 0;
}

static int set_kws(struct ps_engine *e, const char *text, char *err, size_t errlen)
{
	int fd = memfd_create("voicestack-kws", MFD_CLOEXEC);
	size_t len = strlen(text), off = 0;
	char path[64];

	while (fd >= 0 && off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (fd < 0 || off < len) {
		int rc = fd < 0 ? -errno : -EIO;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "keyword list: %s", strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	clear_errors();
	int rc = ps_set_kws(e->ps, REQ_SEARCH, path);
	close(fd);
	if (rc < 0 || n_errors > 0) {
		snprintf(err, errlen, "keyword list: %s",
		         first_error[0] ? reason(first_error) : "rejected by pocketsphinx");
		return -EBADMSG;
	}
	return 0;
}

/* Makes the request's grammar or keyword list the current search. */
static int request_search(struct ps_engine *e, const struct vs_asr_params *p, char *err,
                          size_t errlen)
{
	int saved = mute_stdout();
	int rc = p->grammar ? set_jsgf(e, p->grammar, err, errlen)
	                    : set_kws(e, p->keywords, err, errlen);
	unmute_stdout(saved);
	if (rc == 0 && ps_set_search(e->ps, REQ_SEARCH) < 0) {
		snprintf(err, errlen, "pocketsphinx could not switch to the request's search");
		rc = -EIO;
	}
	if (rc < 0)
		ps_unset_search(e->ps, REQ_SEARCH); /* a half-built one, if any */
	return rc;
}

/* Back to the free language model; the request's search is freed. */
static void restore_search(struct ps_engine *e)
{
	ps_set_search(e->ps, e->lm_search);
	ps_unset_search(e->ps, REQ_SEARCH);
}

static int ps_engine_transcribe(void *ctx, const int16_t *pcm, size_t n_samples,
                                const struct vs_asr_params *p, struct vs_transcript *out, char *err,
                                size_t errlen)
{
	struct ps_engine *e = ctx;
	const char *lang = p ? p->language : NULL;
	double duration = (double)n_samples / SAMPLE_RATE;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!language_ok(lang)) {
		snprintf(err, errlen,
		         "language '%.32s' is not supported by pocketsphinx "
		         "(supported: en)",
		         lang);
		return -EINVAL;
	}
	if (n_samples > 0 && !pcm) {
		snprintf(err, errlen, "no audio");
		return -EINVAL;
	}
	bool constrained = p && (p->grammar || p->keywords);
	if (constrained) {
		rc = request_search(e, p, err, errlen);
		if (rc < 0)
			return rc;
	}
	/* back to the post-load state: see DESIGN */
	ps_start_stream(e->ps);
	cmn_snapshot_restore(e);
	clear_errors();
	if (e->vad)
		rc = decode_vad(e, pcm, n_samples, out, p, duration);
	else
		rc = decode_whole(e, pcm, n_samples, out, p, duration);
	if (constrained)
		restore_search(e);
	if (rc == 0)
		rc = vs_transcript_finish(out, "en", duration);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	else if (rc < 0)
		snprintf(err, errlen, "pocketsphinx decoding failed: %s",
		         last_error[0] ? last_error : "unknown error");
	return rc;
}

const struct vs_engine_ops vs_engine_pocketsphinx = {
        .version = VS_ENGINE_API_VERSION,
        .info = &vs_engine_pocketsphinx_info,
        .load = ps_engine_load,
        .unload = ps_engine_unload,
        .transcribe = ps_engine_transcribe,
};
