/*
 * buf.c - growing byte buffer; see buf.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static tr_err grow(struct buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return TR_ERR_TOO_LARGE;
    size_t need = b->len + extra + 1;
    if (b->max != 0 && need - 1 > b->max)
        return TR_ERR_TOO_LARGE;
    if (need <= b->cap)
        return TR_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return TR_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return TR_OK;
}

tr_err buf_reserve(struct buf *b, size_t n)
{
    return grow(b, n);
}

tr_err buf_append(struct buf *b, const void *p, size_t n)
{
    tr_err e = grow(b, n);
    if (e != TR_OK)
        return e;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TR_OK;
}

tr_err buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

tr_err buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TR_ERR_INTERNAL;
    tr_err e = grow(b, (size_t)n);
    if (e != TR_OK)
        return e;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TR_OK;
}

char *buf_steal(struct buf *b, size_t *len)
{
    if (b->data == NULL) {
        if (grow(b, 0) != TR_OK)
            return NULL;
        b->data[0] = '\0';
    }
    char *p = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
