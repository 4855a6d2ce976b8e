/* worker.h - the engine worker process (the hidden `voicestack worker`
 * subcommand) and the arguments the front passes it.
 */
#ifndef VS_WORKER_H
#define VS_WORKER_H

/* Entry point of `voicestack worker --service asr|tts --engine NAME --fd N ...`.
 * Returns the process exit status. */
int vs_worker_main(int argc, char **argv);

#endif
