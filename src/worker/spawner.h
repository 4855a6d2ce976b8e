/* spawner.h - `voicestack-worker spawner`, the process that forks workers.
 */
#ifndef VS_SPAWNER_H
#define VS_SPAWNER_H

/* Width of the blank argument the front appends to the spawner's command
 * line: room for a forked worker's own command line (see spawner.c). */
#define VS_SPAWNER_ARGV_ROOM 1024

/* Entry point of `voicestack-worker spawner --fd N <room>`, with main's
 * argc/argv unchanged (a forked worker rewrites that memory). Returns the
 * exit status of the spawner, or of the worker in a forked child. */
int vs_spawner_main(int argc, char **argv);

#endif
