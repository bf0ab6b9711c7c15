/*
 * store_run_jobs.c - what workers and log readers need of runs: claiming,
 * heartbeating and reaping jobs, log chunks, and a run's comments and
 * events.
 *
 * A claim is one transaction: the oldest queued job (SKIP LOCKED on
 * PostgreSQL, so concurrent claimers take different jobs instead of
 * queueing behind one row lock) becomes running with a lease, and its run
 * moves to planning/applying.  Log chunks are inserted as the worker sends
 * them, each with its byte offset in the phase's content, sealed under
 * the KEK (envelope_seal(): a fresh data key per chunk, text that fits a
 * TEXT column on both databases); a reader gets the chunks and the
 * phase's status from one statement, so it never sees a phase as ended
 * without all of its bytes.  Chunks stored before they were sealed hold
 * plain base64, which never starts with the envelope's "tre1:" prefix
 * (':' is not a base64 character), so both kinds read.  Offsets and
 * lengths stay in clear: they count plaintext bytes.
 *
 * SPDX-License-Identifier: MPL-2.0
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/check.h"
#include "crypto/digest.h"
#include "crypto/envelope.h"
#include "store/store_run_int.h"

#define JOB_COLS                                                               \
    "j.id, j.run_id, j.phase, j.status, j.node, j.lease_until, j.cancel,"      \
    " j.created_at, CASE WHEN j.phase = 'plan'"                                \
    " THEN (SELECT id FROM plans WHERE run_id = j.run_id)"                     \
    " ELSE (SELECT id FROM applies WHERE run_id = j.run_id) END AS phase_id"

static void fill_job(const struct db_rows *r, int i, struct st_job *j)
{
    j->id = db_get(r, i, "id");
    j->run_id = db_get(r, i, "run_id");
    j->phase = db_get(r, i, "phase");
    j->phase_id = db_get(r, i, "phase_id");
    j->status = db_get(r, i, "status");
    j->node = db_get(r, i, "node");
    j->lease_until = db_get_i64(r, i, "lease_until");
    j->cancel = (int)db_get_i64(r, i, "cancel");
    j->created_at = db_get(r, i, "created_at");
}

static tr_err load_job(struct db_conn *c, struct arena *a, const char *id,
                       struct st_job *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " JOB_COLS " FROM jobs j WHERE j.id = $1", id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "job %s not found", id);
    if (e == TR_OK)
        fill_job(r, 0, out);
    return e;
}

tr_err store_job_get(struct db *db, struct arena *a, const char *id,
                     struct st_job *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = load_job(c, a, id, out, eb);
    db_release(c);
    return e;
}

/* Job row r (id, run_id, phase) becomes running and its run moves on.  A
 * queued job whose run is not in the matching queued status breaks an
 * invariant: it is retired and *skip set so the caller looks again. */
static tr_err start_job(struct db_conn *c, struct arena *a,
                        const struct db_rows *r, const char *node,
                        int64_t lease_until, bool *skip, struct tr_errbuf *eb)
{
    const char *id = db_get(r, 0, "id");
    const char *run = db_get(r, 0, "run_id");
    bool apply = util_streq(db_get(r, 0, "phase"), "apply");
    const char *now = util_now_iso(a);
    struct db_rows *cur = NULL;
    tr_err e = db_q(c, a, &cur, eb,
                    arena_printf(a,
                                 "SELECT status, status_timestamps FROM runs"
                                 " WHERE id = $1%s",
                                 db_for_update(c)),
                    run);
    if (e != TR_OK)
        return e;
    const char *want = apply ? "apply_queued" : "plan_queued";
    *skip = cur->nrows == 0 || !util_streq(db_get(cur, 0, "status"), want);
    if (*skip)
        return db_x(c, a, NULL, eb,
                    "UPDATE jobs SET status = 'done' WHERE id = $1", id);
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_until);
    const char *key = apply ? "applying-at" : "planning-at";
    char *ts = store_run_stamp(a, db_get(cur, 0, "status_timestamps"),
                               (const char *[]){key}, 1, now);
    e = db_x(c, a, NULL, eb,
             "UPDATE jobs SET status = 'running', node = $2, lease_until = $3"
             " WHERE id = $1",
             id, node, lease);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE runs SET status = $2, status_timestamps = $3"
                 " WHERE id = $1",
                 run, apply ? "applying" : "planning", ts);
    if (e == TR_OK)
        e = store_phase_set(c, a, !apply, run, "running", "started-at", now,
                            eb);
    if (e == TR_OK)
        e = store_run_event_add(c, a, run, apply ? "applying" : "planning",
                                apply ? "Apply started" : "Plan started", NULL,
                                NULL, now, eb);
    return e;
}

/* A job goes to the claimer ($1) whose pool is its workspace's agent
 * pool: an agent (nodes.pool_id) takes only the jobs of workspaces in the
 * agent execution mode with its pool; every other claimer (secondaries,
 * a primary's or the demo's own executor, named by node id or name) has
 * no pool and takes only the jobs of workspaces not in that mode. */
#define POOL_MATCH                                                             \
    "COALESCE((SELECT w.agent_pool_id FROM runs r"                             \
    " JOIN workspaces w ON w.id = r.workspace_id WHERE r.id = j.run_id"        \
    " AND w.execution_mode = 'agent'), '') = COALESCE((SELECT n.pool_id"       \
    " FROM nodes n WHERE n.id = $1), '')"

tr_err store_job_claim(struct db *db, struct arena *a, const char *node,
                       int64_t lease_until, struct st_job *job,
                       struct st_run *run, const char *token_expires,
                       char **token, struct tr_errbuf *eb)
{
    const char *since =
        util_iso_from_unix(a, util_now_unix() - STORE_APPLY_AFFINITY_S);
    struct db_conn *c = db_acquire(db);
    tr_err e = TR_OK;
    const char *id = NULL;
    for (int tries = 0; e == TR_OK && id == NULL && tries < 8; tries++) {
        struct db_rows *r = NULL;
        bool skip = false;
        e = db_begin(c, eb);
        /* an apply waits STORE_APPLY_AFFINITY_S for the node that ran
         * its plan (it holds the working directory) unless it is gone */
        if (e == TR_OK)
            e = db_q(c, a, &r, eb,
                     arena_printf(a,
                                  "SELECT j.id, j.run_id, j.phase FROM jobs j"
                                  " WHERE j.status = 'queued' AND NOT ("
                                  "j.phase = 'apply' AND j.created_at > $2"
                                  " AND EXISTS (SELECT 1 FROM jobs p"
                                  " JOIN nodes n ON n.id = p.node"
                                  " WHERE p.run_id = j.run_id"
                                  " AND p.phase = 'plan' AND p.node <> $1"
                                  " AND n.state <> 'gone'))"
                                  " AND " POOL_MATCH
                                  " ORDER BY j.seq, j.id LIMIT 1%s",
                                  db_skip_locked(c)),
                     node, since);
        if (e == TR_OK && r->nrows == 0) {
            e = db_commit(c, eb);
            break;
        }
        if (e == TR_OK)
            e = start_job(c, a, r, node, lease_until, &skip, eb);
        if (e == TR_OK && !skip)
            e = load_job(c, a, db_get(r, 0, "id"), job, eb);
        if (e == TR_OK && !skip)
            e = store_run_load(c, a, job->run_id, run, eb);
        if (e == TR_OK && !skip && token != NULL)
            e = store_run_token_mint(c, a, job->run_id, token_expires, token,
                                     eb);
        if (e == TR_OK)
            e = db_commit(c, eb);
        if (e == TR_OK && !skip)
            id = job->id;
    }
    db_release(c);
    if (e == TR_OK && id == NULL)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "no job is queued");
    return e;
}

tr_err store_job_requeue(struct db *db, struct arena *a, const char *id,
                         const char *node, int64_t lease_until,
                         struct tr_errbuf *eb)
{
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_until);
    const char *now = util_now_iso(a);
    struct db_conn *c = db_acquire(db);
    struct st_job j = {0};
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    /* the lease still the claim's own: no heartbeat moved it (a
     * heartbeat always changes it, store_job_heartbeat) */
    if (e == TR_OK)
        e = db_x(c, a, &n, eb,
                 "UPDATE jobs SET status = 'queued', node = NULL,"
                 " lease_until = 0 WHERE id = $1 AND status = 'running'"
                 " AND node = $2 AND lease_until = $3 AND cancel = 0",
                 id, node, lease);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "the claim was confirmed or ended");
    if (e == TR_OK)
        e = load_job(c, a, id, &j, eb);
    bool plan = e == TR_OK && util_streq(j.phase, "plan");
    if (e == TR_OK)
        e = db_x(c, a, &n, eb,
                 "UPDATE runs SET status = $2 WHERE id = $1 AND status = $3",
                 j.run_id, plan ? "plan_queued" : "apply_queued",
                 plan ? "planning" : "applying");
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "the run has moved on");
    if (e == TR_OK)
        e = store_phase_set(c, a, plan, j.run_id, "queued", "queued-at", now,
                            eb);
    /* the claim's run token goes; the next claim mints another */
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM tokens WHERE kind = 'run' AND subject = $1",
                 j.run_id);
    if (e == TR_OK && db_conn_kind(c) == DB_PG)
        e = db_x(c, a, NULL, eb, "SELECT pg_notify('terrace_jobs', $1)", id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back what did not commit */
    return e;
}

tr_err store_job_heartbeat(struct db *db, struct arena *a, const char *id,
                           int64_t lease_until, int *cancel,
                           struct tr_errbuf *eb)
{
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_until);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb,
                    "UPDATE jobs SET lease_until = CASE WHEN lease_until"
                    " >= $2 THEN lease_until + 1 ELSE $2 END"
                    " WHERE id = $1 AND status = 'running'",
                    id, lease);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb, "SELECT cancel FROM jobs WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "job %s not found", id);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "job is no longer running");
    if (e == TR_OK)
        *cancel = (int)db_get_i64(r, 0, "cancel");
    return e;
}

tr_err store_job_lease_tick(struct db *db, struct arena *a, int64_t now_ms,
                            int64_t tick_ms, int64_t *gap_ms, int64_t *n,
                            struct tr_errbuf *eb)
{
    char now[24], by[24];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    int64_t gap = 0;
    if (n != NULL)
        *n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 "SELECT value FROM site_settings WHERE key = 'lease_clock'");
    if (e == TR_OK && r->nrows == 1) {
        long long last = strtoll(db_cell(r, 0, 0), NULL, 10);
        if (last > 0 && now_ms - last - tick_ms > tick_ms)
            gap = now_ms - last - tick_ms;
    }
    snprintf(by, sizeof(by), "%lld", (long long)gap);
    if (e == TR_OK && gap > 0)
        e = db_x(c, a, n, eb,
                 "UPDATE jobs SET lease_until = lease_until + $1"
                 " WHERE status = 'running'",
                 by);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO site_settings (key, value)"
                 " VALUES ('lease_clock', $1)"
                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 now);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back what did not commit */
    *gap_ms = e == TR_OK ? gap : 0;
    return e;
}

tr_err store_job_expired(struct db *db, struct arena *a, int64_t now_ms,
                         struct st_job **out, int *n, struct tr_errbuf *eb)
{
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " JOB_COLS " FROM jobs j WHERE j.status ="
                    " 'running' AND j.lease_until < $1"
                    " ORDER BY j.lease_until, j.id"
                    " LIMIT 100",
                    now);
    db_release(c);
    if (e != TR_OK)
        return e;
    struct st_job *jobs =
        arena_alloc(a, sizeof(*jobs) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill_job(r, i, &jobs[i]);
    *out = jobs;
    *n = r->nrows;
    return TR_OK;
}

tr_err store_job_queued_count(struct db *db, struct arena *a, int64_t *n,
                              struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb, "SELECT count(*) AS n FROM jobs WHERE status = $1",
             "queued");
    db_release(c);
    if (e == TR_OK)
        *n = db_get_i64(r, 0, "n");
    return e;
}

/* ---- logs -------------------------------------------------------------- */

/* One try: stores data[skip..) sealed, if the job's log_bytes is still
 * have; else *moved, with the log_bytes found in *have. */
static tr_err log_append_once(struct db *db, const struct keyring *keys,
                              struct arena *a, const char *job_id,
                              const unsigned char *data, size_t len,
                              int64_t offset, int64_t *have, bool *moved,
                              struct tr_errbuf *eb)
{
    size_t skip = offset >= 0 && *have > offset ? (size_t)(*have - offset) : 0;
    /* sealed before the transaction: no row lock is held for it */
    char *sealed = NULL;
    tr_err e = envelope_seal(keys, a, data + skip, len - skip, &sealed, eb);
    if (e != TR_OK)
        return e;
    struct db_conn *c = db_acquire(db);
    struct db_rows *j = NULL, *last = NULL;
    e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &j, eb,
                 arena_printf(a,
                              "SELECT " JOB_COLS ", j.log_bytes FROM jobs j"
                              " WHERE j.id = $1 AND j.status = 'running'%s",
                              db_for_update(c)),
                 job_id);
    if (e == TR_OK && j->nrows == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "job is no longer running");
    if (e == TR_OK && offset >= 0 && db_get_i64(j, 0, "log_bytes") != *have) {
        *have = db_get_i64(j, 0, "log_bytes");
        *moved = true;
        goto out;
    }
    const char *phase = e == TR_OK ? db_get(j, 0, "phase_id") : NULL;
    if (e == TR_OK)
        e = db_q(c, a, &last, eb,
                 "SELECT seq, byte_offset + len AS end_off FROM log_chunks"
                 " WHERE phase_id = $1 ORDER BY seq DESC LIMIT 1",
                 phase);
    int64_t seq = 1, off = 0;
    if (e == TR_OK && last->nrows > 0) {
        seq = db_get_i64(last, 0, "seq") + 1;
        off = db_get_i64(last, 0, "end_off");
    }
    if (e == TR_OK && (uint64_t)off + (len - skip) > STORE_LOG_MAX)
        e = tr_fail(eb, TR_ERR_TOO_LARGE, "the log is longer than %d bytes",
                    STORE_LOG_MAX);
    char s[24], o[24], l[24], b[24];
    snprintf(s, sizeof(s), "%lld", (long long)seq);
    snprintf(o, sizeof(o), "%lld", (long long)off);
    snprintf(l, sizeof(l), "%zu", len - skip);
    snprintf(b, sizeof(b), "%lld", (long long)offset + (long long)len);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO log_chunks (phase_id, seq, byte_offset, len,"
                 " data) VALUES ($1, $2, $3, $4, $5)",
                 phase, s, o, l, sealed);
    if (e == TR_OK && offset >= 0)
        e = db_x(c, a, NULL, eb, "UPDATE jobs SET log_bytes = $2 WHERE id = $1",
                 job_id, b);
    if (e == TR_OK)
        e = db_commit(c, eb);
out:
    db_release(c); /* rolls back what did not commit */
    return e;
}

tr_err store_log_append(struct db *db, const struct keyring *keys,
                        struct arena *a, const char *job_id, const void *data,
                        size_t len, int64_t offset, struct tr_errbuf *eb)
{
    if (len == 0)
        return TR_OK;
    if (len > STORE_LOG_MAX)
        return tr_fail(eb, TR_ERR_TOO_LARGE, "log chunk too large");
    /* first as if none of it was stored (the usual case): the check under
     * the row lock says otherwise, and what it found is tried next */
    int64_t have = offset >= 0 ? offset : 0;
    for (int tries = 0;; tries++) {
        if (offset >= 0 && (uint64_t)offset + len <= (uint64_t)have)
            return TR_OK; /* stored before: its acknowledgement was lost */
        bool moved = false;
        tr_err e = log_append_once(db, keys, a, job_id, data, len, offset,
                                   &have, &moved, eb);
        if (e != TR_OK || !moved)
            return e;
        if (tries >= 3)
            return tr_fail(eb, TR_ERR_BUSY,
                           "the job's log moved under every try");
    }
}

static bool phase_ended(const char *status)
{
    static const char *const done[] = {"finished", "errored", "canceled",
                                       "unreachable"};
    for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++)
        if (util_streq(status, done[i]))
            return true;
    return false;
}

/* The plaintext of a stored chunk: sealed, or base64 from before chunks
 * were sealed. */
static tr_err chunk_bytes(const struct keyring *keys, struct arena *a,
                          const char *text, unsigned char **out, size_t *n,
                          struct tr_errbuf *eb)
{
    if (text == NULL)
        return tr_fail(eb, TR_ERR_INTERNAL, "corrupt log chunk");
    if (envelope_is_sealed(text))
        return envelope_open(keys, a, text, (char **)out, n, eb);
    if (digest_b64_decode(a, text, strlen(text), out, n) != TR_OK)
        return tr_fail(eb, TR_ERR_INTERNAL, "corrupt log chunk");
    return TR_OK;
}

/* Copies the part of a chunk (at content offset coff) inside [off, end)
 * to out at its place; *got gets the end of the copied part relative to
 * off (0 if none). */
static tr_err copy_chunk(const struct keyring *keys, struct arena *a,
                         const char *text, int64_t coff, int64_t off,
                         int64_t end, char *out, int64_t *got,
                         struct tr_errbuf *eb)
{
    unsigned char *bytes = NULL;
    size_t n = 0;
    *got = 0;
    tr_err e = chunk_bytes(keys, a, text, &bytes, &n, eb);
    if (e != TR_OK)
        return e;
    int64_t from = coff > off ? coff : off;
    int64_t to = coff + (int64_t)n; /* n <= STORE_LOG_MAX */
    if (to > end)
        to = end;
    if (to <= from)
        return TR_OK;
    memcpy(out + (from - off), bytes + (from - coff), (size_t)(to - from));
    *got = to - off;
    return TR_OK;
}

tr_err store_log_read(struct db *db, const struct keyring *keys,
                      struct arena *a, const char *phase_id, int64_t off,
                      int64_t limit, struct st_log_view *out,
                      struct tr_errbuf *eb)
{
    TR_ASSERT(off >= 0 && limit >= 0);
    /* cut at INT64_MAX: an offset near it must not overflow the sum */
    int64_t stop = util_sat_add_i64(off, limit);
    limit = stop - off;
    char o[24], end[24];
    snprintf(o, sizeof(o), "%lld", (long long)off);
    snprintf(end, sizeof(end), "%lld", (long long)stop);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT p.status, p.log_blob_key, c.byte_offset, c.data,"
                    /* chunks are appended in order: the last one ends
                     * the log (one index probe; MAX() over the phase,
                     * evaluated per returned row, made a read
                     * quadratic in the number of chunks) */
                    " COALESCE((SELECT t.byte_offset + t.len"
                    "  FROM log_chunks t WHERE t.phase_id = p.id"
                    "  ORDER BY t.seq DESC LIMIT 1), 0) AS total"
                    " FROM (SELECT id, status, log_blob_key FROM plans"
                    "  WHERE id = $1 UNION ALL"
                    "  SELECT id, status, log_blob_key FROM applies"
                    "  WHERE id = $1) p"
                    " LEFT JOIN log_chunks c ON c.phase_id = p.id"
                    "  AND c.byte_offset + c.len > CAST($2 AS BIGINT)"
                    "  AND c.byte_offset < CAST($3 AS BIGINT)"
                    " ORDER BY c.seq",
                    phase_id, o, end);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "no such plan or apply");
    if (e != TR_OK)
        return e;
    *out = (struct st_log_view){
        .status = db_get(r, 0, "status"),
        .ended = phase_ended(db_get(r, 0, "status")),
        .blob_key = db_get(r, 0, "log_blob_key"),
        .total = db_get_i64(r, 0, "total"),
    };
    if (out->blob_key != NULL)
        return TR_OK;
    out->data = arena_alloc(a, (size_t)limit + 1);
    for (int i = 0; i < r->nrows && e == TR_OK; i++) {
        if (db_get(r, i, "byte_offset") == NULL)
            continue;
        int64_t got = 0;
        e = copy_chunk(keys, a, db_get(r, i, "data"),
                       db_get_i64(r, i, "byte_offset"), off, stop, out->data,
                       &got, eb);
        if (e == TR_OK && (size_t)got > out->len)
            out->len = (size_t)got;
    }
    return e;
}

tr_err store_log_all(struct db *db, const struct keyring *keys, struct arena *a,
                     const char *phase_id, char **data, size_t *len,
                     struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT data FROM log_chunks WHERE phase_id = $1"
                    " ORDER BY seq",
                    phase_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    struct buf b;
    buf_init(&b, STORE_LOG_MAX);
    for (int i = 0; i < r->nrows && e == TR_OK; i++) {
        unsigned char *bytes = NULL;
        size_t n = 0;
        e = chunk_bytes(keys, a, db_get(r, i, "data"), &bytes, &n, eb);
        if (e == TR_OK)
            e = buf_append(&b, bytes, n);
    }
    if (e == TR_OK) {
        *len = b.len;
        *data = arena_memdup(a, b.data != NULL ? b.data : "", b.len + 1);
    }
    buf_free(&b);
    return e;
}

/* ---- comments and events ----------------------------------------------- */

static void fill_comment(const struct db_rows *r, int i, struct st_comment *o)
{
    o->id = db_get(r, i, "id");
    o->run_id = db_get(r, i, "run_id");
    o->body = db_get(r, i, "body");
    o->created_by = db_get(r, i, "created_by");
    o->created_at = db_get(r, i, "created_at");
}

tr_err store_comment_create(struct db *db, struct arena *a, const char *run_id,
                            const char *body, const char *user_id,
                            struct st_comment *out, struct tr_errbuf *eb)
{
    struct st_comment cm = {
        .id = util_new_id(a, "wsc"),
        .run_id = run_id,
        .body = body,
        .created_by = user_id,
        .created_at = util_now_iso(a),
    };
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 arena_printf(a, "SELECT id FROM runs WHERE id = $1%s",
                              db_for_update(c)),
                 run_id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "run %s not found", run_id);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO comments (id, run_id, body, created_by,"
                 " created_at) VALUES ($1, $2, $3, $4, $5)",
                 cm.id, run_id, body, user_id, cm.created_at);
    if (e == TR_OK)
        e = store_run_event_add(c, a, run_id, "commented", "Comment added",
                                user_id, cm.id, cm.created_at, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    if (e == TR_OK && out != NULL)
        *out = cm;
    return e;
}

tr_err store_comment_get(struct db *db, struct arena *a, const char *id,
                         struct st_comment *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT id, run_id, body, created_by, created_at"
                    " FROM comments WHERE id = $1",
                    id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "comment %s not found", id);
    if (e == TR_OK)
        fill_comment(r, 0, out);
    return e;
}

tr_err store_comment_list(struct db *db, struct arena *a, const char *run_id,
                          struct st_comment **out, int *n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT id, run_id, body, created_by, created_at"
                    " FROM comments WHERE run_id = $1"
                    " ORDER BY created_at, id",
                    run_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(**out) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill_comment(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

#define EVENT_COLS                                                             \
    "id, run_id, action, description, actor_id, comment_id, created_at"

static void fill_event(const struct db_rows *r, int i, struct st_run_event *o)
{
    o->id = db_get(r, i, "id");
    o->run_id = db_get(r, i, "run_id");
    o->action = db_get(r, i, "action");
    o->description = db_get(r, i, "description");
    o->actor_id = db_get(r, i, "actor_id");
    o->comment_id = db_get(r, i, "comment_id");
    o->created_at = db_get(r, i, "created_at");
}

tr_err store_run_events(struct db *db, struct arena *a, const char *run_id,
                        struct st_run_event **out, int *n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " EVENT_COLS " FROM run_events WHERE run_id = $1"
                    " ORDER BY seq",
                    run_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(**out) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill_event(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_run_event_get(struct db *db, struct arena *a, const char *id,
                           struct st_run_event *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " EVENT_COLS " FROM run_events WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "run event %s not found", id);
    if (e == TR_OK)
        fill_event(r, 0, out);
    return e;
}
