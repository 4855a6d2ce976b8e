/* fuzz.h - the libFuzzer entry point every fuzz/fuzz_*.c driver defines.
 *
 * DESIGN
 * One prototype so the drivers compile under the project's
 * -Wmissing-prototypes, and so the same driver links either against
 * libFuzzer (fuzz/run.sh, clang -fsanitize=fuzzer) or against
 * fuzz/replay_main.c (the meson build), which replays the checked-in corpus
 * as an ordinary test. Drivers check the documented guarantees of the API
 * under test with FUZZ_CHECK, so a wrong answer is a finding, not only a crash.
 */
#ifndef VS_FUZZ_H
#define VS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when s is one of the NULL-terminated list (drivers check parsed names) */
static inline int fuzz_in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

/* Like assert(), but kept under NDEBUG: every build replays the corpus. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
