/* openai_lang.c - ISO 639-1 code -> the language name OpenAI reports.
 *
 * DESIGN
 * verbose_json's "language" is a lower-case English name ("english"), not a
 * code: OpenAI inherits whisper's LANGUAGES table. Engines speak codes, so
 * the table below (whisper's, same spelling) translates at the API edge.
 * Unknown codes pass through unchanged rather than being invented.
 */
#include "api/openai.h"

#include <strings.h>
#include <string.h>

static const char *const lang_table[][2] = {
        {"en", "english"},     {"zh", "chinese"},    {"de", "german"},
        {"es", "spanish"},     {"ru", "russian"},    {"ko", "korean"},
        {"fr", "french"},      {"ja", "japanese"},   {"pt", "portuguese"},
        {"tr", "turkish"},     {"pl", "polish"},     {"ca", "catalan"},
        {"nl", "dutch"},       {"ar", "arabic"},     {"sv", "swedish"},
        {"it", "italian"},     {"id", "indonesian"}, {"hi", "hindi"},
        {"fi", "finnish"},     {"vi", "vietnamese"}, {"he", "hebrew"},
        {"uk", "ukrainian"},   {"el", "greek"},      {"ms", "malay"},
        {"cs", "czech"},       {"ro", "romanian"},   {"da", "danish"},
        {"hu", "hungarian"},   {"ta", "tamil"},      {"no", "norwegian"},
        {"th", "thai"},        {"ur", "urdu"},       {"hr", "croatian"},
        {"bg", "bulgarian"},   {"lt", "lithuanian"}, {"la", "latin"},
        {"mi", "maori"},       {"ml", "malayalam"},  {"cy", "welsh"},
        {"sk", "slovak"},      {"te", "telugu"},     {"fa", "persian"},
        {"lv", "latvian"},     {"bn", "bengali"},    {"sr", "serbian"},
        {"az", "azerbaijani"}, {"sl", "slovenian"},  {"kn", "kannada"},
        {"et", "estonian"},    {"mk", "macedonian"}, {"br", "breton"},
        {"eu", "basque"},      {"is", "icelandic"},  {"hy", "armenian"},
        {"ne", "nepali"},      {"mn", "mongolian"},  {"bs", "bosnian"},
        {"kk", "kazakh"},      {"sq", "albanian"},   {"sw", "swahili"},
        {"gl", "galician"},    {"mr", "marathi"},    {"pa", "punjabi"},
        {"si", "sinhala"},     {"km", "khmer"},      {"sn", "shona"},
        {"yo", "yoruba"},      {"so", "somali"},     {"af", "afrikaans"},
        {"oc", "occitan"},     {"ka", "georgian"},   {"be", "belarusian"},
        {"tg", "tajik"},       {"sd", "sindhi"},     {"gu", "gujarati"},
        {"am", "amharic"},     {"yi", "yiddish"},    {"lo", "lao"},
        {"uz", "uzbek"},       {"fo", "faroese"},    {"ht", "haitian creole"},
        {"ps", "pashto"},      {"tk", "turkmen"},    {"nn", "nynorsk"},
        {"mt", "maltese"},     {"sa", "sanskrit"},   {"lb", "luxembourgish"},
        {"my", "myanmar"},     {"bo", "tibetan"},    {"tl", "tagalog"},
        {"mg", "malagasy"},    {"as", "assamese"},   {"tt", "tatar"},
        {"haw", "hawaiian"},   {"ln", "lingala"},    {"ha", "hausa"},
        {"ba", "bashkir"},     {"jw", "javanese"},   {"su", "sundanese"},
        {"yue", "cantonese"},
};

const char *vs_oai_language_name(const char *code)
{
	if (!code)
		return "";
	/* primary subtag: "en-US" / "en_US" -> "en" */
	size_t primary = strcspn(code, "-_");
	for (size_t i = 0; i < sizeof(lang_table) / sizeof(lang_table[0]); i++) {
		const char *c = lang_table[i][0];
		if (strlen(c) == primary && strncasecmp(code, c, primary) == 0)
			return lang_table[i][1];
		if (strcasecmp(code, lang_table[i][1]) == 0)
			return lang_table[i][1];
	}
	return code;
}
