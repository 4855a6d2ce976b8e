/* run.c - the request loop of voicestack-loadtest: one thread, libcurl multi.
 *
 * DESIGN
 * Owns: lt_run(), called once by main.c with the parsed options; it fills
 * one struct lt_stats per service (via stats.c) and returns when every
 * request it started has finished (or the user pressed ^C twice).
 *
 * Why it is shaped so:
 * - A "worker" is one easy handle that is always in flight: when its transfer
 *   ends, the result is recorded and the same handle is re-added for the
 *   worker's next request. So --workers N keeps exactly N requests in flight
 *   per service, like N closed-loop clients, with no threads and no locks.
 * - One curl_multi_poll() loop with a 100 ms ceiling: the loop also drives
 *   the once-a-second progress line, the --duration deadline and ^C, none of
 *   which needs a second thread.
 * - Handles are reused, so HTTP keep-alive connections are reused from the
 *   multi handle's cache, as a real client (and the original's aiohttp
 *   session per worker) would.
 * - The audio is held once in memory; each worker's multipart part reads it
 *   through its own cursor (curl_mime_data_cb), so 100 workers do not hold
 *   100 copies of a large --file. The TTS JSON body is shared likewise.
 * - --service both drives both services at once, each with --workers
 *   handles: the stress recipe then loads the two services together as
 *   production traffic does, and --duration keeps meaning wall time.
 * - Latency is libcurl's CURLINFO_TOTAL_TIME_T (request start to last byte),
 *   which does not include the loop's own scheduling delay.
 * - Proxies from the environment are ignored (CURLOPT_PROXY ""): a load test
 *   of localhost must not silently go through an http_proxy.
 * - --lane: worker i of a service sends the lane lt_worker_lane() gives it
 *   (its own header list per service and lane), and every answer is counted
 *   twice, in the service's totals and in its lane's breakdown.
 * - ^C (or SIGTERM) once: start no new requests, let those in flight finish,
 *   report. Twice: drop what is in flight (counted as aborted), report.
 */
#include "loadtest.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define BODY_HEAD 160 /* bytes of an error body shown by --verbose */
#define POLL_MS 100

struct upload {
	const unsigned char *data;
	size_t len, pos;
};

struct worker {
	CURL *easy;
	int svc, id;
	int lane; /* index into o->lane, -1 without --lane */
	long issued;
	int active;
	curl_mime *mime;
	struct upload up;
	char retry_after[32];
	char errbuf[CURL_ERROR_SIZE];
	char head[BODY_HEAD + 1];
	size_t headlen;
	uint64_t bytes;
};

struct loop {
	const struct lt_opts *o;
	struct lt_stats *st;
	CURLM *multi;
	struct worker *w;
	int nw;
	struct curl_slist *hdrs[LT_NSVC][LT_MAX_LANES];
	char *tts_body;
	int inflight[LT_NSVC];
	double t0, deadline, next_progress;
	int tty;
	int line_shown;
};

static volatile sig_atomic_t g_interrupts;

static void on_sigint(int sig)
{
	(void)sig;
	g_interrupts++;
}

/* ------------------------------------------------------------ callbacks */

static size_t up_read(char *buf, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t want = size * n, left = u->len - u->pos;

	if (want > left)
		want = left;
	memcpy(buf, u->data + u->pos, want);
	u->pos += want;
	return want;
}

static int up_seek(void *arg, curl_off_t off, int origin)
{
	struct upload *u = arg;

	if (origin != SEEK_SET || off < 0 || (size_t)off > u->len)
		return CURL_SEEKFUNC_CANTSEEK;
	u->pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct worker *w = arg;
	size_t len = size * n;

	if (w->headlen < BODY_HEAD) {
		size_t c = BODY_HEAD - w->headlen < len ? BODY_HEAD - w->headlen : len;

		memcpy(w->head + w->headlen, buf, c);
		w->headlen += c;
		w->head[w->headlen] = '\0';
	}
	w->bytes += len;
	return len;
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct worker *w = arg;
	size_t len = size * n, i = 12, j = 0;

	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		w->retry_after[0] = '\0'; /* a new response (e.g. after 100) */
		return len;
	}
	if (len <= 12 || strncasecmp(buf, "Retry-After:", 12) != 0)
		return len;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
		i++;
	while (i < len && j + 1 < sizeof(w->retry_after) && buf[i] != '\r' && buf[i] != '\n') {
		char c = buf[i++];

		w->retry_after[j++] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	while (j > 0 && (w->retry_after[j - 1] == ' ' || w->retry_after[j - 1] == '\t'))
		j--;
	w->retry_after[j] = '\0';
	return len;
}

/* ------------------------------------------------------------ progress */

static void clear_line(struct loop *L)
{
	if (L->line_shown) {
		fputs("\r\033[K", stderr);
		L->line_shown = 0;
	}
}

static void progress(struct loop *L, double now)
{
	char line[1024];
	size_t off;
	struct winsize ws;
	size_t cols = 200;

	off = (size_t)snprintf(line, sizeof(line), "%6.1fs", now - L->t0);
	for (int s = 0; s < LT_NSVC; s++) {
		const struct lt_stats *st = &L->st[s];

		if (!L->o->want[s] || off >= sizeof(line))
			continue;
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		                        "  %s sent %ld done %ld in flight %d [", st->name, st->sent,
		                        st->completed, L->inflight[s]);
		for (int c = 100; c < LT_MAX_STATUS && off < sizeof(line); c++)
			if (st->status[c])
				off += (size_t)snprintf(line + off, sizeof(line) - off, "%d:%ld ",
				                        c, st->status[c]);
		if (off < sizeof(line))
			off += (size_t)snprintf(line + off, sizeof(line) - off, "err:%ld]",
			                        st->errors);
	}
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		cols = ws.ws_col;
	if (cols - 1 < sizeof(line))
		line[cols - 1] = '\0'; /* never wrap: \r must return to the same line */
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	L->line_shown = 1;
}

/* ------------------------------------------------------------ workers */

/* the breakdown of w's lane, or NULL without --lane */
static struct lt_stats *lane_stats(struct loop *L, const struct worker *w)
{
	return w->lane >= 0 ? &L->st[w->svc].lanes[w->lane] : NULL;
}

static void count_sent(struct lt_stats *st, double now)
{
	st->sent++;
	if (st->t_first == 0.0)
		st->t_first = now;
}

static int start(struct loop *L, struct worker *w, double now)
{
	CURLMcode mc;

	w->retry_after[0] = '\0';
	w->errbuf[0] = '\0';
	w->head[0] = '\0';
	w->headlen = 0;
	w->bytes = 0;
	w->up.pos = 0;
	mc = curl_multi_add_handle(L->multi, w->easy);
	if (mc != CURLM_OK)
		return -EIO;
	w->active = 1;
	w->issued++;
	L->inflight[w->svc]++;
	count_sent(&L->st[w->svc], now);
	if (lane_stats(L, w))
		count_sent(lane_stats(L, w), now);
	return 0;
}

static int want_more(const struct loop *L, const struct worker *w, double now)
{
	if (g_interrupts)
		return 0;
	if (L->o->duration > 0)
		return now < L->deadline;
	return w->issued < L->o->requests;
}

static void verbose_line(struct loop *L, const struct worker *w, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void verbose_line(struct loop *L, const struct worker *w, const char *fmt, ...)
{
	va_list ap;

	clear_line(L);
	fprintf(stderr, "[%s w%d #%ld] ", L->st[w->svc].name, w->id, w->issued);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int finish(struct loop *L, struct worker *w, CURLcode rc, double now)
{
	struct lt_stats *st = &L->st[w->svc], *lst = lane_stats(L, w);
	long status = 0;
	curl_off_t us = 0;

	curl_multi_remove_handle(L->multi, w->easy);
	w->active = 0;
	L->inflight[w->svc]--;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status <= 0)
			rc = CURLE_WEIRD_SERVER_REPLY;
	}
	if (rc == CURLE_OK) {
		curl_easy_getinfo(w->easy, CURLINFO_TOTAL_TIME_T, &us);
		if (lt_stats_answer(st, (int)status, (double)us / 1000.0, w->retry_after, w->bytes,
		                    now) < 0 ||
		    (lst && lt_stats_answer(lst, (int)status, (double)us / 1000.0, w->retry_after,
		                            w->bytes, now) < 0))
			return -ENOMEM;
		if (L->o->verbose) {
			if (status >= 200 && status < 300)
				verbose_line(L, w, "%ld in %.1f ms, %llu bytes", status,
				             (double)us / 1000.0, (unsigned long long)w->bytes);
			else
				verbose_line(L, w, "%ld in %.1f ms%s%s: %s", status,
				             (double)us / 1000.0,
				             w->retry_after[0] ? ", Retry-After " : "",
				             w->retry_after, w->head);
		}
	} else {
		const char *detail = w->errbuf[0] ? w->errbuf : curl_easy_strerror(rc);

		lt_stats_error(st, (int)rc, rc == CURLE_OPERATION_TIMEDOUT, detail, now);
		if (lst)
			lt_stats_error(lst, (int)rc, rc == CURLE_OPERATION_TIMEDOUT, detail, now);
		if (L->o->verbose)
			verbose_line(L, w, "error CURLE %d (%s): %s", (int)rc,
			             curl_easy_strerror(rc), detail);
	}
	if (want_more(L, w, now))
		return start(L, w, now);
	return 0;
}

static int setup_worker(struct loop *L, struct worker *w, int svc, int id, char *err, size_t errlen)
{
	const struct lt_opts *o = L->o;
	CURL *e = curl_easy_init();
	curl_mimepart *p;

	w->svc = svc;
	w->id = id;
	w->lane = lt_worker_lane(o, id - 1);
	w->easy = e;
	if (!e) {
		snprintf(err, errlen, "curl_easy_init failed");
		return -ENOMEM;
	}
	curl_easy_setopt(e, CURLOPT_URL, o->url[svc]);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000.0));
	curl_easy_setopt(e, CURLOPT_USERAGENT, "voicestack-loadtest/" VS_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, L->hdrs[svc][w->lane < 0 ? 0 : w->lane]);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, w);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, w->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, w);
	if (svc == LT_TTS) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, L->tts_body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(L->tts_body));
		return 0;
	}
	w->up.data = o->audio;
	w->up.len = o->audio_len;
	w->mime = curl_mime_init(e);
	if (!w->mime)
		goto oom;
	p = curl_mime_addpart(w->mime);
	if (!p || curl_mime_name(p, "file") || curl_mime_filename(p, o->audio_name) ||
	    curl_mime_type(p, o->audio_type) ||
	    curl_mime_data_cb(p, (curl_off_t)o->audio_len, up_read, up_seek, NULL, &w->up))
		goto oom;
	p = curl_mime_addpart(w->mime);
	if (!p || curl_mime_name(p, "model") ||
	    curl_mime_data(p, "whisper-1", CURL_ZERO_TERMINATED))
		goto oom;
	p = curl_mime_addpart(w->mime);
	if (!p || curl_mime_name(p, "response_format") ||
	    curl_mime_data(p, "json", CURL_ZERO_TERMINATED))
		goto oom;
	curl_easy_setopt(e, CURLOPT_MIMEPOST, w->mime);
	return 0;
oom:
	snprintf(err, errlen, "cannot build the multipart upload (out of memory)");
	return -ENOMEM;
}

static int build_shared(struct loop *L, char *err, size_t errlen)
{
	const struct lt_opts *o = L->o;
	char auth[1100], lane[64];

	for (int s = 0; s < LT_NSVC; s++) {
		for (int l = 0; o->want[s] && l < (o->nlanes ? o->nlanes : 1); l++) {
			struct curl_slist *h = NULL, *t;

			if (s == LT_TTS || o->expect) {
				h = curl_slist_append(h, s == LT_TTS
				                                 ? "Content-Type: application/json"
				                                 : "Expect: 100-continue");
				if (!h)
					goto oom;
			}
			L->hdrs[s][l] = h;
			if (o->api_key) {
				snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
				         o->api_key);
				if (!(t = curl_slist_append(h, auth)))
					goto oom;
				L->hdrs[s][l] = h = t;
			}
			if (o->nlanes) {
				snprintf(lane, sizeof(lane), LT_LANE_HEADER ": %s",
				         o->lane[l].name);
				if (!(t = curl_slist_append(h, lane)))
					goto oom;
				L->hdrs[s][l] = t;
			}
		}
	}
	if (o->want[LT_TTS]) {
		json_t *j = json_pack("{s:s, s:s, s:s}", "model", "tts-1", "input", o->text,
		                      "voice", o->voice);

		if (j && o->format)
			json_object_set_new(j, "response_format", json_string(o->format));
		L->tts_body = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!L->tts_body) {
			snprintf(err, errlen,
			         "cannot build the TTS JSON body (is --text valid UTF-8?)");
			return -EINVAL;
		}
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

static void teardown(struct loop *L)
{
	for (int i = 0; i < L->nw; i++) {
		struct worker *w = &L->w[i];

		if (w->active)
			curl_multi_remove_handle(L->multi, w->easy);
		curl_easy_cleanup(w->easy); /* before the mime it points to */
		curl_mime_free(w->mime);
	}
	free(L->w);
	for (int s = 0; s < LT_NSVC; s++)
		for (int l = 0; l < LT_MAX_LANES; l++)
			curl_slist_free_all(L->hdrs[s][l]);
	free(L->tts_body);
	if (L->multi)
		curl_multi_cleanup(L->multi);
}

/* Drain finished transfers; returns 0 or -errno. */
static int reap(struct loop *L)
{
	CURLMsg *m;
	int left, rc = 0;

	while ((m = curl_multi_info_read(L->multi, &left))) {
		struct worker *w = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
		/* m is invalid once its handle is removed: copy the result first */
		CURLcode res = m->data.result;

		if (w && finish(L, w, res, lt_now()) < 0)
			rc = -ENOMEM;
	}
	return rc;
}

/* One socket per worker: raise the soft fd limit toward the hard one if the
 * usual 1024 would not do (--workers 1000 --service both needs ~2000). */
static void raise_fd_limit(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
		fprintf(stderr,
		        "voicestack-loadtest: warning: open-file limit %llu is below the "
		        "%llu this run needs; expect \"Couldn't connect\" errors (ulimit -n)\n",
		        (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

static int inflight(const struct loop *L)
{
	return L->inflight[LT_ASR] + L->inflight[LT_TTS];
}

int lt_run(const struct lt_opts *o, struct lt_stats st[LT_NSVC], double *elapsed, char *err,
           size_t errlen)
{
	struct loop L = {.o = o, .st = st};
	struct sigaction sa = {.sa_handler = on_sigint};
	int rc = 0, n = 0, reported = 0;

	lt_stats_init(&st[LT_ASR], "asr", o->url[LT_ASR]);
	lt_stats_init(&st[LT_TTS], "tts", o->url[LT_TTS]);
	L.tty = isatty(STDERR_FILENO);
	raise_fd_limit((rlim_t)o->workers * LT_NSVC + 64);
	L.multi = curl_multi_init();
	L.w = calloc((size_t)o->workers * LT_NSVC, sizeof(*L.w));
	if (!L.multi || !L.w || lt_stats_add_lanes(&st[LT_ASR], o) < 0 ||
	    lt_stats_add_lanes(&st[LT_TTS], o) < 0) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	rc = build_shared(&L, err, errlen);
	if (rc < 0)
		goto out;
	for (int s = 0; s < LT_NSVC; s++) {
		for (int i = 0; o->want[s] && i < o->workers; i++) {
			rc = setup_worker(&L, &L.w[n], s, i + 1, err, errlen);
			L.nw = ++n;
			if (rc < 0)
				goto out;
		}
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	L.t0 = lt_now();
	L.deadline = L.t0 + o->duration;
	L.next_progress = L.t0 + 1.0;
	for (int i = 0; i < L.nw; i++) {
		if (start(&L, &L.w[i], L.t0) < 0) {
			snprintf(err, errlen, "curl_multi_add_handle failed");
			rc = -EIO;
			goto out;
		}
	}
	while (inflight(&L) > 0) {
		int running;
		double now;
		CURLMcode mc = curl_multi_perform(L.multi, &running);

		if (mc != CURLM_OK) {
			snprintf(err, errlen, "curl_multi_perform: %s", curl_multi_strerror(mc));
			rc = -EIO;
			break;
		}
		rc = reap(&L);
		if (rc < 0) {
			snprintf(err, errlen, "out of memory recording results");
			break;
		}
		now = lt_now();
		if (g_interrupts == 1 && !reported) {
			clear_line(&L);
			fprintf(stderr,
			        "interrupted: waiting for %d request(s) in flight "
			        "(^C again to drop them)\n",
			        inflight(&L));
			reported = 1;
		}
		if (g_interrupts >= 2) {
			for (int i = 0; i < L.nw; i++)
				if (L.w[i].active) {
					st[L.w[i].svc].aborted++;
					if (lane_stats(&L, &L.w[i]))
						lane_stats(&L, &L.w[i])->aborted++;
				}
			break;
		}
		if (L.tty && now >= L.next_progress) {
			progress(&L, now);
			while (L.next_progress <= now)
				L.next_progress += 1.0;
		}
		if (inflight(&L) == 0)
			break;
		mc = curl_multi_poll(L.multi, NULL, 0, POLL_MS, NULL);
		if (mc != CURLM_OK) {
			snprintf(err, errlen, "curl_multi_poll: %s", curl_multi_strerror(mc));
			rc = -EIO;
			break;
		}
	}
	*elapsed = lt_now() - L.t0;
	clear_line(&L);
out:
	teardown(&L);
	return rc;
}
