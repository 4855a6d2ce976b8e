/* doc.c - --help and man page text (see doc.h). */
#include "common/doc.h"

#include <stdbool.h>
#include <string.h>

void vs_doc_wrap(FILE *f, int indent, const char *text)
{
	int col = 0;

	while (*text) {
		size_t n = strcspn(text, " ");
		if (col > 0 && col + 1 + (int)n > 80) {
			fputc('\n', f);
			col = 0;
		}
		if (col == 0)
			col = fprintf(f, "%*s", indent, "");
		else
			col += fprintf(f, " ");
		col += fprintf(f, "%.*s", (int)n, text);
		text += n;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

void vs_roff_text(FILE *f, const char *text)
{
	bool code = false;

	for (; *text; text++) {
		switch (*text) {
		case '\\': fputs("\\e", f); break;
		case '-': fputs("\\-", f); break;
		case '\n': fputc(' ', f); break;
		case '`':
			code = !code;
			fputs(code ? "\\fB" : "\\fR", f);
			break;
		default: fputc(*text, f);
		}
	}
	/* an unbalanced backtick must not leave the rest of the page bold */
	if (code)
		fputs("\\fR", f);
}

void vs_roff_line(FILE *f, const char *text)
{
	if (*text == '.' || *text == '\'')
		fputs("\\&", f);
	vs_roff_text(f, text);
	fputc('\n', f);
}
