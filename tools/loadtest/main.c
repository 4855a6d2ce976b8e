/* main.c - voicestack-loadtest: flags, the upload, the exit status.
 *
 * DESIGN
 * Owns: the command line (parsed into struct lt_opts), reading --file or
 * making the default sample, turning --asr-url/--tts-url into endpoint URLs,
 * and the exit status. The work is done by run.c (requests), stats.c
 * (counting) and report.c (summary).
 *
 * Why it is shaped so:
 * - Flags follow the original scripts/load_test.py (--service, --workers,
 *   --requests, --duration, --timeout, --verbose, and its --asr-host /
 *   --tts-host as aliases of --asr-url / --tts-url) so its Quick Start
 *   commands work with this tool's name. Unlike the original, --requests is
 *   per worker (the definition), so the defaults (10 workers x 5)
 *   send the original's 50 requests per service.
 * - A URL may be a base ("http://host:5001") or the full endpoint: a path
 *   that already ends with the endpoint is kept; any other path is a prefix
 *   the endpoint is appended to (a reverse proxy's "/asr" works).
 * - Exit status: 0 when every request got an HTTP answer (429/503 are
 *   answers: refusing is the server working), 1 otherwise or on a run-time
 *   failure, 2 on bad flags, so scripts can tell "server misbehaved" from
 *   "I typed it wrong".
 * - --lane sends X-Voicestack-Priority (the server's priority lanes) and
 *   reports the same figures per lane beside the service's totals: either
 *   one lane for every worker (--lane high), or a mix (--lane normal=8
 *   --lane high=1), whose counts then are the workers per service, so a run
 *   can load the normal lane and watch what a high request gets.
 */
#include "loadtest.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_TEXT "This is a load test for the text to speech service."
#define ASR_ENDPOINT "/v1/audio/transcriptions"
#define TTS_ENDPOINT "/v1/audio/speech"
#define MAX_TEXT 100000
#define MAX_KEY 1024

static const char usage[] =
        "Usage: voicestack-loadtest [OPTIONS]\n"
        "Load-test the Voice Stack ASR and TTS services (or any OpenAI-compatible\n"
        "audio server): N workers per service, each with one request in flight.\n"
        "\n"
        "  --service asr|tts|both  services to load (default both; both = at the\n"
        "                          same time, --workers each)\n"
        "  --workers N             concurrent requests per service (default 10, max %d)\n"
        "  --requests N            requests per worker (default 5)\n"
        "  --duration S            instead of --requests: start requests for S seconds\n"
        "                          (fractions allowed), then wait for those in flight\n"
        "  --timeout S             per-request timeout in seconds (default 300)\n"
        "  --asr-url URL           ASR base or endpoint URL (default\n"
        "                          http://localhost:5001); " ASR_ENDPOINT "\n"
        "                          is appended unless the path already ends with it\n"
        "  --tts-url URL           TTS base or endpoint URL (default\n"
        "                          http://localhost:5002); " TTS_ENDPOINT " likewise\n"
        "  --asr-host, --tts-host  aliases of --asr-url, --tts-url (the original's names)\n"
        "  --file PATH             audio to upload for ASR (default: a 1.5 s 16 kHz WAV\n"
        "                          of a speech-like signal made in memory)\n"
        "  --text TEXT             TTS input (default \"This is a load test for the text\n"
        "                          to speech service.\")\n"
        "  --format FMT            TTS response_format, e.g. mp3, wav, opus (default: not\n"
        "                          sent, the server's default)\n"
        "  --voice NAME            TTS voice (default alloy)\n"
        "  --api-key KEY           send Authorization: Bearer KEY\n"
        "  --lane LANE[=N]         send " LT_LANE_HEADER ": LANE (high, normal or low;\n"
        "                          the server must allow it). LANE alone: every worker;\n"
        "                          repeated LANE=N: N workers per service in each lane\n"
        "                          (they replace --workers). Results are also given\n"
        "                          per lane\n"
        "  --expect-continue       ASR uploads send Expect: 100-continue, so a server\n"
        "                          can refuse (429) before the body is sent\n"
        "  --json                  print the summary as JSON on stdout (instead of text)\n"
        "  --verbose, -v           one line per finished request on stderr\n"
        "  --help, -h              this text\n"
        "  --version               print the version\n"
        "\n"
        "While running on a terminal, stderr shows one progress line a second.\n"
        "Exit status: 0 every request got an HTTP answer (429 and 503 included),\n"
        "1 some did not (transport error, timeout, ^C) or the run failed, 2 bad flags.\n";

enum {
	OPT_SERVICE = 256,
	OPT_WORKERS,
	OPT_REQUESTS,
	OPT_DURATION,
	OPT_TIMEOUT,
	OPT_ASR_URL,
	OPT_TTS_URL,
	OPT_FILE,
	OPT_TEXT,
	OPT_FORMAT,
	OPT_VOICE,
	OPT_API_KEY,
	OPT_JSON,
	OPT_VERSION,
	OPT_EXPECT,
	OPT_LANE,
};

static const struct option longopts[] = {
        {"service", required_argument, NULL, OPT_SERVICE},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"requests", required_argument, NULL, OPT_REQUESTS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"asr-url", required_argument, NULL, OPT_ASR_URL},
        {"asr-host", required_argument, NULL, OPT_ASR_URL},
        {"tts-url", required_argument, NULL, OPT_TTS_URL},
        {"tts-host", required_argument, NULL, OPT_TTS_URL},
        {"file", required_argument, NULL, OPT_FILE},
        {"text", required_argument, NULL, OPT_TEXT},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"voice", required_argument, NULL, OPT_VOICE},
        {"api-key", required_argument, NULL, OPT_API_KEY},
        {"json", no_argument, NULL, OPT_JSON},
        {"expect-continue", no_argument, NULL, OPT_EXPECT},
        {"lane", required_argument, NULL, OPT_LANE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
};

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad(const char *fmt, ...)
{
	va_list ap;

	fputs("voicestack-loadtest: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'voicestack-loadtest --help'.\n", stderr);
	return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_secs(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Base or endpoint URL -> endpoint URL (malloc'ed). */
static int endpoint_url(const char *in, const char *endpoint, char **out)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *path = NULL, *full = NULL, *np = NULL;
	char buf[4200];
	size_t plen, elen = strlen(endpoint);
	int rc = -EINVAL;

	if (!u)
		return -ENOMEM;
	/* "host:port" means http (libcurl's own default scheme would be https) */
	if (!strstr(in, "://")) {
		if (strlen(in) > 4096 || snprintf(buf, sizeof(buf), "http://%s", in) < 0)
			goto out;
		in = buf;
	}
	if (curl_url_set(u, CURLUPART_URL, in, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    (strcmp(scheme, "http") && strcmp(scheme, "https")) ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0))
		goto out;
	plen = strlen(path);
	if (plen < elen || strcmp(path + plen - elen, endpoint) != 0) {
		while (plen > 0 && path[plen - 1] == '/')
			plen--;
		np = malloc(plen + elen + 1);
		if (!np) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(np, path, plen);
		memcpy(np + plen, endpoint, elen + 1);
		if (curl_url_set(u, CURLUPART_PATH, np, 0))
			goto out;
	}
	if (curl_url_get(u, CURLUPART_URL, &full, 0))
		goto out;
	*out = strdup(full);
	rc = *out ? 0 : -ENOMEM;
out:
	free(np);
	curl_free(full);
	curl_free(path);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

static const char *audio_type(const char *name)
{
	static const char *const map[][2] = {
	        {"wav", "audio/wav"},   {"mp3", "audio/mpeg"},  {"mpga", "audio/mpeg"},
	        {"mpeg", "audio/mpeg"}, {"ogg", "audio/ogg"},   {"oga", "audio/ogg"},
	        {"opus", "audio/ogg"},  {"flac", "audio/flac"}, {"m4a", "audio/mp4"},
	        {"mp4", "audio/mp4"},   {"webm", "audio/webm"}, {"aac", "audio/aac"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(dot + 1, map[i][0]) == 0)
			return map[i][1];
	return "application/octet-stream";
}

/* Reads path whole; err says why not. */
static int read_file(const char *path, unsigned char **out, size_t *len, char *err, size_t el)
{
	struct stat sb;
	unsigned char *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, el, "%s", strerror(errno));
		return -errno;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
	    sb.st_size > LT_MAX_UPLOAD) {
		snprintf(err, el, "not a regular, non-empty file of at most %ld MiB",
		         LT_MAX_UPLOAD >> 20);
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)sb.st_size);
	if (!buf) {
		close(fd);
		snprintf(err, el, "out of memory");
		return -ENOMEM;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, el, "%s",
			         r < 0 ? strerror(errno) : "file shrank while reading");
			free(buf);
			close(fd);
			return -EIO;
		}
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

static int valid_token(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

int lt_worker_lane(const struct lt_opts *o, int i)
{
	for (int l = 0; l < o->nlanes; l++) {
		if (i < o->lane[l].workers)
			return l;
		i -= o->lane[l].workers;
	}
	return o->nlanes ? o->nlanes - 1 : -1;
}

/* --lane LANE or --lane LANE=N into o->lane; *counted says which form the
 * run uses (0 none yet, 1 LANE, 2 LANE=N). 0, or the exit status (2). */
static int parse_lane(char *a, struct lt_opts *o, int *counted)
{
	static const char *const names[] = {"high", "normal", "low"};
	char *eq = strchr(a, '=');
	long n = 0;
	int form = eq ? 2 : 1;

	if (eq)
		*eq = '\0';
	const char *name = NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(a, names[i]) == 0)
			name = names[i];
	if (!name)
		return bad("--lane %s: the lane must be high, normal or low", a);
	if (eq && parse_long(eq + 1, 1, LT_MAX_WORKERS, &n))
		return bad("--lane %s=%s: the worker count must be an integer from 1 to %d", a,
		           eq + 1, LT_MAX_WORKERS);
	if (*counted && (*counted != form || form == 1))
		return bad("--lane: give one lane for all workers (--lane %s) or a worker count "
		           "for each lane (--lane %s=N ...), not both or two of the first",
		           name, name);
	for (int i = 0; i < o->nlanes; i++)
		if (strcmp(o->lane[i].name, name) == 0)
			return bad("--lane %s: given twice", name);
	*counted = form;
	o->lane[o->nlanes].name = name;
	o->lane[o->nlanes++].workers = (int)n;
	return 0;
}

/* Returns 0, or the exit status (2) after printing why. */
static int parse_flags(int argc, char **argv, struct lt_opts *o, const char **urls)
{
	int c, have_req = 0, have_workers = 0, counted = 0, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
		const char *a = optarg;
		long n;

		switch (c) {
		case OPT_SERVICE:
			if (strcmp(a, "asr") && strcmp(a, "tts") && strcmp(a, "both"))
				return bad("--service %s: must be asr, tts or both", a);
			o->want[LT_ASR] = strcmp(a, "tts") != 0;
			o->want[LT_TTS] = strcmp(a, "asr") != 0;
			break;
		case OPT_WORKERS:
			if (parse_long(a, 1, LT_MAX_WORKERS, &n))
				return bad("--workers %s: must be an integer from 1 to %d", a,
				           LT_MAX_WORKERS);
			o->workers = (int)n;
			have_workers = 1;
			break;
		case OPT_REQUESTS:
			if (parse_long(a, 1, 1000000000L, &n))
				return bad("--requests %s: must be an integer from 1 to 1000000000",
				           a);
			o->requests = n;
			have_req = 1;
			break;
		case OPT_DURATION:
			if (parse_secs(a, 0.001, 31 * 86400.0, &o->duration))
				return bad("--duration %s: must be a number of seconds above 0, at "
				           "most "
				           "2678400 (31 days)",
				           a);
			break;
		case OPT_TIMEOUT:
			if (parse_secs(a, 0.001, 86400.0, &o->timeout))
				return bad("--timeout %s: must be a number of seconds above 0, at "
				           "most 86400",
				           a);
			break;
		case OPT_ASR_URL: urls[LT_ASR] = a; break;
		case OPT_TTS_URL: urls[LT_TTS] = a; break;
		case OPT_FILE: o->file = a; break;
		case OPT_TEXT:
			if (!*a || strlen(a) > MAX_TEXT)
				return bad("--text: must be 1 to %d bytes", MAX_TEXT);
			o->text = a;
			break;
		case OPT_FORMAT:
			if (!valid_token(a, 16))
				return bad("--format %s: must be a format name such as mp3 or wav",
				           a);
			o->format = a;
			break;
		case OPT_VOICE:
			if (!valid_token(a, 64))
				return bad("--voice %s: must be a voice name such as alloy", a);
			o->voice = a;
			break;
		case OPT_API_KEY:
			if (!*a || strlen(a) > MAX_KEY || strpbrk(a, "\r\n"))
				return bad("--api-key: must be 1 to %d bytes on one line", MAX_KEY);
			o->api_key = a;
			break;
		case OPT_JSON: o->json = 1; break;
		case OPT_EXPECT: o->expect = 1; break;
		case OPT_LANE:
			rc = parse_lane(optarg, o, &counted);
			if (rc)
				return rc;
			break;
		case 'v': o->verbose = 1; break;
		case 'h': printf(usage, LT_MAX_WORKERS); return -1;
		case OPT_VERSION: printf("voicestack-loadtest %s\n", VS_VERSION); return -1;
		case ':': return bad("%s: needs a value", argv[optind - 1]);
		default:
			if (optopt > 0 && optopt < 256)
				return bad("unknown option -%c", optopt);
			return bad("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument %s", argv[optind]);
	if (have_req && o->duration > 0)
		return bad("--requests and --duration exclude each other");
	if (counted == 2) {
		long sum = 0;
		if (have_workers)
			return bad("--lane LANE=N sets the workers per lane: leave out --workers");
		for (int i = 0; i < o->nlanes; i++)
			sum += o->lane[i].workers;
		if (sum > LT_MAX_WORKERS)
			return bad("--lane: %ld workers in all, at most %d", sum, LT_MAX_WORKERS);
		o->workers = (int)sum;
	} else if (counted == 1) {
		o->lane[0].workers = o->workers;
	}
	if (o->duration > 0)
		o->requests = 0;
	return 0;
}

int main(int argc, char **argv)
{
	struct lt_opts o = {
	        .want = {1, 1},
	        .workers = 10,
	        .requests = 5,
	        .timeout = 300.0,
	        .text = DEFAULT_TEXT,
	        .voice = "alloy",
	};
	const char *urls[LT_NSVC] = {"http://localhost:5001", "http://localhost:5002"};
	static const char *const endpoints[LT_NSVC] = {ASR_ENDPOINT, TTS_ENDPOINT};
	struct lt_stats st[LT_NSVC];
	char err[512] = "";
	double elapsed = 0.0;
	int status = 2, rc;

	memset(st, 0, sizeof(st));
	rc = parse_flags(argc, argv, &o, urls);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "voicestack-loadtest: curl_global_init failed\n");
		return 1;
	}
	for (int s = 0; s < LT_NSVC; s++) {
		if (!o.want[s])
			continue;
		rc = endpoint_url(urls[s], endpoints[s], &o.url[s]);
		if (rc == -ENOMEM) {
			fprintf(stderr, "voicestack-loadtest: out of memory\n");
			status = 1;
			goto out;
		}
		if (rc < 0) {
			status = bad("--%s-url %s: not a valid http:// or https:// URL",
			             s == LT_ASR ? "asr" : "tts", urls[s]);
			goto out;
		}
	}
	if (o.want[LT_ASR]) {
		if (o.file) {
			const char *slash = strrchr(o.file, '/');

			if (read_file(o.file, &o.audio, &o.audio_len, err, sizeof(err)) < 0) {
				status = bad("--file %s: %s", o.file, err);
				goto out;
			}
			o.audio_name = slash ? slash + 1 : o.file;
			o.audio_type = audio_type(o.audio_name);
		} else {
			if (lt_sample_wav(&o.audio, &o.audio_len) < 0) {
				fprintf(stderr, "voicestack-loadtest: out of memory\n");
				status = 1;
				goto out;
			}
			o.audio_name = "loadtest-sample.wav";
			o.audio_type = "audio/wav";
		}
	}
	rc = lt_run(&o, st, &elapsed, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "voicestack-loadtest: %s\n", err);
		status = 1;
		goto out;
	}
	status = 0;
	for (int s = 0; s < LT_NSVC; s++)
		if (o.want[s] && !lt_stats_ok(&st[s]))
			status = 1;
	if (o.json) {
		if (lt_report_json(&o, st, elapsed, status) < 0) {
			fprintf(stderr, "voicestack-loadtest: cannot write the JSON summary\n");
			status = 1;
		}
	} else {
		lt_report_text(&o, st, elapsed, status);
	}
out:
	for (int s = 0; s < LT_NSVC; s++) {
		lt_stats_free(&st[s]);
		free(o.url[s]);
	}
	free(o.audio);
	curl_global_cleanup();
	return status;
}
