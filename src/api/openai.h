/* openai.h - the OpenAI audio API's wire shapes, as pure functions.
 *
 * DESIGN
 * Everything here is I/O-free and HTTP-library-free so it can be unit-tested
 * byte for byte (tests/unit/test_openai.c) and shared by both sides:
 *   - the front (src/http/) validates requests with vs_speech_parse() and
 *     vs_transcription_validate() before a request costs a worker slot, and
 *     answers with vs_oai_error_body() / vs_transcript_render();
 *   - the ASR worker turns the engine's struct vs_transcript into the
 *     verbose_json object (vs_transcript_to_verbose_json) and ships that one
 *     object to the front, which renders whatever response_format the client
 *     asked for from it. One intermediate shape keeps the worker protocol
 *     independent of the five output formats.
 * JSON is jansson. Validation functions never log: they fill struct vs_oai_err
 * (status, message, param, code), which maps 1:1 onto an OpenAI error body.
 * Every string put into JSON must be valid UTF-8 (jansson refuses anything
 * else), so messages that quote client bytes are sanitized here.
 */
#ifndef VS_HTTP_OPENAI_H
#define VS_HTTP_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct vs_transcript;

/* ---- errors (openai.c) ---- */

/* One client-facing error. status is the HTTP status; param and code are ""
 * when they do not apply (rendered as JSON null). */
struct vs_oai_err {
	int status;
	char message[512];
	char param[64]; /* realtime params are paths: session.audio.input... */
	char code[64];
};

/* {"error":{"message":..,"type":..,"param":..,"code":..}}; NULL or "" param /
 * code become null. Invalid UTF-8 in message is replaced by '?'. New
 * reference, NULL only on out-of-memory. */
json_t *vs_oai_error(const char *message, const char *type, const char *param, const char *code);

/* Error "type" and default "code" (used when code is NULL or "") by status:
 *
 *   status                      type                    default code
 *   400 404 405 413 415 422     invalid_request_error   (null)
 *   other 4xx                   invalid_request_error   (null)
 *   429                         rate_limit_error        rate_limit_exceeded
 *   500 and other 5xx           server_error            (null)
 *   503                         server_error            service_unavailable
 *   504                         timeout_error           timeout
 *   anything else (< 400)       server_error            (null)
 */
const char *vs_oai_error_type(int http_status);
const char *vs_oai_error_default_code(int http_status);

/* Compact JSON text of the error body above; malloc'd (free()), NULL only on
 * out-of-memory. */
char *vs_oai_error_body(int http_status, const char *message, const char *param, const char *code);
/* Same for a filled struct vs_oai_err. */
char *vs_oai_err_body(const struct vs_oai_err *e);

/* JSON string of s (NULL -> ""), invalid UTF-8 replaced by '?'; new
 * reference, NULL only on out-of-memory. */
json_t *vs_oai_json_string(const char *s);

/* Fills *e (message printf-style, truncated on a UTF-8 boundary). NULL param /
 * code mean "none". */
void vs_oai_err_set(struct vs_oai_err *e, int status, const char *param, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* true if model is in accepted (NULL-terminated; NULL = any name shorter than
 * 64 bytes). Otherwise fills *err: 400, param "model", code
 * "model_not_found", message naming hint (NULL = the list joined by ", "). */
bool vs_oai_check_model(const char *model, const char *const *accepted, const char *hint,
                        struct vs_oai_err *err);

/* ---- UTF-8 helpers (openai_utf8.c) ---- */

/* Strict validation: no overlongs, no surrogates, nothing above U+10FFFF. */
bool vs_oai_utf8_valid(const char *s, size_t len);
/* Number of code points in valid UTF-8 (counts lead bytes). */
size_t vs_oai_utf8_chars(const char *s, size_t len);
/* Replaces every byte that is not part of a valid sequence by '?', in place. */
void vs_oai_utf8_sanitize(char *s);
/* Cuts a NUL-terminated string so it does not end inside a sequence. */
void vs_oai_utf8_trim_tail(char *s);

/* ---- transcripts (openai_transcript.c, openai_lang.c, openai_render.c) ---- */

/* "en", "EN", "en-US" -> "english" (whisper's code -> name table); a known
 * full name is returned in its canonical lower-case form; anything else is
 * returned unchanged; NULL -> "". */
const char *vs_oai_language_name(const char *code);

/* OpenAI verbose_json object for a transcript:
 *   {"task":"transcribe","language":"english","duration":d,"text":..,
 *    "segments":[{"id","seek","start","end","text","tokens":[],"temperature",
 *                 "avg_logprob","compression_ratio","no_speech_prob"}...],
 *    "words":[{"word","start","end"}...]}            ("words" only if with_words)
 * Times are rounded to milliseconds. Segment text carries whisper's leading
 * space. seek/tokens/temperature/compression_ratio/no_speech_prob are fixed
 * (0, [], 0.0, 1.0, 0.0): the engines do not produce them; avg_logprob is the
 * mean natural log of the segment's word probabilities (0.0 without words).
 * New reference, NULL only on out-of-memory. */
json_t *vs_transcript_to_verbose_json(const struct vs_transcript *t, bool with_words);

/* Renders a verbose_json object (as made above, possibly after a round trip
 * through the worker protocol) in response_format:
 *   json          {"text":..}                                application/json
 *   text          text + "\n"                                text/plain; charset=utf-8
 *   srt           "1\nHH:MM:SS,mmm --> HH:MM:SS,mmm\ntext\n\n"... text/plain; charset=utf-8
 *   vtt           "WEBVTT\n\n" + "HH:MM:SS.mmm --> ..\ntext\n\n"... text/vtt; charset=utf-8
 *   verbose_json  the object ("words" kept only if with_words) application/json
 * Cues: segment text trimmed, line breaks folded to spaces, segments with no
 * text skipped (numbering stays consecutive); vtt escapes & < >. *body is
 * malloc'd (free()); *content_type is static. 0, -EINVAL for an unknown
 * format (or a verbose that is not an object), -ENOMEM. */
int vs_transcript_render(const json_t *verbose, const char *response_format, bool with_words,
                         char **body, const char **content_type);

/* "HH:MM:SS<sep>mmm" (hours widen past 99) into buf (>= 24 bytes); negative or
 * non-finite seconds print as 0. Rounds to the nearest millisecond. */
void vs_oai_timestamp(double seconds, char sep, char *buf, size_t len);

/* ---- POST /v1/audio/speech (openai_speech.c) ---- */

#define VS_SPEECH_MAX_INPUT_DEFAULT 4096 /* OpenAI's limit, in characters */
#define VS_SPEECH_MAX_VOICE_CHARS 64

struct vs_speech_limits {
	size_t max_input_chars;             /* 0 = VS_SPEECH_MAX_INPUT_DEFAULT */
	const char *const *accepted_models; /* NULL-terminated; NULL = any name */
	const char *models_hint;            /* "a, b" for messages; NULL = join list */
};

struct vs_speech_req {
	char model[64];
	char *input; /* malloc'd, valid UTF-8 without NUL */
	char voice[VS_SPEECH_MAX_VOICE_CHARS * 4 + 1];
	char response_format[16]; /* mp3 (default) | opus | aac | flac | wav | pcm */
	double speed;             /* 0.25 .. 4.0, default 1.0 */
	bool sse;                 /* stream_format "sse" (default "audio": raw bytes) */
};

/* Parses and validates a speech request body (strict JSON, duplicate keys
 * rejected). On success fills *out (free with vs_speech_req_free) and returns
 * 0. On failure *out holds nothing to free, *err is filled and the result is
 * -EINVAL (err->status 400) or -ENOMEM (500). "stream_format" is "audio" or
 * "sse"; "instructions" must be a string of at most max_input_chars
 * characters and is otherwise not used (no engine has style control);
 * unknown fields are ignored. */
int vs_speech_parse(const char *body, size_t len, const struct vs_speech_limits *lim,
                    struct vs_speech_req *out, struct vs_oai_err *err);
void vs_speech_req_free(struct vs_speech_req *r); /* accepts NULL */

/* ---- POST /v1/audio/transcriptions (openai_transcription.c) ---- */

#define VS_TRANSCRIPTION_MAX_PROMPT_CHARS 1024

/* Raw multipart field values as collected by the front; NULL = field absent.
 * An empty optional field counts as absent (curl -F language= ...). Values are
 * client bytes: not assumed to be UTF-8 or short. */
struct vs_transcription_fields {
	const char *model;
	const char *language;
	const char *prompt;
	const char *response_format;
	const char *temperature;
	const char
	        *timestamp_granularities; /* the timestamp_granularities[] values joined by ',' */
	/* Voice Stack's own (openai_grammar.c), checked by vs_transcription_grammar() */
	const char *grammar;       /* JSGF text */
	const char *grammar_name;  /* an operator grammar (ASR_GRAMMAR_DIR/NAME.gram) */
	const char *keywords;      /* keyword list: "phrase /threshold/" lines */
	const char *keywords_name; /* an operator list (ASR_GRAMMAR_DIR/NAME.kws) */
	const char *stream;        /* "true" | "false" (any case) */
	bool has_file;
	size_t file_bytes;
};

struct vs_transcription_opts {
	char model[64];
	char language[16];        /* "" = engine default; primary subtag lower-cased */
	char *prompt;             /* malloc'd or NULL */
	char response_format[16]; /* json (default) | text | srt | vtt | verbose_json */
	double temperature;       /* 0..1, default 0 */
	bool want_words;          /* "word" in timestamp_granularities */
	bool stream;              /* stream=true: transcript.text.* events (json or text format) */
};

/* Validates the fields; on success fills *out (free with
 * vs_transcription_opts_free) and returns 0; else *out holds nothing to free,
 * *err is filled, -EINVAL (400) or -ENOMEM (500). Language is checked for
 * syntax only (xx, xxx, optionally -/_ and up to two 2..8 alnum subtags);
 * whether the engine supports it is the engine's call. */
int vs_transcription_validate(const struct vs_transcription_fields *f,
                              const char *const *accepted_models, const char *models_hint,
                              struct vs_transcription_opts *out, struct vs_oai_err *err);
void vs_transcription_opts_free(struct vs_transcription_opts *o); /* accepts NULL */

/* ---- streamed answers (openai_stream.c) ---- */

/* Server-sent events as OpenAI sends them: `data: <compact JSON>` and a
 * blank line, never a named event (the official SDKs mis-parse those). An
 * error after the stream started is a data line of the error body,
 * {"error":{...}}, which the SDKs raise as an APIError.
 *
 *   transcript.text.delta  {"type","delta"}: one decoded utterance; the
 *                          deltas joined are the final text (utterances
 *                          after the first start with the joining space)
 *   transcript.text.done   {"type","text","usage":{"type":"duration","seconds"}}
 *   speech.audio.delta     {"type","audio"}: base64 of encoded bytes, in
 *                          the request's response_format
 *   speech.audio.done      {"type","usage":{"input_tokens","output_tokens",
 *                          "total_tokens"}} (0: no model here counts tokens)
 *
 * New references, NULL only on out-of-memory. */
json_t *vs_oai_transcript_delta(const char *delta, bool leading_space);
json_t *vs_oai_transcript_done(const char *text, double seconds);
json_t *vs_oai_speech_delta(const char *audio_base64);
json_t *vs_oai_speech_done(void);
/* "data: " + the compact JSON of ev + "\n\n"; malloc'd, length in *len;
 * NULL on out-of-memory. */
char *vs_sse_data(const json_t *ev, size_t *len);

/* ---- grammars and keyword lists (openai_grammar.c) ---- */

enum vs_grammar_kind { VS_GRAMMAR_NONE, VS_GRAMMAR_JSGF, VS_GRAMMAR_KWS };

struct vs_grammar_limits {
	bool supported;     /* the engine's description says `grammars` */
	const char *engine; /* its name, for the refusal */
	size_t max_bytes;   /* ASR_MAX_GRAMMAR_KB */
};

/* What a request asks for: kind NONE, or exactly one of text (the checked
 * field, pointing into the fields) and name (a plain name the front
 * resolves, then checks with vs_grammar_check_text). param is the field. */
struct vs_grammar_req {
	enum vs_grammar_kind kind;
	const char *text;
	const char *name;
	const char *param;
};

/* At most one of the four fields; refused (400 unsupported_parameter) when
 * the engine cannot use it; a name must be plain (A-Z a-z 0-9 _ -, at most
 * 64); a text is checked as below. 0 or -EINVAL with *err filled. */
int vs_transcription_grammar(const struct vs_transcription_fields *f,
                             const struct vs_grammar_limits *lim, struct vs_grammar_req *out,
                             struct vs_oai_err *err);
/* A grammar or keyword list's text, len bytes: at most max_bytes (else
 * 413 grammar_too_large), UTF-8 without NUL or control characters other
 * than tab and line ends; JSGF without an `import` statement; keyword lists
 * "phrase" or "phrase /threshold/" per non-blank line, at least one. Errors
 * name the line. 0 or -EINVAL with *err filled (param as given). */
int vs_grammar_check_text(enum vs_grammar_kind kind, const char *text, size_t len, size_t max_bytes,
                          const char *param, struct vs_oai_err *err);
/* "grammar" / "keywords": the TRANSCRIBE payload key of a kind; NULL for NONE */
const char *vs_grammar_kind_field(enum vs_grammar_kind kind);

#endif
