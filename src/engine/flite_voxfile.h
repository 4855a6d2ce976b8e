/* flite_voxfile.h - the flite engine's loader of voice files (.flitevox).
 *
 * DESIGN
 * Private to the flite engine (flite.c); see flite_voxfile.c for why a
 * voice file is tried in a child process before it is loaded. Also here,
 * because both files need it: flite's error guard.
 */
#ifndef VS_FLITE_VOXFILE_H
#define VS_FLITE_VOXFILE_H

#include <stddef.h>

struct cst_voice_struct; /* flite's cst_voice */

/* Calls fn(arg) with flite's global cst_errjmp set, so that an internal
 * flite error (cst_error(), which otherwise exit()s the process) returns
 * here: fn's result, or NULL after such an error. What flite allocated
 * before the error leaks; flite holds no lock across a call. */
void *vs_flite_guarded(void *(*fn)(void *arg), void *arg);

/* Loads the clustergen voice in the file at `path` (a local path, never a
 * URL) into *out. 0, or a negative errno with the reason in err, which names
 * path: -ENOENT / -EACCES ... the file cannot be opened; -EINVAL it is not a
 * regular file, or flite cannot load or speak with it. Never exits, never
 * crashes the caller. Does not log. Call only from a process with one
 * thread (it forks). */
int vs_flite_voxfile_load(const char *path, struct cst_voice_struct **out, char *err,
                          size_t errlen);

/* The voice's name for requests: path's base name without ".flitevox", in
 * buf (len bytes). 0, or -EINVAL if that is empty or does not fit. */
int vs_flite_voxfile_name(const char *path, char *buf, size_t len);

#endif
