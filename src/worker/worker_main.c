/* worker_main.c - one engine worker process.
 *
 * DESIGN
 * The front starts this as `voicestack-worker worker ...`, forked by the
 * spawner (spawner.c: the binary linked, nothing initialised) or exec'd with
 * posix_spawn; never a bare fork of the threaded front: espeak-ng hangs when initialised before a
 * fork and changes the locale, pocketsphinx/sphinxbase call exit() on fatal
 * errors). A worker owns exactly one engine instance and serves one request
 * at a time over the socket it inherited as --fd:
 *
 *   started --first request--> load model --ok--> LOADED frame, serve requests
 *                                   \--fail--> ERROR 503 frame, exit(3)
 *
 * It exits when the front closes the socket (idle unload), and dies with the
 * front (PR_SET_PDEATHSIG). All untrusted media decoding happens here, so a
 * crash in FFmpeg or an engine costs one request, not the server. The work
 * itself is pipeline.c, shared with the one-shot CLI commands.
 * Runs niced (--nice) so the front keeps answering while workers saturate
 * the CPUs.
 */
#include "worker/worker.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/openai.h"
#include "common/log.h"
#include "common/time.h"
#include "engine/engine.h"
#include "worker/pipeline.h"
#include "worker/proto.h"

/* sphinxbase 5prealpha's JSGF parser does not free all of a grammar's rule
 * atoms (LeakSanitizer: about a hundred bytes per compiled grammar, on
 * success and failure alike; tests/sanitizer/lsan.supp). A worker that has
 * compiled this many grammars or keyword lists exits after its answer, so
 * the leak stays bounded (~100 KB) at the cost of one model load per
 * VS_GRAMMAR_RECYCLE grammar requests. */
#define VS_GRAMMAR_RECYCLE 1000

struct worker {
	unsigned grammars_compiled; /* see VS_GRAMMAR_RECYCLE */
	int sock;
	const struct vs_engine_ops *ops;
	struct vs_engine_config cfg;
	double max_audio_seconds;
	void *ctx;            /* loaded engine, NULL until the first request */
	const char *model_id; /* the catalogue's model (--model-id), for logs */
};

static int send_error(struct worker *w, int status, const char *message, const char *param,
                      const char *code)
{
	json_t *j = json_pack("{s:i, s:s, s:s?, s:s?}", "status", status, "message", message,
	                      "param", param, "code", code);
	int r = j ? vs_frame_send_json(w->sock, VS_MSG_ERROR, j, -1) : -ENOMEM;
	json_decref(j);
	return r;
}

/* Loads the engine on first use. On failure the front gets a 503 with the
 * reason and this process exits, so the next request starts a fresh one. */
/* resident set of this process in KiB (/proc/self/statm), -1 if unknown */
static long self_rss_kb(void)
{
	long pages = -1, size;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%ld %ld", &size, &pages) != 2)
			pages = -1;
		fclose(f);
	}
	return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static int ensure_loaded(struct worker *w)
{
	char err[512] = "";
	uint64_t t0;
	int r;

	if (w->ctx)
		return 0;
	t0 = vs_now_ms();
	r = w->ops->load(&w->cfg, &w->ctx, err, sizeof(err));
	if (r < 0) {
		char msg[700];
		snprintf(msg, sizeof(msg), "Model failed to load (engine %s): %s",
		         w->ops->info->name, err[0] ? err : strerror(-r));
		vs_error("event=model_load_failed engine=%s reason=\"%s\"", w->ops->info->name,
		         err);
		send_error(w, 503, msg, NULL, "model_load_failed");
		exit(3);
	}
	uint64_t ms = vs_now_ms() - t0;
	long rss_kb = self_rss_kb();
	vs_info("event=model_loaded engine=%s model=%s load_ms=%llu rss_kb=%ld", w->ops->info->name,
	        w->model_id, (unsigned long long)ms, rss_kb);
	/* the front keeps both per model: /health/detailed shows them, and the
	 * RSS tells admission whether a cold load would fit */
	json_t *j = json_pack("{s:s, s:s, s:I, s:I}", "engine", w->ops->info->name, "model",
	                      w->model_id, "load_ms", (json_int_t)ms, "rss_kb", (json_int_t)rss_kb);
	vs_frame_send_json(w->sock, VS_MSG_LOADED, j, -1);
	json_decref(j);
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return (s && *s) ? s : NULL;
}

static void send_pipeline_error(struct worker *w, const struct vs_pipeline_err *e)
{
	send_error(w, e->status, e->message, e->param, e->code);
}

/* A streamed transcription: each segment goes to the front as soon as the
 * engine has it; a send that fails (the front killed the request) stops
 * the engine. */
static int send_segment(void *opaque, const struct vs_segment *seg)
{
	struct worker *w = opaque;
	json_t *j = json_pack("{s:o, s:f, s:f}", "text", vs_oai_json_string(seg->text), "start",
	                      seg->start, "end", seg->end);
	int r = j ? vs_frame_send_json(w->sock, VS_MSG_SEGMENT, j, -1) : -ENOMEM;
	json_decref(j);
	return r;
}

static void do_transcribe(struct worker *w, json_t *req, int fd)
{
	struct vs_asr_params p = {
	        .language = jstr(req, "language"),
	        .prompt = jstr(req, "prompt"),
	        .temperature = json_number_value(json_object_get(req, "temperature")),
	        .want_words = json_is_true(json_object_get(req, "want_words")),
	        .grammar = jstr(req, "grammar"),
	        .keywords = jstr(req, "keywords"),
	        .on_segment = json_is_true(json_object_get(req, "stream")) ? send_segment : NULL,
	        .segment_opaque = w,
	};
	struct vs_pipeline_err e;

	/* the front refuses these already; an engine must never get an option
	 * it would ignore */
	if ((p.grammar || p.keywords) && !w->ops->info->grammars) {
		send_error(w, 400, "this engine does not support grammars or keyword lists",
		           p.grammar ? "grammar" : "keywords", "unsupported_parameter");
		return;
	}
	if (fd < 0) {
		send_error(w, 500, "internal error: no upload descriptor", "file", NULL);
		return;
	}
	if (p.grammar || p.keywords)
		w->grammars_compiled++;
	/* "pcm": the upload is headerless PCM in this format (Wyoming's audio) */
	json_t *pcm = json_object_get(req, "pcm");
	struct vs_raw_format raw = {
	        .rate = (int)json_integer_value(json_object_get(pcm, "rate")),
	        .width = (int)json_integer_value(json_object_get(pcm, "width")),
	        .channels = (int)json_integer_value(json_object_get(pcm, "channels")),
	};
	json_t *out = vs_pipeline_transcribe(w->ops, w->ctx, fd, pcm ? &raw : NULL,
	                                     w->max_audio_seconds, &p, &e);
	if (!out) {
		send_pipeline_error(w, &e);
		return;
	}
	if (vs_frame_send_json(w->sock, VS_MSG_RESULT, out, -1) < 0)
		vs_error("event=send_failed what=result");
	json_decref(out);
}

/* Encoded bytes go to the front as they are produced (64 KiB AUDIO frames):
 * the client hears the first sentence while the engine is still on the
 * last. The pipeline holds a container header back until the engine's
 * first samples, so a refused voice is still a 400, not a cut 200. */
static int send_audio(void *opaque, const uint8_t *data, size_t len)
{
	struct worker *w = opaque;
	while (len > 0) {
		uint32_t chunk = len > 65536 ? 65536 : (uint32_t)len;
		int r = vs_frame_send(w->sock, VS_MSG_AUDIO, data, chunk, -1);
		if (r < 0)
			return r;
		data += chunk;
		len -= chunk;
	}
	return 0;
}

static void do_synthesize(struct worker *w, json_t *req)
{
	struct vs_tts_params p = {
	        .text = jstr(req, "input"),
	        .voice = jstr(req, "voice"),
	        .speed = json_number_value(json_object_get(req, "speed")),
	};
	const char *format = jstr(req, "response_format");
	struct vs_pipeline_err e;
	size_t samples = 0, bytes = 0;

	if (!p.text || !format) {
		send_error(w, 400, "input and response_format are required", "input", NULL);
		return;
	}
	if (p.speed <= 0)
		p.speed = 1.0;
	int r = vs_pipeline_speak(w->ops, w->ctx, &p, format, send_audio, w, &samples, &bytes, &e);
	if (r == -EPIPE)
		return; /* the front went away; nothing to tell */
	if (r < 0) {
		/* Before the first AUDIO frame this becomes a proper HTTP error;
		 * after it, the front can only cut the stream short. */
		send_pipeline_error(w, &e);
		return;
	}
	/* seconds: what the front counts as audio out (the engine's rate) */
	int rate = w->ops->sample_rate(w->ctx);
	json_t *end =
	        json_pack("{s:I, s:I, s:f}", "samples", (json_int_t)samples, "bytes",
	                  (json_int_t)bytes, "seconds", rate > 0 ? (double)samples / rate : 0.0);
	vs_frame_send_json(w->sock, VS_MSG_END, end, -1);
	json_decref(end);
}

static void do_voices(struct worker *w)
{
	struct vs_voice *v = NULL;
	size_t n = 0;
	json_t *arr = json_array();

	if (w->ops->list_voices && w->ops->list_voices(w->ctx, &v, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			json_array_append_new(
			        arr, json_pack("{s:s, s:s, s:s}", "name", v[i].name, "language",
			                       v[i].language ? v[i].language : "", "gender",
			                       v[i].gender ? v[i].gender : ""));
		vs_voices_free(v, n);
	}
	json_t *out = json_pack("{s:o}", "voices", arr);
	vs_frame_send_json(w->sock, VS_MSG_RESULT, out, -1);
	json_decref(out);
}

static void usage_error(const char *msg)
{
	fprintf(stderr, "voicestack worker: %s (this subcommand is started by the server)\n", msg);
}

int vs_worker_main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"service", required_argument, NULL, 's'},
	        {"engine", required_argument, NULL, 'e'},
	        {"model", required_argument, NULL, 'm'},
	        {"device", required_argument, NULL, 'd'},
	        {"compute-type", required_argument, NULL, 'c'},
	        {"vad", required_argument, NULL, 'v'},
	        {"max-audio-seconds", required_argument, NULL, 'a'},
	        {"nice", required_argument, NULL, 'n'},
	        {"log-level", required_argument, NULL, 'l'},
	        {"fd", required_argument, NULL, 'f'},
	        {"option", required_argument, NULL, 'o'},
	        {"model-id", required_argument, NULL, 'i'},
	        {0},
	};
	/* the ASR_MAX_AUDIO_SECONDS default; the front always passes its value */
	struct worker w = {.sock = -1, .max_audio_seconds = 600};
	const char *service = NULL, *engine = NULL;
	/* the model's engine options, "key=value" (catalogue); the engine checks them */
	static const char *options[VS_WORKER_OPTIONS_MAX + 1];
	int nice_inc = 0, c, n_options = 0;
	pid_t parent = getppid();

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': service = optarg; break;
		case 'e': engine = optarg; break;
		case 'm': w.cfg.model = optarg; break;
		case 'd': w.cfg.device = optarg; break;
		case 'c': w.cfg.compute_type = optarg; break;
		case 'v': w.cfg.vad = atoi(optarg) != 0; break;
		case 'a': w.max_audio_seconds = atof(optarg); break;
		case 'n': nice_inc = atoi(optarg); break;
		case 'l': {
			int l = vs_log_parse_level(optarg);
			if (l >= 0)
				vs_log_set_level((enum vs_log_level)l);
			break;
		}
		case 'f': w.sock = atoi(optarg); break;
		case 'i': w.model_id = optarg; break;
		case 'o':
			if (n_options == VS_WORKER_OPTIONS_MAX) {
				usage_error("too many --option");
				return 2;
			}
			options[n_options++] = optarg;
			w.cfg.options = options;
			break;
		default: usage_error("bad option"); return 2;
		}
	}
	if (!service || !engine || w.sock < 0) {
		usage_error("--service, --engine and --fd are required");
		return 2;
	}
	vs_log_set_tag(strcmp(service, "tts") == 0 ? "tts-worker" : "asr-worker");
	/* die with the front, and never outlive a front that died before this line */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (nice_inc > 0)
		setpriority(PRIO_PROCESS, 0, nice_inc);

	w.ops = vs_engine_ops_of(vs_engine_find(engine));
	if (!w.ops) {
		vs_error("event=worker_start_failed reason=\"unknown engine %s\"", engine);
		return 2;
	}
	if (!w.model_id)
		w.model_id = w.ops->info->name;

	for (;;) {
		struct vs_frame f;
		int r = vs_frame_recv(w.sock, &f);
		if (r == -EPIPE)
			break; /* front closed the socket: idle unload or shutdown */
		if (r < 0) {
			vs_error("event=protocol_error err=%d", r);
			break;
		}
		json_t *req = vs_frame_json(&f);
		ensure_loaded(&w);
		switch (f.type) {
		case VS_MSG_TRANSCRIBE: do_transcribe(&w, req, f.fd); break;
		case VS_MSG_SYNTHESIZE: do_synthesize(&w, req); break;
		case VS_MSG_VOICES: do_voices(&w); break;
		default: send_error(&w, 500, "unknown request type", NULL, NULL); break;
		}
		json_decref(req);
		vs_frame_clear(&f);
		if (w.grammars_compiled >= VS_GRAMMAR_RECYCLE) {
			/* the answer is out; the front sees this idle worker end and
			 * the slot's next request starts a fresh one */
			vs_info("event=worker_recycled reason=grammars_compiled count=%u",
			        w.grammars_compiled);
			break;
		}
	}
	if (w.ops && w.ctx)
		w.ops->unload(w.ctx);
	return 0;
}
