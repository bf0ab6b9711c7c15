/*
 * file.h - whole local files in and out of memory, and exact reads and
 * writes of a file descriptor.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_FILE_H
#define TR_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

/* Reads the file at path into a (with a NUL after it, not counted in
 * *len).  TR_ERR_TOO_LARGE when it is larger than max bytes, TR_ERR_IO
 * when it cannot be read. */
tr_err file_read_all(struct arena *a, const char *path, size_t max, char **data,
                     size_t *len, struct tr_errbuf *eb);

/* Reads a secret an operator put in a file: readable by its owner only
 * (TR_ERR_CONFIG when group or others may read it), one line of 32 to
 * 200 characters of [A-Za-z0-9._-] (a final newline is dropped).  The
 * message names the file and what is wrong, never the content. */
tr_err file_read_secret(struct arena *a, const char *path, char **out,
                        struct tr_errbuf *eb);

/* Reads exactly n bytes from fd (TR_ERR_IO at an early end of file), or
 * writes all n to it; EINTR is retried. */
tr_err file_read_exact(int fd, void *p, size_t n, struct tr_errbuf *eb);
tr_err file_write_exact(int fd, const void *p, size_t n, struct tr_errbuf *eb);

/* Reads up to n bytes at off into p, *got of them (fewer only at the end
 * of the file); EINTR is retried. */
tr_err file_pread(int fd, void *p, size_t n, uint64_t off, size_t *got,
                  struct tr_errbuf *eb);

#endif
