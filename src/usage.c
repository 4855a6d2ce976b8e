/* usage.c - `voicestack --help` and the man page voicestack(1); see usage.h. */
#include "usage.h"

#include <string.h>

#include "common/doc.h"
#include "config/config.h"
#include "engine_settings.h"

#ifndef VS_SYSCONFDIR
#define VS_SYSCONFDIR "/usr/local/etc"
#endif
#ifndef VS_DOCDIR
#define VS_DOCDIR "/usr/local/share/doc/voicestack"
#endif

/* synopsis: '\n' marks where --help breaks the line (the man page fills) */
static const struct {
	const char *synopsis, *help;
} commands[] = {
        {"serve [--service asr|tts|all]", "run the HTTP services (default: all)"},
        {"transcribe FILE [--format text|json|srt|vtt|verbose_json]\n[--language L]",
         "transcribe one audio file in-process"},
        {"speak \"TEXT\" -o OUT [--voice V] [--format mp3|opus|aac|flac|wav|pcm]\n[--speed S] "
         "[--option KEY=VALUE]...",
         "synthesize speech in-process (--option: the engine's model options, as in "
         "MODELS_FILE)"},
        {"config [--markdown|--man]",
         "print the effective settings and their source (--markdown: docs/CONFIG.md; --man: "
         "this program's man page)"},
        {"models", "print the effective model catalogue (a valid MODELS_FILE; see docs/MODELS.md)"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

void vs_usage(FILE *f)
{
	fprintf(f, "Usage: voicestack <command> [options]\n\nCommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		fputs("  ", f);
		for (const char *p = commands[i].synopsis; *p; p++) {
			if (*p == '\n')
				fputs("\n      ", f);
			else
				fputc(*p, f);
		}
		fputc('\n', f);
		vs_doc_wrap(f, 8, commands[i].help);
	}
	fprintf(f, "\nOptions valid everywhere: --help, --version, --env-file PATH, and every "
	           "setting\nbelow as --name-in-lower-case VALUE.\n\n");
	vs_config_print_help(f, vs_engine_settings_checks());
}

static void section(FILE *f, const char *name, const char *text)
{
	fprintf(f, ".SH %s\n", name);
	vs_roff_line(f, text);
}

/* .TP item: a bold tag, then its text */
static void item(FILE *f, const char *tag, const char *text)
{
	fputs(".TP\n\\fB", f);
	vs_roff_text(f, tag);
	fputs("\\fR\n", f);
	vs_roff_line(f, text);
}

void vs_man_page(FILE *f)
{
	fprintf(f, ".TH VOICESTACK 1 \"\" \"voicestack %s\" \"User Commands\"\n", VS_VERSION);
	fputs(".SH NAME\nvoicestack \\- self\\-hosted speech server with the OpenAI audio API\n",
	      f);
	fputs(".SH SYNOPSIS\n.B voicestack\n.I command\n.RI [ options ]\n", f);
	section(f, "DESCRIPTION",
	        "Voice Stack serves speech-to-text (ASR, `POST /v1/audio/transcriptions`, default "
	        "port 5001) and text-to-speech (TTS, `POST /v1/audio/speech`, default port 5002) "
	        "over HTTP, as the OpenAI audio API does. The default engines, pocketsphinx and "
	        "espeak-ng, come from Debian and work offline. Admission control guards both: "
	        "a memory and swap guard (503), an upload limit (413), concurrency slots (429) "
	        "with an optional bounded queue. Engines run in worker processes of "
	        "voicestack-worker(1), which must be installed in the same directory as "
	        "voicestack.");
	fputs(".SH COMMANDS\n", f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		item(f, commands[i].synopsis, commands[i].help);
	fputs(".SH OPTIONS\n", f);
	item(f, "--help, -h", "print the commands and every setting, and exit");
	item(f, "--version, -V", "print the version, and exit");
	vs_config_print_man(f, vs_engine_settings_checks());
	fputs(".SH FILES\n", f);
	item(f, VS_SYSCONFDIR "/voicestack/voicestack.env",
	     "the settings the packaged systemd units pass with `--env-file` (the example "
	     "settings; a conffile of the Debian package)");
	item(f, "./.env", "settings read when no `--env-file` is given, if the file exists");
	item(f, VS_DOCDIR,
	     "the documentation: API.md (the HTTP API), CONFIG.md (every setting), DEPLOY.md "
	     "(package, systemd, load balancers), MODELS.md (MODELS_FILE)");
	section(f, "SIGNALS",
	        "SIGTERM or SIGINT: stop accepting, answer requests in work with 503 "
	        "`shutting_down`, stop the workers (at most `SHUTDOWN_GRACE_SECONDS`) and exit 0. "
	        "SIGHUP: re-read `API_KEYS_FILE` (a file that does not parse keeps the keys in "
	        "force); nothing else is reloaded.");
	section(f, "EXIT STATUS",
	        "0 on success; 2 for a bad command, option or setting (one line on stderr says "
	        "which); 1 when the server or command fails otherwise (e.g. a port in use).");
	fputs(".SH SEE ALSO\n.BR voicestack\\-worker (1),\n.BR voicestack\\-loadtest (1)\n", f);
}
