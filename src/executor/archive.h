/*
 * archive.h - safe checking and extraction of configuration tarballs
 * (gzip'ed tar as go-slug writes it, or plain tar), with libarchive.
 *
 * An archive is accepted only if every entry is a regular file, a
 * directory or a symbolic link whose name is relative, has no ".."
 * component, is at most PATH_MAX bytes (NAME_MAX per component,
 * ARCHIVE_MAX_DEPTH components), and does not pass through a symlink or a
 * file named earlier in the archive; no name appears twice (except
 * directories).  A symlink's target must be relative and, resolved
 * lexically from the link's directory, stay inside the archive's root
 * without passing through another symlink of the archive on the way.
 * Hard links, devices, fifos, sockets and any other type are refused.  The
 * regular files together hold at most max_unpacked bytes (counted as
 * decompressed, so a tar bomb stops at the limit), and the archive has at
 * most max_entries entries, implicit parent directories included.
 *
 * Both functions return TR_OK, TR_ERR_INVALID (a malformed or unsafe
 * archive), TR_ERR_TOO_LARGE (over max_unpacked or max_entries), or
 * TR_ERR_IO for a local failure (the archive cannot be opened, dest_dir
 * cannot be written).  The message in eb is printable ASCII: bytes of
 * entry names outside it are shown as '?'.  They need no arena and are
 * safe to call from any thread.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_EXECUTOR_ARCHIVE_H
#define TR_EXECUTOR_ARCHIVE_H

#include <stdint.h>

#include "core/err.h"

#define ARCHIVE_MAX_ENTRIES 100000 /* default max_entries */
#define ARCHIVE_MAX_DEPTH 256      /* components in one name */

/* Reads the whole archive at path and checks it as above, writing
 * nothing. */
tr_err archive_check(const char *path, uint64_t max_unpacked, int max_entries,
                     struct tr_errbuf *eb);

/* archive_check(), then extracts into dest_dir, which must exist and
 * should be empty (an existing name makes the extraction fail).  Every
 * name is created relative to a directory descriptor
 * (openat/mkdirat/symlinkat) with O_NOFOLLOW and O_EXCL, so nothing is
 * written outside dest_dir and no existing file is replaced.  Files get
 * mode 0755 if the archive gives any execute bit, else 0644; directories
 * 0755; no set-id bits, ownership or times are applied.  On failure
 * dest_dir may hold a partial tree: removing it is the caller's job. */
tr_err archive_extract(const char *path, const char *dest_dir,
                       uint64_t max_unpacked, int max_entries,
                       struct tr_errbuf *eb);

#endif
