/* worker.h - the engine worker process (the hidden `voicestack worker`
 * subcommand) and the arguments the front passes it.
 */
#ifndef VS_WORKER_H
#define VS_WORKER_H

/* most --option key=value a worker takes (a model's engine options) */
#define VS_WORKER_OPTIONS_MAX 32

/* Entry point of `voicestack worker --service asr|tts --engine NAME --fd N
 *   [--option key=value]...`.
 * Returns the process exit status. */
int vs_worker_main(int argc, char **argv);

#endif
