/*
 * util.h - small shared helpers: random ids, timestamps, string checks.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_UTIL_H
#define TR_UTIL_H

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
char *util_iso_from_unix(struct arena *a, int64_t secs);

/* Strict decimal parse of a whole string into an int64. */
tr_err util_parse_i64(const char *s, int64_t *out);

/* Names for organizations, workspaces, projects: letters, digits, '-',
 * '_', 1..90 characters (TFE's rule).  Projects also allow spaces. */
bool util_valid_name(const char *s);

bool util_streq(const char *a, const char *b);  /* NULL-safe */

#endif
