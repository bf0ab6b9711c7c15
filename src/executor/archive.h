/*
 * archive.h - safe checking and extraction of configuration tarballs
 * (gzip'ed tar as go-slug writes it, or plain tar), with libarchive; and
 * one file out of a zip (a tool release).
 *
 * An archive is accepted only if every entry is a regular file, a
 * directory or a symbolic link whose name is relative, has no ".."
 * component, is at most PATH_MAX bytes (NAME_MAX per component,
 * ARCHIVE_MAX_DEPTH components), and does not pass through a symlink or a
 * file named earlier in the archive; no name appears twice (except
 * directories).  A symlink's target must be relative and, resolved
 * lexically from the link's directory, stay inside the archive's root
 * without passing through another symlink of the archive on the way.
 * Hard links, devices, fifos, sockets and any other type are refused.
 *
 * Limits (struct archive_limits): the regular files together hold at most
 * max_unpacked bytes, counted as they are decompressed (sparse holes
 * included), so a bomb stops at the limit; the archive has at most
 * max_entries entries, implicit parent directories included; and once
 * more than ARCHIVE_RATIO_FLOOR bytes are unpacked, they may be at most
 * max_ratio times the compressed bytes read so far.  Tarballs of real
 * configurations unpack 4 to 20 times their size, contrived repetitive
 * text (a CSV of near-identical rows, one line repeated) 200 to 400
 * times; zeros 1030 times per gzip layer (deflate's ceiling), and gzip
 * layers stack.  The ratio stops a bomb after a few MiB instead of at
 * max_unpacked, which stays the bound for whatever passes the ratio.
 *
 * Both functions return TR_OK, TR_ERR_INVALID (a malformed or unsafe
 * archive), TR_ERR_TOO_LARGE (over a limit), or
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
/* bytes unpacked before the ratio counts */
#define ARCHIVE_RATIO_FLOOR (8ULL << 20)

struct archive_limits {
    uint64_t max_unpacked; /* bytes of all regular files together */
    int max_entries;       /* entries, implicit directories included */
    int max_ratio;         /* unpacked per compressed byte; 0: no limit */
};

/* Reads the whole archive at path and checks it as above, writing
 * nothing. */
tr_err archive_check(const char *path, const struct archive_limits *lim,
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
                       const struct archive_limits *lim, struct tr_errbuf *eb);

/* Writes the regular file `name` of the zip archive zip_fd (read from
 * its start) to out_fd, at most max bytes of it.  Only that entry is
 * written, to the descriptor given, so no name of the archive reaches the
 * file system (tool_install.c unpacks release zips with it).
 * TR_ERR_INVALID: no such file, or a malformed zip; TR_ERR_TOO_LARGE:
 * over max. */
tr_err archive_zip_entry(int zip_fd, const char *name, int out_fd, uint64_t max,
                         struct tr_errbuf *eb);

#endif
