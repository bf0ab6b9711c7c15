/*
 * access.c - the permission model (see access.h for the rules): grants
 * from store_grants() turned into ACC_ flags.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include <jansson.h>

#include "domain/access.h"
#include "core/util.h"

const struct access_name access_org_names[] = {
    {"manage-policies", ACC_ORG_MANAGE_POLICIES},
    {"manage-policy-overrides", ACC_ORG_MANAGE_OVERRIDES},
    {"delegate-policy-overrides", ACC_ORG_DELEGATE_OVERRIDES},
    {"manage-workspaces", ACC_ORG_MANAGE_WS},
    {"manage-vcs-settings", ACC_ORG_MANAGE_VCS},
    {"manage-providers", ACC_ORG_MANAGE_PROVIDERS},
    {"manage-modules", ACC_ORG_MANAGE_MODULES},
    {"manage-run-tasks", ACC_ORG_MANAGE_RUN_TASKS},
    {"manage-projects", ACC_ORG_MANAGE_PRJ},
    {"read-workspaces", ACC_ORG_READ_WS},
    {"read-projects", ACC_ORG_READ_PRJ},
    {"manage-membership", ACC_ORG_MANAGE_MEMBERSHIP},
    {"manage-teams", ACC_ORG_MANAGE_TEAMS},
    {"manage-organization-access", ACC_ORG_MANAGE_ORG_ACCESS},
    {"access-secret-teams", ACC_ORG_SECRET_TEAMS},
    {"manage-agent-pools", ACC_ORG_MANAGE_AGENTS},
    {NULL, 0},
};

/* Workspace flags of each fixed level. */
#define WS_READ                                                                \
    (ACC_WS_SEE | ACC_WS_VARS_READ | ACC_WS_OUTPUTS | ACC_WS_STATE_READ)
#define WS_PLAN (WS_READ | ACC_WS_PLAN)
#define WS_WRITE                                                               \
    (WS_PLAN | ACC_WS_APPLY | ACC_WS_VARS_WRITE | ACC_WS_STATE_WRITE |         \
     ACC_WS_LOCK | ACC_WS_SENTINEL)
#define WS_ADMIN                                                               \
    (WS_WRITE | ACC_WS_ADMIN | ACC_WS_DELETE | ACC_WS_TEAMS |                  \
     ACC_WS_RUN_TASKS | ACC_WS_MOVE)

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

static bool flag(json_t *o, const char *k)
{
    return json_is_true(json_object_get(o, k));
}

/* runs, variables, state-versions, sentinel-mocks of a custom object */
static access_t ws_custom(json_t *o)
{
    access_t f = ACC_WS_SEE;
    const char *runs = str(o, "runs");
    if (strcmp(runs, "plan") == 0)
        f |= ACC_WS_PLAN;
    else if (strcmp(runs, "apply") == 0)
        f |= ACC_WS_PLAN | ACC_WS_APPLY;
    const char *vars = str(o, "variables");
    if (strcmp(vars, "read") == 0)
        f |= ACC_WS_VARS_READ;
    else if (strcmp(vars, "write") == 0)
        f |= ACC_WS_VARS_READ | ACC_WS_VARS_WRITE;
    const char *sv = str(o, "state-versions");
    if (strcmp(sv, "read-outputs") == 0)
        f |= ACC_WS_OUTPUTS;
    else if (strcmp(sv, "read") == 0)
        f |= ACC_WS_OUTPUTS | ACC_WS_STATE_READ;
    else if (strcmp(sv, "write") == 0)
        f |= ACC_WS_OUTPUTS | ACC_WS_STATE_READ | ACC_WS_STATE_WRITE;
    if (strcmp(str(o, "sentinel-mocks"), "read") == 0)
        f |= ACC_WS_SENTINEL;
    if (flag(o, "run-tasks"))
        f |= ACC_WS_RUN_TASKS;
    return f;
}

access_t access_ws_level(const char *level, const char *perms)
{
    if (level == NULL)
        return 0;
    if (strcmp(level, "read") == 0)
        return WS_READ;
    if (strcmp(level, "plan") == 0)
        return WS_PLAN;
    if (strcmp(level, "write") == 0)
        return WS_WRITE;
    if (strcmp(level, "admin") == 0)
        return WS_ADMIN;
    if (strcmp(level, "custom") != 0)
        return 0;
    json_t *o = json_loads(perms != NULL ? perms : "{}", 0, NULL);
    access_t f = ws_custom(o);
    if (flag(o, "workspace-locking"))
        f |= ACC_WS_LOCK;
    json_decref(o);
    return f;
}

access_t access_prj_level(const char *level, const char *perms)
{
    if (level == NULL)
        return 0;
    if (strcmp(level, "read") == 0)
        return ACC_PRJ_SEE | ACC_PRJ_TEAMS_READ | WS_READ;
    if (strcmp(level, "write") == 0)
        return ACC_PRJ_SEE | ACC_PRJ_TEAMS_READ | WS_WRITE;
    if (strcmp(level, "maintain") == 0)
        return ACC_PRJ_SEE | ACC_PRJ_TEAMS_READ | ACC_PRJ_WS_CREATE |
               (WS_ADMIN & ~ACC_WS_MOVE);
    if (strcmp(level, "admin") == 0)
        return ACC_PRJ_ALL | WS_ADMIN;
    if (strcmp(level, "custom") != 0)
        return 0;
    json_t *o = json_loads(perms != NULL ? perms : "{}", 0, NULL);
    json_t *pa = json_object_get(o, "project-access");
    json_t *wa = json_object_get(o, "workspace-access");
    access_t f = ACC_PRJ_SEE;
    const char *settings = str(pa, "settings");
    if (strcmp(settings, "update") == 0)
        f |= ACC_PRJ_UPDATE;
    else if (strcmp(settings, "delete") == 0)
        f |= ACC_PRJ_UPDATE | ACC_PRJ_DELETE;
    const char *teams = str(pa, "teams");
    if (strcmp(teams, "read") == 0)
        f |= ACC_PRJ_TEAMS_READ;
    else if (strcmp(teams, "manage") == 0)
        f |= ACC_PRJ_TEAMS_READ | ACC_PRJ_TEAMS_MANAGE;
    f |= ws_custom(wa);
    if (flag(wa, "locking"))
        f |= ACC_WS_LOCK;
    if (flag(wa, "create"))
        f |= ACC_PRJ_WS_CREATE;
    if (flag(wa, "move"))
        f |= ACC_PRJ_WS_MOVE | ACC_WS_MOVE;
    if (flag(wa, "delete"))
        f |= ACC_PRJ_WS_DELETE | ACC_WS_DELETE;
    json_decref(o);
    return f;
}

access_t access_org_level(const char *org_access)
{
    json_t *o = json_loads(org_access != NULL ? org_access : "{}", 0, NULL);
    access_t f = 0;
    for (const struct access_name *n = access_org_names; n->name; n++)
        if (flag(o, n->name))
            f |= n->flag;
    json_decref(o);
    /* managing implies reading */
    if (f & ACC_ORG_MANAGE_WS)
        f |= ACC_ORG_READ_WS;
    if (f & ACC_ORG_MANAGE_PRJ)
        f |= ACC_ORG_READ_PRJ | ACC_ORG_READ_WS;
    return f;
}

/* The flags an organization's grants give; ws and prj flags only from
 * rows of their kind. */
static access_t from_grants(const struct st_grant *g, int n)
{
    access_t f = 0;
    for (int i = 0; i < n; i++) {
        switch (g[i].kind) {
        case ST_GRANT_MEMBER:
            f |= ACC_ORG_SEE;
            break;
        case ST_GRANT_TEAM:
            f |= ACC_ORG_SEE;
            f |= g[i].owners ? ACC_ALL : access_org_level(g[i].access);
            break;
        case ST_GRANT_WS:
            f |= access_ws_level(g[i].access, g[i].perms);
            break;
        case ST_GRANT_PRJ:
            f |= access_prj_level(g[i].access, g[i].perms);
            break;
        }
    }
    /* organization-wide grants on every project and workspace */
    if (f & ACC_ORG_MANAGE_PRJ)
        f |= ACC_PRJ_ALL | WS_ADMIN;
    if (f & ACC_ORG_READ_PRJ)
        f |= ACC_PRJ_SEE;
    if (f & ACC_ORG_MANAGE_WS)
        f |= WS_ADMIN | ACC_PRJ_WS_CREATE | ACC_PRJ_WS_MOVE | ACC_PRJ_WS_DELETE;
    if (f & ACC_ORG_READ_WS)
        f |= WS_READ;
    return f;
}

/* Flags from the grants of the caller (user or team token) in org. */
static tr_err granted(struct db *db, struct arena *a,
                      const struct access_caller *who, const char *org,
                      const char *ws_id, const char *prj_id, access_t *out,
                      struct tr_errbuf *eb)
{
    struct st_grant *g = NULL;
    int n = 0;
    tr_err e =
        store_grants(db, a, org, who->kind == ACCESS_USER ? who->user_id : NULL,
                     who->kind == ACCESS_TEAM ? who->team_id : NULL, ws_id,
                     prj_id, &g, &n, eb);
    if (e == TR_OK)
        *out = from_grants(g, n);
    return e;
}

/* Site admins and organization tokens: everything, or nothing. */
static bool fixed(const struct access_caller *who, const char *org,
                  access_t *out)
{
    if (who->kind == ACCESS_USER && who->is_admin) {
        *out = ACC_ALL;
        return true;
    }
    if (who->kind == ACCESS_ORG) {
        *out = strcmp(who->org, org) == 0 ? ACC_ALL : 0;
        return true;
    }
    if (who->kind == ACCESS_NONE) {
        *out = 0;
        return true;
    }
    return false;
}

tr_err access_org(struct db *db, struct arena *a,
                  const struct access_caller *who, const char *org,
                  access_t *out, struct tr_errbuf *eb)
{
    *out = 0;
    if (fixed(who, org, out)) {
        *out &= ACC_ORG_ALL;
        return TR_OK;
    }
    if (who->kind == ACCESS_RUN) {
        struct st_run run;
        tr_err e = store_run_get(db, a, who->run_id, &run, eb);
        if (e == TR_OK && strcmp(run.org, org) == 0)
            *out = ACC_ORG_SEE;
        return e == TR_ERR_NOT_FOUND ? TR_OK : e;
    }
    access_t f = 0;
    tr_err e = granted(db, a, who, org, NULL, NULL, &f, eb);
    if (e == TR_OK)
        *out = f & ACC_ORG_ALL;
    return e;
}

tr_err access_project(struct db *db, struct arena *a,
                      const struct access_caller *who,
                      const struct st_project *p, access_t *out,
                      struct tr_errbuf *eb)
{
    *out = 0;
    if (fixed(who, p->org, out))
        return TR_OK;
    if (who->kind == ACCESS_RUN)
        return TR_OK;
    access_t f = 0;
    tr_err e = granted(db, a, who, p->org, NULL, p->id, &f, eb);
    if (e == TR_OK)
        *out = f;
    return e;
}

/* What a run token may do in workspace w (see auth.c): everything a run
 * needs in its own, reading the outputs of one sharing its state. */
static tr_err run_ws(struct db *db, struct arena *a, const char *run_id,
                     const struct st_workspace *w, bool read_only,
                     access_t *out, struct tr_errbuf *eb)
{
    struct st_run run;
    tr_err e = store_run_get(db, a, run_id, &run, eb);
    if (e == TR_ERR_NOT_FOUND)
        return TR_OK;
    if (e != TR_OK || strcmp(run.org, w->org) != 0)
        return e;
    if (strcmp(run.workspace_id, w->id) == 0) {
        *out = ACC_ORG_SEE | ACC_WS_SEE | ACC_WS_PLAN | ACC_WS_APPLY |
               ACC_WS_VARS_READ | ACC_WS_OUTPUTS | ACC_WS_STATE_READ |
               ACC_WS_STATE_WRITE | ACC_WS_LOCK;
        return TR_OK;
    }
    if (!read_only)
        return TR_OK;
    bool shared = store_settings_flag(w->settings, "global-remote-state");
    struct st_workspace own;
    if (!shared && store_settings_flag(w->settings, "project-remote-state") &&
        store_ws_get(db, a, run.workspace_id, &own, NULL) == TR_OK)
        shared = util_streq(own.project_id, w->project_id);
    if (!shared && store_consumer_allowed(db, a, w->id, run.workspace_id,
                                          &shared, NULL) != TR_OK)
        shared = false;
    if (shared)
        *out = ACC_ORG_SEE | ACC_WS_SEE | ACC_WS_OUTPUTS | ACC_WS_STATE_READ;
    return TR_OK;
}

tr_err access_ws(struct db *db, struct arena *a,
                 const struct access_caller *who, const struct st_workspace *w,
                 bool read_only, access_t *out, struct tr_errbuf *eb)
{
    *out = 0;
    if (fixed(who, w->org, out))
        return TR_OK;
    if (who->kind == ACCESS_RUN)
        return run_ws(db, a, who->run_id, w, read_only, out, eb);
    access_t f = 0;
    tr_err e = granted(db, a, who, w->org, w->id, w->project_id, &f, eb);
    if (e == TR_OK)
        *out = f;
    return e;
}

tr_err access_ws_many(struct db *db, struct arena *a,
                      const struct access_caller *who,
                      const struct st_workspace *ws, int n, bool read_only,
                      access_t *out, struct tr_errbuf *eb)
{
    if (n == 0)
        return TR_OK;
    const char *org = ws[0].org;
    bool one_org = true;
    for (int i = 1; i < n; i++)
        one_org = one_org && strcmp(ws[i].org, org) == 0;
    if (!one_org || who->kind == ACCESS_RUN || fixed(who, org, &out[0])) {
        tr_err e = TR_OK;
        for (int i = 0; i < n && e == TR_OK; i++)
            e = access_ws(db, a, who, &ws[i], read_only, &out[i], eb);
        return e;
    }
    const char **wids = arena_alloc(a, sizeof(char *) * (size_t)n);
    const char **pids = arena_alloc(a, sizeof(char *) * (size_t)n);
    int np = 0;
    for (int i = 0; i < n; i++) {
        wids[i] = ws[i].id;
        bool seen = ws[i].project_id == NULL;
        for (int k = 0; k < np && !seen; k++)
            seen = strcmp(pids[k], ws[i].project_id) == 0;
        if (!seen)
            pids[np++] = ws[i].project_id;
    }
    struct st_grant *g = NULL;
    int ng = 0;
    tr_err e = store_grants_many(db, a, org,
                                 who->kind == ACCESS_USER ? who->user_id : NULL,
                                 who->kind == ACCESS_TEAM ? who->team_id : NULL,
                                 wids, n, pids, np, &g, &ng, eb);
    if (e != TR_OK)
        return e;
    /* each workspace: the organization's grants, its own, its project's */
    struct st_grant *mine = arena_alloc(a, sizeof(*mine) * (size_t)(ng + 1));
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int k = 0; k < ng; k++)
            if (g[k].kind == ST_GRANT_MEMBER || g[k].kind == ST_GRANT_TEAM ||
                (g[k].kind == ST_GRANT_WS && util_streq(g[k].key, ws[i].id)) ||
                (g[k].kind == ST_GRANT_PRJ &&
                 util_streq(g[k].key, ws[i].project_id)))
                mine[m++] = g[k];
        out[i] = from_grants(mine, m);
    }
    return TR_OK;
}
