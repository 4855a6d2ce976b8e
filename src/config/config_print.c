/* config_print.c - the settings table as text: `voicestack --help`,
 * `voicestack config` (effective values and their source), the whole of
 * docs/CONFIG.md (`voicestack config --markdown`) and the SETTINGS section of
 * the voicestack(1) man page (`voicestack config --man`, src/usage.c).
 *
 * DESIGN
 * Printing only reads the table (table.h) and asks vs_setting_describe()
 * what a row accepts, the same words an error message uses, so the help, the
 * document and the errors cannot drift apart; tests/unit/test_config.c
 * compares docs/CONFIG.md with vs_config_print_markdown() byte for byte, and
 * the man page is generated at build time (meson), so it has no copy to go
 * stale. The caller's checks supply what config cannot know (the engine
 * names).
 */
#include "config/table.h"

#include "common/doc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static void format_value(const struct vs_config *c, const struct vs_setting *s, char *buf,
                         size_t len)
{
	const void *field = (const char *)c + s->off;

	switch (s->type) {
	case T_INT:
		if (s->choices && *(const int *)field == 0)
			snprintf(buf, len, "auto");
		else
			snprintf(buf, len, "%d", *(const int *)field);
		break;
	case T_DOUBLE: snprintf(buf, len, "%.15g", *(const double *)field); break;
	case T_BOOL: snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false"); break;
	case T_ENUM:
	case T_STRING: snprintf(buf, len, "%s", (const char *)field); break;
	case T_SECRET: snprintf(buf, len, "%s", *(const char *)field ? "(set)" : ""); break;
	}
}

static const char *metavar(const struct vs_setting *s)
{
	static const char *const names[] = {"N", "N", "BOOL", "TEXT", "WORD", "TEXT"};
	return names[s->type];
}

static void flag_name(const struct vs_setting *s, char *buf, size_t len)
{
	size_t i = 0;

	snprintf(buf, len, "--");
	for (; s->name[i] && i + 3 < len; i++)
		buf[i + 2] = s->name[i] == '_' ? '-' : (char)tolower(s->name[i]);
	buf[i + 2] = '\0';
}

void vs_config_print_help(FILE *f, const struct vs_config_check *checks)
{
	char flag[64], allowed[256], line[512];

	fprintf(f, "Settings (each also an environment variable or a .env line; precedence:\n"
	           "flag > environment > .env file > default):\n\n");
	fprintf(f, "  --env-file PATH\n");
	vs_doc_wrap(f, 8,
	            "Read settings from PATH instead of ./.env; a missing file is an "
	            "error.");
	for (size_t i = 0; i < vs_n_settings; i++) {
		const struct vs_setting *s = &vs_settings[i];

		const char *def = vs_setting_default(s, checks);

		flag_name(s, flag, sizeof(flag));
		vs_setting_describe(s, checks, allowed, sizeof(allowed));
		fprintf(f, "  %s %s  (%s)\n", flag, metavar(s), s->name);
		snprintf(line, sizeof(line), "Default %s%s%s; %s.", def[0] ? def : "empty",
		         s->unit[0] ? " " : "", s->unit, allowed);
		vs_doc_wrap(f, 8, line);
		vs_doc_wrap(f, 8, s->help);
	}
}

void vs_config_print_effective(const struct vs_config *c, FILE *f)
{
	char value[VS_STR_MAX];

	for (size_t i = 0; i < vs_n_settings; i++) {
		format_value(c, &vs_settings[i], value, sizeof(value));
		fprintf(f, "%s=%s  (%s)\n", vs_settings[i].name, value,
		        vs_config_source_name(c->source[i]));
	}
}

/* Markdown table cell: '|' would end the cell. */
static void md_cell(FILE *f, const char *text)
{
	fputs(" ", f);
	for (; *text; text++) {
		if (*text == '|')
			fputc('\\', f);
		fputc(*text, f);
	}
	fputs(" |", f);
}

static const char md_intro[] =
        "# Configuration\n"
        "\n"
        "<!-- Generated from the settings table in src/config/config.c by\n"
        "     `voicestack config --markdown`. Do not edit: tests/unit/test_config.c fails\n"
        "     when this file and the code differ. -->\n"
        "\n"
        "Every setting can be given in four ways; the first one present wins:\n"
        "\n"
        "1. a command-line flag: the name in lower case with `-` for `_`, e.g.\n"
        "   `--max-upload-size-mb 100` or `--max-upload-size-mb=100` (a boolean flag\n"
        "   alone, e.g. `--asr-vad-enabled`, means true);\n"
        "2. an environment variable, e.g. `MAX_UPLOAD_SIZE_MB=100`;\n"
        "3. a line of the `.env` file: `./.env` in the working directory if it exists, or\n"
        "   the file named by `--env-file PATH` (which must exist);\n"
        "4. the default.\n"
        "\n"
        "Every value given is checked at start-up, even one that a source of higher\n"
        "precedence overrides. A bad value stops the program with one line naming the\n"
        "setting, the value, where it came from and what is allowed, e.g.\n"
        "\n"
        "    MEMORY_THRESHOLD_PERCENT=150 (from environment): must be an integer from 1 to 100\n"
        "\n"
        "`voicestack config` prints the effective value of every setting and where it\n"
        "came from (`default`, `.env`, `environment` or `flag`); `voicestack --help`\n"
        "lists the flags.\n"
        "\n"
        "Values: booleans are `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off` (any\n"
        "case); numbers are plain decimal, and settings in minutes or seconds take\n"
        "fractions (`ASR_IDLE_TIMEOUT_MINUTES=0.05` is 3 seconds); choices are matched\n"
        "in any case.\n"
        "\n"
        "## The .env file\n"
        "\n"
        "- One `KEY=VALUE` per line; blanks around `=` are allowed.\n"
        "- Blank lines and lines starting with `#` are ignored.\n"
        "- `export KEY=VALUE` is accepted, so the file can also be sourced by a shell.\n"
        "- A value in single quotes is taken literally; in double quotes `\\\"`, `\\\\`,\n"
        "  `\\n` and `\\t` are unescaped. After the closing quote only a comment may follow.\n"
        "- In an unquoted value, `#` at its start or after a blank starts a comment;\n"
        "  trailing blanks are dropped.\n"
        "- Keys that are not settings of Voice Stack are ignored (the file may be shared\n"
        "  with other programs). Keys are case-sensitive. A line that is not `KEY=VALUE`\n"
        "  is an error.\n"
        "- No variable expansion (`${VAR}`) and no multi-line values. At most 1 MiB,\n"
        "  lines of at most 4096 bytes.\n"
        "\n"
        "## Compatibility with the original\n"
        "\n"
        "The settings of the original specification keep their names, defaults and\n"
        "behaviour: `MEMORY_THRESHOLD_PERCENT` 90, `SWAP_THRESHOLD_PERCENT` 80,\n"
        "`MAX_UPLOAD_SIZE_MB` 100, `ASR_/TTS_MAX_CONCURRENT_REQUESTS` 2,\n"
        "`ASR_/TTS_IDLE_TIMEOUT_MINUTES` 60 (0 disables), idle models looked for every 60\n"
        "seconds. The settings added by Voice Stack in C default to that behaviour too:\n"
        "`ASR_MAX_QUEUE` and `TTS_MAX_QUEUE` are 0, so a request that finds every slot\n"
        "busy gets 429 at once, as in the original; set them above 0 to let requests\n"
        "wait up to `*_QUEUE_TIMEOUT_SECONDS` instead. With `ASR_/TTS_RESERVED_SLOTS` 0\n"
        "and `ALLOW_CLIENT_PRIORITY` false (and no API keys) every request is in the\n"
        "`normal` lane, so priority lanes change nothing either. The limits\n"
        "(`TTS_MAX_INPUT_CHARS`, `MAX_JSON_BODY_KB`, `ASR_MAX_AUDIO_SECONDS`,\n"
        "`REQUEST_TIMEOUT_SECONDS`) bound what a client can make the server do.\n"
        "\n"
        "Differences: `HOST` defaults to 127.0.0.1 (the original listened on 0.0.0.0);\n"
        "the default engines have one model each and run on the CPU, so `ASR_MODEL`\n"
        "defaults to empty (the engine's own model) and `ASR_COMPUTE_TYPE`, `ASR_DEVICE`\n"
        "and `TTS_DEVICE` are accepted, so a `.env` written for the original still loads,\n"
        "but a value the engine does not list (its models, devices and compute types)\n"
        "is ignored with one warning at start-up.\n"
        "\n"
        "## Settings\n"
        "\n"
        "| Setting | Flag | Default | Allowed | Unit | Description |\n"
        "| --- | --- | --- | --- | --- | --- |\n";

void vs_config_print_markdown(FILE *f, const struct vs_config_check *checks)
{
	char flag[64], allowed[256], buf[320];

	fputs(md_intro, f);
	for (size_t i = 0; i < vs_n_settings; i++) {
		const struct vs_setting *s = &vs_settings[i];

		const char *def = vs_setting_default(s, checks);

		flag_name(s, flag, sizeof(flag));
		vs_setting_describe(s, checks, allowed, sizeof(allowed));
		fputs("|", f);
		snprintf(buf, sizeof(buf), "`%s`", s->name);
		md_cell(f, buf);
		snprintf(buf, sizeof(buf), "`%s`", flag);
		md_cell(f, buf);
		if (def[0])
			snprintf(buf, sizeof(buf), "`%s`", def);
		md_cell(f, def[0] ? buf : "*(empty)*");
		md_cell(f, allowed);
		md_cell(f, s->unit);
		md_cell(f, s->help);
		fputs("\n", f);
	}
}

void vs_config_print_man(FILE *f, const struct vs_config_check *checks)
{
	char flag[64], allowed[256], line[512];

	fputs(".SH SETTINGS\n", f);
	vs_roff_line(f,
	             "Each setting is a flag, an environment variable of the same name, or a "
	             "`KEY=VALUE` line of the .env file; the first one present wins: flag, "
	             "environment, .env file, default. Every value given is checked at start-up "
	             "(a bad one stops the program with one line saying why). "
	             "`voicestack config` prints the effective values and where each came from.");
	fputs(".TP\n\\fB\\-\\-env\\-file\\fR \\fIPATH\\fR\n", f);
	vs_roff_line(f, "Read settings from PATH instead of ./.env; a missing file is an error.");
	for (size_t i = 0; i < vs_n_settings; i++) {
		const struct vs_setting *s = &vs_settings[i];
		const char *def = vs_setting_default(s, checks);

		flag_name(s, flag, sizeof(flag));
		vs_setting_describe(s, checks, allowed, sizeof(allowed));
		fputs(".TP\n\\fB", f);
		vs_roff_text(f, flag);
		fprintf(f, "\\fR \\fI%s\\fR (\\fB%s\\fR)\n", metavar(s), s->name);
		snprintf(line, sizeof(line), "Default %s%s%s; %s.", def[0] ? def : "empty",
		         s->unit[0] ? " " : "", s->unit, allowed);
		vs_roff_line(f, line);
		fputs(".br\n", f);
		vs_roff_line(f, s->help);
	}
}
