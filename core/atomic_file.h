/* core/atomic_file.h — private to core/: writing a file so that it is either complete or absent.
 *
 * ct_atomic_write_file writes into an unnamed file in the target's directory (O_TMPFILE), syncs
 * it, and only then gives it a name: linkat straight to `path` when nothing is there, else
 * linkat to a temporary name renamed over `path`; then it syncs the directory. A write killed
 * half-way leaves nothing behind, and a previous file at `path` as it was. Where O_TMPFILE is
 * not supported or CTAPE_NO_TMPFILE is set, the file is written under the temporary name
 * "<path>.tmp-HHHHHHHH-PID-XXXXXX" from the start, and each write first removes such leftovers
 * in its directory whose writer (on this host) is gone. */
#ifndef CTAPE_CORE_ATOMIC_FILE_H
#define CTAPE_CORE_ATOMIC_FILE_H

#include <stddef.h>

/* Writes the whole content to fd: returns 0, or -1 with errno set. It may be called more than
 * once, each time on a new empty file (when an unnamed file turns out not to be linkable). */
typedef int (*ct_file_body)(int fd, void *ctx);

/* CT_OK, or CT_ERR_IO with ct_last_error() "<path>: <what failed>: <reason>; nothing was changed"
 * (or "<path>: written, but syncing its directory failed: ..." once the file is in place). */
int ct_atomic_write_file(const char *path, ct_file_body body, void *ctx);

/* write(2) until all len bytes are out (EINTR retried): 0, or -1 with errno. */
int ct_write_all(int fd, const void *buf, size_t len);

#endif
