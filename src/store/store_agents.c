/*
 * store_agents.c - agent pools, their agent tokens and their agents.
 *
 * A pool belongs to an organization.  An organization-scoped pool may
 * serve every workspace of it; otherwise only its allowed workspaces and
 * the workspaces of its allowed projects.  A workspace in the agent
 * execution mode names its pool (workspaces.agent_pool_id), and a pool
 * is deleted only while no workspace names it.
 *
 * An agent token is shown once and stored as its SHA-256 hash, like API
 * tokens.  An agent is a row of the node registry (store_nodes.c) with
 * role 'agent', its pool and the token it registered with: claims,
 * leases and heartbeats work for it as for a secondary, and the claim
 * query hands it only jobs of its pool's workspaces (store_run_jobs.c).
 * An agent authenticates only while its token exists, so deleting the
 * token, the pool or the organization stops it.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <string.h>

#include "crypto/digest.h"
#include "store/store_ws_int.h"

#define POOL_COLS                                                              \
    "p.id, p.org, p.name, p.organization_scoped, p.created_at,"                \
    " (SELECT count(*) FROM nodes n WHERE n.pool_id = p.id"                    \
    " AND n.state <> 'gone') AS agent_count"
#define TOKEN_COLS                                                             \
    "t.id, t.pool_id, t.description, t.created_by, t.created_at,"              \
    " t.last_used_at"

static void fill_pool(const struct db_rows *r, int i, struct st_agent_pool *p)
{
    memset(p, 0, sizeof(*p));
    p->id = db_get(r, i, "id");
    p->org = db_get(r, i, "org");
    p->name = db_get(r, i, "name");
    p->org_scoped = db_get_bool(r, i, "organization_scoped");
    p->created_at = db_get(r, i, "created_at");
    p->agent_count = db_get_i64(r, i, "agent_count");
}

/* The first column of sql's rows (one parameter) as a list. */
static tr_err id_list(struct db_conn *c, struct arena *a, const char *sql,
                      const char *param, const char ***out, int *n,
                      struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb, sql, param);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(char *) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        (*out)[i] = db_cell(r, i, 0);
    *n = r->nrows;
    return TR_OK;
}

/* The relationship lists of p. */
static tr_err fill_lists(struct db_conn *c, struct arena *a,
                         struct st_agent_pool *p, struct tr_errbuf *eb)
{
    tr_err e = id_list(c, a,
                       "SELECT workspace_id FROM agent_pool_workspaces"
                       " WHERE pool_id = $1 ORDER BY workspace_id",
                       p->id, &p->allowed_ws, &p->nallowed_ws, eb);
    if (e == TR_OK)
        e = id_list(c, a,
                    "SELECT project_id FROM agent_pool_projects"
                    " WHERE pool_id = $1 ORDER BY project_id",
                    p->id, &p->allowed_prj, &p->nallowed_prj, eb);
    if (e == TR_OK)
        e = id_list(c, a,
                    "SELECT id FROM workspaces WHERE agent_pool_id = $1"
                    " ORDER BY id",
                    p->id, &p->ws, &p->nws, eb);
    return e;
}

static tr_err get_pool(struct db_conn *c, struct arena *a, const char *id,
                       struct st_agent_pool *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb,
             "SELECT " POOL_COLS " FROM agent_pools p WHERE p.id = $1", id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "agent pool %s not found", id);
    if (e == TR_OK)
        fill_pool(r, 0, out);
    if (e == TR_OK)
        e = fill_lists(c, a, out, eb);
    return e;
}

/* Replaces the allowed workspaces (prj false) or projects of pool by
 * ids, each of which must be in org. */
static tr_err set_allowed(struct db_conn *c, struct arena *a, const char *pool,
                          const char *org, bool prj, const char *const *ids,
                          int n, struct tr_errbuf *eb)
{
    const char *tbl = prj ? "agent_pool_projects" : "agent_pool_workspaces";
    const char *col = prj ? "project_id" : "workspace_id";
    const char *src = prj ? "projects" : "workspaces";
    if (n > STORE_APOOL_MAX_ITEMS)
        return tr_fail(eb, TR_ERR_INVALID, "an agent pool allows at most %d %s",
                       STORE_APOOL_MAX_ITEMS, src);
    tr_err e =
        db_x(c, a, NULL, eb,
             arena_printf(a, "DELETE FROM %s WHERE pool_id = $1", tbl), pool);
    for (int i = 0; e == TR_OK && i < n; i++) {
        int64_t added = 0;
        e = db_x(c, a, &added, eb,
                 arena_printf(a,
                              "INSERT INTO %s (pool_id, %s) SELECT $1, id"
                              " FROM %s WHERE id = $2 AND org = $3"
                              " AND NOT EXISTS (SELECT 1 FROM %s"
                              " WHERE pool_id = $1 AND %s = $2)",
                              tbl, col, src, tbl, col),
                 pool, ids[i], org);
        if (e != TR_OK)
            break;
        if (added == 0) {
            struct db_rows *r = NULL;
            e = db_q(c, a, &r, eb,
                     arena_printf(a,
                                  "SELECT 1 FROM %s WHERE pool_id = $1"
                                  " AND %s = $2",
                                  tbl, col),
                     pool, ids[i]);
            if (e == TR_OK && r->nrows == 0)
                e = tr_fail(eb, TR_ERR_INVALID,
                            "%s %s: no such %s in organization %s",
                            prj ? "project" : "workspace", ids[i],
                            prj ? "project" : "workspace", org);
        }
    }
    return e;
}

static tr_err name_taken(struct tr_errbuf *eb, const char *name)
{
    return tr_fail(eb, TR_ERR_INVALID,
                   "Name has already been taken: the organization has an "
                   "agent pool named %s",
                   name);
}

tr_err store_apool_create(struct db *db, struct arena *a,
                          const struct st_agent_pool *in,
                          struct st_agent_pool *out, struct tr_errbuf *eb)
{
    const char *id = util_new_id(a, "apool");
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO agent_pools (id, org, name, organization_scoped,"
                 " created_at) VALUES ($1, $2, $3, $4, $5)",
                 id, in->org, in->name, in->org_scoped ? "1" : "0",
                 util_now_iso(a));
    if (e == TR_ERR_CONFLICT)
        e = name_taken(eb, in->name);
    if (e == TR_OK)
        e = set_allowed(c, a, id, in->org, false, in->allowed_ws,
                        in->nallowed_ws, eb);
    if (e == TR_OK)
        e = set_allowed(c, a, id, in->org, true, in->allowed_prj,
                        in->nallowed_prj, eb);
    if (e == TR_OK)
        e = get_pool(c, a, id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c); /* rolls back if still open */
    return e;
}

tr_err store_apool_get(struct db *db, struct arena *a, const char *id,
                       struct st_agent_pool *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = get_pool(c, a, id, out, eb);
    db_release(c);
    return e;
}

tr_err store_apool_list(struct db *db, struct arena *a, const char *org,
                        const char *query, const char *ws_name, int offset,
                        int limit, struct st_agent_pool **out, int *n,
                        int64_t *total, struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, " FROM agent_pools p WHERE p.org = ");
    sqlb_add(&w, sqlb_param(&w, org));
    if (query != NULL && *query != '\0')
        sqlb_addv(&w, " AND lower(p.name) LIKE lower(?) ESCAPE '\\'", 1,
                  store_like(a, "%", query, "%", false));
    if (ws_name != NULL)
        sqlb_addv(&w,
                  " AND (p.organization_scoped = 1 OR EXISTS (SELECT 1"
                  " FROM workspaces w WHERE w.org = p.org AND w.name = ?"
                  " AND (EXISTS (SELECT 1 FROM agent_pool_workspaces aw"
                  " WHERE aw.pool_id = p.id AND aw.workspace_id = w.id)"
                  " OR EXISTS (SELECT 1 FROM agent_pool_projects ap"
                  " WHERE ap.pool_id = p.id AND ap.project_id ="
                  " w.project_id))))",
                  1, ws_name);
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = sqlb_page(
        c, &w,
        arena_printf(a, "SELECT " POOL_COLS "%s ORDER BY p.name%s, p.id", w.sql,
                     store_bytes_order(c)),
        offset, limit, &r, total, eb);
    if (e == TR_OK) {
        *out = arena_alloc(a, sizeof(**out) * (size_t)(r->nrows + 1));
        for (int i = 0; i < r->nrows; i++)
            fill_pool(r, i, &(*out)[i]);
        *n = r->nrows;
    }
    for (int i = 0; e == TR_OK && i < *n; i++)
        e = fill_lists(c, a, &(*out)[i], eb);
    db_release(c);
    return e;
}

tr_err store_apool_update(struct db *db, struct arena *a, const char *id,
                          const struct st_apool_update *u, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct st_agent_pool p;
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = get_pool(c, a, id, &p, eb);
    const char *scoped = u->org_scoped < 0 ? NULL : (u->org_scoped ? "1" : "0");
    if (e == TR_OK)
        e = db_x(c, a, &n, eb,
                 "UPDATE agent_pools SET name = COALESCE($2, name),"
                 " organization_scoped = COALESCE(CAST($3 AS INTEGER),"
                 " organization_scoped) WHERE id = $1",
                 id, u->name, scoped);
    if (e == TR_ERR_CONFLICT)
        e = name_taken(eb, u->name);
    if (e == TR_OK && u->set_ws)
        e = set_allowed(c, a, id, p.org, false, u->ws, u->nws, eb);
    if (e == TR_OK && u->set_prj)
        e = set_allowed(c, a, id, p.org, true, u->prj, u->nprj, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_apool_delete(struct db *db, struct arena *a, const char *id,
                          struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(
            c, a, &r, eb,
            "SELECT count(*) AS n FROM workspaces WHERE agent_pool_id = $1",
            id);
    if (e == TR_OK && db_get_i64(r, 0, "n") > 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "agent pool %s is used by %lld workspace(s): switch "
                    "them to another pool or execution mode first",
                    id, (long long)db_get_i64(r, 0, "n"));
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE nodes SET state = 'gone', revoked = 1"
                 " WHERE pool_id = $1",
                 id);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb, "DELETE FROM agent_pools WHERE id = $1", id);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "agent pool %s not found", id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_apool_check(struct db *db, struct arena *a, const char *pool,
                         const char *org, const char *ws_id, const char *prj,
                         struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e =
        db_q(c, a, &r, eb,
             "SELECT p.name, CASE WHEN p.organization_scoped = 1"
             " OR EXISTS (SELECT 1 FROM agent_pool_workspaces aw"
             " WHERE aw.pool_id = p.id AND aw.workspace_id = $3)"
             " OR EXISTS (SELECT 1 FROM agent_pool_projects ap"
             " WHERE ap.pool_id = p.id AND ap.project_id = $4)"
             " THEN 1 ELSE 0 END AS ok"
             " FROM agent_pools p WHERE p.id = $1 AND p.org = $2",
             pool, org, ws_id != NULL ? ws_id : "", prj != NULL ? prj : "");
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND,
                    "agent pool %s not found in organization %s", pool, org);
    if (e == TR_OK && !db_get_bool(r, 0, "ok"))
        e = tr_fail(eb, TR_ERR_INVALID,
                    "agent pool %s (%s) is not organization-scoped and does "
                    "not allow this workspace: add the workspace or its "
                    "project to the pool's allowed workspaces or projects",
                    pool, db_get(r, 0, "name"));
    return e;
}

/* ---- agent tokens ------------------------------------------------------ */

static void fill_token(const struct db_rows *r, int i, struct st_agent_token *t)
{
    t->id = db_get(r, i, "id");
    t->pool_id = db_get(r, i, "pool_id");
    t->description = db_get(r, i, "description");
    t->created_by = db_get(r, i, "created_by");
    t->created_at = db_get(r, i, "created_at");
    t->last_used_at = db_get(r, i, "last_used_at");
}

static tr_err token_where(struct db_conn *c, struct arena *a, const char *where,
                          const char *param, struct st_agent_token *out,
                          struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(
        c, a, &r, eb,
        arena_printf(a, "SELECT " TOKEN_COLS " FROM agent_tokens t WHERE %s",
                     where),
        param);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "agent token not found");
    if (e == TR_OK)
        fill_token(r, 0, out);
    return e;
}

tr_err store_atoken_create(struct db *db, struct arena *a, const char *pool,
                           const char *description, const char *created_by,
                           struct st_agent_token *out, char **secret,
                           struct tr_errbuf *eb)
{
    unsigned char rnd[32];
    util_random(rnd, sizeof rnd);
    char *plain = arena_alloc(a, 2 * sizeof rnd + 8);
    memcpy(plain, "tragent.", 8);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(plain + 8 + 2 * i, 3, "%02x", rnd[i]);
    const char *id = util_new_id(a, "agtok");
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb,
                    "INSERT INTO agent_tokens (id, pool_id, hash, description,"
                    " created_by, created_at) SELECT $1, id, $3, $4, $5, $6"
                    " FROM agent_pools WHERE id = $2",
                    id, pool, digest_sha256_hex(a, plain, strlen(plain)),
                    description != NULL ? description : "", created_by,
                    util_now_iso(a));
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "agent pool %s not found", pool);
    if (e == TR_OK)
        e = token_where(c, a, "t.id = $1", id, out, eb);
    db_release(c);
    if (e == TR_OK)
        *secret = plain;
    return e;
}

tr_err store_atoken_get(struct db *db, struct arena *a, const char *id,
                        struct st_agent_token *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = token_where(c, a, "t.id = $1", id, out, eb);
    db_release(c);
    return e;
}

tr_err store_atoken_list(struct db *db, struct arena *a, const char *pool,
                         int offset, int limit, struct st_agent_token **out,
                         int *n, int64_t *total, struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, " FROM agent_tokens t WHERE t.pool_id = ");
    sqlb_add(&w, sqlb_param(&w, pool));
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = sqlb_page(
        c, &w,
        arena_printf(a, "SELECT " TOKEN_COLS "%s ORDER BY t.created_at, t.id",
                     w.sql),
        offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(**out) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill_token(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

tr_err store_atoken_delete(struct db *db, struct arena *a, const char *id,
                           struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE nodes SET state = 'gone', revoked = 1"
                 " WHERE agent_token_id = $1",
                 id);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb, "DELETE FROM agent_tokens WHERE id = $1", id);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "agent token %s not found", id);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_atoken_use(struct db *db, struct arena *a, const char *secret,
                        struct st_agent_token *out, struct tr_errbuf *eb)
{
    const char *hash = digest_sha256_hex(a, secret, strlen(secret));
    struct db_conn *c = db_acquire(db);
    tr_err e = token_where(c, a, "t.hash = $1", hash, out, eb);
    if (e == TR_OK) {
        out->last_used_at = util_now_iso(a);
        e = db_x(c, a, NULL, eb,
                 "UPDATE agent_tokens SET last_used_at = $2 WHERE id = $1",
                 out->id, out->last_used_at);
    }
    db_release(c);
    return e;
}

/* ---- agents ------------------------------------------------------------ */

tr_err store_agent_list(struct db *db, struct arena *a, const char *pool,
                        int offset, int limit, struct st_node **out, int *n,
                        int64_t *total, struct tr_errbuf *eb)
{
    struct sqlb w;
    sqlb_init(&w, a, " FROM nodes n WHERE n.role = 'agent' AND n.pool_id = ");
    sqlb_add(&w, sqlb_param(&w, pool));
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = sqlb_page(c, &w,
                         arena_printf(a,
                                      "SELECT n.id%s ORDER BY n.created_at"
                                      " DESC, n.id",
                                      w.sql),
                         offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(**out) * (size_t)(r->nrows + 1));
    *n = 0;
    for (int i = 0; e == TR_OK && i < r->nrows; i++)
        e = store_node_get(db, a, db_get(r, i, "id"), &(*out)[(*n)++], eb);
    return e;
}
