/*
 * http_int.h - functions shared inside src/http: the access-log line
 * helpers (router.c), used by server.c.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_HTTP_INT_H
#define TR_HTTP_INT_H

#include "core/arena.h"

/* The request path as the access log shows it: the value of every
 * secret path parameter (":sig" in the route table) replaced by
 * "REDACTED", and bytes outside printable ASCII written as %XX so a
 * path cannot forge log lines.  Allocated in a. */
char *http_log_path(struct arena *a, const char *path);
/* s with bytes outside printable ASCII (and '%') written as %XX. */
char *http_log_text(struct arena *a, const char *s);

#endif
