/*
 * store_nodes.c - the node registry of a cluster: which primaries and
 * secondaries exist, their capacity and load, the last time each was
 * heard from, which primary leads, and the credentials secondaries
 * authenticate with.
 *
 * A node credential is shown once, to the node that registered, and
 * stored as its SHA-256 hash, like API tokens.  Revoking a node keeps its
 * row (the registry shows it gone and revoked) so a credential can never
 * come back to life by registering again.  The revoked column is 0, 1
 * (revoked by an administrator or with its agent token) or 2 (the node
 * left: its credential ended with it).  A node the leader marked gone
 * for silence is not revoked, and its next heartbeat makes it active.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "crypto/digest.h"
#include "store/store.h"

#define NODE_COLS                                                              \
    "id, name, role, address, version, capacity, running_jobs, state,"         \
    " leader, revoked, created_at, last_heartbeat_at, pool_id,"                \
    " agent_token_id"

static void fill(const struct db_rows *r, int i, struct st_node *n)
{
    n->id = db_get(r, i, "id");
    n->name = db_get(r, i, "name");
    n->role = db_get(r, i, "role");
    n->address = db_get(r, i, "address");
    n->version = db_get(r, i, "version");
    n->capacity = db_get_i64(r, i, "capacity");
    n->running_jobs = db_get_i64(r, i, "running_jobs");
    n->state = db_get(r, i, "state");
    n->leader = db_get_bool(r, i, "leader");
    n->revoked = db_get_i64(r, i, "revoked") != 0;
    n->left = db_get_i64(r, i, "revoked") == 2;
    n->created_at = db_get(r, i, "created_at");
    n->last_heartbeat_at = db_get(r, i, "last_heartbeat_at");
    n->pool_id = db_get(r, i, "pool_id");
    n->agent_token_id = db_get(r, i, "agent_token_id");
}

static bool valid_state(const char *s)
{
    return strcmp(s, "active") == 0 || strcmp(s, "draining") == 0 ||
           strcmp(s, "gone") == 0;
}

tr_err store_node_register(struct db *db, struct arena *a,
                           const struct st_node *in, struct st_node *out,
                           char **credential, struct tr_errbuf *eb)
{
    bool agent = in->role != NULL && strcmp(in->role, "agent") == 0;
    if (in->name == NULL || in->role == NULL ||
        (strcmp(in->role, "primary") != 0 &&
         strcmp(in->role, "secondary") != 0 && !agent))
        return tr_fail(eb, TR_ERR_INVALID,
                       "a node needs a name and the role primary, "
                       "secondary or agent");
    if (agent != (in->pool_id != NULL && in->agent_token_id != NULL))
        return tr_fail(eb, TR_ERR_INVALID,
                       "an agent, and only an agent, has a pool and a "
                       "token");
    if (in->capacity < 0 || in->capacity > 4096)
        return tr_fail(eb, TR_ERR_INVALID, "capacity must be 0..4096");
    char *now = util_now_iso(a);
    struct st_node n = {
        .id = util_new_id(a, agent ? "agent" : "node"),
        .name = arena_strdup(a, in->name),
        .role = arena_strdup(a, in->role),
        .address = arena_strdup(a, in->address ? in->address : ""),
        .version = arena_strdup(a, in->version ? in->version : ""),
        .capacity = in->capacity,
        .state = "active",
        .created_at = now,
        .last_heartbeat_at = now,
        .pool_id = agent ? arena_strdup(a, in->pool_id) : NULL,
        .agent_token_id = agent ? arena_strdup(a, in->agent_token_id) : NULL,
    };
    const char *hash = NULL;
    char *plain = NULL;
    if (credential != NULL) {
        unsigned char rnd[32];
        util_random(rnd, sizeof rnd);
        plain = arena_alloc(a, 2 * sizeof rnd + 6);
        memcpy(plain, "trnode", 6);
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(plain + 6 + 2 * i, 3, "%02x", rnd[i]);
        hash = digest_sha256_hex(a, plain, strlen(plain));
    }
    char cap[24];
    snprintf(cap, sizeof cap, "%lld", (long long)n.capacity);
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO nodes (id, name, role, address, version,"
                    " capacity, credential_hash, created_at,"
                    " last_heartbeat_at, pool_id, agent_token_id)"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8,$9,$10)",
                    n.id, n.name, n.role, n.address, n.version, cap, hash, now,
                    n.pool_id, n.agent_token_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    if (out != NULL)
        *out = n;
    if (credential != NULL)
        *credential = plain;
    return TR_OK;
}

/* Runs a one-row SELECT of NODE_COLS whose WHERE takes one parameter. */
static tr_err get_one(struct db *db, struct arena *a, const char *where,
                      const char *param, struct st_node *out,
                      struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    const char *sql =
        arena_printf(a, "SELECT " NODE_COLS " FROM nodes WHERE %s", where);
    tr_err e = db_q(c, a, &r, eb, sql, param);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "node not found");
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

tr_err store_node_by_credential(struct db *db, struct arena *a,
                                const char *credential, struct st_node *out,
                                struct tr_errbuf *eb)
{
    const char *hash = digest_sha256_hex(a, credential, strlen(credential));
    tr_err e = get_one(db, a, "credential_hash = $1", hash, out, eb);
    if (e == TR_ERR_NOT_FOUND)
        return tr_fail(eb, e, "unknown node credential");
    if (e != TR_OK)
        return e;
    if (out->left)
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "node %s left the cluster; it must join again",
                       out->name);
    if (out->revoked)
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "the credential of node %s was revoked", out->name);
    /* gone without being revoked: marked so by the leader after its
     * heartbeats stopped (a leave or a revocation also revokes); it is
     * still ours, and its next heartbeat makes it active again */
    if (out->agent_token_id != NULL) {
        /* an agent lives as long as its token: deleting the token (or
         * its pool, or the organization) stops it at once */
        struct db_conn *c = db_acquire(db);
        struct db_rows *r = NULL;
        e = db_q(c, a, &r, eb, "SELECT id FROM agent_tokens WHERE id = $1",
                 out->agent_token_id);
        db_release(c);
        if (e == TR_OK && r->nrows == 0)
            e = tr_fail(eb, TR_ERR_NOT_FOUND,
                        "the agent token of agent %s was revoked", out->name);
    }
    return e;
}

tr_err store_node_get(struct db *db, struct arena *a, const char *id,
                      struct st_node *out, struct tr_errbuf *eb)
{
    return get_one(db, a, "id = $1", id, out, eb);
}

tr_err store_node_list(struct db *db, struct arena *a, bool all,
                       struct st_node **out, int *n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " NODE_COLS " FROM nodes"
                    " WHERE $1 = '1' OR state <> 'gone'"
                    " ORDER BY role, name, id",
                    all ? "1" : "0");
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_node) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

/* UPDATE nodes SET <set> WHERE id = $1 [AND <cond>]; NOT_FOUND when no
 * row changed. */
static tr_err update(struct db *db, struct arena *a, const char *sql, int n,
                     const char *const *params, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t changed = 0;
    tr_err e = db_query(c, a, sql, n, params, NULL, &changed, eb);
    db_release(c);
    if (e == TR_OK && changed == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "node not found or gone");
    return e;
}

tr_err store_node_heartbeat(struct db *db, struct arena *a, const char *id,
                            int64_t running_jobs, struct tr_errbuf *eb)
{
    char jobs[24];
    snprintf(jobs, sizeof jobs, "%lld", (long long)running_jobs);
    const char *p[] = {id, util_now_iso(a), jobs};
    return update(db, a,
                  "UPDATE nodes SET last_heartbeat_at = $2,"
                  " running_jobs = CAST($3 AS INTEGER),"
                  " state = CASE WHEN state = 'gone' THEN 'active'"
                  " ELSE state END"
                  " WHERE id = $1 AND revoked = 0",
                  3, p, eb);
}

tr_err store_node_set_state(struct db *db, struct arena *a, const char *id,
                            const char *state, struct tr_errbuf *eb)
{
    if (state == NULL || !valid_state(state))
        return tr_fail(eb, TR_ERR_INVALID,
                       "node state must be active, draining or gone");
    /* a gone node stays gone here: only its heartbeat (not revoked) or a
     * new registration brings it back */
    const char *p[] = {id, state};
    return update(db, a,
                  "UPDATE nodes SET state = $2,"
                  " leader = CASE WHEN $2 = 'gone' THEN 0 ELSE leader END"
                  " WHERE id = $1 AND (state <> 'gone' OR $2 = 'gone')",
                  2, p, eb);
}

/* Ends the node's credential: how is 1 (revoked) or 2 (it left). */
static tr_err end_credential(struct db *db, struct arena *a, const char *id,
                             const char *how, struct tr_errbuf *eb)
{
    const char *p[] = {id, how};
    return update(db, a,
                  "UPDATE nodes SET revoked = CAST($2 AS INTEGER),"
                  " state = 'gone', leader = 0 WHERE id = $1",
                  2, p, eb);
}

tr_err store_node_revoke(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb)
{
    return end_credential(db, a, id, "1", eb);
}

tr_err store_node_leave(struct db *db, struct arena *a, const char *id,
                        struct tr_errbuf *eb)
{
    return end_credential(db, a, id, "2", eb);
}

tr_err store_node_set_leader(struct db *db, struct arena *a, const char *id,
                             struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE nodes SET leader = 0 WHERE leader = 1 AND id <> $1",
                 id != NULL ? id : "");
    if (e == TR_OK && id != NULL)
        e = db_x(c, a, NULL, eb,
                 "UPDATE nodes SET leader = 1 WHERE id = $1 AND leader = 0",
                 id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    return e;
}

tr_err store_node_drop_leader(struct db *db, struct arena *a, const char *id,
                              struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e =
        db_x(c, a, NULL, eb,
             "UPDATE nodes SET leader = 0 WHERE id = $1 AND leader = 1", id);
    db_release(c);
    return e;
}

tr_err store_node_prune(struct db *db, struct arena *a,
                        const char *stale_before, const char *forget_before,
                        int64_t *gone, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t marked = 0;
    tr_err e = TR_OK;
    if (stale_before != NULL)
        e = db_x(c, a, &marked, eb,
                 "UPDATE nodes SET state = 'gone', leader = 0"
                 " WHERE state <> 'gone' AND last_heartbeat_at < $1",
                 stale_before);
    if (e == TR_OK && forget_before != NULL)
        e = db_x(c, a, NULL, eb,
                 "DELETE FROM nodes WHERE state = 'gone'"
                 " AND last_heartbeat_at < $1",
                 forget_before);
    db_release(c);
    if (e == TR_OK && gone != NULL)
        *gone = marked;
    return e;
}
