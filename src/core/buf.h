/*
 * buf.h - growing byte buffer with a hard size limit.
 *
 * The one way Terrace grows strings and byte buffers.  A buf always keeps a
 * NUL after its contents so text can be used as a C string.  Growth beyond
 * `max` (0 = no limit) fails with TR_ERR_TOO_LARGE and leaves the contents
 * unchanged.  Memory is malloc'd; buf_free() releases it.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BUF_H
#define TR_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
tr_err buf_append(struct buf *b, const void *p, size_t n);
/* Room for n more bytes (and the NUL) without appending them; fails as
 * buf_append() of n bytes would. */
tr_err buf_reserve(struct buf *b, size_t n);
tr_err buf_puts(struct buf *b, const char *s);
tr_err buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the malloc'd data to the caller (NUL-terminated); b is emptied. */
char *buf_steal(struct buf *b, size_t *len);

#endif
