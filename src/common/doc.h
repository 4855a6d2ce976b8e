/* doc.h - the text of --help (wrapped for a terminal) and of man pages
 * (man(7) roff), written the same way by every author of such text.
 *
 * DESIGN
 * The man page voicestack(1) is printed by the program itself (`voicestack
 * config --man`, run by meson at build time) from the same tables as
 * --help, so it cannot drift from the code. Its two authors (the settings
 * table in src/config, the command list in src/usage.c) write text through
 * these functions, so wrapping and escaping is decided in one place: `\` and `-`
 * escaped (`\-` keeps flags copyable as ASCII whatever groff's hyphen
 * mapping), a line that would start with `.` or `'` defused (it would be a
 * request), and `code` spans (the tables' Markdown backticks) set in bold,
 * as man(7) asks for literal text.
 */
#ifndef VS_COMMON_DOC_H
#define VS_COMMON_DOC_H

#include <stdio.h>

/* text word-wrapped at 80 columns, each line indented by `indent` */
void vs_doc_wrap(FILE *f, int indent, const char *text);
/* text, escaped, without a line break (for a macro line the caller starts) */
void vs_roff_text(FILE *f, const char *text);
/* text as one filled input line of its own, ending in '\n' */
void vs_roff_line(FILE *f, const char *text);

#endif
