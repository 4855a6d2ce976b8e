/* cli.c - `voicestack transcribe` and `voicestack speak`, one-shot, in the
 * worker binary (the front execs it with the same arguments).
 *
 * DESIGN
 * The same pipeline (pipeline.c) as a worker serving the HTTP API: decode,
 * engine, render/encode, with the same limits and error messages; only the
 * ends differ (a file and stdout instead of frames). Settings come from the
 * same table as `serve` (flags, environment, .env).
 */
#include "engine_settings.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/openai.h"
#include "common/log.h"
#include "media/media.h"
#include "worker/pipeline.h"
#include "worker/worker.h"

static const struct vs_engine_ops *load_engine(const char *cmd, const char *name,
                                               const struct vs_engine_config *ec, void **ctx)
{
	const struct vs_engine_ops *ops = vs_engine_ops_of(vs_engine_find(name));
	char err[512] = "";
	if (!ops) {
		fprintf(stderr, "voicestack %s: engine %s is not built in\n", cmd, name);
		return NULL;
	}
	if (ops->load(ec, ctx, err, sizeof(err)) < 0) {
		fprintf(stderr, "voicestack %s: engine %s failed to load: %s\n", cmd, name, err);
		return NULL;
	}
	return ops;
}

/* `--option KEY=VALUE`, repeatable: a model's engine options, as the worker
 * takes them (`voicestack-worker worker --option`); the engine's load()
 * checks the keys and values. */
struct cli_options {
	const char *v[VS_WORKER_OPTIONS_MAX + 1]; /* NULL-terminated */
	int n;
};

/* Adds kv; 0, or -E2BIG with the message printed past the limit. */
static int cli_option_add(struct cli_options *o, const char *cmd, const char *kv)
{
	if (o->n == VS_WORKER_OPTIONS_MAX) {
		fprintf(stderr, "voicestack %s: more than %d --option\n", cmd,
		        VS_WORKER_OPTIONS_MAX);
		return -E2BIG;
	}
	o->v[o->n++] = kv;
	o->v[o->n] = NULL;
	return 0;
}

static int cli_transcribe(struct vs_config *c, int argc, char **argv)
{
	const char *file = NULL, *format = "text", *language = NULL;
	/* the engine options of a model, as the worker takes them (--option),
	 * so settings can be tried from the command line (bench/tune_asr.py) */
	const char *options[VS_WORKER_OPTIONS_MAX + 1] = {NULL};
	int n_options = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
			format = argv[++i];
		else if (strcmp(argv[i], "--language") == 0 && i + 1 < argc)
			language = argv[++i];
		else if (strcmp(argv[i], "--option") == 0 && i + 1 < argc &&
		         n_options < VS_WORKER_OPTIONS_MAX)
			options[n_options++] = argv[++i];
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else {
			fprintf(stderr, "voicestack transcribe: unexpected argument '%s'\n",
			        argv[i]);
			return 2;
		}
	}
	if (!file) {
		fprintf(stderr, "voicestack transcribe: FILE is required\n");
		return 2;
	}
	struct vs_engine_config ec;
	vs_engine_settings(c, VS_ENGINE_ASR, &ec, NULL, NULL); /* checked values only */
	ec.options = n_options ? options : NULL;               /* load() checks them */
	struct vs_asr_params p = {.language = language, .want_words = true};
	struct vs_pipeline_err e;
	void *ctx = NULL;
	int rc = 1;

	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "voicestack transcribe: %s: %s\n", file, strerror(errno));
		return 1;
	}
	const struct vs_engine_ops *ops = load_engine("transcribe", c->asr_engine, &ec, &ctx);
	if (!ops) {
		close(fd);
		return 1;
	}
	json_t *v = vs_pipeline_transcribe(ops, ctx, fd, NULL, c->asr_max_audio_seconds, &p, &e);
	close(fd);
	char *body = NULL;
	const char *ctype;
	if (!v)
		fprintf(stderr, "voicestack transcribe: %s: %s\n", file, e.message);
	else if (vs_transcript_render(v, format, true, &body, &ctype) < 0) {
		fprintf(stderr, "voicestack transcribe: unknown --format '%s'\n", format);
		rc = 2;
	} else {
		fputs(body, stdout);
		if (body[0] && body[strlen(body) - 1] != '\n')
			fputc('\n', stdout);
		rc = 0;
	}
	free(body);
	json_decref(v);
	ops->unload(ctx);
	return rc;
}

static int write_file(void *opaque, const uint8_t *data, size_t len)
{
	return fwrite(data, 1, len, opaque) == len ? 0 : -EIO;
}

static int cli_speak(struct vs_config *c, int argc, char **argv)
{
	const char *text = NULL, *out = NULL, *voice = "alloy", *format = NULL;
	struct cli_options opts = {.n = 0};
	double speed = 1.0;
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) &&
		    i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--voice") == 0 && i + 1 < argc)
			voice = argv[++i];
		else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
			format = argv[++i];
		else if (strcmp(argv[i], "--speed") == 0 && i + 1 < argc)
			speed = atof(argv[++i]);
		else if (strcmp(argv[i], "--option") == 0 && i + 1 < argc) {
			if (cli_option_add(&opts, "speak", argv[++i]) < 0)
				return 2;
		} else if (!text)
			text = argv[i];
		else {
			fprintf(stderr, "voicestack speak: unexpected argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!text || !out) {
		fprintf(stderr, "voicestack speak: TEXT and -o OUT are required\n");
		return 2;
	}
	if (!format) {
		const char *dot = strrchr(out, '.');
		format = dot && vs_format_valid(dot + 1) ? dot + 1 : "mp3";
	}
	if (!vs_format_valid(format) || speed < 0.25 || speed > 4.0) {
		fprintf(stderr, "voicestack speak: --format must be mp3|opus|aac|flac|wav|pcm and "
		                "--speed 0.25..4.0\n");
		return 2;
	}
	struct vs_engine_config ec;
	vs_engine_settings(c, VS_ENGINE_TTS, &ec, NULL, NULL);
	ec.options = opts.n ? opts.v : NULL;
	struct vs_tts_params p = {.text = text, .voice = voice, .speed = speed};
	struct vs_pipeline_err e;
	size_t samples, bytes;
	void *ctx = NULL;
	int rc = 1;

	const struct vs_engine_ops *ops = load_engine("speak", c->tts_engine, &ec, &ctx);
	if (!ops)
		return 1;
	FILE *f = strcmp(out, "-") == 0 ? stdout : fopen(out, "wbe");
	if (!f)
		fprintf(stderr, "voicestack speak: %s: %s\n", out, strerror(errno));
	else if (vs_pipeline_speak(ops, ctx, &p, format, write_file, f, &samples, &bytes, &e) < 0)
		fprintf(stderr, "voicestack speak: %s\n",
		        e.message[0] ? e.message : "write failed");
	else
		rc = 0;
	if (f && f != stdout && fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "voicestack speak: %s: %s\n", out, strerror(errno));
		rc = 1;
	}
	ops->unload(ctx);
	return rc;
}

int vs_cli_main(struct vs_config *c, int argc, char **argv)
{
	if (strcmp(argv[0], "transcribe") == 0)
		return cli_transcribe(c, argc, argv);
	if (strcmp(argv[0], "speak") == 0)
		return cli_speak(c, argc, argv);
	fprintf(stderr, "voicestack-worker: unknown command '%s'\n", argv[0]);
	return 2;
}
