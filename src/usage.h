/* usage.h - what `voicestack --help` and the man page voicestack(1) say.
 *
 * DESIGN
 * One list of commands feeds both, and the settings come from the settings
 * table (vs_config_print_help / vs_config_print_man), so --help and the man
 * page say the same thing. The man page is printed by `voicestack config
 * --man`, which meson runs at build time to make voicestack.1; nothing is
 * kept in two copies. VS_SYSCONFDIR and VS_DOCDIR (meson, from the install
 * prefix) put the paths of the installed layout into the FILES section.
 */
#ifndef VS_USAGE_H
#define VS_USAGE_H

#include <stdio.h>

void vs_usage(FILE *f);
void vs_man_page(FILE *f);

#endif
