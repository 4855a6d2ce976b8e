/* main_worker.c - `voicestack-worker`, the binary that runs the engines.
 *
 * DESIGN
 * The front (`voicestack`) links neither FFmpeg nor an engine; everything
 * that does lives in this binary, installed beside it:
 *   voicestack-worker worker --service asr|tts --engine NAME --fd N ...
 *       one engine worker, started by the front (worker_main.c);
 *   voicestack-worker spawner --fd N ...
 *       the process that forks workers for the front (spawner.c);
 *   voicestack-worker transcribe|speak ...
 *       the one-shot commands, which `voicestack transcribe|speak` exec
 *       with the same arguments (cli.c).
 */
#include <stdio.h>
#include <string.h>

#include "engine_settings.h"
#include "common/log.h"
#include "config/config.h"
#include "cli.h"
#include "worker/spawner.h"
#include "worker/worker.h"

int main(int argc, char **argv)
{
	struct vs_config cfg;
	char err[512];
	int rest = 0;

	if (argc < 2) {
		fprintf(stderr,
		        "voicestack-worker: started by `voicestack` (see voicestack --help)\n");
		return 2;
	}
	/* the worker takes its arguments from the front, not from settings */
	if (strcmp(argv[1], "worker") == 0)
		return vs_worker_main(argc - 1, argv + 1);
	/* whole argv: a forked worker rewrites the command line in place */
	if (strcmp(argv[1], "spawner") == 0)
		return vs_spawner_main(argc, argv);
	/* settings parsing sees the arguments after the command name */
	if (vs_config_load(&cfg, vs_engine_settings_checks(), argc - 1, argv + 1, &rest, err,
	                   sizeof(err)) < 0) {
		fprintf(stderr, "voicestack: invalid setting: %s\n", err);
		return 2;
	}
	int l = vs_log_parse_level(cfg.log_level);
	if (l >= 0)
		vs_log_set_level((enum vs_log_level)l);
	return vs_cli_main(&cfg, rest, argv + 1);
}
