/* table.h - private to src/config: the settings table, shared by the loader
 * (config.c) and the printers (config_print.c).
 *
 * DESIGN
 * config.c owns the table and everything that parses and validates; the
 * printers (--help, `voicestack config`, docs/CONFIG.md) only read rows and
 * ask describe() what a row accepts, so an error message and the documented
 * "Allowed" column can never disagree. Nothing outside src/config includes
 * this file.
 */
#ifndef VS_CONFIG_TABLE_H
#define VS_CONFIG_TABLE_H

#include "config/config.h"

/* T_SECRET: a T_STRING that is never printed (`voicestack config`, errors) */
enum vs_setting_type { T_INT, T_DOUBLE, T_BOOL, T_STRING, T_ENUM, T_SECRET };

/* Validator of a T_STRING setting: always writes what it accepts into
 * `allowed` (completing "must be ..."); with v == NULL it only does that (for
 * help and docs). Returns true if v is acceptable. */
typedef bool (*vs_check_fn)(const char *v, char *allowed, size_t len);

struct vs_setting {
	const char *name;
	enum vs_setting_type type;
	size_t off;          /* of the field in struct vs_config */
	double min, max;     /* T_INT, T_DOUBLE */
	const char *choices; /* T_ENUM: "a|b|c", matched case-insensitively */
	vs_check_fn check;   /* T_STRING, T_SECRET: optional; a caller's vs_config_check
	                        replaces it */
	const char *def;     /* default, as text; a caller's vs_config_check may replace it */
	const char *unit;    /* "" if none */
	const char *help;
};

/* the table, in the order of --help, `voicestack config` and docs/CONFIG.md */
extern const struct vs_setting vs_settings[];
extern const size_t vs_n_settings;

/* What s accepts, completing "must be ...", given the caller's checks. */
void vs_setting_describe(const struct vs_setting *s, const struct vs_config_check *checks,
                         char *buf, size_t len);
/* s's default as text, given the caller's checks. */
const char *vs_setting_default(const struct vs_setting *s, const struct vs_config_check *checks);

#endif
