/*
 * workspaces.c - the workspaces API: list, create, read, update, delete,
 * safe-delete, the workspace document, and the route table for workspaces
 * with their lock (workspace_lock.c) and tags (workspace_tags.c).
 *
 * A workspace is addressed by id (/workspaces/:id) or by organization and
 * name (/organizations/:org/workspaces/:name); both forms check that the
 * caller may see the organization and answer 404 otherwise, exactly as for
 * a workspace that does not exist.  Request attributes are checked in
 * workspace_input.c.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/runs_int.h"
#include "api/workspaces_int.h"

/* ---- access ------------------------------------------------------------ */

static void ws_not_found(struct http_req *r, const char *what)
{
    http_error(r, 404, "not found",
               arena_printf(r->arena, "workspace %s not found", what));
}

access_t api_ws_perms(struct http_req *r, const struct st_workspace *w)
{
    if (r->who.perm_of != NULL && strcmp(r->who.perm_of, w->id) == 0)
        return r->who.perms;
    /* a list's items are the page's own rows: the same pointers */
    for (int i = 0; i < r->who.npage; i++)
        if (r->who.page_ids[i] == w->id)
            return r->who.page_perms[i];
    for (int i = 0; i < r->who.npage; i++)
        if (strcmp(r->who.page_ids[i], w->id) == 0)
            return r->who.page_perms[i];
    /* manage-workspaces (owners) gives everything on every workspace:
     * a list needs no query per workspace then */
    if (r->who.org_perm_of != NULL && strcmp(r->who.org_perm_of, w->org) == 0 &&
        (r->who.org_perms & ACC_ORG_MANAGE_WS))
        return r->who.org_perms | ACC_WS_ALL;
    access_t f = 0;
    struct access_caller who = api_caller(r);
    struct tr_errbuf eb = {{0}};
    tr_err e = access_ws(r->srv->db, r->arena, &who, w,
                         strcmp(r->method, "GET") == 0, &f, &eb);
    if (e != TR_OK)
        return 0;
    api_perms_cache(r, w->id, f);
    return f;
}

/* 404 unless the caller may see w; what names it in the message. */
static bool ws_visible(struct http_req *r, const struct st_workspace *w,
                       const char *what)
{
    if (api_ws_perms(r, w) & ACC_WS_SEE)
        return true;
    ws_not_found(r, what);
    return false;
}

bool api_workspace_access(struct http_req *r, const char *id,
                          struct st_workspace *out)
{
    if (r->ws_read != NULL && !r->ws_read_used &&
        strcmp(r->ws_read->id, id) == 0) {
        *out = *r->ws_read; /* read with the token (ROUTE_WS_READ) */
        r->ws_read_used = true;
        return ws_visible(r, out, id);
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_get(r->srv->db, r->arena, id, out, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        ws_not_found(r, id);
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    return ws_visible(r, out, id);
}

bool api_ws_access_name(struct http_req *r, const char *org, const char *name,
                        struct st_workspace *out)
{
    if (!api_org_access(r, org, NULL))
        return false;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_get_by_name(r->srv->db, r->arena, org, name, out, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        ws_not_found(r, name);
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    return ws_visible(r, out, name);
}

bool api_ws_from_route(struct http_req *r, struct st_workspace *out)
{
    const char *id = http_param(r, "id");
    if (id != NULL)
        return api_workspace_access(r, id, out);
    return api_ws_access_name(r, http_param(r, "org"), http_param(r, "name"),
                              out);
}

bool api_ws_allow(struct http_req *r, const struct st_workspace *w,
                  access_t need, const char *what)
{
    access_t f = api_ws_perms(r, w);
    if ((f & need) == need)
        return true;
    if (r->who.kind == PRINC_RUN || !(f & ACC_WS_SEE)) {
        ws_not_found(r, w->id);
        return false;
    }
    http_error(r, 403, "forbidden",
               arena_printf(r->arena, "you may not %s in workspace %s", what,
                            w->name));
    return false;
}

/* ---- documents --------------------------------------------------------- */

/* A to-one relationship (api_rel_write()). */
static void rel(struct jw *j, const char *key, const char *type, const char *id)
{
    api_rel_write(j, key, type, id);
}

static void locked_by(struct jw *j, const struct st_workspace *w)
{
    if (!w->locked || w->lock_holder == NULL) {
        rel(j, "locked-by", NULL, NULL);
        return;
    }
    const char *type = "authentication-tokens";
    if (util_streq(w->lock_kind, "user"))
        type = "users";
    else if (util_streq(w->lock_kind, "run"))
        type = "runs";
    else if (util_streq(w->lock_kind, "team"))
        type = "teams";
    rel(j, "locked-by", type, w->lock_holder);
}

/* The permissions block: what the caller's flags f allow. */
static void permissions(struct jw *j, access_t f)
{
    static const struct {
        const char *name;
        access_t need;
    } map[] = {
        {"can-update", ACC_WS_ADMIN},
        {"can-destroy", ACC_WS_DELETE},
        {"can-queue-run", ACC_WS_PLAN},
        {"can-queue-apply", ACC_WS_APPLY},
        {"can-queue-destroy", ACC_WS_APPLY},
        {"can-update-variable", ACC_WS_VARS_WRITE},
        {"can-lock", ACC_WS_LOCK},
        {"can-unlock", ACC_WS_LOCK},
        {"can-force-unlock", ACC_WS_ADMIN},
        {"can-manage-tags", ACC_WS_ADMIN},
        {"can-manage-run-tasks", ACC_WS_RUN_TASKS},
        {"can-force-delete", ACC_WS_DELETE},
        {"can-create-state-versions", ACC_WS_STATE_WRITE},
        {"can-manage-assessments", ACC_WS_ADMIN},
        {"can-read-assessment-results", ACC_WS_SEE},
        {"can-read-settings", ACC_WS_SEE},
        {"can-read-variable", ACC_WS_VARS_READ},
        {"can-read-state-versions", ACC_WS_STATE_READ},
        {"can-read-state-outputs", ACC_WS_OUTPUTS},
        {"can-read-run", ACC_WS_SEE},
        {"can-download-sentinel-mocks", ACC_WS_SENTINEL},
    };
    jw_key(j, "permissions");
    jw_obj(j);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        jw_kbool(j, map[i].name, (f & map[i].need) == map[i].need);
    jw_obj_end(j);
}

/* The run shown as current-run: the owner of the workspace's queue; on a
 * workspace locked by hand, the run waiting for the lock (as in TFE: the
 * CLI then says it waits for the unlock); else the newest one that left
 * pending (STORE_WS_CURRENT_RUN_SQL).  The store reads all three with the
 * workspace. */
static const char *shown_run(const struct st_workspace *w)
{
    if (w->current_run != NULL)
        return w->current_run;
    if (w->first_pending != NULL)
        return w->first_pending;
    return w->shown_run;
}

void api_ws_page_perms(struct http_req *r, const struct st_workspace *ws, int n)
{
    access_t *f = arena_alloc(r->arena, sizeof(*f) * (size_t)(n + 1));
    const char **ids = arena_alloc(r->arena, sizeof(char *) * (size_t)(n + 1));
    struct access_caller who = api_caller(r);
    if (n == 0 ||
        access_ws_many(r->srv->db, r->arena, &who, ws, n,
                       strcmp(r->method, "GET") == 0, f, NULL) != TR_OK)
        return; /* api_ws_perms() asks one at a time */
    for (int i = 0; i < n; i++)
        ids[i] = ws[i].id;
    r->who.page_ids = ids;
    r->who.page_perms = f;
    r->who.npage = n;
}

/* The page p of the workspaces f selects (*ws, *n of *total), with the
 * caller's flags on them read; false after answering a store failure. */
static bool list_read(struct http_req *r, const struct st_ws_filter *f,
                      const struct page *p, struct st_workspace **ws, int *n,
                      int64_t *total)
{
    struct tr_errbuf eb = {{0}};
    struct st_ws_filter mine = *f;
    api_visible_to(r, f->org, ACC_ORG_READ_WS, &mine.visible_user,
                   &mine.visible_team);
    tr_err e =
        store_ws_list(r->srv->db, r->arena, &mine, (p->number - 1) * p->size,
                      p->size, ws, n, total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    api_ws_page_perms(r, *ws, *n);
    return true;
}

json_t *api_ws_list_doc(struct http_req *r, const struct st_ws_filter *f,
                        const struct page *p, struct st_workspace **ws, int *n)
{
    int64_t total = 0;
    if (!list_read(r, f, p, ws, n, &total))
        return NULL;
    json_t *items = json_array();
    for (int i = 0; i < *n; i++)
        json_array_append_new(items, api_ws_json(r, &(*ws)[i]));
    return jsonapi_list_doc(items, p, total);
}

bool api_ws_list_reply(struct http_req *r, const struct st_ws_filter *f,
                       const struct page *p)
{
    struct st_workspace *ws = NULL;
    int n = 0;
    int64_t total = 0;
    if (!list_read(r, f, p, &ws, &n, &total))
        return false;
    struct jw j;
    http_jw_start(r, &j);
    jw_obj(&j);
    jw_key(&j, "data");
    jw_arr(&j);
    for (int i = 0; i < n; i++)
        api_ws_write(r, &j, &ws[i]);
    jw_arr_end(&j);
    jsonapi_write_meta(&j, p, total);
    jw_obj_end(&j);
    http_reply_jw(r, 200, &j);
    return true;
}

static void ws_attributes(struct http_req *r, struct jw *j,
                          const struct st_workspace *w)
{
    jw_key(j, "attributes");
    jw_obj(j);
    api_ws_settings_write(j, w->settings);
    jw_kstr(j, "name", w->name);
    jw_kstr(j, "description", w->description);
    jw_kstr(j, "environment", "default");
    jw_kstr(j, "execution-mode", w->execution_mode);
    jw_kstr(j, "terraform-version", w->terraform_version);
    jw_kstr(j, "working-directory", w->working_directory);
    jw_kbool(j, "auto-apply", w->auto_apply);
    jw_kbool(j, "locked", w->locked);
    jw_kbool(j, "operations", !util_streq(w->execution_mode, "local"));
    jw_kint(j, "resource-count", w->resource_count);
    jw_kint(j, "runs-count", w->runs_count);
    jw_kstr(j, "created-at", w->created_at);
    jw_kstr(j, "updated-at", w->updated_at);
    jw_kstr(j, "latest-change-at", w->updated_at);
    jw_key(j, "tag-names");
    jw_arr(j);
    for (int i = 0; i < w->ntags; i++)
        jw_str(j, w->tag_names[i]);
    jw_arr_end(j);
    jw_knull(j, "vcs-repo");
    jw_knull(j, "vcs-repo-identifier");
    jw_key(j, "actions");
    jw_obj(j);
    jw_kbool(j, "is-destroyable", true);
    jw_obj_end(j);
    permissions(j, api_ws_perms(r, w));
    jw_kstr(j, "source", "tfe-api");
    /* go-tfe reads the count under TFE's workspace-KPI name */
    jw_kint(j, "workspace-kpis-runs-count", w->runs_count);
    jw_obj_end(j);
}

/* A relationship with only a related link: base + "/" + what. */
static void related(struct jw *j, const char *key, const char *id,
                    const char *what)
{
    jw_key(j, key);
    jw_obj(j);
    jw_key(j, "links");
    jw_obj(j);
    jw_key(j, "related");
    jw_str_begin(j);
    jw_str_add(j, "/api/v2/workspaces/");
    jw_str_add(j, id);
    jw_str_add(j, what);
    jw_str_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

static void ws_relationships(struct jw *j, const struct st_workspace *w)
{
    jw_key(j, "relationships");
    jw_obj(j);
    rel(j, "organization", "organizations", w->org);
    rel(j, "project", "projects", w->project_id);
    rel(j, "current-state-version", "state-versions", w->current_sv);
    rel(j, "current-run", "runs", shown_run(w));
    rel(j, "latest-run", "runs", w->latest_run);
    rel(j, "current-configuration-version", "configuration-versions",
        w->current_cv);
    locked_by(j, w);
    rel(j, "agent-pool", "agent-pools", w->agent_pool_id);
    rel(j, "readme", NULL, NULL);
    /* the workspace's variables, read with it */
    jw_key(j, "vars");
    jw_obj(j);
    jw_key(j, "data");
    jw_arr(j);
    for (int i = 0; i < w->nvars; i++) {
        jw_obj(j);
        jw_kstr(j, "id", w->var_ids[i]);
        jw_kstr(j, "type", "vars");
        jw_obj_end(j);
    }
    jw_arr_end(j);
    jw_obj_end(j);
    rel(j, "ssh-key", "ssh-keys", w->ssh_key_id);
    /* as api_tb_rel_links() writes them for projects */
    related(j, "tag-bindings", w->id, "/tag-bindings");
    related(j, "effective-tag-bindings", w->id, "/effective-tag-bindings");
    jw_obj_end(j);
}

void api_ws_write(struct http_req *r, struct jw *j,
                  const struct st_workspace *w)
{
    jw_obj(j);
    jw_kstr(j, "id", w->id);
    jw_kstr(j, "type", "workspaces");
    ws_attributes(r, j, w);
    ws_relationships(j, w);
    jw_key(j, "links");
    jw_obj(j);
    jw_key(j, "self");
    jw_str_begin(j);
    jw_str_add(j, "/api/v2/organizations/");
    jw_str_add(j, w->org);
    jw_str_add(j, "/workspaces/");
    jw_str_add(j, w->name);
    jw_str_end(j);
    jw_key(j, "self-html");
    jw_str_begin(j);
    jw_str_add(j, "/app/");
    jw_str_add(j, w->org);
    jw_str_add(j, "/workspaces/");
    jw_str_add(j, w->name);
    jw_str_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

json_t *api_ws_json(struct http_req *r, const struct st_workspace *w)
{
    struct buf b;
    buf_init(&b, 0);
    struct jw j;
    jw_init(&j, &b);
    api_ws_write(r, &j, w);
    return api_jw_tree(&j, &b);
}

void api_ws_reply(struct http_req *r, int status, const struct st_workspace *w)
{
    struct jw j;
    http_jw_start(r, &j);
    jw_obj(&j);
    jw_key(&j, "data");
    api_ws_write(r, &j, w);
    jw_obj_end(&j);
    http_reply_jw(r, status, &j);
}

/* Enough of an organization for include=organization. */
static json_t *org_json(struct http_req *r, const struct st_org *o)
{
    return json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:s,s:o},s:{s:s}}", "id", o->name, "type",
        "organizations", "attributes", "name", o->name, "email", o->email,
        "external-id", o->id, "created-at", api_time(o->created_at), "links",
        "self", arena_printf(r->arena, "/api/v2/organizations/%s", o->name));
}

/* ---- query parameters -------------------------------------------------- */

/* Splits a comma list into trimmed non-empty items (at most max). */
static bool split_list(struct http_req *r, const char *key, const char ***out,
                       int *n, int max)
{
    const char *s = http_query(r, key);
    *out = NULL;
    *n = 0;
    if (s == NULL)
        return true;
    const char **items =
        arena_alloc(r->arena, sizeof(char *) * (size_t)(max + 1));
    char *copy = arena_strdup(r->arena, s);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t len = strlen(t);
        while (len > 0 && t[len - 1] == ' ')
            t[--len] = '\0';
        if (len == 0)
            continue;
        if (*n >= max) {
            http_error(r, 400, NULL,
                       arena_printf(r->arena, "%s lists more than %d items",
                                    key, max));
            return false;
        }
        items[(*n)++] = t;
    }
    *out = items;
    return true;
}

enum {
    INC_ORG = 1,
    INC_PROJECT = 2,
    INC_RUN = 4,
    INC_SV = 8,
    INC_OUTPUTS = 16,
    INC_ETB = 32,
};

/* include=...: organization, project, current run and state version,
 * outputs and effective tag bindings are rendered; TFE's other workspace
 * includes are accepted and left out; anything else is 400. */
static bool parse_include(struct http_req *r, int *flags)
{
    static const char *const known[] = {
        "current_configuration_version",
        "current_configuration_version.ingress_attributes",
        "current_run",
        "current_run.plan",
        "current_run.configuration_version",
        "current_run.configuration_version.ingress_attributes",
        "locked_by",
        "readme",
        "current-state-version",
    };
    const char **items = NULL;
    int n = 0;
    *flags = 0;
    if (!split_list(r, "include", &items, &n, 32))
        return false;
    for (int i = 0; i < n; i++) {
        bool ok = false;
        if (strcmp(items[i], "organization") == 0) {
            *flags |= INC_ORG;
            ok = true;
        } else if (strcmp(items[i], "project") == 0) {
            *flags |= INC_PROJECT;
            ok = true;
        } else if (strncmp(items[i], "current_run", 11) == 0) {
            *flags |= INC_RUN; /* the run; its plan and cv are not added */
        } else if (strcmp(items[i], "current_state_version") == 0 ||
                   strcmp(items[i], "current-state-version") == 0) {
            *flags |= INC_SV;
            ok = true;
        } else if (strcmp(items[i], "outputs") == 0) {
            *flags |= INC_OUTPUTS;
            ok = true;
        } else if (strcmp(items[i], "effective_tag_bindings") == 0) {
            *flags |= INC_ETB;
            ok = true;
        }
        for (size_t k = 0; !ok && k < sizeof(known) / sizeof(known[0]); k++)
            ok = strcmp(items[i], known[k]) == 0;
        if (!ok) {
            http_error(r, 400, "bad request",
                       arena_printf(r->arena, "Invalid include parameter: %s",
                                    items[i]));
            return false;
        }
    }
    return true;
}

/* The relationships of the i-th workspace of doc (a single resource or a
 * list). */
static json_t *doc_rels(json_t *doc, int i)
{
    json_t *data = json_object_get(doc, "data");
    if (json_is_array(data))
        data = json_array_get(data, (size_t)i);
    return json_object_get(data, "relationships");
}

/* The outputs and effective tag bindings of ws (n) into doc: relationship
 * data on each workspace, resources into inc. */
static bool add_ws_children(struct http_req *r, json_t *doc, json_t *inc,
                            int flags, const struct st_workspace *ws, int n)
{
    for (int i = 0; i < n; i++) {
        json_t *rels = doc_rels(doc, i);
        if ((flags & INC_OUTPUTS) && !api_ws_outputs_rel(r, &ws[i], rels, inc))
            return false;
        if ((flags & INC_ETB) &&
            !api_tb_effective(r, ST_TB_WORKSPACE, ws[i].id, rels, inc))
            return false;
    }
    return true;
}

/* Adds "included" for the workspaces ws (n of them) to doc. */
static bool add_included(struct http_req *r, json_t *doc, int flags,
                         const struct st_org *org,
                         const struct st_workspace *ws, int n)
{
    if (flags == 0)
        return true;
    json_t *inc = json_array();
    json_object_set_new(doc, "included", inc);
    if (!add_ws_children(r, doc, inc, flags, ws, n)) {
        json_decref(doc);
        return false;
    }
    for (int i = 0; (flags & INC_RUN) && i < n; i++) {
        const char *cur = shown_run(&ws[i]);
        struct st_run run;
        if (cur != NULL &&
            store_run_get(r->srv->db, r->arena, cur, &run, NULL) == TR_OK)
            json_array_append_new(inc, api_run_json(r, &run, false));
    }
    for (int i = 0; (flags & INC_SV) && i < n; i++) {
        json_t *sv = api_sv_resource(r, ws[i].current_sv);
        if (sv != NULL)
            json_array_append_new(inc, sv);
    }
    if ((flags & INC_ORG) && n > 0)
        json_array_append_new(inc, org_json(r, org));
    for (int i = 0; (flags & INC_PROJECT) && i < n; i++) {
        bool seen = false;
        for (int k = 0; k < i && !seen; k++)
            seen = util_streq(ws[k].project_id, ws[i].project_id);
        if (seen)
            continue;
        struct st_project p;
        struct tr_errbuf eb = {{0}};
        tr_err e =
            store_project_get(r->srv->db, r->arena, ws[i].project_id, &p, &eb);
        if (e != TR_OK) {
            json_decref(doc);
            api_store_fail(r, e, &eb);
            return false;
        }
        json_array_append_new(inc, api_project_json(r, &p));
    }
    return true;
}

/* filter[tagged][N][key] and [value] (N from 0, in order; no value or
 * "": any value), as go-tfe and pytfe send key/value tag filters. */
static bool tagged_filter(struct http_req *r, struct st_ws_filter *f)
{
    struct st_tag_binding *t =
        arena_alloc(r->arena, sizeof(*t) * (ST_TB_MAX + 1));
    for (int i = 0; i <= ST_TB_MAX; i++) {
        const char *k =
            http_query(r, arena_printf(r->arena, "filter[tagged][%d][key]", i));
        const char *v = http_query(
            r, arena_printf(r->arena, "filter[tagged][%d][value]", i));
        if (k == NULL && v == NULL)
            break;
        if (k == NULL || *k == '\0' || i == ST_TB_MAX) {
            http_error(r, 400, NULL,
                       k == NULL || *k == '\0'
                           ? "every filter[tagged][N] needs a key"
                           : "filter[tagged] takes at most 10 tags");
            return false;
        }
        t[i] = (struct st_tag_binding){.key = k, .value = v};
        f->ntagged = i + 1;
    }
    f->tagged = t;
    return true;
}

/* ---- list and read ----------------------------------------------------- */

/* Output values keep their numbers as written (api_sv_reply_doc()). */
static void reply_doc(struct http_req *r, json_t *doc, int flags)
{
    if (flags & INC_OUTPUTS)
        api_sv_reply_doc(r, 200, doc);
    else
        http_reply_json(r, 200, doc);
}

static void ws_list(struct http_req *r)
{
    const char *org = http_param(r, "org");
    struct st_org o;
    struct page p;
    int flags = 0;
    if (!api_org_access(r, org, &o) || !jsonapi_page(r, &p) ||
        !parse_include(r, &flags))
        return;
    struct st_ws_filter f = {
        .org = o.name,
        .search = http_query(r, "search[name]"),
        .wildcard = http_query(r, "search[wildcard-name]"),
        .project_id = http_query(r, "filter[project][id]"),
    };
    const char *sort = http_query(r, "sort");
    if (sort != NULL && *sort == '-') {
        f.desc = true;
        sort++;
    }
    static const struct {
        const char *name;
        enum st_ws_order order;
    } sorts[] = {{"name", ST_WS_BY_NAME},
                 {"current-run.created-at", ST_WS_BY_CURRENT_RUN},
                 {"latest-change-at", ST_WS_BY_LATEST_CHANGE}};
    bool known = sort == NULL;
    for (size_t i = 0; sort != NULL && i < sizeof(sorts) / sizeof(sorts[0]);
         i++)
        if (strcmp(sort, sorts[i].name) == 0) {
            f.order = sorts[i].order;
            known = true;
        }
    if (!known) {
        http_error(r, 400, NULL,
                   "sort must be name, current-run.created-at or "
                   "latest-change-at, with an optional leading '-'");
        return;
    }
    if (!tagged_filter(r, &f) ||
        !split_list(r, "search[tags]", (const char ***)&f.tags, &f.ntags,
                    API_WS_MAX_ITEMS) ||
        !split_list(r, "search[exclude-tags]", (const char ***)&f.exclude_tags,
                    &f.nexclude, API_WS_MAX_ITEMS))
        return;
    if (flags == 0) {
        api_ws_list_reply(r, &f, &p); /* written as it goes */
        return;
    }
    struct st_workspace *ws = NULL;
    int n = 0;
    json_t *doc = api_ws_list_doc(r, &f, &p, &ws, &n);
    if (doc == NULL)
        return;
    if (add_included(r, doc, flags, &o, ws, n))
        reply_doc(r, doc, flags);
}

static void ws_show(struct http_req *r)
{
    struct st_workspace w;
    int flags = 0;
    if (!api_ws_from_route(r, &w) || !parse_include(r, &flags))
        return;
    if (flags == 0) {
        api_ws_reply(r, 200, &w);
        return;
    }
    struct st_org o = {0};
    if (flags & INC_ORG) {
        struct tr_errbuf eb = {{0}};
        tr_err e = store_org_get(r->srv->db, r->arena, w.org, &o, &eb);
        if (e != TR_OK) {
            api_store_fail(r, e, &eb);
            return;
        }
    }
    json_t *doc = json_pack("{s:o}", "data", api_ws_json(r, &w));
    if (add_included(r, doc, flags, &o, &w, 1))
        reply_doc(r, doc, flags);
}

/* ---- create, update, delete -------------------------------------------- */

/* True when the caller may create a workspace in project prj_id (NULL:
 * the default project) of o: manage-workspaces, or a project access that
 * allows it; else writes 403 (404 for a project it cannot see). */
static bool may_create(struct http_req *r, const struct st_org *o,
                       const char *prj_id)
{
    if (api_org_may(r, o->name, ACC_ORG_MANAGE_WS))
        return true;
    struct st_project p = {.id = prj_id, .org = o->name};
    if (prj_id == NULL && o->default_project != NULL)
        p.id = o->default_project;
    access_t f = 0;
    struct access_caller who = api_caller(r);
    if (p.id != NULL &&
        access_project(r->srv->db, r->arena, &who, &p, &f, NULL) == TR_OK &&
        (f & ACC_PRJ_WS_CREATE))
        return true;
    http_error(r, 403, "forbidden",
               arena_printf(r->arena,
                            "you may not create workspaces in organization %s",
                            o->name));
    return false;
}

static void ws_create(struct http_req *r)
{
    const char *org = http_param(r, "org");
    struct st_org o;
    struct ws_in in;
    if (!api_org_access(r, org, &o))
        return;
    json_t *data = jsonapi_body(r, "workspaces");
    if (data == NULL || !api_ws_parse(r, data, &in, o.name))
        return;
    if (in.name == NULL) {
        http_error(r, 422, NULL,
                   "Name can't be blank: attribute name is required");
        return;
    }
    if (!may_create(r, &o, in.project_id))
        return;
    const char *mode = NULL, *pool = NULL;
    api_ws_resolve_mode(r, &in, o.name, false, false, true, &mode);
    if (!api_ws_resolve_pool(r, &in, o.name, NULL, in.project_id, mode, NULL,
                             &pool))
        return;
    struct st_workspace w = {
        .agent_pool_id = pool != NULL && *pool != '\0' ? pool : NULL,
        .org = o.name,
        .name = in.name,
        .project_id = in.project_id,
        .description = in.description,
        .execution_mode = mode,
        .terraform_version = in.terraform_version,
        .working_directory = in.working_directory,
        .auto_apply = in.auto_apply == 1,
        .settings = api_ws_dump(r, in.patch),
        .tag_names = in.tags,
        .ntags = in.ntags,
        .bindings = in.bindings,
        .nbindings = in.nbindings,
    };
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_create(r->srv->db, r->arena, &w, &w, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_ws_reply(r, 201, &w);
}

static void ws_update(struct http_req *r)
{
    struct st_workspace w;
    struct ws_in in;
    if (!api_ws_from_route(r, &w) ||
        !api_ws_allow(r, &w, ACC_WS_ADMIN, "change settings"))
        return;
    json_t *data = jsonapi_body(r, "workspaces");
    if (data == NULL || !api_ws_parse(r, data, &in, w.org))
        return;
    json_t *cur = http_json_own(r, api_ws_settings_view(w.settings));
    json_t *ov = json_object_get(cur, "setting-overwrites");
    const char *mode = NULL;
    api_ws_resolve_mode(
        r, &in, w.org, json_is_true(json_object_get(ov, "execution-mode")),
        json_is_true(json_object_get(ov, "agent-pool")), false, &mode);
    const char *pool = NULL;
    if (!api_ws_resolve_pool(
            r, &in, w.org, w.id, in.project_id ? in.project_id : w.project_id,
            mode ? mode : w.execution_mode, w.agent_pool_id, &pool))
        return;
    struct st_ws_update u = {
        .agent_pool_id = pool,
        .name = in.name,
        .project_id = in.project_id,
        .description = in.description,
        .execution_mode = mode,
        .terraform_version = in.terraform_version,
        .working_directory = in.working_directory,
        .auto_apply = in.auto_apply,
        .settings_patch = api_ws_dump(r, in.patch),
        .set_tags = in.has_tags,
        .tag_names = in.tags,
        .ntags = in.ntags,
        .set_bindings = in.has_bindings,
        .bindings = in.bindings,
        .nbindings = in.nbindings,
    };
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_update(r->srv->db, r->arena, w.id, &u, &w, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_ws_reply(r, 200, &w);
}

static void delete_common(struct http_req *r, bool safe)
{
    struct st_workspace w;
    if (!api_ws_from_route(r, &w) ||
        !api_ws_allow(r, &w, ACC_WS_DELETE, "delete the workspace"))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_ws_delete(r->srv->db, r->arena, w.id, safe, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

static void ws_delete(struct http_req *r)
{
    delete_common(r, false);
}

static void ws_safe_delete(struct http_req *r)
{
    delete_common(r, true);
}

/* ---- routes ------------------------------------------------------------ */

#define WS_ID "/api/v2/workspaces/:id"
#define WS_NAME "/api/v2/organizations/:org/workspaces/:name"

const struct route api_workspace_routes[] = {
    {"GET", "/api/v2/organizations/:org/workspaces", ws_list, ROUTE_AUTH},
    {"POST", "/api/v2/organizations/:org/workspaces", ws_create, ROUTE_AUTH},
    {"GET", WS_NAME, ws_show, ROUTE_AUTH | ROUTE_RUN},
    {"PATCH", WS_NAME, ws_update, ROUTE_AUTH},
    {"DELETE", WS_NAME, ws_delete, ROUTE_AUTH},
    {"POST", WS_NAME "/actions/safe-delete", ws_safe_delete, ROUTE_AUTH},
    {"GET", WS_ID, ws_show, ROUTE_AUTH | ROUTE_RUN | ROUTE_WS_READ},
    {"PATCH", WS_ID, ws_update, ROUTE_AUTH},
    {"DELETE", WS_ID, ws_delete, ROUTE_AUTH},
    {"POST", WS_ID "/actions/safe-delete", ws_safe_delete, ROUTE_AUTH},
    {"POST", WS_ID "/actions/lock", api_ws_lock, ROUTE_AUTH | ROUTE_RUN},
    {"POST", WS_ID "/actions/unlock", api_ws_unlock, ROUTE_AUTH | ROUTE_RUN},
    {"POST", WS_ID "/actions/force-unlock", api_ws_force_unlock, ROUTE_AUTH},
    {"GET", WS_ID "/relationships/tags", api_ws_tags_list, ROUTE_AUTH},
    {"POST", WS_ID "/relationships/tags", api_ws_tags_add, ROUTE_AUTH},
    {"DELETE", WS_ID "/relationships/tags", api_ws_tags_remove, ROUTE_AUTH},
    {"GET", WS_ID "/relationships/remote-state-consumers",
     api_ws_consumers_list, ROUTE_AUTH},
    {"POST", WS_ID "/relationships/remote-state-consumers",
     api_ws_consumers_add, ROUTE_AUTH},
    {"PATCH", WS_ID "/relationships/remote-state-consumers",
     api_ws_consumers_set, ROUTE_AUTH},
    {"DELETE", WS_ID "/relationships/remote-state-consumers",
     api_ws_consumers_remove, ROUTE_AUTH},
    {"GET", "/api/v2/organizations/:org/tags", api_org_tags_list, ROUTE_AUTH},
    {"DELETE", "/api/v2/organizations/:org/tags", api_org_tags_delete,
     ROUTE_AUTH},
    {"POST", "/api/v2/tags/:id/relationships/workspaces",
     api_tag_add_workspaces, ROUTE_AUTH},
    {0},
};
