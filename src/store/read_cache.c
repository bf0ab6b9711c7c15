/*
 * read_cache.c - a primary's cache of token lookups and workspace reads
 * on PostgreSQL, exact across primaries.
 *
 * Every authenticated request looks its token up, and GET workspace reads
 * the workspace with it; on PostgreSQL that statement is most of the
 * request's cost.  This cache keeps what those reads returned (a token by
 * its hash, a workspace by its id) and answers them again without the
 * database, while never answering with data older than a change that was
 * committed before the request arrived, whichever primary committed it.
 *
 * How changes are seen.  Triggers (migration 25) add a row to
 * read_cache_changes (a sequence number, the xid8 of the writing
 * transaction, a key) in the same transaction as every change a cached
 * read depends on: "w:<id>" for a workspace and its runs, configuration
 * versions, state versions, tags and variables, "w*" for a tag's name
 * (every workspace), "t:<hash>" for a token and "t*" for a user or a
 * team (every token).  A poll reads the rows it has not read yet and
 * takes its statement's snapshot (xmin:xmax:in-progress xids) for the
 * next one: rows numbered above the highest it has read, and rows of the
 * transactions that snapshot saw unfinished (xid in its in-progress list
 * or at or above its xmax).  A row numbered lower by a transaction that
 * had not begun at that snapshot cannot exist (numbers are handed out in
 * time order), so a committed row is read exactly once, however long
 * another transaction stays open.
 *
 * Invariants:
 *   1. An entry is used only after a fence: a poll that started after the
 *      request arrived has completed without error.  A change committed
 *      before the request arrived is in that poll's snapshot, so it has
 *      been applied.
 *   2. An entry is stored only if no change of its key was applied since
 *      its ticket (taken before the database read that filled it), so a
 *      change the read did not see removes it or keeps it out.  Per key
 *      bucket and map, an epoch counts applied changes.
 *   3. The rows a primary still has to read are kept: each primary
 *      records its watermark in read_cache_readers every
 *      REGISTER_EVERY_MS while it polls; pruning deletes rows below the
 *      lowest watermark only, and forgets readers silent for ten minutes.
 *      A primary that finds its record gone empties its cache.
 *   4. A failed poll fails the fences waiting on it: those callers read
 *      the database and store nothing.
 *
 * Polls are shared: one runs at a time and every caller that arrived
 * before it started waits for the next one, so under load one statement
 * answers for many requests.  A thread that acts for a request
 * (read_cache_scope()) takes the last poll as its fence when that poll
 * succeeded and began after the request arrived, so a request's second
 * read (a list after its token) waits for nothing.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "store/read_cache.h"

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/log.h"
#include "core/util.h"

#define NBUCKET 1024 /* per map; NWAY entries each: 4096 entries at most */
#define NWAY 4
#define MAX_XIP 512 /* in-progress xids carried to the next poll */
#define REGISTER_EVERY_MS 10000
#define PRUNE_EVERY_MS 60000

struct entry {
    const char *key;
    char *blob; /* every string of the entry */
    const char **arrays[2];
    struct st_token tok;
    struct st_workspace ws;
};

struct map {
    struct entry *slot[NBUCKET][NWAY];
    unsigned char next[NBUCKET]; /* the way replaced when all are taken */
    uint64_t epoch[NBUCKET];
    uint64_t all;
};

struct read_cache {
    struct db *db;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct map tok, ws;
    uint64_t started, done; /* polls */
    bool in_flight, done_ok;
    int64_t done_began_us; /* when the last completed poll started */
    struct read_cache_stats st;
    /* the poller's own (one poll at a time; handed over under mu) */
    char id[40];
    char watermark[24]; /* the last snapshot's xmin (pruning) */
    char xmax[24];      /* ... its xmax, "0" before the first */
    char *xip;          /* ... its in-progress xids: "{x,y}" */
    int64_t last_seq;   /* the highest row number read */
    bool registered;
    int64_t reg_ms, prune_ms;
    int64_t reg_every, prune_every; /* REGISTER_/PRUNE_EVERY_MS */
};

/* ---- entries ----------------------------------------------------------- */

#define TOK_STR(f) offsetof(struct st_token, f)
static const size_t tok_strs[] = {
    TOK_STR(id),           TOK_STR(kind),       TOK_STR(subject),
    TOK_STR(description),  TOK_STR(created_by), TOK_STR(created_at),
    TOK_STR(last_used_at), TOK_STR(expired_at), TOK_STR(user_name),
    TOK_STR(team_org),
};
#define WS_STR(f) offsetof(struct st_workspace, f)
static const size_t ws_strs[] = {
    WS_STR(id),
    WS_STR(org),
    WS_STR(name),
    WS_STR(project_id),
    WS_STR(description),
    WS_STR(execution_mode),
    WS_STR(terraform_version),
    WS_STR(working_directory),
    WS_STR(lock_kind),
    WS_STR(lock_holder),
    WS_STR(lock_reason),
    WS_STR(current_sv),
    WS_STR(settings),
    WS_STR(ssh_key_id),
    WS_STR(agent_pool_id),
    WS_STR(created_at),
    WS_STR(updated_at),
    WS_STR(current_run),
    WS_STR(latest_run),
    WS_STR(shown_run),
    WS_STR(first_pending),
    WS_STR(current_cv),
};
#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

static const char **str_at(void *base, size_t off)
{
    return (const char **)((char *)base + off);
}

/* Copies s into the blob at *at (blob NULL: only counts). */
static const char *pack(char *blob, size_t *at, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    const char *out = NULL;
    if (blob != NULL) {
        memcpy(blob + *at, s, n);
        out = blob + *at;
    }
    *at += n;
    return out;
}

/* The strings of obj (offsets offs) and the arrays (n[k] strings each)
 * packed into e's blob; false when out of memory. */
static bool pack_all(struct entry *e, void *obj, const size_t *offs,
                     size_t noffs, const char **arr[2], const int n[2])
{
    for (int pass = 0; pass < 2; pass++) {
        size_t at = 0;
        const char *key = pack(e->blob, &at, e->key);
        for (size_t i = 0; i < noffs; i++) {
            const char *v = pack(e->blob, &at, *str_at(obj, offs[i]));
            if (pass == 1)
                *str_at(obj, offs[i]) = v;
        }
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < n[k]; i++) {
                const char *v = pack(e->blob, &at, arr[k][i]);
                if (pass == 1)
                    e->arrays[k][i] = v;
            }
        if (pass == 0) {
            e->blob = malloc(at);
            for (int k = 0; k < 2; k++)
                e->arrays[k] = n[k] > 0 ? malloc(sizeof(char *) * n[k]) : NULL;
            if (e->blob == NULL || (n[0] > 0 && e->arrays[0] == NULL) ||
                (n[1] > 0 && e->arrays[1] == NULL))
                return false;
        } else {
            e->key = key;
        }
    }
    return true;
}

static void entry_free(struct entry *e)
{
    if (e == NULL)
        return;
    free(e->arrays[0]);
    free(e->arrays[1]);
    free(e->blob);
    free(e);
}

static struct entry *token_entry(const char *hash, const struct st_token *t)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->key = hash;
    e->tok = *t;
    const char **none[2] = {NULL, NULL};
    const int zero[2] = {0, 0};
    if (!pack_all(e, &e->tok, tok_strs, NELEM(tok_strs), none, zero)) {
        entry_free(e);
        return NULL;
    }
    return e;
}

static struct entry *ws_entry(const struct st_workspace *w)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->key = w->id;
    e->ws = *w;
    e->ws.bindings = NULL;
    e->ws.nbindings = 0;
    const char **arr[2] = {w->tag_names, w->var_ids};
    const int n[2] = {w->ntags, w->nvars};
    if (!pack_all(e, &e->ws, ws_strs, NELEM(ws_strs), arr, n)) {
        entry_free(e);
        return NULL;
    }
    e->ws.tag_names = e->arrays[0];
    e->ws.var_ids = e->arrays[1];
    return e;
}

/* Each string of obj (offsets offs) copied into a. */
static void unpack(struct arena *a, void *obj, const size_t *offs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *str_at(obj, offs[i]) = arena_strdup(a, *str_at(obj, offs[i]));
}

static const char **unpack_array(struct arena *a, const char **v, int n)
{
    const char **out = arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        out[i] = arena_strdup(a, v[i]);
    return out;
}

/* ---- maps (under mu) --------------------------------------------------- */

static unsigned bucket(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (NBUCKET - 1);
}

static struct entry *map_find(struct map *m, const char *key)
{
    struct entry **s = m->slot[bucket(key)];
    for (int i = 0; i < NWAY; i++)
        if (s[i] != NULL && strcmp(s[i]->key, key) == 0)
            return s[i];
    return NULL;
}

static void map_drop(struct map *m, const char *key)
{
    unsigned b = bucket(key);
    m->epoch[b]++;
    for (int i = 0; i < NWAY; i++)
        if (m->slot[b][i] != NULL && strcmp(m->slot[b][i]->key, key) == 0) {
            entry_free(m->slot[b][i]);
            m->slot[b][i] = NULL;
        }
}

static void map_flush(struct map *m)
{
    m->all++;
    for (int b = 0; b < NBUCKET; b++)
        for (int i = 0; i < NWAY; i++) {
            entry_free(m->slot[b][i]);
            m->slot[b][i] = NULL;
        }
}

static uint64_t map_ticket(const struct map *m, const char *key)
{
    return key != NULL ? m->epoch[bucket(key)] + m->all : 0;
}

/* Stores e unless a change of its bucket was applied since ticket t;
 * takes e either way. */
static void map_put(struct map *m, uint64_t t, struct entry *e)
{
    unsigned b = bucket(e->key);
    if (m->epoch[b] + m->all != t) {
        entry_free(e);
        return;
    }
    struct entry **s = m->slot[b];
    int at = -1;
    for (int i = 0; i < NWAY && at < 0; i++)
        if (s[i] != NULL && strcmp(s[i]->key, e->key) == 0)
            at = i;
    for (int i = 0; i < NWAY && at < 0; i++)
        if (s[i] == NULL)
            at = i;
    if (at < 0) {
        at = m->next[b];
        m->next[b] = (unsigned char)((at + 1) % NWAY);
    }
    entry_free(s[at]);
    s[at] = e;
}

/* ---- the poll ---------------------------------------------------------- */

/* Applies the change key (mu held). */
static void apply(struct read_cache *rc, const char *key)
{
    rc->st.invalidations++;
    if (strncmp(key, "w:", 2) == 0)
        map_drop(&rc->ws, key + 2);
    else if (strncmp(key, "t:", 2) == 0)
        map_drop(&rc->tok, key + 2);
    else if (strcmp(key, "t*") == 0)
        map_flush(&rc->tok);
    else { /* "w*", or a key this build does not know: all of it */
        map_flush(&rc->ws);
        if (strcmp(key, "w*") != 0)
            map_flush(&rc->tok);
    }
}

/* Keeps this primary's record in read_cache_readers (invariant 3). */
static tr_err register_reader(struct read_cache *rc, struct db_conn *c,
                              struct arena *a, struct tr_errbuf *eb)
{
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb,
                    "UPDATE read_cache_readers SET watermark = $2::xid8,"
                    " seen = now() WHERE id = $1",
                    rc->id, rc->watermark);
    if (e != TR_OK || n > 0)
        return e;
    if (rc->registered) {
        log_warn("read cache: this primary's record was pruned while it "
                 "was idle; emptying the cache");
        pthread_mutex_lock(&rc->mu);
        map_flush(&rc->tok);
        map_flush(&rc->ws);
        rc->st.flushes++;
        pthread_mutex_unlock(&rc->mu);
    }
    e = db_x(c, a, NULL, eb,
             "INSERT INTO read_cache_readers (id, watermark, seen)"
             " VALUES ($1, $2::xid8, now())",
             rc->id, rc->watermark);
    if (e == TR_OK)
        rc->registered = true;
    return e;
}

/* Splits snapshot text "xmin:xmax:x1,x2" into rc's next poll bounds;
 * false if it does not read. */
static bool take_snapshot(struct read_cache *rc, const char *snap)
{
    const char *c1 = strchr(snap, ':');
    const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    if (c1 == NULL || c2 == NULL || c1 - snap >= (long)sizeof(rc->watermark) ||
        c2 - c1 - 1 >= (long)sizeof(rc->xmax))
        return false;
    size_t n = strlen(c2 + 1);
    int commas = 0;
    for (const char *p = c2 + 1; *p; p++)
        commas += *p == ',';
    char *xip = malloc(n + 3);
    if (xip == NULL)
        return false;
    snprintf(rc->watermark, sizeof(rc->watermark), "%.*s", (int)(c1 - snap),
             snap);
    if (commas < MAX_XIP) {
        snprintf(xip, n + 3, "{%s}", c2 + 1);
        snprintf(rc->xmax, sizeof(rc->xmax), "%.*s", (int)(c2 - c1 - 1),
                 c1 + 1);
    } else { /* so many open: every row at or above xmin again */
        strcpy(xip, "{}");
        snprintf(rc->xmax, sizeof(rc->xmax), "%s", rc->watermark);
    }
    free(rc->xip);
    rc->xip = xip;
    return true;
}

/* Reads the changes not read yet, applies them and keeps the snapshot's
 * bounds for the next poll. */
static tr_err read_changes(struct read_cache *rc, struct db_conn *c,
                           struct arena *a, struct tr_errbuf *eb)
{
    /* rows numbered above the last read, then rows of transactions the
     * last snapshot saw unfinished (at or above its xmax, then in its
     * list) not among those: disjoint index range scans.  The upper
     * bounds are parameters so that a generic plan reckons with a range
     * (a few rows) rather than with a third of a table a burst of
     * changes has grown ("seq > $1 OR ..." was planned as a sequential
     * scan, 0.5 ms a poll over 10,000 rows); without unfinished
     * transactions (the usual case) the list's branch is left out, so
     * that the generic plan is cheap enough to be kept (no planning per
     * poll). */
#define RC_NEW                                                                 \
    "SELECT pg_current_snapshot()::text AS snap, NULL AS seq,"                 \
    " NULL AS key UNION ALL SELECT NULL, seq::text, key"                       \
    " FROM read_cache_changes WHERE seq > $1::bigint"                          \
    " AND seq <= $3::bigint UNION ALL SELECT NULL, seq::text, key"             \
    " FROM read_cache_changes WHERE xid >= $2::xid8 AND xid <= $4::xid8"       \
    " AND seq <= $1::bigint"
    struct db_rows *r = NULL;
    const char *last = arena_printf(a, "%lld", (long long)rc->last_seq);
    const char *seq_max = "9223372036854775807";
    const char *xid_max = "18446744073709551615";
    tr_err e =
        strcmp(rc->xip, "{}") == 0
            ? db_q(c, a, &r, eb, RC_NEW, last, rc->xmax, seq_max, xid_max)
            : db_q(c, a, &r, eb,
                   RC_NEW " UNION ALL SELECT NULL, seq::text, key"
                          " FROM read_cache_changes WHERE xid = ANY($5::xid8[])"
                          " AND xid < $2::xid8 AND seq <= $1::bigint",
                   last, rc->xmax, seq_max, xid_max, rc->xip);
#undef RC_NEW
    if (e != TR_OK)
        return e;
    const char *snap = NULL;
    for (int i = 0; i < r->nrows && snap == NULL; i++)
        snap = db_get(r, i, "snap");
    if (snap == NULL || !take_snapshot(rc, snap))
        return tr_fail(eb, TR_ERR_DB, "read cache: unreadable snapshot %s",
                       snap != NULL ? snap : "(none)");
    pthread_mutex_lock(&rc->mu);
    for (int i = 0; i < r->nrows; i++) {
        const char *key = db_get(r, i, "key");
        if (key == NULL)
            continue;
        apply(rc, key);
        int64_t seq = db_get_i64(r, i, "seq");
        if (seq > rc->last_seq)
            rc->last_seq = seq;
    }
    pthread_mutex_unlock(&rc->mu);
    return TR_OK;
}

/* Deletes the rows every live reader has read (invariant 3). */
static void prune(struct db_conn *c, struct arena *a)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = db_x(c, a, NULL, &eb,
                    "DELETE FROM read_cache_readers"
                    " WHERE seen < now() - interval '10 minutes'", );
    if (e == TR_OK)
        e = db_x(c, a, NULL, &eb,
                 "DELETE FROM read_cache_changes WHERE xid <"
                 " (SELECT min(watermark) FROM read_cache_readers)", );
    if (e != TR_OK)
        log_warn("read cache: pruning failed: %s", eb.msg);
}

static bool poll_once(struct read_cache *rc)
{
    struct arena *a = arena_new();
    struct db_conn *c = db_acquire(rc->db);
    struct tr_errbuf eb = {{0}};
    int64_t now = util_mono_ms();
    tr_err e = TR_OK;
    if (fault_hit("read_cache.poll")) {
        db_release(c);
        arena_destroy(a);
        log_warn("read cache: poll failed (reads go to the database): "
                 "injected fault");
        return false;
    }
    if (!rc->registered || now - rc->reg_ms >= rc->reg_every) {
        e = register_reader(rc, c, a, &eb);
        if (e == TR_OK)
            rc->reg_ms = now;
    }
    if (e == TR_OK)
        e = read_changes(rc, c, a, &eb);
    if (e == TR_OK && now - rc->prune_ms >= rc->prune_every) {
        prune(c, a);
        rc->prune_ms = now;
    }
    db_release(c);
    if (e != TR_OK)
        log_warn("read cache: poll failed (reads go to the database): %s",
                 eb.msg);
    arena_destroy(a);
    return e == TR_OK;
}

/* The arrival of the request the thread acts for (read_cache_scope()). */
static _Thread_local int64_t scope_arrived_us;

void read_cache_scope(int64_t arrived_us)
{
    scope_arrived_us = arrived_us;
}

bool read_cache_fence(struct read_cache *rc)
{
    pthread_mutex_lock(&rc->mu);
    /* a poll that began after the request arrived has seen every change
     * committed before it (invariant 1), whichever caller waited for it */
    if (scope_arrived_us > 0 && rc->done > 0 && rc->done_ok &&
        rc->done_began_us > scope_arrived_us) {
        pthread_mutex_unlock(&rc->mu);
        return true;
    }
    uint64_t target = rc->started + 1;
    while (rc->done < target) {
        if (rc->in_flight) {
            pthread_cond_wait(&rc->cv, &rc->mu);
            continue;
        }
        rc->in_flight = true;
        uint64_t n = ++rc->started;
        int64_t began = util_mono_us();
        pthread_mutex_unlock(&rc->mu);
        bool ok = poll_once(rc);
        pthread_mutex_lock(&rc->mu);
        rc->done = n;
        rc->done_ok = ok;
        rc->done_began_us = began;
        rc->in_flight = false;
        rc->st.polls++;
        if (!ok)
            rc->st.poll_failures++;
        pthread_cond_broadcast(&rc->cv);
    }
    bool ok = rc->done_ok;
    pthread_mutex_unlock(&rc->mu);
    return ok;
}

/* ---- the API ----------------------------------------------------------- */

struct read_cache *read_cache_new(struct db *db)
{
    struct read_cache *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return NULL;
    rc->db = db;
    pthread_mutex_init(&rc->mu, NULL);
    pthread_cond_init(&rc->cv, NULL);
    unsigned char rnd[12];
    util_random(rnd, sizeof(rnd));
    int at = snprintf(rc->id, sizeof(rc->id), "rc-");
    for (size_t i = 0; i < sizeof(rnd); i++)
        at +=
            snprintf(rc->id + at, sizeof(rc->id) - (size_t)at, "%02x", rnd[i]);
    strcpy(rc->watermark, "0");
    strcpy(rc->xmax, "0"); /* the first poll reads every row */
    rc->xip = strdup("{}");
    if (rc->xip == NULL) {
        free(rc);
        return NULL;
    }
    rc->reg_every = REGISTER_EVERY_MS;
    rc->prune_every = PRUNE_EVERY_MS;
    return rc;
}

void read_cache_tune(struct read_cache *rc, int64_t register_ms,
                     int64_t prune_ms)
{
    pthread_mutex_lock(&rc->mu);
    rc->reg_every = register_ms;
    rc->prune_every = prune_ms;
    rc->reg_ms = 0;
    rc->prune_ms = 0;
    pthread_mutex_unlock(&rc->mu);
}

void read_cache_free(struct read_cache *rc)
{
    if (rc == NULL)
        return;
    map_flush(&rc->tok);
    map_flush(&rc->ws);
    free(rc->xip);
    pthread_cond_destroy(&rc->cv);
    pthread_mutex_destroy(&rc->mu);
    free(rc);
}

void read_cache_ticket(struct read_cache *rc, const char *hash,
                       const char *ws_id, struct rc_ticket *t)
{
    pthread_mutex_lock(&rc->mu);
    t->tok = map_ticket(&rc->tok, hash);
    t->ws = map_ticket(&rc->ws, ws_id);
    pthread_mutex_unlock(&rc->mu);
}

bool read_cache_token(struct read_cache *rc, struct arena *a, const char *hash,
                      struct st_token *out)
{
    pthread_mutex_lock(&rc->mu);
    struct entry *e = map_find(&rc->tok, hash);
    if (e != NULL) {
        *out = e->tok;
        unpack(a, out, tok_strs, NELEM(tok_strs));
        rc->st.hits++;
    } else {
        rc->st.misses++;
    }
    pthread_mutex_unlock(&rc->mu);
    return e != NULL;
}

bool read_cache_ws(struct read_cache *rc, struct arena *a, const char *ws_id,
                   struct st_workspace *out)
{
    pthread_mutex_lock(&rc->mu);
    struct entry *e = map_find(&rc->ws, ws_id);
    if (e != NULL) {
        *out = e->ws;
        unpack(a, out, ws_strs, NELEM(ws_strs));
        out->tag_names = unpack_array(a, e->ws.tag_names, e->ws.ntags);
        out->var_ids = unpack_array(a, e->ws.var_ids, e->ws.nvars);
        rc->st.hits++;
    } else {
        rc->st.misses++;
    }
    pthread_mutex_unlock(&rc->mu);
    return e != NULL;
}

void read_cache_put(struct read_cache *rc, const struct rc_ticket *t,
                    const char *hash, const struct st_token *tok,
                    const struct st_workspace *ws)
{
    /* built outside the mutex; map_put() takes or frees them */
    struct entry *te = tok != NULL ? token_entry(hash, tok) : NULL;
    struct entry *we = ws != NULL ? ws_entry(ws) : NULL;
    pthread_mutex_lock(&rc->mu);
    if (te != NULL)
        map_put(&rc->tok, t->tok, te);
    if (we != NULL)
        map_put(&rc->ws, t->ws, we);
    pthread_mutex_unlock(&rc->mu);
}

void read_cache_touch(struct read_cache *rc, const char *hash, const char *when)
{
    pthread_mutex_lock(&rc->mu);
    struct entry *e = map_find(&rc->tok, hash);
    /* the blob holds last_used_at's old text, of the same length */
    if (e != NULL && e->tok.last_used_at != NULL && when != NULL &&
        strlen(e->tok.last_used_at) == strlen(when))
        memcpy((char *)e->tok.last_used_at, when, strlen(when));
    else if (e != NULL)
        map_drop(&rc->tok, hash); /* read again next time */
    pthread_mutex_unlock(&rc->mu);
}

void read_cache_stats(struct read_cache *rc, struct read_cache_stats *out)
{
    pthread_mutex_lock(&rc->mu);
    *out = rc->st;
    pthread_mutex_unlock(&rc->mu);
}
