/*
 * organizations.c - organizations and their entitlements.
 *
 *   GET/POST            /organizations            (q= or query= searches)
 *   GET/PATCH/DELETE    /organizations/:name      (PATCH name renames)
 *   GET                 /organizations/:name/entitlement-set
 *
 * and the organization-token routes of tokens.c and the membership routes
 * of memberships.c.  Any user may create an organization and becomes its
 * member and a member of its owners team (store_orgs.c); members added
 * later own nothing until a team gives it (domain/access.h).  An
 * organization token sees only its organization and cannot create or
 * delete organizations.
 *
 * The updatable attributes live in organizations.settings as a JSON object
 * under their TFE names; the `settings` table below gives each one's type,
 * default and allowed values, and drives parsing, validation and output,
 * so the create response, reads and lists render an organization
 * identically.  The default agent pool (the default-agent-pool
 * relationship, required with the agent default execution mode and
 * refused without it) is kept there too, under DEFAULT_POOL.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "api/accounts.h"
#include "core/log.h"

/* ---- settings ---------------------------------------------------------- */

/* SET_FIXED: a flag Terrace takes only at its default (the feature is
 * not there; the other value would promise what it does not do).  A
 * SET_INT with default 0 is null until set (session-timeout: TFE answers
 * null, and the tfe provider then plans clean). */
enum set_kind { SET_BOOL, SET_INT, SET_STR, SET_FIXED };

struct setting {
    const char *name;
    enum set_kind kind;
    json_int_t def_int;         /* SET_BOOL (0/1), SET_INT */
    const char *def_str;        /* SET_STR; NULL renders as null */
    const char *const *choices; /* SET_STR: allowed values, or NULL */
    json_int_t min, max;        /* SET_INT */
};

static const char *const exec_modes[] = {"remote", "local", "agent", NULL};
static const char *const auth_policies[] = {"password", "two_factor_mandatory",
                                            NULL};

static const struct setting settings[] = {
    {"session-timeout", SET_INT, 0, NULL, NULL, 1, 525600},
    {"session-remember", SET_INT, 0, NULL, NULL, 1, 525600},
    {"collaborator-auth-policy", SET_STR, 0, "password", auth_policies, 0, 0},
    {"cost-estimation-enabled", SET_BOOL, 0, NULL, NULL, 0, 0},
    {"default-execution-mode", SET_STR, 0, "remote", exec_modes, 0, 0},
    {"assessments-enforced", SET_BOOL, 0, NULL, NULL, 0, 0},
    {"allow-force-delete-workspaces", SET_BOOL, 0, NULL, NULL, 0, 0},
    {"send-passing-statuses-for-untriggered-speculative-plans", SET_BOOL, 0,
     NULL, NULL, 0, 0},
    {"aggregated-commit-status-enabled", SET_BOOL, 0, NULL, NULL, 0, 0},
    {"owners-team-saml-role-id", SET_STR, 0, NULL, NULL, 0, 0},
    {"speculative-plan-management-enabled", SET_BOOL, 1, NULL, NULL, 0, 0},
    {"user-tokens-enabled", SET_FIXED, 1, NULL, NULL, 0, 0},
    {"enforce-hyok", SET_FIXED, 0, NULL, NULL, 0, 0},
    {"stacks-enabled", SET_FIXED, 0, NULL, NULL, 0, 0},
    {"max-ttl-enabled", SET_FIXED, 0, NULL, NULL, 0, 0},
};

#define NSETTINGS ((int)(sizeof(settings) / sizeof(settings[0])))
#define DEFAULT_POOL "default-agent-pool" /* not an attribute */

/* The stored settings object, parsed (owned by the request). */
static json_t *settings_load(struct http_req *r, const struct st_org *o)
{
    json_t *j = json_loads(o->settings ? o->settings : "{}", 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return http_json_own(r, j);
}

/* Value of one setting (stored or default), as a new reference. */
static json_t *setting_value(const struct setting *s, json_t *stored)
{
    json_t *v = json_object_get(stored, s->name);
    if (v != NULL)
        return json_incref(v);
    switch (s->kind) {
    case SET_BOOL:
    case SET_FIXED:
        return json_boolean(s->def_int);
    case SET_INT:
        return s->def_int ? json_integer(s->def_int) : json_null();
    case SET_STR:
        return s->def_str ? json_string(s->def_str) : json_null();
    }
    return json_null();
}

static bool in_choices(const char *const *choices, const char *v)
{
    for (int i = 0; choices[i] != NULL; i++)
        if (strcmp(choices[i], v) == 0)
            return true;
    return false;
}

/* Copies the settings present in the request's attributes into stored,
 * checking types and ranges.  Returns false after answering 422. */
static bool settings_apply(struct http_req *r, json_t *attrs, json_t *stored)
{
    for (int i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        json_t *v = json_object_get(attrs, s->name);
        if (v == NULL)
            continue;
        const char *want = NULL;
        if ((s->kind == SET_BOOL || s->kind == SET_FIXED) &&
            !json_is_boolean(v))
            want = "true or false";
        else if (s->kind == SET_FIXED && json_is_true(v) != (s->def_int != 0))
            want =
                arena_printf(r->arena, "%s: Terrace does not have this feature",
                             s->def_int ? "true" : "false");
        else if (s->kind == SET_INT && !json_is_null(v) &&
                 (!json_is_integer(v) || json_integer_value(v) < s->min ||
                  json_integer_value(v) > s->max))
            want = arena_printf(r->arena, "an integer from %lld to %lld",
                                (long long)s->min, (long long)s->max);
        else if (s->kind == SET_STR && s->choices != NULL &&
                 (!json_is_string(v) ||
                  !in_choices(s->choices, json_string_value(v))))
            want = s->choices == exec_modes
                       ? "one of remote, local, agent"
                       : "one of password, two_factor_mandatory";
        else if (s->kind == SET_STR && !json_is_string(v) && !json_is_null(v))
            want = "a string";
        if (want != NULL) {
            http_error(r, 422, NULL,
                       arena_printf(r->arena, "attribute %s must be %s",
                                    s->name, want));
            return false;
        }
        json_object_set(stored, s->name, v);
    }
    return true;
}

/* ---- rendering --------------------------------------------------------- */

static json_t *permissions(struct http_req *r, const char *org)
{
    access_t f = 0;
    struct access_caller who = api_caller(r);
    if (access_org(r->srv->db, r->arena, &who, org, &f, NULL) != TR_OK)
        f = 0;
    bool owner = f & ACC_ORG_OWNER;
    bool user = owner && r->who.kind == PRINC_USER;
    return json_pack(
        "{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b}",
        "can-update", owner, "can-destroy", user, "can-access-via-teams",
        r->who.kind == PRINC_USER, "can-create-module",
        (f & ACC_ORG_MANAGE_MODULES) != 0, "can-create-team",
        (f & ACC_ORG_MANAGE_TEAMS) != 0, "can-create-workspace",
        (f & ACC_ORG_MANAGE_WS) != 0, "can-create-workspace-migration", 0,
        "can-manage-users", (f & ACC_ORG_MANAGE_MEMBERSHIP) != 0,
        "can-manage-subscription", 0, "can-manage-run-tasks",
        (f & ACC_ORG_MANAGE_RUN_TASKS) != 0, "can-traverse", 1,
        "can-update-api-token", owner, "can-update-oauth",
        (f & ACC_ORG_MANAGE_VCS) != 0, "can-update-sentinel",
        (f & ACC_ORG_MANAGE_POLICIES) != 0, "can-create-project",
        (f & ACC_ORG_MANAGE_PRJ) != 0);
}

static json_t *org_json(struct http_req *r, const struct st_org *o)
{
    json_t *stored = settings_load(r, o);
    json_t *attrs = json_pack(
        "{s:s,s:s,s:s,s:s,s:b,s:b,s:i,s:b,s:b,s:b,s:b,s:n,s:o}", "name",
        o->name, "email", o->email, "external-id", o->id, "created-at",
        o->created_at, "saml-enabled", 0, "two-factor-conformant", 1,
        "remaining-testable-count", 5, "fair-run-queuing-enabled", 1,
        "plan-expired", 0, "plan-is-trial", 0, "plan-is-enterprise", 0,
        "trial-expires-at", "permissions", permissions(r, o->name));
    for (int i = 0; i < NSETTINGS; i++)
        json_object_set_new(attrs, settings[i].name,
                            setting_value(&settings[i], stored));
    json_t *rels = json_pack(
        "{s:{s:{s:s,s:s},s:{s:s}}}", "entitlement-set", "data", "type",
        "entitlement-sets", "id", o->id, "links", "related",
        arena_printf(r->arena, "/api/v2/organizations/%s/entitlement-set",
                     o->name));
    const char *pool = json_string_value(json_object_get(stored, DEFAULT_POOL));
    json_object_set_new(rels, "default-agent-pool",
                        pool != NULL
                            ? json_pack("{s:{s:s,s:s}}", "data", "type",
                                        "agent-pools", "id", pool)
                            : json_pack("{s:n}", "data"));
    if (o->default_project != NULL)
        json_object_set_new(rels, "default-project",
                            json_pack("{s:{s:s,s:s}}", "data", "type",
                                      "projects", "id", o->default_project));
    return json_pack(
        "{s:s,s:s,s:o,s:o,s:{s:s}}", "id", o->name, "type", "organizations",
        "attributes", attrs, "relationships", rels, "links", "self",
        arena_printf(r->arena, "/api/v2/organizations/%s", o->name));
}

static void reply_org(struct http_req *r, int status, const struct st_org *o)
{
    http_reply_json(r, status, json_pack("{s:o}", "data", org_json(r, o)));
}

/* ---- organizations ----------------------------------------------------- */

static void org_list(struct http_req *r)
{
    struct page p;
    if (!jsonapi_page(r, &p))
        return;
    const char *q = http_query(r, "q");
    if (q == NULL)
        q = http_query(r, "query");
    struct tr_errbuf eb = {{0}};
    struct st_org *orgs = NULL;
    int n = 0;
    int64_t total = 0;
    tr_err e = TR_OK;
    if (r->who.kind == PRINC_ORG || r->who.kind == PRINC_TEAM) {
        /* an organization or team token sees exactly its organization */
        struct st_org *one = arena_alloc(r->arena, sizeof(*one));
        e = store_org_get(r->srv->db, r->arena, r->who.org, one, &eb);
        bool match = e == TR_OK &&
                     (q == NULL || *q == '\0' || strcasestr(one->name, q) ||
                      strcasestr(one->email, q));
        if (e == TR_OK && match) {
            total = 1;
            n = p.number == 1 ? 1 : 0;
            orgs = one;
        }
    } else {
        e = store_org_list(
            r->srv->db, r->arena, r->who.is_admin ? NULL : r->who.user_id, q,
            (p.number - 1) * p.size, p.size, &orgs, &n, &total, &eb);
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, org_json(r, &orgs[i]));
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, total));
}

static const char *exec_mode(json_t *stored)
{
    json_t *v = json_object_get(stored, "default-execution-mode");
    return json_is_string(v) ? json_string_value(v) : "remote";
}

/* The default-agent-pool relationship against the execution mode mode
 * the organization will have: a pool (of this organization: org NULL,
 * being created, has none) only with mode agent, and mode agent only
 * with one.  Records it in stored under DEFAULT_POOL, and drops it
 * there when the mode is not agent. */
static bool agent_pool_ok(struct http_req *r, json_t *data, const char *org,
                          json_t *stored)
{
    const char *mode = exec_mode(stored);
    json_t *rel = json_object_get(json_object_get(data, "relationships"),
                                  "default-agent-pool");
    json_t *d = json_object_get(rel, "data");
    bool pool = d != NULL && !json_is_null(d);
    bool agent = strcmp(mode, "agent") == 0;
    if (pool && !agent) {
        http_error(r, 422, NULL,
                   "Default agent pool must not be specified unless using "
                   "'agent' execution mode");
        return false;
    }
    if (pool) {
        const char *id = jsonapi_rel_id(data, "default-agent-pool");
        struct st_agent_pool p;
        if (id == NULL || org == NULL ||
            store_apool_get(r->srv->db, r->arena, id, &p, NULL) != TR_OK ||
            strcmp(p.org, org) != 0) {
            http_error(r, 422, NULL,
                       arena_printf(r->arena,
                                    "agent pool %s not found in this "
                                    "organization: create the pool first",
                                    id != NULL ? id : "(no id)"));
            return false;
        }
        json_object_set_new(stored, DEFAULT_POOL, json_string(id));
    } else if (rel != NULL && d != NULL && json_is_null(d)) {
        json_object_del(stored, DEFAULT_POOL);
    }
    if (!agent)
        json_object_del(stored, DEFAULT_POOL);
    if (agent && !json_is_string(json_object_get(stored, DEFAULT_POOL))) {
        http_error(r, 422, NULL,
                   "'agent' execution mode needs a default agent pool: set "
                   "relationships.default-agent-pool to a pool of the "
                   "organization");
        return false;
    }
    return true;
}

static void org_create(struct http_req *r)
{
    if (!api_need_user(r, false))
        return;
    json_t *data = jsonapi_body(r, "organizations");
    if (data == NULL)
        return;
    const char *name = NULL, *email = NULL;
    if (!jsonapi_attr_str(r, data, "name", &name) ||
        !jsonapi_attr_str(r, data, "email", &email))
        return;
    if (name == NULL || !util_valid_name(name)) {
        http_error(r, 422, NULL,
                   name == NULL ? "name is required"
                                : "name must be 1 to 90 letters, digits, "
                                  "'-' or '_'");
        return;
    }
    if (email == NULL || !api_valid_email(email)) {
        http_error(r, 422, NULL,
                   email == NULL ? "email is required"
                                 : "email is not a valid address");
        return;
    }
    json_t *stored = http_json_own(r, json_object());
    if (!settings_apply(r, jsonapi_attrs(data), stored) ||
        !agent_pool_ok(r, data, NULL, stored))
        return;
    char *text = json_dumps(stored, JSON_COMPACT | JSON_SORT_KEYS);
    struct st_org o;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_org_create(r->srv->db, r->arena, name, email, text,
                                r->who.user_id, &o, &eb);
    free(text);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s organization %s created by %s", r->request_id, o.name,
             r->who.username);
    reply_org(r, 201, &o);
}

static void org_show(struct http_req *r)
{
    struct st_org o;
    if (api_org_access(r, http_param(r, "name"), &o))
        reply_org(r, 200, &o);
}

/* Loads the route's organization for a change only its owners may make:
 * otherwise writes 404 (not visible) or 403 with why, and returns false. */
static bool owned_org(struct http_req *r, struct st_org *o, const char *why)
{
    if (!api_org_access(r, http_param(r, "name"), o))
        return false;
    if (!api_org_admin(r, o->name)) {
        http_error(r, 403, NULL, why);
        return false;
    }
    return true;
}

static void org_update(struct http_req *r)
{
    struct st_org o;
    if (!owned_org(r, &o, "only owners may change the organization"))
        return;
    json_t *data = jsonapi_body(r, "organizations");
    if (data == NULL)
        return;
    const char *name = NULL, *email = NULL;
    if (!jsonapi_attr_str(r, data, "name", &name) ||
        !jsonapi_attr_str(r, data, "email", &email))
        return;
    if (name != NULL && !util_valid_name(name)) {
        http_error(r, 422, NULL,
                   "name must be 1 to 90 letters, digits, '-' or '_'");
        return;
    }
    if (email != NULL && !api_valid_email(email)) {
        http_error(r, 422, NULL, "email is not a valid address");
        return;
    }
    json_t *stored = settings_load(r, &o);
    if (!settings_apply(r, jsonapi_attrs(data), stored) ||
        !agent_pool_ok(r, data, o.name, stored))
        return;
    char *text = json_dumps(stored, JSON_COMPACT | JSON_SORT_KEYS);
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_org_update(r->srv->db, r->arena, o.name, name, email, text, &eb);
    free(text);
    if (e == TR_OK)
        e = store_org_get(r->srv->db, r->arena, name ? name : o.name, &o, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_org(r, 200, &o);
}

static void org_delete(struct http_req *r)
{
    struct st_org o;
    if (!api_org_access(r, http_param(r, "name"), &o))
        return;
    if (r->who.kind != PRINC_USER || !api_org_admin(r, o.name)) {
        http_error(r, 403, NULL,
                   "only an owner's user token may delete an organization");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_org_delete(r->srv->db, r->arena, o.name, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s organization %s deleted by %s", r->request_id, o.name,
             r->who.username);
    http_reply(r, 204, NULL, "", 0);
}

static void entitlements(struct http_req *r)
{
    struct st_org o;
    if (!api_org_access(r, http_param(r, "name"), &o))
        return;
    /* true for what Terrace serves: remote operations, state, teams, agents
     * and cost estimates (GET /cost-estimates/:id; no price data, so
     * $0.00) */
    json_t *attrs = json_pack(
        "{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b}",
        "operations", 1, "state-storage", 1, "agents", 1, "audit-logging", 0,
        "cost-estimation", 1, "global-run-tasks", 0, "module-tests-generation",
        0, "private-module-registry", 0, "private-run-tasks", 0, "run-tasks", 0,
        "sso", 0, "sentinel", 0, "teams", 1, "vcs-integrations", 0);
    http_reply_json(
        r, 200,
        json_pack("{s:{s:s,s:s,s:o,s:{s:s}}}", "data", "id", o.id, "type",
                  "entitlement-sets", "attributes", attrs, "links", "self",
                  arena_printf(r->arena, "/api/v2/entitlement-sets/%s", o.id)));
}

const struct route api_org_routes[] = {
    {"GET", "/api/v2/organizations", org_list, ROUTE_AUTH},
    {"POST", "/api/v2/organizations", org_create, ROUTE_AUTH},
    {"GET", "/api/v2/organizations/:name", org_show, ROUTE_AUTH | ROUTE_RUN},
    {"PATCH", "/api/v2/organizations/:name", org_update, ROUTE_AUTH},
    {"DELETE", "/api/v2/organizations/:name", org_delete, ROUTE_AUTH},
    {"GET", "/api/v2/organizations/:name/entitlement-set", entitlements,
     ROUTE_AUTH | ROUTE_RUN},
    {"GET", "/api/v2/organizations/:name/authentication-token",
     api_org_token_get, ROUTE_AUTH},
    {"POST", "/api/v2/organizations/:name/authentication-token",
     api_org_token_create, ROUTE_AUTH},
    {"DELETE", "/api/v2/organizations/:name/authentication-token",
     api_org_token_delete, ROUTE_AUTH},
    {"GET", "/api/v2/organizations/:name/organization-memberships",
     api_memberships_list, ROUTE_AUTH},
    {"POST", "/api/v2/organizations/:name/organization-memberships",
     api_membership_create, ROUTE_AUTH},
    {"GET", "/api/v2/organization-memberships", api_memberships_own,
     ROUTE_AUTH},
    {"GET", "/api/v2/organization-memberships/:id", api_membership_show,
     ROUTE_AUTH},
    {"DELETE", "/api/v2/organization-memberships/:id", api_membership_delete,
     ROUTE_AUTH},
    {"POST", "/api/v2/organization-memberships/:id/actions/accept",
     api_membership_accept, ROUTE_AUTH},
    {0},
};
