/* cli.h - the one-shot commands of the worker binary. */
#ifndef VS_CLI_H
#define VS_CLI_H

#include "config/config.h"

/* argv[0] is the command ("transcribe" or "speak"), settings already parsed
 * out of argv. Returns the process exit status (2: usage). */
int vs_cli_main(struct vs_config *c, int argc, char **argv);

#endif
