/*
 * store_vars.c - workspace variables, variable sets with their workspace
 * and project links, and the resolver that gives a run its variables.
 *
 * Sensitive values are sealed here, inside the writing transaction, so
 * that plaintext of a sensitive variable never reaches the database; the
 * reads return value NULL for them and only store_vars_for_run() opens
 * them (it is what the executor calls).  Owners never change, so the API
 * may check a variable's owner before updating it.
 *
 * The precedence rules store_vars_for_run() implements are listed in
 * store.h; resolution is done in C over one query's rows: every
 * candidate gets a level, candidates are sorted by (category, key, level,
 * set name) and the first of each (category, key) wins.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/envelope.h"
#include "store/store.h"

#define VAR_COLS                                                               \
    "id, workspace_id, varset_id, key, value, category, hcl, sensitive,"       \
    " description, version_id, created_at"

#define VS_READ                                                                \
    "SELECT s.id, s.org, s.name, s.description, s.global, s.priority,"         \
    " s.created_at, s.updated_at,"                                             \
    " (SELECT count(*) FROM variables v WHERE v.varset_id = s.id)"             \
    " AS var_count,"                                                           \
    " (SELECT count(*) FROM varset_workspaces w WHERE w.varset_id = s.id)"     \
    " AS workspace_count,"                                                     \
    " (SELECT count(*) FROM varset_projects p WHERE p.varset_id = s.id)"       \
    " AS project_count FROM varsets s"

/* ---- variables --------------------------------------------------------- */

static void fill_var(const struct db_rows *r, int i, struct st_var *v)
{
    v->id = db_get(r, i, "id");
    v->workspace_id = db_get(r, i, "workspace_id");
    v->varset_id = db_get(r, i, "varset_id");
    v->key = db_get(r, i, "key");
    v->category = db_get(r, i, "category");
    v->hcl = db_get_bool(r, i, "hcl");
    v->sensitive = db_get_bool(r, i, "sensitive");
    v->value = v->sensitive ? NULL : db_get(r, i, "value");
    v->description = db_get(r, i, "description");
    v->version_id = db_get(r, i, "version_id");
    v->created_at = db_get(r, i, "created_at");
}

static char *new_version_id(struct arena *a)
{
    unsigned char rnd[20];
    util_random(rnd, sizeof(rnd));
    char *s = arena_alloc(a, sizeof(rnd) * 2 + 1);
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(s + 2 * i, 3, "%02x", rnd[i]);
    return s;
}

static tr_err seal(const struct keyring *keys, struct arena *a,
                   const char *plain, const char **out, struct tr_errbuf *eb)
{
    if (keys == NULL)
        return tr_fail(eb, TR_ERR_CRYPTO, "no key to encrypt with");
    char *text = NULL;
    tr_err e = envelope_seal(keys, a, plain, strlen(plain), &text, eb);
    if (e == TR_OK)
        *out = text;
    return e;
}

static tr_err taken_key(struct tr_errbuf *eb, const char *key)
{
    return tr_fail(eb, TR_ERR_INVALID, "Key %s has already been taken", key);
}

/* Inserts in on c, inside the caller's transaction. */
static tr_err insert_var(struct db_conn *c, const struct keyring *keys,
                         struct arena *a, const struct st_var *in,
                         struct st_var *out, struct tr_errbuf *eb)
{
    struct st_var v = {
        .id = util_new_id(a, "var"),
        .workspace_id = arena_strdup(a, in->workspace_id),
        .varset_id = arena_strdup(a, in->varset_id),
        .key = arena_strdup(a, in->key),
        .value = arena_strdup(a, in->value ? in->value : ""),
        .category = arena_strdup(a, in->category),
        .hcl = in->hcl,
        .sensitive = in->sensitive,
        .description = arena_strdup(a, in->description ? in->description : ""),
        .version_id = new_version_id(a),
        .created_at = util_now_iso(a),
    };
    const char *stored = v.value;
    tr_err e = TR_OK;
    if (v.sensitive)
        e = seal(keys, a, v.value, &stored, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO variables (" VAR_COLS ") VALUES"
                 " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                 v.id, v.workspace_id, v.varset_id, v.key, stored, v.category,
                 v.hcl ? "1" : "0", v.sensitive ? "1" : "0", v.description,
                 v.version_id, v.created_at);
    if (e == TR_ERR_CONFLICT)
        return taken_key(eb, v.key);
    if (v.sensitive)
        v.value = NULL;
    if (e == TR_OK && out != NULL)
        *out = v;
    return e;
}

tr_err store_var_create(struct db *db, const struct keyring *keys,
                        struct arena *a, const struct st_var *in,
                        struct st_var *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK && in->workspace_id != NULL)
        e = db_q(c, a, &r, eb, "SELECT 1 FROM workspaces WHERE id = $1",
                 in->workspace_id);
    else if (e == TR_OK)
        e = db_q(c, a, &r, eb, "SELECT 1 FROM varsets WHERE id = $1",
                 in->varset_id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "%s not found",
                    in->workspace_id ? in->workspace_id : in->varset_id);
    if (e == TR_OK)
        e = insert_var(c, keys, a, in, out, eb);
    if (e == TR_OK && in->varset_id != NULL)
        e = db_x(c, a, NULL, eb,
                 "UPDATE varsets SET updated_at = $2 WHERE id = $1",
                 in->varset_id, util_now_iso(a));
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_var_get(struct db *db, struct arena *a, const char *id,
                     struct st_var *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " VAR_COLS " FROM variables WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "variable %s not found", id);
    if (e == TR_OK)
        fill_var(r, 0, out);
    return e;
}

tr_err store_var_list(struct db *db, struct arena *a, const char *ws_id,
                      const char *varset_id, struct st_var **out, int *n,
                      struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    /* one owner at a time, so that the owner's index is used */
    tr_err e = db_q(c, a, &r, eb,
                    ws_id != NULL ? "SELECT " VAR_COLS " FROM variables"
                                    " WHERE workspace_id = $1"
                                    " ORDER BY created_at, id"
                                  : "SELECT " VAR_COLS " FROM variables"
                                    " WHERE varset_id = $1"
                                    " ORDER BY created_at, id",
                    ws_id != NULL ? ws_id : varset_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_var) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill_var(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

/* The stored value after update u of variable cur (raw: its stored
 * text), sealed when the variable is or turns sensitive. */
static tr_err updated_value(const struct keyring *keys, struct arena *a,
                            const struct st_var *cur, const char *raw,
                            const struct st_var_update *u, bool sensitive,
                            const char **out, struct tr_errbuf *eb)
{
    const char *plain = u->value != NULL ? u->value : raw;
    if (sensitive && (u->value != NULL || !cur->sensitive))
        return seal(keys, a, plain, out, eb);
    *out = plain;
    return TR_OK;
}

tr_err store_var_update(struct db *db, const struct keyring *keys,
                        struct arena *a, const char *id,
                        const struct st_var_update *u, struct st_var *out,
                        struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    struct st_var v;
    const char *stored = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb,
                 arena_printf(a,
                              "SELECT " VAR_COLS " FROM variables"
                              " WHERE id = $1%s",
                              db_for_update(c)),
                 id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "variable %s not found", id);
    if (e != TR_OK)
        goto out;
    fill_var(r, 0, &v);
    if (v.sensitive && u->sensitive == 0) {
        e = tr_fail(eb, TR_ERR_INVALID,
                    "a sensitive variable cannot be made non-sensitive; "
                    "delete it and create it again");
        goto out;
    }
    bool sensitive = v.sensitive || u->sensitive == 1;
    e = updated_value(keys, a, &v, db_get(r, 0, "value"), u, sensitive, &stored,
                      eb);
    if (e != TR_OK)
        goto out;
    v.key = u->key ? arena_strdup(a, u->key) : v.key;
    v.category = u->category ? arena_strdup(a, u->category) : v.category;
    v.description =
        u->description ? arena_strdup(a, u->description) : v.description;
    v.hcl = u->hcl >= 0 ? u->hcl == 1 : v.hcl;
    v.sensitive = sensitive;
    v.value = sensitive ? NULL : arena_strdup(a, stored);
    v.version_id = new_version_id(a);
    e = db_x(c, a, NULL, eb,
             "UPDATE variables SET key = $2, value = $3, category = $4,"
             " description = $5, hcl = $6, sensitive = $7, version_id = $8"
             " WHERE id = $1",
             id, v.key, stored, v.category, v.description, v.hcl ? "1" : "0",
             v.sensitive ? "1" : "0", v.version_id);
    if (e == TR_ERR_CONFLICT)
        e = taken_key(eb, v.key);
    if (e == TR_OK && v.varset_id != NULL)
        e = db_x(c, a, NULL, eb,
                 "UPDATE varsets SET updated_at = $2 WHERE id = $1",
                 v.varset_id, util_now_iso(a));
    if (e == TR_OK)
        e = db_commit(c, eb);
out:
    db_release(c);
    if (e == TR_OK && out != NULL)
        *out = v;
    return e;
}

tr_err store_var_delete(struct db *db, struct arena *a, const char *id,
                        struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb, "DELETE FROM variables WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "variable %s not found", id);
    return e;
}

/* ---- variable sets ----------------------------------------------------- */

static void fill_set(const struct db_rows *r, int i, struct st_varset *s)
{
    s->id = db_get(r, i, "id");
    s->org = db_get(r, i, "org");
    s->name = db_get(r, i, "name");
    s->description = db_get(r, i, "description");
    s->global = db_get_bool(r, i, "global");
    s->priority = db_get_bool(r, i, "priority");
    s->created_at = db_get(r, i, "created_at");
    s->updated_at = db_get(r, i, "updated_at");
    s->var_count = db_get_i64(r, i, "var_count");
    s->workspace_count = db_get_i64(r, i, "workspace_count");
    s->project_count = db_get_i64(r, i, "project_count");
}

static tr_err get_set(struct db_conn *c, struct arena *a, const char *id,
                      struct st_varset *out, struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb, VS_READ " WHERE s.id = $1", id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "variable set %s not found", id);
    if (e == TR_OK && out != NULL)
        fill_set(r, 0, out);
    return e;
}

tr_err store_varset_get(struct db *db, struct arena *a, const char *id,
                        struct st_varset *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = get_set(c, a, id, out, eb);
    db_release(c);
    return e;
}

/* TR_ERR_NOT_FOUND unless every id is a workspace (projects: a project)
 * of org. */
static tr_err check_members(struct db_conn *c, struct arena *a, const char *org,
                            bool projects, const char *const *ids, int n,
                            struct tr_errbuf *eb)
{
    const char *sql = projects
                          ? "SELECT 1 FROM projects WHERE id = $1 AND org = $2"
                          : "SELECT 1 FROM workspaces WHERE id = $1"
                            " AND org = $2";
    for (int i = 0; i < n; i++) {
        struct db_rows *r = NULL;
        tr_err e = db_q(c, a, &r, eb, sql, ids[i], org);
        if (e != TR_OK)
            return e;
        if (r->nrows == 0)
            return tr_fail(eb, TR_ERR_NOT_FOUND, "%s %s not found",
                           projects ? "project" : "workspace", ids[i]);
    }
    return TR_OK;
}

static tr_err link_rows(struct db_conn *c, struct arena *a, const char *id,
                        bool projects, bool add, const char *const *ids, int n,
                        struct tr_errbuf *eb)
{
    const char *sql =
        projects
            ? (add ? "INSERT INTO varset_projects (varset_id, project_id)"
                     " VALUES ($1, $2) ON CONFLICT DO NOTHING"
                   : "DELETE FROM varset_projects WHERE varset_id = $1"
                     " AND project_id = $2")
            : (add ? "INSERT INTO varset_workspaces (varset_id, workspace_id)"
                     " VALUES ($1, $2) ON CONFLICT DO NOTHING"
                   : "DELETE FROM varset_workspaces WHERE varset_id = $1"
                     " AND workspace_id = $2");
    tr_err e = TR_OK;
    for (int i = 0; i < n && e == TR_OK; i++)
        e = db_x(c, a, NULL, eb, sql, id, ids[i]);
    return e;
}

static tr_err unlink_all(struct db_conn *c, struct arena *a, const char *id,
                         bool projects, struct tr_errbuf *eb)
{
    return db_x(c, a, NULL, eb,
                projects ? "DELETE FROM varset_projects WHERE varset_id = $1"
                         : "DELETE FROM varset_workspaces WHERE varset_id = $1",
                id);
}

/* Replaces the links named in `in` and adds its variables, on c inside
 * the caller's transaction, for set id of org that is global or not. */
static tr_err apply_in(struct db_conn *c, const struct keyring *keys,
                       struct arena *a, const char *id, const char *org,
                       bool global, const struct st_varset_in *in,
                       struct tr_errbuf *eb)
{
    if (global && ((in->set_workspaces && in->nworkspaces > 0) ||
                   (in->set_projects && in->nprojects > 0)))
        return tr_fail(eb, TR_ERR_INVALID,
                       "a global variable set applies to every workspace; "
                       "it cannot be applied to workspaces or projects");
    tr_err e = TR_OK;
    if (global || in->set_workspaces)
        e = unlink_all(c, a, id, false, eb);
    if (e == TR_OK && (global || in->set_projects))
        e = unlink_all(c, a, id, true, eb);
    if (e == TR_OK && in->set_workspaces)
        e = check_members(c, a, org, false, in->workspace_ids, in->nworkspaces,
                          eb);
    if (e == TR_OK && in->set_workspaces)
        e = link_rows(c, a, id, false, true, in->workspace_ids, in->nworkspaces,
                      eb);
    if (e == TR_OK && in->set_projects)
        e = check_members(c, a, org, true, in->project_ids, in->nprojects, eb);
    if (e == TR_OK && in->set_projects)
        e = link_rows(c, a, id, true, true, in->project_ids, in->nprojects, eb);
    for (int i = 0; i < in->nvars && e == TR_OK; i++) {
        struct st_var v = in->vars[i];
        v.workspace_id = NULL;
        v.varset_id = id;
        e = insert_var(c, keys, a, &v, NULL, eb);
    }
    return e;
}

static tr_err taken_name(struct tr_errbuf *eb, const char *name)
{
    return tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken", name);
}

tr_err store_varset_create(struct db *db, const struct keyring *keys,
                           struct arena *a, const char *org,
                           const struct st_varset_in *in, struct st_varset *out,
                           struct tr_errbuf *eb)
{
    const char *id = util_new_id(a, "varset");
    const char *now = util_now_iso(a);
    bool global = in->global == 1;
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb, "SELECT 1 FROM organizations WHERE name = $1",
                 org);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "organization %s not found", org);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO varsets (id, org, name, description, global,"
                 " priority, created_at, updated_at)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                 id, org, in->name, in->description ? in->description : "",
                 global ? "1" : "0", in->priority == 1 ? "1" : "0", now);
    if (e == TR_ERR_CONFLICT)
        e = taken_name(eb, in->name);
    if (e == TR_OK)
        e = apply_in(c, keys, a, id, org, global, in, eb);
    if (e == TR_OK)
        e = get_set(c, a, id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

static const char *flag(int v)
{
    return v < 0 ? NULL : v ? "1" : "0";
}

/* Opens a transaction holding variable set id's row (org, global) in *r;
 * TR_ERR_NOT_FOUND if there is none.  The caller commits or releases. */
static tr_err begin_on_varset(struct db_conn *c, struct arena *a,
                              const char *id, struct db_rows **r,
                              struct tr_errbuf *eb)
{
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, r, eb,
                 arena_printf(a,
                              "SELECT org, global FROM varsets"
                              " WHERE id = $1%s",
                              db_for_update(c)),
                 id);
    if (e == TR_OK && (*r)->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "variable set %s not found", id);
    return e;
}

tr_err store_varset_update(struct db *db, const struct keyring *keys,
                           struct arena *a, const char *id,
                           const struct st_varset_in *in, struct st_varset *out,
                           struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = begin_on_varset(c, a, id, &r, eb);
    if (e != TR_OK)
        goto out;
    const char *org = db_get(r, 0, "org");
    bool global =
        in->global >= 0 ? in->global == 1 : db_get_bool(r, 0, "global");
    e = db_x(c, a, NULL, eb,
             "UPDATE varsets SET name = COALESCE($2, name),"
             " description = COALESCE($3, description),"
             " global = COALESCE($4, global),"
             " priority = COALESCE($5, priority), updated_at = $6"
             " WHERE id = $1",
             id, in->name, in->description, flag(in->global),
             flag(in->priority), util_now_iso(a));
    if (e == TR_ERR_CONFLICT)
        e = taken_name(eb, in->name);
    if (e == TR_OK)
        e = apply_in(c, keys, a, id, org, global, in, eb);
    if (e == TR_OK)
        e = get_set(c, a, id, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
out:
    db_release(c);
    return e;
}

tr_err store_varset_delete(struct db *db, struct arena *a, const char *id,
                           struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_x(c, a, &n, eb, "DELETE FROM varsets WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "variable set %s not found", id);
    return e;
}

/* "%q%" with LIKE's wildcards in q escaped by '\'. */
static char *like_pattern(struct arena *a, const char *q)
{
    size_t n = strlen(q);
    char *out = arena_alloc(a, n * 2 + 3);
    char *p = out;
    *p++ = '%';
    for (size_t i = 0; i < n; i++) {
        if (q[i] == '%' || q[i] == '_' || q[i] == '\\')
            *p++ = '\\';
        *p++ = q[i];
    }
    *p++ = '%';
    *p = '\0';
    return out;
}

tr_err store_varset_list(struct db *db, struct arena *a,
                         enum st_varset_scope scope, const char *key,
                         const char *query, int offset, int limit,
                         struct st_varset **out, int *n, int64_t *total,
                         struct tr_errbuf *eb)
{
    static const char *const scopes[] = {
        [VARSET_ORG] = "s.org = $1",
        [VARSET_WORKSPACE] =
            "s.org = (SELECT org FROM workspaces WHERE id = $1) AND"
            " (s.global = 1 OR s.id IN (SELECT varset_id FROM"
            " varset_workspaces WHERE workspace_id = $1) OR s.id IN (SELECT"
            " varset_id FROM varset_projects WHERE project_id = (SELECT"
            " project_id FROM workspaces WHERE id = $1)))",
        [VARSET_PROJECT] =
            "s.org = (SELECT org FROM projects WHERE id = $1) AND"
            " (s.global = 1 OR s.id IN (SELECT varset_id FROM"
            " varset_projects WHERE project_id = $1))",
    };
    const char *q = query && *query ? like_pattern(a, query) : NULL;
    const char *where =
        arena_printf(a,
                     " WHERE %s AND (CAST($2 AS TEXT) IS NULL"
                     " OR lower(s.name) LIKE lower($2) ESCAPE '\\')",
                     scopes[scope]);
    const char *params[] = {key, q};
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_page(
        c, a, arena_printf(a, VS_READ "%s ORDER BY s.name, s.id", where),
        arena_printf(a, "SELECT count(*) AS n FROM varsets s%s", where), 2,
        params, offset, limit, &r, total, eb);
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = arena_alloc(a, sizeof(struct st_varset) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill_set(r, i, &(*out)[i]);
    *n = r->nrows;
    return TR_OK;
}

static const char **column(struct arena *a, const struct db_rows *r,
                           const char *name)
{
    const char **v = arena_alloc(a, sizeof(char *) * (size_t)(r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        v[i] = db_get(r, i, name);
    return v;
}

tr_err store_varset_links(struct db *db, struct arena *a, const char *id,
                          const char ***ws_ids, int *nws, const char ***prj_ids,
                          int *nprj, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *w = NULL, *p = NULL;
    tr_err e = db_q(c, a, &w, eb,
                    "SELECT workspace_id FROM varset_workspaces"
                    " WHERE varset_id = $1 ORDER BY workspace_id",
                    id);
    if (e == TR_OK)
        e = db_q(c, a, &p, eb,
                 "SELECT project_id FROM varset_projects"
                 " WHERE varset_id = $1 ORDER BY project_id",
                 id);
    db_release(c);
    if (e != TR_OK)
        return e;
    *ws_ids = column(a, w, "workspace_id");
    *nws = w->nrows;
    *prj_ids = column(a, p, "project_id");
    *nprj = p->nrows;
    return TR_OK;
}

tr_err store_varset_link(struct db *db, struct arena *a, const char *id,
                         bool projects, bool add, const char *const *ids, int n,
                         struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = begin_on_varset(c, a, id, &r, eb);
    if (e == TR_OK && add && db_get_bool(r, 0, "global"))
        e = tr_fail(eb, TR_ERR_INVALID,
                    "a global variable set applies to every workspace; it "
                    "cannot be applied to workspaces or projects");
    if (e == TR_OK)
        e = check_members(c, a, db_get(r, 0, "org"), projects, ids, n, eb);
    if (e == TR_OK)
        e = link_rows(c, a, id, projects, add, ids, n, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "UPDATE varsets SET updated_at = $2 WHERE id = $1", id,
                 util_now_iso(a));
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

/* ---- resolution for runs ----------------------------------------------- */

/* Precedence levels, lowest wins (store.h lists them). */
enum {
    LV_PRIO_GLOBAL = 1,
    LV_PRIO_PROJECT,
    LV_PRIO_WORKSPACE,
    LV_WORKSPACE,
    LV_SET_WORKSPACE,
    LV_SET_PROJECT,
    LV_SET_GLOBAL,
};

struct cand {
    struct st_var v;
    const char *raw;      /* stored value */
    const char *set_name; /* "" for workspace variables */
    int level;
};

static int level_of(const struct db_rows *r, int i)
{
    if (db_get(r, i, "varset_id") == NULL)
        return LV_WORKSPACE;
    bool prio = db_get_bool(r, i, "set_priority");
    if (db_get_bool(r, i, "set_global"))
        return prio ? LV_PRIO_GLOBAL : LV_SET_GLOBAL;
    if (db_get_i64(r, i, "in_ws") > 0)
        return prio ? LV_PRIO_WORKSPACE : LV_SET_WORKSPACE;
    if (db_get_i64(r, i, "in_prj") > 0)
        return prio ? LV_PRIO_PROJECT : LV_SET_PROJECT;
    return 0; /* not applicable to this workspace */
}

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *x = pa, *y = pb;
    int d = strcmp(x->v.category, y->v.category);
    if (d == 0)
        d = strcmp(x->v.key, y->v.key);
    if (d == 0)
        d = x->level - y->level;
    if (d == 0)
        d = strcmp(x->set_name, y->set_name);
    return d;
}

tr_err store_vars_for_run(struct db *db, const struct keyring *keys,
                          struct arena *a, const char *ws_id,
                          struct st_var **out, int *n, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(
        c, a, &r, eb,
        "SELECT " VAR_COLS ", NULL AS set_name, 0 AS set_global,"
        " 0 AS set_priority, 0 AS in_ws, 0 AS in_prj"
        " FROM variables WHERE workspace_id = $1"
        " UNION ALL"
        " SELECT v.id, v.workspace_id, v.varset_id, v.key, v.value,"
        " v.category, v.hcl, v.sensitive, v.description, v.version_id,"
        " v.created_at, s.name, s.global, s.priority,"
        " (SELECT count(*) FROM varset_workspaces l WHERE l.varset_id = s.id"
        " AND l.workspace_id = w.id),"
        " (SELECT count(*) FROM varset_projects l WHERE l.varset_id = s.id"
        " AND l.project_id = w.project_id)"
        " FROM workspaces w JOIN varsets s ON s.org = w.org"
        " JOIN variables v ON v.varset_id = s.id WHERE w.id = $1",
        ws_id);
    db_release(c);
    if (e != TR_OK)
        return e;
    struct cand *cs = arena_alloc(a, sizeof(*cs) * (size_t)(r->nrows + 1));
    int nc = 0;
    for (int i = 0; i < r->nrows; i++) {
        int level = level_of(r, i);
        if (level == 0)
            continue;
        struct cand *k = &cs[nc++];
        fill_var(r, i, &k->v);
        k->raw = db_get(r, i, "value");
        k->set_name = db_get(r, i, "set_name");
        if (k->set_name == NULL)
            k->set_name = "";
        k->level = level;
    }
    qsort(cs, (size_t)nc, sizeof(*cs), cand_cmp);
    *out = arena_alloc(a, sizeof(struct st_var) * (size_t)(nc + 1));
    *n = 0;
    for (int i = 0; i < nc; i++) {
        if (i > 0 && strcmp(cs[i].v.category, cs[i - 1].v.category) == 0 &&
            strcmp(cs[i].v.key, cs[i - 1].v.key) == 0)
            continue; /* overridden by a higher level */
        struct st_var *v = &(*out)[(*n)++];
        *v = cs[i].v;
        v->value = cs[i].raw;
        if (!v->sensitive)
            continue;
        char *plain = NULL;
        struct tr_errbuf why = {{0}};
        e = keys == NULL
                ? tr_fail(&why, TR_ERR_CRYPTO, "no key to decrypt with")
                : envelope_open(keys, a, cs[i].raw, &plain, NULL, &why);
        if (e != TR_OK)
            return tr_fail(eb, e, "cannot decrypt sensitive variable %s: %s",
                           v->key, why.msg);
        v->value = plain;
    }
    return TR_OK;
}
