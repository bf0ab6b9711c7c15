/*
 * blob_prefetch.h - an object read from start to end by a thread of its
 * own, a bounded way ahead of its consumer: the server sending a
 * download reads the next blocks (fetched from a remote backend and
 * opened) while it writes the previous ones to the client, instead of
 * one after the other.
 *
 * At most PREFETCH_BYTES (2 MiB) are held; an object of one block or
 * less is read directly, without a thread.  Reads are expected in order
 * from offset 0; a read elsewhere stops the thread and is served
 * directly (so is every later one).  An error the thread meets is
 * reported to the read that reaches its offset, not before.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BLOB_PREFETCH_H
#define TR_BLOB_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"

struct blob_prefetch;

/* Starts reading r (size bytes, as blob_reader_open() said) ahead; r is
 * the prefetch's from now on, closed with it, even on failure. */
tr_err blob_prefetch_start(struct blob_reader *r, uint64_t size,
                           struct blob_prefetch **out, struct tr_errbuf *eb);
/* As blob_reader_pread(): up to n bytes at off, *got of them (fewer only
 * at the end, or when fewer are ready and some were given). */
tr_err blob_prefetch_read(struct blob_prefetch *p, void *buf, size_t n,
                          uint64_t off, size_t *got, struct tr_errbuf *eb);
/* Stops the thread and closes the reader. */
void blob_prefetch_close(struct blob_prefetch *p);

#endif
