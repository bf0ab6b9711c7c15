/*
 * store_workspaces.c - workspaces: create, read, list, update, delete and
 * the lock.
 *
 * A workspace row holds the attributes Terrace acts on as columns and the
 * rest of TFE's attributes as a JSON object in `settings`.  Reads also fill
 * the derived fields in the same statement: the tag names and variable ids
 * (WS_CHILDREN_*), the runs and configuration version shown (WS_DERIVED)
 * and the resource count of the current state version (its `resources`
 * JSON array, written by the state-version code).  A page of them on
 * PostgreSQL gets those fields from one aggregate per child table over
 * the page instead (WS_PAGE_PG); still one statement.
 *
 * Invariants:
 *   - (org, name) is unique; a workspace's project is in its organization;
 *   - lock transitions are single conditional UPDATEs (see store.h), so two
 *     racing lockers cannot both succeed, on SQLite or PostgreSQL;
 *   - a safe delete re-checks lock and resources inside its transaction.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/jw.h"
#include "store/read_cache.h"
#include "store/store_ws_int.h"

/* The run and configuration version ids a workspace document shows, as
 * scalar subqueries on the indexes runs_ws, runs_waiting and
 * configuration_versions' (workspace_id, created_at). */
#define WS_DERIVED                                                             \
    "w.current_run_id AS d_cur_run,"                                           \
    " (SELECT id FROM runs WHERE workspace_id = w.id"                          \
    " ORDER BY queue_seq DESC LIMIT 1) AS d_latest_run,"                       \
    " " STORE_WS_CURRENT_RUN_SQL " AS d_shown_run,"                            \
    " CASE WHEN w.current_run_id IS NULL AND w.locked = 1"                     \
    " AND w.lock_kind <> 'run' THEN (SELECT id FROM runs"                      \
    " WHERE workspace_id = w.id AND status = 'pending'"                        \
    " ORDER BY queue_seq LIMIT 1) END AS d_first_pending,"                     \
    " (SELECT id FROM configuration_versions WHERE workspace_id = w.id"        \
    " AND provisional = 0 AND speculative = 0"                                 \
    " AND status IN ('pending', 'uploaded')"                                   \
    " ORDER BY created_at DESC, id DESC LIMIT 1) AS d_cur_cv,"                 \
    " (SELECT count(*) FROM runs WHERE workspace_id = w.id) AS d_runs_count"
#define WS_OWN_COLS                                                            \
    "w.id, w.org, w.name, w.project_id, w.description, w.execution_mode,"      \
    " w.terraform_version, w.auto_apply, w.working_directory, w.locked,"       \
    " w.lock_kind, w.lock_holder, w.lock_reason, w.current_sv,"                \
    " w.settings, w.ssh_key_id, w.created_at, w.updated_at,"                   \
    " w.agent_pool_id, sv.resources AS sv_res, "
#define WS_COLS WS_OWN_COLS WS_DERIVED
/* Its tag names (byte order) and variable ids (creation order), each a
 * JSON array of strings or NULL when there are none: correlated
 * subqueries on workspace_tags' and variables' workspace_id, so reading a
 * workspace, or a page of them, is one statement.  PostgreSQL orders the
 * aggregate; SQLite (no ORDER BY inside an aggregate before 3.44)
 * aggregates an ordered subquery, whose order its co-routine keeps. */
#define WS_TAGS_FROM                                                           \
    " FROM workspace_tags wt JOIN tags t ON t.id = wt.tag_id"                  \
    " WHERE wt.workspace_id = w.id"
#define WS_VARS_FROM " FROM variables v WHERE v.workspace_id = w.id"
#define WS_CHILDREN_PG                                                         \
    ", (SELECT json_agg(t.name ORDER BY t.name COLLATE \"C\")" WS_TAGS_FROM    \
    ") AS d_tags, (SELECT json_agg(v.id ORDER BY v.created_at, "               \
    "v.id)" WS_VARS_FROM ") AS d_vars"
#define WS_CHILDREN_SQLITE                                                     \
    ", (SELECT json_group_array(name) FROM (SELECT t.name" WS_TAGS_FROM        \
    " ORDER BY t.name)) AS d_tags, (SELECT json_group_array(id) FROM"          \
    " (SELECT v.id" WS_VARS_FROM " ORDER BY v.created_at, v.id)) AS d_vars"
#define WS_FROM " FROM " STORE_WS_JOIN

/* Row lock on the workspace for the rest of the transaction ("OF w": the
 * state-version side of the join may be NULL). */
static const char *for_update(const struct db_conn *c)
{
    return db_conn_kind(c) == DB_PG ? " FOR UPDATE OF w" : "";
}

static const char *blanks(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return s;
}

/* The entries of text, the current state version's resources (a JSON
 * array), counted by a scan (jw_skip_value()) instead of a parse: every
 * workspace of a page has one; 0 when it is not an array. */
static int64_t count_resources(const char *text)
{
    if (text == NULL)
        return 0;
    const char *s = blanks(text);
    if (*s++ != '[')
        return 0;
    s = blanks(s);
    if (*s == ']')
        return 0;
    for (int64_t n = 1;; n++) {
        s = jw_skip_value(s);
        if (s == NULL)
            return 0;
        s = blanks(s);
        if (*s == ']')
            return *blanks(s + 1) == '\0' ? n : 0;
        if (*s++ != ',')
            return 0;
    }
}

/* The strings of text, a JSON array (NULL: none), copied into a; *n
 * counts them.  Anything else reads as none. */
static const char **strings(struct arena *a, const char *text, int *n)
{
    json_t *j = text != NULL ? json_loads(text, 0, NULL) : NULL;
    size_t len = json_is_array(j) ? json_array_size(j) : 0;
    const char **out = arena_alloc(a, sizeof(char *) * (len + 1));
    *n = 0;
    for (size_t k = 0; k < len; k++) {
        const char *v = json_string_value(json_array_get(j, k));
        if (v != NULL)
            out[(*n)++] = arena_strdup(a, v);
    }
    json_decref(j);
    return out;
}

void store_ws_fill(struct arena *a, const struct db_rows *r, int i,
                   struct st_workspace *w)
{
    w->id = db_get(r, i, "id");
    w->org = db_get(r, i, "org");
    w->name = db_get(r, i, "name");
    w->project_id = db_get(r, i, "project_id");
    w->description = db_get(r, i, "description");
    w->execution_mode = db_get(r, i, "execution_mode");
    w->terraform_version = db_get(r, i, "terraform_version");
    w->auto_apply = db_get_bool(r, i, "auto_apply");
    w->working_directory = db_get(r, i, "working_directory");
    w->locked = db_get_bool(r, i, "locked");
    w->lock_kind = db_get(r, i, "lock_kind");
    w->lock_holder = db_get(r, i, "lock_holder");
    w->lock_reason = db_get(r, i, "lock_reason");
    w->current_sv = db_get(r, i, "current_sv");
    w->settings = db_get(r, i, "settings");
    w->ssh_key_id = db_get(r, i, "ssh_key_id");
    w->agent_pool_id = db_get(r, i, "agent_pool_id");
    w->created_at = db_get(r, i, "created_at");
    w->updated_at = db_get(r, i, "updated_at");
    w->resource_count = count_resources(db_get(r, i, "sv_res"));
    w->tag_names = strings(a, db_get(r, i, "d_tags"), &w->ntags);
    w->current_run = db_get(r, i, "d_cur_run");
    w->latest_run = db_get(r, i, "d_latest_run");
    w->shown_run = db_get(r, i, "d_shown_run");
    w->first_pending = db_get(r, i, "d_first_pending");
    w->current_cv = db_get(r, i, "d_cur_cv");
    w->runs_count = db_get_i64(r, i, "d_runs_count");
    w->var_ids = strings(a, db_get(r, i, "d_vars"), &w->nvars);
}

/* The select list on c's dialect (store_ws_int.h). */
const char *store_ws_cols(const struct db_conn *c)
{
    return db_conn_kind(c) == DB_PG ? WS_COLS WS_CHILDREN_PG
                                    : WS_COLS WS_CHILDREN_SQLITE;
}

/* One workspace by a WHERE clause over w, on connection c. */
static tr_err load(struct db_conn *c, struct arena *a, const char *where,
                   const char *a1, const char *a2, struct st_workspace *out,
                   struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    const char *sql = arena_printf(a, "SELECT %s" WS_FROM " WHERE %s",
                                   store_ws_cols(c), where);
    tr_err e = a2 != NULL ? db_q(c, a, &r, eb, sql, a1, a2)
                          : db_q(c, a, &r, eb, sql, a1);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace not found");
    if (e == TR_OK)
        store_ws_fill(a, r, 0, out);
    return e;
}

tr_err store_ws_get(struct db *db, struct arena *a, const char *id,
                    struct st_workspace *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = load(c, a, "w.id = $1", id, NULL, out, eb);
    db_release(c);
    return e;
}

tr_err store_ws_get_by_name(struct db *db, struct arena *a, const char *org,
                            const char *name, struct st_workspace *out,
                            struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = load(c, a, "w.org = $1 AND w.name = $2", org, name, out, eb);
    db_release(c);
    return e;
}

/* The project's id if it is a project of org (default project if
 * project_id is NULL). */
static tr_err check_project(struct db_conn *c, struct arena *a, const char *org,
                            const char *project_id, const char **out,
                            struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e;
    if (project_id == NULL)
        e = db_q(c, a, &r, eb,
                 "SELECT id FROM projects WHERE org = $1 AND is_default = 1",
                 org);
    else
        e = db_q(c, a, &r, eb,
                 "SELECT id FROM projects WHERE org = $1 AND id = $2", org,
                 project_id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "project %s not found",
                    project_id ? project_id : "(default)");
    if (e == TR_OK)
        *out = db_get(r, 0, "id");
    return e;
}

static tr_err taken(struct tr_errbuf *eb, const char *name)
{
    return tr_fail(eb, TR_ERR_INVALID, "name %s has already been taken", name);
}

tr_err store_ws_create(struct db *db, struct arena *a,
                       const struct st_workspace *in, struct st_workspace *out,
                       struct tr_errbuf *eb)
{
    const char *id = util_new_id(a, "ws");
    const char *now = util_now_iso(a);
    const char *prj = NULL;
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb, "SELECT 1 FROM organizations WHERE name = $1",
                 in->org);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "organization %s not found", in->org);
    if (e == TR_OK)
        e = check_project(c, a, in->org, in->project_id, &prj, eb);
    if (e == TR_OK)
        e = db_x(c, a, NULL, eb,
                 "INSERT INTO workspaces (id, org, name, project_id,"
                 " description, execution_mode, terraform_version,"
                 " auto_apply, working_directory, settings, created_at,"
                 " updated_at, agent_pool_id, seq) SELECT $1,$2,$3,$4,$5,$6,"
                 "$7,$8,$9,$10,$11,$11,$12, COALESCE(MAX(seq), 0) + 1"
                 " FROM workspaces",
                 id, in->org, in->name, prj,
                 in->description ? in->description : "",
                 in->execution_mode ? in->execution_mode : "remote",
                 in->terraform_version ? in->terraform_version : "latest",
                 in->auto_apply ? "1" : "0",
                 in->working_directory ? in->working_directory : "",
                 in->settings ? in->settings : "{}", now, in->agent_pool_id);
    if (e == TR_ERR_CONFLICT)
        e = taken(eb, in->name);
    if (e == TR_OK && in->ntags > 0)
        e = store_ws_tags_set(c, a, in->org, id, in->tag_names, in->ntags,
                              false, eb);
    if (e == TR_OK && in->nbindings > 0)
        e = store_tb_set_in(c, a, ST_TB_WORKSPACE, id, in->bindings,
                            in->nbindings, true, eb);
    if (e == TR_OK && out != NULL)
        e = load(c, a, "w.id = $1", id, NULL, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

/* The SET list of an update, or "" if u changes no column. */
static void update_sets(struct sqlb *q, const struct st_ws_update *u,
                        const char *settings)
{
    const char *cols[] = {
        "name",           "project_id",        "description",
        "execution_mode", "terraform_version", "working_directory",
        "auto_apply",     "settings",          "agent_pool_id"};
    const char *vals[] = {u->name,
                          u->project_id,
                          u->description,
                          u->execution_mode,
                          u->terraform_version,
                          u->working_directory,
                          u->auto_apply < 0 ? NULL
                                            : (u->auto_apply ? "1" : "0"),
                          settings,
                          u->agent_pool_id};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        if (vals[i] == NULL)
            continue;
        sqlb_add(q, arena_printf(q->a, ", %s = ", cols[i]));
        /* "" clears the agent pool */
        if (strcmp(cols[i], "agent_pool_id") == 0 && vals[i][0] == '\0')
            sqlb_add(q, "NULL");
        else
            sqlb_add(q, sqlb_param(q, vals[i]));
    }
}

bool store_settings_flag(const char *settings, const char *key)
{
    json_t *s = json_loads(settings ? settings : "{}", 0, NULL);
    bool on = json_is_true(json_object_get(s, key));
    json_decref(s);
    return on;
}

/* settings with the keys of patch replaced; NULL if patch is NULL. */
static tr_err merge_settings(struct arena *a, const char *settings,
                             const char *patch, const char **out,
                             struct tr_errbuf *eb)
{
    *out = NULL;
    if (patch == NULL)
        return TR_OK;
    json_t *s = json_loads(settings ? settings : "{}", 0, NULL);
    json_t *p = json_loads(patch, 0, NULL);
    tr_err e = TR_OK;
    if (!json_is_object(p)) {
        e = tr_fail(eb, TR_ERR_INTERNAL, "settings patch is not an object");
    } else {
        if (!json_is_object(s)) {
            json_decref(s);
            s = json_object();
        }
        json_object_update(s, p);
        char *txt = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
        *out = arena_strdup(a, txt);
        free(txt);
    }
    json_decref(s);
    json_decref(p);
    return e;
}

tr_err store_ws_update(struct db *db, struct arena *a, const char *id,
                       const struct st_ws_update *u, struct st_workspace *out,
                       struct tr_errbuf *eb)
{
    struct st_workspace cur;
    const char *settings = NULL, *prj = NULL;
    struct db_conn *c = db_acquire(db);
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = load(c, a, arena_printf(a, "w.id = $1%s", for_update(c)), id, NULL,
                 &cur, eb);
    if (e == TR_OK && u->project_id != NULL)
        e = check_project(c, a, cur.org, u->project_id, &prj, eb);
    if (e == TR_OK)
        e = merge_settings(a, cur.settings, u->settings_patch, &settings, eb);
    if (e == TR_OK) {
        struct sqlb q;
        sqlb_init(&q, a, "UPDATE workspaces SET updated_at = ");
        sqlb_add(&q, sqlb_param(&q, util_now_iso(a)));
        update_sets(&q, u, settings);
        sqlb_addv(&q, " WHERE id = ?", 1, id);
        e = sqlb_query(c, &q, NULL, NULL, eb);
        if (e == TR_ERR_CONFLICT)
            e = taken(eb, u->name);
    }
    if (e == TR_OK && u->set_tags)
        e = store_ws_tags_set(c, a, cur.org, id, u->tag_names, u->ntags, true,
                              eb);
    if (e == TR_OK && u->set_bindings)
        e = store_tb_set_in(c, a, ST_TB_WORKSPACE, id, u->bindings,
                            u->nbindings, true, eb);
    if (e == TR_OK && out != NULL)
        e = load(c, a, "w.id = $1", id, NULL, out, eb);
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

tr_err store_ws_delete(struct db *db, struct arena *a, const char *id,
                       bool safe, struct tr_errbuf *eb)
{
    struct st_workspace w;
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = load(c, a, arena_printf(a, "w.id = $1%s", for_update(c)), id, NULL,
                 &w, eb);
    if (e == TR_OK && safe && w.locked)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "workspace is currently locked; it must be unlocked "
                    "before it can be safely deleted");
    if (e == TR_OK && safe && w.resource_count > 0)
        e = tr_fail(eb, TR_ERR_CONFLICT,
                    "workspace cannot be safely deleted because it is still "
                    "managing resources");
    if (e == TR_OK)
        e = db_x(c, a, &n, eb, "DELETE FROM workspaces WHERE id = $1", id);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace not found");
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    return e;
}

/* The FROM and WHERE clauses for a list filter: from names the tables
 * (WS_FROM, or " FROM workspaces w" where no column of the current state
 * version is read: no filter uses one). */
static void list_where(struct sqlb *q, const struct st_ws_filter *f,
                       const char *from)
{
    sqlb_add(q, from);
    sqlb_addv(q, " WHERE w.org = ?", 1, f->org);
    if (f->search != NULL && *f->search != '\0')
        sqlb_addv(q, " AND lower(w.name) LIKE lower(?) ESCAPE '\\'", 1,
                  store_like(q->a, "%", f->search, "%", false));
    if (f->wildcard != NULL && *f->wildcard != '\0')
        sqlb_addv(q, " AND lower(w.name) LIKE lower(?) ESCAPE '\\'", 1,
                  store_like(q->a, "", f->wildcard, "", true));
    if (f->project_id != NULL)
        sqlb_addv(q, " AND w.project_id = ?", 1, f->project_id);
    if (f->visible_user != NULL || f->visible_team != NULL)
        sqlb_addv(q,
                  " AND (w.id IN (SELECT x.workspace_id FROM team_workspaces x"
                  " WHERE x.team_id IN (SELECT m.team_id FROM team_members m"
                  " WHERE m.user_id = ?) OR x.team_id = ?) OR w.project_id IN"
                  " (SELECT x.project_id FROM team_projects x WHERE x.team_id"
                  " IN (SELECT m.team_id FROM team_members m WHERE m.user_id"
                  " = ?) OR x.team_id = ?))",
                  4, f->visible_user, f->visible_team, f->visible_user,
                  f->visible_team);
    if (f->consumers_of != NULL)
        sqlb_addv(q,
                  " AND w.id IN (SELECT consumer_id FROM"
                  " remote_state_consumers WHERE workspace_id = ?)",
                  1, f->consumers_of);
    for (int i = 0; i < f->ntags; i++)
        sqlb_addv(q,
                  " AND EXISTS (SELECT 1 FROM workspace_tags wt JOIN tags t"
                  " ON t.id = wt.tag_id WHERE wt.workspace_id = w.id"
                  " AND t.name = ?)",
                  1, f->tags[i]);
    for (int i = 0; i < f->nexclude; i++)
        sqlb_addv(q,
                  " AND NOT EXISTS (SELECT 1 FROM workspace_tags wt JOIN tags"
                  " t ON t.id = wt.tag_id WHERE wt.workspace_id = w.id"
                  " AND t.name = ?)",
                  1, f->exclude_tags[i]);
    /* effective bindings: the workspace's own, or its project's for a key
     * it does not bind itself */
    for (int i = 0; i < f->ntagged; i++) {
        const char *v = f->tagged[i].value;
        const char *val = v != NULL && *v != '\0' ? " AND b.value = ?" : "";
        int nv = *val ? 1 : 0;
        const char *k = f->tagged[i].key;
        sqlb_addv(q,
                  arena_printf(q->a,
                               " AND (EXISTS (SELECT 1 FROM tag_bindings b"
                               " WHERE b.workspace_id = w.id AND b.key = ?%s)",
                               val),
                  1 + nv, k, v);
        sqlb_addv(q,
                  arena_printf(q->a,
                               " OR (EXISTS (SELECT 1 FROM tag_bindings b"
                               " WHERE b.project_id = w.project_id"
                               " AND b.key = ?%s)",
                               val),
                  1 + nv, k, v);
        sqlb_addv(q,
                  " AND NOT EXISTS (SELECT 1 FROM tag_bindings o"
                  " WHERE o.workspace_id = w.id AND o.key = ?)))",
                  1, k);
    }
}

/* Sort keys for "current-run.created-at": workspaces without a current
 * run come last either way (SQLite and PostgreSQL disagree on where NULLs
 * go, so it is spelled out), then by name.  "latest-change-at": the
 * newest finalized state version's creation, else the workspace's. */
#define CURRENT_RUN_CREATED                                                    \
    "(SELECT created_at FROM runs WHERE id = " STORE_WS_CURRENT_RUN_SQL ")"

#define LATEST_CHANGE                                                          \
    "COALESCE((SELECT max(sv.created_at) FROM state_versions sv"               \
    " WHERE sv.workspace_id = w.id AND sv.status = 'finalized'),"              \
    " w.created_at)"

/* The ORDER BY list of a listing; name or id breaks ties. */
static const char *list_order(struct db_conn *c, struct arena *a,
                              const struct st_ws_filter *f)
{
    const char *d = f->desc ? " DESC" : "";
    switch (f->order) {
    case ST_WS_BY_NAME:
        return arena_printf(a, "w.name%s%s", store_bytes_order(c), d);
    case ST_WS_BY_CURRENT_RUN:
        return arena_printf(a,
                            CURRENT_RUN_CREATED " IS NULL, " CURRENT_RUN_CREATED
                                                "%s, w.name%s",
                            d, store_bytes_order(c));
    case ST_WS_BY_LATEST_CHANGE:
        return arena_printf(a, LATEST_CHANGE "%s, w.name%s", d,
                            store_bytes_order(c));
    case ST_WS_BY_CREATION:
    default:
        return arena_printf(a, "w.seq%s, w.id%s", d, d);
    }
}

/* A page on PostgreSQL: the page's workspace ids first (p, in list order,
 * o numbering them), then each derived fact for all of them at once, one
 * aggregate per child table over "workspace_id IN (SELECT id FROM p)"
 * joined back by workspace id.  The correlated subqueries of WS_DERIVED
 * and WS_CHILDREN_PG would run once per row, and on small tables
 * PostgreSQL answers each by a sequential scan (issue 13).  The same
 * values as store_ws_cols(): the shown run is the current one, else the
 * newest non-speculative run past pending; the first pending run only
 * while locked by a user or token with no current run. */
#define WS_PAGE_PG                                                             \
    "w.current_run_id AS d_cur_run, ra.latest AS d_latest_run,"                \
    " COALESCE(w.current_run_id, ra.shown) AS d_shown_run,"                    \
    " CASE WHEN w.current_run_id IS NULL AND w.locked = 1"                     \
    " AND w.lock_kind <> 'run' THEN ra.first_pending END AS d_first_pending,"  \
    " ca.id AS d_cur_cv, COALESCE(ra.n, 0) AS d_runs_count,"                   \
    " ta.names AS d_tags, va.ids AS d_vars"                                    \
    " FROM p JOIN workspaces w ON w.id = p.id"                                 \
    " LEFT JOIN state_versions sv ON sv.id = w.current_sv"                     \
    " LEFT JOIN (SELECT r.workspace_id, count(*) AS n,"                        \
    " (array_agg(r.id ORDER BY r.queue_seq DESC))[1] AS latest,"               \
    " (array_agg(r.id ORDER BY r.queue_seq DESC) FILTER (WHERE"                \
    " r.status <> 'pending' AND r.plan_only = 0"                               \
    " AND cv.speculative IS DISTINCT FROM 1))[1] AS shown,"                    \
    " (array_agg(r.id ORDER BY r.queue_seq) FILTER (WHERE"                     \
    " r.status = 'pending'))[1] AS first_pending"                              \
    " FROM runs r LEFT JOIN configuration_versions cv ON cv.id = r.cv_id"      \
    " WHERE r.workspace_id IN (SELECT id FROM p)"                              \
    " GROUP BY r.workspace_id) ra ON ra.workspace_id = w.id"                   \
    " LEFT JOIN (SELECT DISTINCT ON (c.workspace_id) c.workspace_id, c.id"     \
    " FROM configuration_versions c WHERE c.workspace_id IN (SELECT id FROM "  \
    "p)"                                                                       \
    " AND c.provisional = 0 AND c.speculative = 0"                             \
    " AND c.status IN ('pending', 'uploaded')"                                 \
    " ORDER BY c.workspace_id, c.created_at DESC, c.id DESC) ca"               \
    " ON ca.workspace_id = w.id"                                               \
    " LEFT JOIN (SELECT wt.workspace_id,"                                      \
    " json_agg(t.name ORDER BY t.name COLLATE \"C\") AS names"                 \
    " FROM workspace_tags wt JOIN tags t ON t.id = wt.tag_id"                  \
    " WHERE wt.workspace_id IN (SELECT id FROM p)"                             \
    " GROUP BY wt.workspace_id) ta ON ta.workspace_id = w.id"                  \
    " LEFT JOIN (SELECT v.workspace_id,"                                       \
    " json_agg(v.id ORDER BY v.created_at, v.id) AS ids FROM variables v"      \
    " WHERE v.workspace_id IN (SELECT id FROM p)"                              \
    " GROUP BY v.workspace_id) va ON va.workspace_id = w.id ORDER BY p.o"

/* db_page() of the filter w in order on PostgreSQL (WS_PAGE_PG): the
 * page, then its count; the limit and offset bind inside p. */
static tr_err pg_page(struct db_conn *c, struct arena *a, const struct sqlb *w,
                      const char *order, int offset, int limit,
                      struct db_rows **r, int64_t *total, struct tr_errbuf *eb)
{
    tr_err e = sqlb_check(w, eb);
    if (e != TR_OK)
        return e;
    const char **p = arena_alloc(a, sizeof(*p) * (size_t)(w->n + 2));
    for (int i = 0; i < w->n; i++)
        p[i] = w->params[i];
    p[w->n] = arena_printf(a, "%d", limit);
    p[w->n + 1] = arena_printf(a, "%d", offset);
    const char *sql = arena_printf(
        a,
        "WITH p AS (SELECT w.id, row_number() OVER (ORDER BY %s) AS o%s"
        " ORDER BY %s LIMIT $%d OFFSET $%d) SELECT " WS_OWN_COLS WS_PAGE_PG,
        order, w->sql, order, w->n + 1, w->n + 2);
    struct db_rows *cnt = NULL;
    e = db_query(c, a, sql, w->n + 2, p, r, NULL, eb);
    if (e == TR_OK)
        e = db_query(c, a, arena_printf(a, "SELECT count(*) AS n%s", w->sql),
                     w->n, w->params, &cnt, NULL, eb);
    if (e == TR_OK)
        *total = db_get_i64(cnt, 0, "n");
    return e;
}

/* s with '"' and '\\' escaped, for a quoted element of an array literal. */
static const char *quoted(struct arena *a, const char *s)
{
    char *out = arena_alloc(a, strlen(s) * 2 + 1), *o = out;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* The workspaces of ids (n of them) not yet in ws (id NULL), read in one
 * statement (WS_PAGE_PG over them) and put in rc under tickets taken
 * before it; one that no longer exists is left with id NULL. */
static tr_err fill_misses(struct db_conn *c, struct arena *a,
                          struct read_cache *rc, const char **ids, int n,
                          struct st_workspace *ws, struct tr_errbuf *eb)
{
    /* the ids as one array parameter, "{"ws-a","ws-b"}": a generic plan
     * of "IN ($1, ..., $100)" reckons with 100 rows and scans whole
     * child tables for them */
    struct rc_ticket *t = arena_alloc(a, sizeof(*t) * (size_t)(n + 1));
    struct buf list;
    buf_init(&list, 0);
    tr_err e = TR_OK;
    for (int i = 0; e == TR_OK && i < n; i++)
        if (ws[i].id == NULL) {
            read_cache_ticket(rc, NULL, ids[i], &t[i]);
            e = buf_printf(&list, "%s\"%s\"", list.len > 0 ? "," : "{",
                           quoted(a, ids[i]));
        }
    if (e == TR_OK && list.len > 0)
        e = buf_puts(&list, "}");
    const char *arr = e == TR_OK && list.len > 0
                          ? arena_strndup(a, list.data, list.len)
                          : NULL;
    buf_free(&list);
    if (e != TR_OK)
        return tr_fail(eb, e, "out of memory");
    if (arr == NULL)
        return TR_OK;
    struct db_rows *r = NULL;
    e = db_q(c, a, &r, eb,
             "WITH p AS (SELECT w.id, 0 AS o FROM workspaces w"
             " WHERE w.id = ANY($1::text[])) SELECT " WS_OWN_COLS WS_PAGE_PG,
             arr);
    for (int k = 0; e == TR_OK && k < r->nrows; k++) {
        const char *id = db_get(r, k, "id");
        for (int i = 0; i < n; i++)
            if (ws[i].id == NULL && strcmp(ids[i], id) == 0) {
                store_ws_fill(a, r, k, &ws[i]);
                read_cache_put(rc, &t[i], NULL, NULL, &ws[i]);
                break;
            }
    }
    return e;
}

/* A page on a primary with a read cache (read_cache.c): the page's ids
 * and its count, each workspace from the cache, and the ones it lacks in
 * one more statement (which fills it); after a fence, so no change
 * committed before the call is missed.  False, with nothing done: the
 * fence failed, and the caller reads the database as without a cache. */
static bool cached_page(struct db_conn *c, struct arena *a,
                        struct read_cache *rc, const struct sqlb *w,
                        const char *order, int offset, int limit,
                        struct st_workspace **out, int *n, int64_t *total,
                        tr_err *e, struct tr_errbuf *eb)
{
    if (!read_cache_fence(rc))
        return false;
    /* the ids with their count in one statement; a page past the end
     * has no row to carry it, and is counted on its own */
    struct sqlb q = *w;
    q.sql = arena_printf(a, "SELECT w.id, count(*) OVER () AS n%s ORDER BY %s",
                         w->sql, order);
    sqlb_add(&q, arena_printf(a, " LIMIT %s",
                              sqlb_param(&q, arena_printf(a, "%d", limit))));
    sqlb_add(&q, arena_printf(a, " OFFSET %s",
                              sqlb_param(&q, arena_printf(a, "%d", offset))));
    struct db_rows *r = NULL;
    *e = sqlb_query(c, &q, &r, NULL, eb);
    int nids = *e == TR_OK ? r->nrows : 0;
    if (nids > 0) {
        *total = db_get_i64(r, 0, "n");
    } else if (*e == TR_OK && offset == 0) {
        *total = 0;
    } else if (*e == TR_OK) {
        struct db_rows *cnt = NULL;
        q = *w;
        q.sql = arena_printf(a, "SELECT count(*) AS n%s", w->sql);
        *e = sqlb_query(c, &q, &cnt, NULL, eb);
        if (*e == TR_OK)
            *total = db_get_i64(cnt, 0, "n");
    }
    if (*e != TR_OK)
        return true;
    const char **ids = arena_alloc(a, sizeof(char *) * (size_t)(nids + 1));
    struct st_workspace *ws = arena_alloc(a, sizeof(*ws) * (size_t)(nids + 1));
    for (int i = 0; i < nids; i++) {
        ids[i] = db_get(r, i, "id");
        if (!read_cache_ws(rc, a, ids[i], &ws[i]))
            memset(&ws[i], 0, sizeof(ws[i]));
    }
    *e = fill_misses(c, a, rc, ids, nids, ws, eb);
    if (*e != TR_OK)
        return true;
    /* one deleted since the page's ids were read drops out of it (the
     * count may still hold it, as any page read beside a delete may) */
    int k = 0;
    for (int i = 0; i < nids; i++)
        if (ws[i].id != NULL)
            ws[k++] = ws[i];
    *out = ws;
    *n = k;
    return true;
}

tr_err store_ws_list(struct db *db, struct arena *a,
                     const struct st_ws_filter *f, int offset, int limit,
                     struct st_workspace **out, int *n, int64_t *total,
                     struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct read_cache *rc = db_read_cache(db);
    tr_err ce = TR_OK;
    if (rc != NULL) {
        /* ids only: the state versions' join would cost a probe for
         * every workspace the count covers */
        struct sqlb ids;
        sqlb_init(&ids, a, "");
        list_where(&ids, f, " FROM workspaces w");
        if (cached_page(c, a, rc, &ids, list_order(c, a, f), offset, limit, out,
                        n, total, &ce, eb)) {
            db_release(c);
            return ce;
        }
    }
    struct sqlb w;
    sqlb_init(&w, a, "");
    list_where(&w, f, WS_FROM);
    struct db_rows *r = NULL;
    int64_t tot = 0;
    const char *order = list_order(c, a, f);
    tr_err e = db_conn_kind(c) == DB_PG
                   ? pg_page(c, a, &w, order, offset, limit, &r, &tot, eb)
                   : sqlb_page(c, &w,
                               arena_printf(a, "SELECT %s%s ORDER BY %s",
                                            store_ws_cols(c), w.sql, order),
                               offset, limit, &r, &tot, eb);
    struct st_workspace *ws = NULL;
    if (e == TR_OK) {
        ws = arena_alloc(a, sizeof(*ws) * (size_t)(r->nrows + 1));
        for (int i = 0; i < r->nrows; i++)
            store_ws_fill(a, r, i, &ws[i]);
    }
    db_release(c);
    if (e != TR_OK)
        return e;
    *out = ws;
    *n = r->nrows;
    *total = tot;
    return TR_OK;
}

static const char *kind_title(const char *kind)
{
    if (util_streq(kind, "user"))
        return "User";
    if (util_streq(kind, "run"))
        return "Run";
    if (util_streq(kind, "team"))
        return "Team";
    return "Token";
}

tr_err store_ws_lock(struct db *db, struct arena *a, const char *id,
                     const char *kind, const char *holder, const char *reason,
                     struct st_workspace *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    struct st_workspace w;
    tr_err e = db_begin(c, eb);
    if (e == TR_OK)
        e = db_x(c, a, &n, eb,
                 "UPDATE workspaces SET locked = 1, lock_kind = $2,"
                 " lock_holder = $3, lock_reason = $4"
                 " WHERE id = $1 AND locked = 0",
                 id, kind, holder, reason ? reason : "");
    if (e == TR_OK)
        e = load(c, a, "w.id = $1", id, NULL, &w, eb);
    if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "workspace already locked");
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    if (e == TR_OK && out != NULL)
        *out = w;
    return e;
}

tr_err store_ws_unlock(struct db *db, struct arena *a, const char *id,
                       const char *kind, const char *holder,
                       struct st_workspace *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t n = 0;
    struct st_workspace w;
    const char *sql = "UPDATE workspaces SET locked = 0, lock_kind = NULL,"
                      " lock_holder = NULL, lock_reason = ''"
                      " WHERE id = $1 AND locked = 1";
    tr_err e = db_begin(c, eb);
    if (e == TR_OK && kind != NULL)
        e = db_x(
            c, a, &n, eb,
            arena_printf(a, "%s AND lock_kind = $2 AND lock_holder = $3", sql),
            id, kind, holder);
    else if (e == TR_OK)
        e = db_x(c, a, &n, eb, sql, id);
    if (e == TR_OK)
        e = load(c, a, "w.id = $1", id, NULL, &w, eb);
    if (e == TR_OK && n == 0 && !w.locked)
        e = tr_fail(eb, TR_ERR_CONFLICT, "workspace already unlocked");
    else if (e == TR_OK && n == 0)
        e = tr_fail(eb, TR_ERR_CONFLICT, "workspace is locked by %s %s",
                    kind_title(w.lock_kind),
                    w.lock_holder ? w.lock_holder : "");
    if (e == TR_OK)
        e = db_commit(c, eb);
    db_release(c);
    if (e == TR_OK && out != NULL)
        *out = w;
    return e;
}
