/*
 * read_cache.h - a primary's cache of token lookups and workspace reads
 * on PostgreSQL, kept exact across primaries (read_cache.c).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TERRACE_STORE_READ_CACHE_H
#define TERRACE_STORE_READ_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct read_cache;

/* A cache for db (PostgreSQL, schema migrated); NULL when out of memory. */
struct read_cache *read_cache_new(struct db *db);
void read_cache_free(struct read_cache *rc);

/* Waits until every change committed before the call has been seen (one
 * poll of read_cache_changes that started after the call, shared with
 * the callers waiting beside it).  False: the poll failed, so the cache
 * must be passed over (neither read nor filled) by this caller. */
bool read_cache_fence(struct read_cache *rc);

/* The calling thread acts for a request that arrived at arrived_us
 * (util_mono_us()), or for none (0); set around each call into a
 * request's code (http/server.c).  While it is set, a fence is also met
 * by the last poll if that one succeeded and started after the request
 * arrived: the reads of one request wait for one poll, not one each. */
void read_cache_scope(int64_t arrived_us);

/* Taken after a fence and before the database read that fills the
 * cache: read_cache_put() stores nothing if a change of those keys was
 * seen in between. */
struct rc_ticket {
    uint64_t tok, ws;
};
void read_cache_ticket(struct read_cache *rc, const char *hash,
                       const char *ws_id, struct rc_ticket *t);

/* The cached token of hash (its SHA-256, hex) / workspace ws_id, copied
 * into a; false when not cached. */
bool read_cache_token(struct read_cache *rc, struct arena *a, const char *hash,
                      struct st_token *out);
bool read_cache_ws(struct read_cache *rc, struct arena *a, const char *ws_id,
                   struct st_workspace *out);

/* Caches what a lookup read under ticket t (tok or ws may be NULL). */
void read_cache_put(struct read_cache *rc, const struct rc_ticket *t,
                    const char *hash, const struct st_token *tok,
                    const struct st_workspace *ws);

/* The cached token of hash was marked used at when (a column no change
 * record covers). */
void read_cache_touch(struct read_cache *rc, const char *hash,
                      const char *when);

/* Tests: how often the poll refreshes this primary's record and prunes
 * (ms; 0: every poll); both take effect at the next poll. */
void read_cache_tune(struct read_cache *rc, int64_t register_ms,
                     int64_t prune_ms);

/* Counters for /metrics. */
struct read_cache_stats {
    uint64_t hits, misses, polls, poll_failures, invalidations, flushes;
};
void read_cache_stats(struct read_cache *rc, struct read_cache_stats *out);

#endif
