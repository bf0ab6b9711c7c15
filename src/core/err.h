/*
 * err.h - Terrace's one error enum and the caller-supplied message buffer.
 *
 * Fallible functions return enum tr_err and write results through
 * out-parameters.  A nullable struct tr_errbuf takes the specific message
 * (lower-case, no trailing period, never a secret).  Values are appended,
 * never renumbered; only src/http maps them to HTTP status codes.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_ERR_H
#define TR_ERR_H

#include <stddef.h>

enum tr_err {
    TR_OK = 0,               /* success */
    TR_ERR_INTERNAL = 1,     /* a bug or an unexpected library failure */
    TR_ERR_NOMEM = 2,        /* allocation failed outside an arena */
    TR_ERR_IO = 3,           /* file or socket I/O failed */
    TR_ERR_DB = 4,           /* the database refused or failed a statement */
    TR_ERR_NOT_FOUND = 5,    /* no such object, or not visible to the caller */
    TR_ERR_INVALID = 6,      /* input failed validation (422) */
    TR_ERR_BAD_REQUEST = 7,  /* malformed request: bad JSON, bad query (400) */
    TR_ERR_CONFLICT = 8,     /* state conflict: locked, exists, serial (409) */
    TR_ERR_UNAUTHORIZED = 9, /* no or bad credentials (401) */
    TR_ERR_FORBIDDEN = 10,   /* authenticated but not allowed (403) */
    TR_ERR_TOO_LARGE = 11,   /* body or file over its limit (413) */
    TR_ERR_UNSUPPORTED = 12, /* media type or feature not supported (415) */
    TR_ERR_CONFIG = 13,      /* bad configuration value */
    TR_ERR_CRYPTO = 14,      /* a cryptographic operation failed */
    TR_ERR_BUSY = 15,        /* transient contention; retry later (503) */
    TR_ERR_UNAVAILABLE = 16, /* a dependency (the database) is unreachable;
                                retry later (503 with Retry-After) */
    TR_ERR__COUNT            /* never use */
};

typedef enum tr_err tr_err;

#define TR_ERRBUF_SIZE 256

struct tr_errbuf {
    char msg[TR_ERRBUF_SIZE];
};

/* Fixed text naming the code, e.g. "not found".  Never NULL. */
const char *tr_err_name(tr_err e);

/* Writes a printf-style message into eb (if eb is not NULL) and returns e,
 * so callers can write: return tr_fail(eb, TR_ERR_INVALID, "...", ...). */
tr_err tr_fail(struct tr_errbuf *eb, tr_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The message in eb, or the code's name if eb is NULL or empty. */
const char *tr_errbuf_msg(const struct tr_errbuf *eb, tr_err e);

#endif
