/*
 * util.h - small shared helpers: random ids, timestamps, string checks.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_UTIL_H
#define TR_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

/* Fills buf with cryptographically random bytes; aborts if the kernel
 * cannot supply them (nothing sane can continue without randomness). */
void util_random(void *buf, size_t n);

/* A TFE-style id: prefix, '-', 16 random base58 characters ("ws-..."). */
char *util_new_id(struct arena *a, const char *prefix);

/* Current time as "2024-05-01T12:34:56.789Z", and as Unix seconds. */
char *util_now_iso(struct arena *a);
int64_t util_now_unix(void);
int64_t util_now_ms(void);
/* Milliseconds on the monotonic clock (for intervals and deadlines). */
int64_t util_mono_ms(void);
/* ... and in microseconds. */
int64_t util_mono_us(void);
char *util_iso_from_unix(struct arena *a, int64_t secs);

/* Strict decimal parse of a whole string into an int64. */
tr_err util_parse_i64(const char *s, int64_t *out);

/* Checked arithmetic for integers that come from a request (or are
 * derived from one): true and the result in *out when it fits, false
 * (*out then unspecified) when it would overflow.  Use these, or a bound
 * checked first, before any arithmetic on such a value: signed overflow
 * is undefined behaviour, and the sanitizer builds abort on it. */
static inline bool util_add_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool util_sub_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_sub_overflow(a, b, out);
}

static inline bool util_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* a + b, or INT64_MAX / INT64_MIN when that does not fit (the end of a
 * window [a, a + b) that reaches past anything stored). */
static inline int64_t util_sat_add_i64(int64_t a, int64_t b)
{
    int64_t r;
    if (util_add_i64(a, b, &r))
        return r;
    return b > 0 ? INT64_MAX : INT64_MIN;
}

/* Names for organizations, workspaces, projects: letters, digits, '-',
 * '_', 1..90 characters (TFE's rule).  Projects also allow spaces. */
bool util_valid_name(const char *s);

bool util_streq(const char *a, const char *b); /* NULL-safe */

/* A daemon's signals: SIGTERM, SIGINT and SIGHUP blocked in this thread
 * (and the threads it starts), to be taken with sigtimedwait(set);
 * SIGPIPE ignored. */
void util_daemon_signals(sigset_t *set);

#endif
