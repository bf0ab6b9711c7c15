/*
 * err.c - names for enum tr_err and the error-buffer helpers.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const names[TR_ERR__COUNT] = {
    [TR_OK] = "ok",
    [TR_ERR_INTERNAL] = "internal error",
    [TR_ERR_NOMEM] = "out of memory",
    [TR_ERR_IO] = "i/o error",
    [TR_ERR_DB] = "database error",
    [TR_ERR_NOT_FOUND] = "not found",
    [TR_ERR_INVALID] = "invalid attribute",
    [TR_ERR_BAD_REQUEST] = "bad request",
    [TR_ERR_CONFLICT] = "conflict",
    [TR_ERR_UNAUTHORIZED] = "unauthorized",
    [TR_ERR_FORBIDDEN] = "forbidden",
    [TR_ERR_TOO_LARGE] = "payload too large",
    [TR_ERR_UNSUPPORTED] = "unsupported",
    [TR_ERR_CONFIG] = "configuration error",
    [TR_ERR_CRYPTO] = "cryptographic failure",
    [TR_ERR_BUSY] = "service busy",
    [TR_ERR_UNAVAILABLE] = "service unavailable",
};

const char *tr_err_name(tr_err e)
{
    if ((int)e < 0 || e >= TR_ERR__COUNT || names[e] == NULL)
        return "unknown error";
    return names[e];
}

tr_err tr_fail(struct tr_errbuf *eb, tr_err e, const char *fmt, ...)
{
    if (eb != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
        va_end(ap);
    }
    return e;
}

const char *tr_errbuf_msg(const struct tr_errbuf *eb, tr_err e)
{
    if (eb != NULL && eb->msg[0] != '\0')
        return eb->msg;
    return tr_err_name(e);
}
