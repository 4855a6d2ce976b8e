/* openai_grammar.c - the transcription fields that constrain recognition:
 * `grammar` / `grammar_name` (JSGF) and `keywords` / `keywords_name`
 * (keyword-spotting list). Not OpenAI fields: Voice Stack's own, for engines
 * whose description says `grammars` (pocketsphinx).
 *
 * DESIGN
 * Everything the front can decide without the engine is decided here, so a
 * request that cannot work costs no worker: which of the four fields (at
 * most one), whether the engine can use it at all (a field is never ignored
 * silently), the size (ASR_MAX_GRAMMAR_KB, 413), the text's bytes (UTF-8,
 * no control characters), a name's syntax (a plain name, never a path), the
 * keyword-list syntax line by line, and one JSGF statement the front must
 * refuse itself: `import`, which makes the library read other grammar files
 * from the worker's file system. Whether a grammar compiles and whether its
 * words are in the dictionary is the engine's verdict, in the worker.
 * I/O-free like the rest of src/api: reading an operator file is the
 * front's (src/http/grammar_dir.c), which checks its text here too.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai.h"

#define MAX_NAME 64

static const char *const field_of[] = {
        [VS_GRAMMAR_JSGF] = "grammar",
        [VS_GRAMMAR_KWS] = "keywords",
};

static bool present(const char *s)
{
	return s && *s;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= MAX_NAME &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static unsigned line_at(const char *text, const char *p)
{
	unsigned line = 1;
	for (; text < p; text++)
		line += *text == '\n';
	return line;
}

/* The first token of each JSGF statement, comments and quoted tokens
 * skipped: a statement that starts with `import` is the import statement (a
 * word "import" inside a rule is fine). 0 or -EINVAL with err filled. */
static int jsgf_no_import(const char *text, const char *param, struct vs_oai_err *err)
{
	bool stmt_start = true;
	for (const char *p = text; *p;) {
		if (p[0] == '/' && p[1] == '/') {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
		} else if (*p == '"') {
			const char *e = strchr(p + 1, '"');
			p = e ? e + 1 : p + strlen(p);
			stmt_start = false;
		} else if (*p == ';') {
			stmt_start = true;
			p++;
		} else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
		} else {
			if (stmt_start && strncmp(p, "import", 6) == 0 &&
			    strchr(" \t\r\n<", p[6] ? p[6] : 'x')) {
				vs_oai_err_set(err, 400, param, "invalid_grammar",
				               "Grammar line %u: 'import' is not allowed (a "
				               "request's grammar must be self-contained).",
				               line_at(text, p));
				return -EINVAL;
			}
			stmt_start = false;
			p++;
		}
	}
	return 0;
}

/* One keyword-list line: "word word ... [/threshold/]", threshold a
 * positive number (pocketsphinx's kws file format). */
static bool kws_line_ok(const char *b, size_t n)
{
	const char *e = b + n;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if (e > b && e[-1] == '/') {
		const char *s = e - 1;
		while (s > b && s[-1] != '/')
			s--;
		if (s == b)
			return false; /* a lone '/' */
		char num[64];
		size_t k = (size_t)(e - 1 - s);
		if (k == 0 || k >= sizeof(num))
			return false;
		memcpy(num, s, k);
		num[k] = '\0';
		char *end = NULL;
		double d = strtod(num, &end);
		if (end != num + k || !isfinite(d) || d <= 0)
			return false;
		e = s - 1;
	}
	/* the phrase: at least one word, no '/' left */
	bool word = false;
	for (const char *p = b; p < e; p++) {
		if (*p == '/')
			return false;
		if (*p != ' ' && *p != '\t')
			word = true;
	}
	return word;
}

static int kws_check(const char *text, const char *param, struct vs_oai_err *err)
{
	unsigned line = 1, phrases = 0;
	for (const char *p = text; *p; line++) {
		size_t n = strcspn(p, "\n");
		if (strspn(p, " \t\r") < n) {
			if (!kws_line_ok(p, n)) {
				vs_oai_err_set(err, 400, param, "invalid_keywords",
				               "Keyword list line %u: expected 'phrase' or 'phrase "
				               "/threshold/' (threshold a positive number such as "
				               "1e-20).",
				               line);
				return -EINVAL;
			}
			phrases++;
		}
		p += n;
		if (*p)
			p++;
	}
	if (phrases == 0) {
		vs_oai_err_set(err, 400, param, "invalid_keywords", "The keyword list is empty.");
		return -EINVAL;
	}
	return 0;
}

int vs_grammar_check_text(enum vs_grammar_kind kind, const char *text, size_t len, size_t max_bytes,
                          const char *param, struct vs_oai_err *err)
{
	const char *what = kind == VS_GRAMMAR_JSGF ? "grammar" : "keyword list";
	if (len > max_bytes) {
		vs_oai_err_set(err, 413, param, "grammar_too_large",
		               "The %s is %zu bytes; the limit is %zu bytes (ASR_MAX_GRAMMAR_KB).",
		               what, len, max_bytes);
		return -EINVAL;
	}
	if (memchr(text, '\0', len) || !vs_oai_utf8_valid(text, len)) {
		vs_oai_err_set(err, 400, param, "invalid_value", "The %s must be UTF-8 text.",
		               what);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
			vs_oai_err_set(err, 400, param, "invalid_value",
			               "The %s has a control character on line %u.", what,
			               line_at(text, text + i));
			return -EINVAL;
		}
	}
	return kind == VS_GRAMMAR_JSGF ? jsgf_no_import(text, param, err)
	                               : kws_check(text, param, err);
}

int vs_transcription_grammar(const struct vs_transcription_fields *f,
                             const struct vs_grammar_limits *lim, struct vs_grammar_req *out,
                             struct vs_oai_err *err)
{
	const struct {
		const char *value, *param;
		enum vs_grammar_kind kind;
		bool named;
	} in[] = {
	        {f->grammar, "grammar", VS_GRAMMAR_JSGF, false},
	        {f->grammar_name, "grammar_name", VS_GRAMMAR_JSGF, true},
	        {f->keywords, "keywords", VS_GRAMMAR_KWS, false},
	        {f->keywords_name, "keywords_name", VS_GRAMMAR_KWS, true},
	};
	int chosen = -1;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	for (int i = 0; i < 4; i++) {
		if (!present(in[i].value))
			continue;
		if (chosen >= 0) {
			vs_oai_err_set(err, 400, in[i].param, "invalid_value",
			               "Give at most one of 'grammar', 'grammar_name', 'keywords' "
			               "and 'keywords_name' ('%s' and '%s' were both sent).",
			               in[chosen].param, in[i].param);
			return -EINVAL;
		}
		chosen = i;
	}
	if (chosen < 0)
		return 0;
	if (!lim->supported) {
		vs_oai_err_set(err, 400, in[chosen].param, "unsupported_parameter",
		               "The '%s' engine does not support grammars or keyword lists "
		               "('%s').",
		               lim->engine ? lim->engine : "configured", in[chosen].param);
		return -EINVAL;
	}
	out->kind = in[chosen].kind;
	out->param = in[chosen].param;
	if (in[chosen].named) {
		if (!name_ok(in[chosen].value)) {
			vs_oai_err_set(err, 400, in[chosen].param, "invalid_value",
			               "'%s' must be a plain name of 1 to %d characters A-Z a-z "
			               "0-9 _ - (no path, no extension).",
			               in[chosen].param, MAX_NAME);
			return -EINVAL;
		}
		out->name = in[chosen].value;
		return 0;
	}
	out->text = in[chosen].value;
	return vs_grammar_check_text(out->kind, out->text, strlen(out->text), lim->max_bytes,
	                             out->param, err);
}

const char *vs_grammar_kind_field(enum vs_grammar_kind kind)
{
	return kind == VS_GRAMMAR_JSGF || kind == VS_GRAMMAR_KWS ? field_of[kind] : NULL;
}
