/*
 * teams.c - teams of an organization, as TFE's teams API:
 *
 *   GET/POST        /organizations/:org/teams   (q, filter[names], paging,
 *                                                include=users,
 *                                                organization-memberships)
 *   GET/PATCH/DELETE /teams/:id
 *   POST/DELETE     /teams/:id/relationships/users          (by username)
 *   POST/DELETE     /teams/:id/relationships/organization-memberships
 *
 * Managing teams needs manage-teams (owners have it); changing members
 * needs manage-membership, and the owners team's members only its owners.
 * A secret team is seen only by its members and by callers with
 * access-secret-teams; others get 404.  The owners team cannot be
 * deleted, renamed, emptied, or given other organization access
 * (store_teams.c keeps the membership rule in its transactions).  An
 * invited organization membership may be added to (or removed from) a
 * team as in TFE: it is listed among the team's organization-memberships
 * and its user joins when accepting the invitation.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/teams_int.h"

#define TEAM_NAME_MAX 100
#define TEAM_MAX_ITEMS 100

/* ---- documents ---------------------------------------------------------- */

json_t *api_team_org_access_json(const char *org_access, bool owners)
{
    access_t f = owners ? ACC_ORG_ALL : access_org_level(org_access);
    json_t *o = json_object();
    for (const struct access_name *n = access_org_names; n->name; n++)
        json_object_set_new(o, n->name, json_boolean(f & n->flag));
    return o;
}

/* The id of user_id's membership of o ("ou-..."); an empty string when
 * it has none (a store failure reads as none). */
static const char *membership_id(struct http_req *r, const struct st_org *o,
                                 const char *user_id)
{
    struct st_membership_filter f = {.org = o->name, .user_id = user_id};
    struct st_membership *ms = NULL;
    int n = 0;
    int64_t total = 0;
    if (store_membership_list(r->srv->db, r->arena, &f, 0, 1, &ms, &n, &total,
                              NULL) != TR_OK ||
        n == 0)
        return "";
    return ms[0].id;
}

/* Membership id of o: *invited says whether it is an invitation (which
 * joins the team when accepted, as in TFE), else the result is its user.
 * NULL when o has no such membership (*e says why: TR_ERR_NOT_FOUND or a
 * store failure). */
static const char *membership_user(struct http_req *r, const struct st_org *o,
                                   const char *id, bool *invited, tr_err *e,
                                   struct tr_errbuf *eb)
{
    struct st_membership m;
    *invited = false;
    *e = store_membership_get(r->srv->db, r->arena, id, &m, eb);
    if (*e == TR_OK && strcmp(m.org, o->name) != 0)
        *e = TR_ERR_NOT_FOUND;
    if (*e != TR_OK)
        return NULL;
    *invited = strcmp(m.status, "invited") == 0;
    return *invited ? m.id : m.user_id;
}

json_t *api_team_json(struct http_req *r, const struct st_org *o,
                      const struct st_team *t, const struct st_user *users,
                      int nusers, const struct st_membership *invites,
                      int ninvites)
{
    access_t f = 0;
    struct access_caller who = api_caller(r);
    if (access_org(r->srv->db, r->arena, &who, t->org, &f, NULL) != TR_OK)
        f = 0;
    bool manage = f & ACC_ORG_MANAGE_TEAMS;
    bool members = (f & ACC_ORG_MANAGE_MEMBERSHIP) &&
                   (!t->is_owners || (f & ACC_ORG_OWNER));
    json_t *u = json_array(), *m = json_array();
    for (int i = 0; i < nusers; i++) {
        json_array_append_new(
            u, json_pack("{s:s,s:s}", "type", "users", "id", users[i].id));
        json_array_append_new(m, json_pack("{s:s,s:s}", "type",
                                           "organization-memberships", "id",
                                           membership_id(r, o, users[i].id)));
    }
    for (int i = 0; i < ninvites; i++)
        json_array_append_new(m, json_pack("{s:s,s:s}", "type",
                                           "organization-memberships", "id",
                                           invites[i].id));
    const char *self = arena_printf(r->arena, "/api/v2/teams/%s", t->id);
    json_t *j = json_pack(
        "{s:s,s:s,s:{s:s,s:o,s:I,s:s,s:b,s:b,s:o,s:{s:b,s:b,s:b,s:b,s:b,s:b,"
        "s:b,s:b,s:b},s:s},s:{s:{s:{s:s,s:s}},s:{s:o},s:{s:o},"
        "s:{s:n}},s:{s:s}}",
        "id", t->id, "type", "teams", "attributes", "name", t->name,
        "sso-team-id", api_time(t->sso_team_id), "users-count",
        (json_int_t)t->user_count, "visibility", t->visibility,
        "allow-member-token-management", t->allow_member_tokens, "is-unified",
        0, "organization-access",
        api_team_org_access_json(t->org_access, t->is_owners), "permissions",
        "can-update-membership", members, "can-destroy",
        manage && !t->is_owners, "can-update-organization-access",
        (f & ACC_ORG_MANAGE_ORG_ACCESS) && !t->is_owners,
        "can-update-api-token", manage, "can-update-visibility", manage,
        "can-update-name", manage && !t->is_owners, "can-update-sso-team-id",
        manage, "can-update-member-token-management", manage,
        "can-view-api-token", manage, "created-at", t->created_at,
        "relationships", "organization", "data", "type", "organizations", "id",
        t->org, "users", "data", u, "organization-memberships", "data", m,
        "authentication-token", "meta", "links", "self", self);
    return j;
}

/* include=users,organization-memberships: *users and *members. */
static bool parse_include(struct http_req *r, bool *users, bool *members)
{
    *users = *members = false;
    const char *inc = http_query(r, "include");
    if (inc == NULL || *inc == '\0')
        return true;
    char *copy = arena_strdup(r->arena, inc), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "users") == 0) {
            *users = true;
        } else if (strcmp(t, "organization-memberships") == 0) {
            *members = true;
        } else {
            http_error(
                r, 400, "bad request",
                arena_printf(r->arena, "Invalid include parameter: %s", t));
            return false;
        }
    }
    return true;
}

/* The team resource with its members; included (nullable) gets the
 * users and/or memberships asked for.  NULL after a store failure. */
static json_t *team_doc(struct http_req *r, const struct st_org *o,
                        const struct st_team *t, bool inc_users,
                        bool inc_members, json_t *included)
{
    struct st_user *users = NULL;
    int n = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_team_members(r->srv->db, r->arena, t->id, &users, &n, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return NULL;
    }
    for (int i = 0; included != NULL && i < n; i++) {
        if (inc_users)
            json_array_append_new(
                included,
                api_user_json(r, &users[i], USER_VIEW_PUBLIC, NULL, 0));
        if (inc_members)
            json_array_append_new(
                included,
                json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:{s:{s:s,s:s}},"
                          "s:{s:{s:s,s:s}}}}",
                          "id", membership_id(r, o, users[i].id), "type",
                          "organization-memberships", "attributes", "status",
                          "active", "email",
                          users[i].email ? users[i].email : "", "relationships",
                          "organization", "data", "type", "organizations", "id",
                          o->name, "user", "data", "type", "users", "id",
                          users[i].id));
    }
    struct st_membership *inv = NULL;
    int ninv = 0;
    e = store_team_invites(r->srv->db, r->arena, t->id, &inv, &ninv, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return NULL;
    }
    for (int i = 0; included != NULL && inc_members && i < ninv; i++)
        json_array_append_new(
            included,
            json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:{s:{s:s,s:s}},"
                      "s:{s:{s:s,s:s}}}}",
                      "id", inv[i].id, "type", "organization-memberships",
                      "attributes", "status", "invited", "email",
                      inv[i].email ? inv[i].email : "", "relationships",
                      "organization", "data", "type", "organizations", "id",
                      o->name, "user", "data", "type", "users", "id",
                      inv[i].invitee_id));
    return api_team_json(r, o, t, users, n, inv, ninv);
}

static void reply_team(struct http_req *r, int status, const struct st_org *o,
                       const struct st_team *t)
{
    bool iu = false, im = false;
    if (!parse_include(r, &iu, &im))
        return;
    json_t *inc = json_array();
    json_t *d = team_doc(r, o, t, iu, im, inc);
    if (d == NULL) {
        json_decref(inc);
        return;
    }
    json_t *doc = json_pack("{s:o}", "data", d);
    if (iu || im)
        json_object_set_new(doc, "included", inc);
    else
        json_decref(inc);
    http_reply_json(r, status, doc);
}

/* ---- access ------------------------------------------------------------- */

/* True when the caller (flags f in the team's organization) may see t. */
static bool team_visible(struct http_req *r, const struct st_team *t,
                         access_t f)
{
    if (strcmp(t->visibility, "organization") == 0 ||
        (f & ACC_ORG_SECRET_TEAMS))
        return true;
    if (r->who.kind == PRINC_TEAM)
        return strcmp(r->who.team_id, t->id) == 0;
    if (r->who.kind != PRINC_USER)
        return false;
    struct st_user *users = NULL;
    int n = 0;
    if (store_team_members(r->srv->db, r->arena, t->id, &users, &n, NULL) !=
        TR_OK)
        return false;
    for (int i = 0; i < n; i++)
        if (strcmp(users[i].id, r->who.user_id) == 0)
            return true;
    return false;
}

bool api_team_access(struct http_req *r, const char *id, struct st_team *t,
                     struct st_org *o, access_t *perms)
{
    struct tr_errbuf eb = {{0}};
    access_t f = 0;
    tr_err e = store_team_get(r->srv->db, r->arena, id, t, &eb);
    if (e == TR_OK) {
        struct access_caller who = api_caller(r);
        e = access_org(r->srv->db, r->arena, &who, t->org, &f, &eb);
    }
    if (e == TR_OK && (!(f & ACC_ORG_SEE) || !team_visible(r, t, f)))
        e = TR_ERR_NOT_FOUND;
    if (e == TR_OK && o != NULL)
        e = store_org_get(r->srv->db, r->arena, t->org, o, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "team %s not found", id));
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (perms != NULL)
        *perms = f;
    return true;
}

/* ---- input -------------------------------------------------------------- */

struct team_in {
    const char *name;
    const char *visibility;
    const char *sso_team_id;
    int allow_tokens;       /* -1: not given */
    const char *org_access; /* JSON text or NULL */
    bool asks_org_access;   /* organization-access given with a true flag */
};

static bool parse_org_access(struct http_req *r, json_t *v, const char *cur,
                             struct team_in *in)
{
    if (!json_is_object(v)) {
        http_error(r, 422, NULL, "organization-access must be an object");
        return false;
    }
    json_t *merged = json_loads(cur != NULL ? cur : "{}", 0, NULL);
    if (merged == NULL)
        merged = json_object();
    http_json_own(r, merged);
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val)
    {
        const struct access_name *n = access_org_names;
        while (n->name != NULL && strcmp(n->name, k) != 0)
            n++;
        if (n->name == NULL) {
            http_error(r, 422, NULL,
                       arena_printf(r->arena,
                                    "organization-access has no permission "
                                    "%s",
                                    k));
            return false;
        }
        if (!json_is_boolean(val)) {
            http_error(r, 422, NULL,
                       arena_printf(r->arena,
                                    "organization-access.%s must be true or "
                                    "false",
                                    k));
            return false;
        }
        if (json_is_true(val))
            in->asks_org_access = true;
        json_object_set(merged, k, val);
    }
    in->org_access = api_ws_dump(r, merged);
    return true;
}

/* Reads a create (cur NULL) or update body. */
static bool parse_team(struct http_req *r, json_t *data,
                       const struct st_team *cur, struct team_in *in)
{
    *in = (struct team_in){.allow_tokens = -1};
    if (!jsonapi_attr_str(r, data, "name", &in->name) ||
        !jsonapi_attr_str(r, data, "visibility", &in->visibility) ||
        !jsonapi_attr_bool(r, data, "allow-member-token-management",
                           &in->allow_tokens))
        return false;
    json_t *sso = json_object_get(jsonapi_attrs(data), "sso-team-id");
    if (sso != NULL && !json_is_null(sso) && !json_is_string(sso)) {
        http_error(r, 422, NULL, "sso-team-id must be a string");
        return false;
    }
    if (json_is_string(sso))
        in->sso_team_id = json_string_value(sso);
    if (in->name != NULL &&
        (*in->name == '\0' || strlen(in->name) > TEAM_NAME_MAX)) {
        http_error(r, 422, NULL,
                   "name must be 1 to 100 characters: the team's name");
        return false;
    }
    if (in->name == NULL && cur == NULL) {
        http_error(r, 422, NULL, "Name can't be blank: name is required");
        return false;
    }
    if (in->visibility != NULL && strcmp(in->visibility, "secret") != 0 &&
        strcmp(in->visibility, "organization") != 0) {
        http_error(r, 422, NULL,
                   "visibility must be \"secret\" or \"organization\"");
        return false;
    }
    json_t *oa = json_object_get(jsonapi_attrs(data), "organization-access");
    if (oa != NULL && !json_is_null(oa) &&
        !parse_org_access(r, oa, cur ? cur->org_access : NULL, in))
        return false;
    if (cur != NULL && cur->is_owners &&
        ((in->name != NULL && strcmp(in->name, cur->name) != 0) ||
         in->org_access != NULL)) {
        http_error(r, 422, NULL,
                   "the owners team's name and organization access cannot "
                   "be changed");
        return false;
    }
    return true;
}

/* ---- handlers ----------------------------------------------------------- */

static void team_list(struct http_req *r)
{
    struct st_org o;
    struct page p;
    access_t f = 0;
    bool iu = false, im = false;
    if (!api_org_perms(r, http_param(r, "org"), &o, &f) ||
        !jsonapi_page(r, &p) || !parse_include(r, &iu, &im))
        return;
    const char *names[TEAM_MAX_ITEMS];
    int nnames = 0;
    const char *fn = http_query(r, "filter[names]");
    if (fn != NULL && *fn != '\0') {
        char *copy = arena_strdup(r->arena, fn), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            if (nnames >= TEAM_MAX_ITEMS) {
                http_error(r, 400, NULL, "filter[names] lists too many names");
                return;
            }
            names[nnames++] = t;
        }
    }
    const char *visible_to = NULL;
    if (!(f & ACC_ORG_SECRET_TEAMS))
        visible_to = r->who.kind == PRINC_USER ? r->who.user_id : "";
    struct st_team *teams = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_team_list(
        r->srv->db, r->arena, o.name, http_query(r, "q"), names, nnames,
        visible_to, (p.number - 1) * p.size, p.size, &teams, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array(), *inc = json_array();
    for (int i = 0; i < n; i++) {
        if (r->who.kind == PRINC_TEAM && !(f & ACC_ORG_SECRET_TEAMS) &&
            strcmp(teams[i].visibility, "organization") != 0 &&
            strcmp(teams[i].id, r->who.team_id) != 0)
            continue;
        json_t *d = team_doc(r, &o, &teams[i], iu, im, inc);
        if (d == NULL) {
            json_decref(items);
            json_decref(inc);
            return;
        }
        json_array_append_new(items, d);
    }
    json_t *doc = jsonapi_list_doc(items, &p, total);
    if (iu || im)
        json_object_set_new(doc, "included", inc);
    else
        json_decref(inc);
    http_reply_json(r, 200, doc);
}

static void team_create(struct http_req *r)
{
    struct st_org o;
    struct team_in in;
    if (!api_org_access(r, http_param(r, "org"), &o) ||
        !api_org_allow(r, o.name, ACC_ORG_MANAGE_TEAMS, "manage teams"))
        return;
    json_t *data = jsonapi_body(r, "teams");
    if (data == NULL || !parse_team(r, data, NULL, &in))
        return;
    if (in.asks_org_access &&
        !api_org_allow(r, o.name, ACC_ORG_MANAGE_ORG_ACCESS,
                       "give teams organization access"))
        return;
    struct st_team t = {
        .org = o.name,
        .name = in.name,
        .visibility = in.visibility,
        .sso_team_id = in.sso_team_id,
        .allow_member_tokens = in.allow_tokens != 0,
        .org_access = in.org_access,
    };
    struct tr_errbuf eb = {{0}};
    tr_err e = store_team_create(r->srv->db, r->arena, &t, &eb);
    if (e == TR_OK)
        e = store_team_get(r->srv->db, r->arena, t.id, &t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_team(r, 201, &o, &t);
}

static void team_show(struct http_req *r)
{
    struct st_team t;
    struct st_org o;
    if (api_team_access(r, http_param(r, "id"), &t, &o, NULL))
        reply_team(r, 200, &o, &t);
}

static void team_update(struct http_req *r)
{
    struct st_team t;
    struct st_org o;
    struct team_in in;
    access_t f = 0;
    if (!api_team_access(r, http_param(r, "id"), &t, &o, &f) ||
        !api_org_allow(r, t.org, ACC_ORG_MANAGE_TEAMS, "manage teams"))
        return;
    json_t *data = jsonapi_body(r, "teams");
    if (data == NULL || !parse_team(r, data, &t, &in))
        return;
    if (in.org_access != NULL &&
        !api_org_allow(r, t.org, ACC_ORG_MANAGE_ORG_ACCESS,
                       "change the organization access of teams"))
        return;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_team_update(r->srv->db, r->arena, t.id, in.name, in.visibility,
                          in.sso_team_id, in.allow_tokens, in.org_access, &eb);
    if (e == TR_OK)
        e = store_team_get(r->srv->db, r->arena, t.id, &t, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_team(r, 200, &o, &t);
}

static void team_delete(struct http_req *r)
{
    struct st_team t;
    if (!api_team_access(r, http_param(r, "id"), &t, NULL, NULL) ||
        !api_org_allow(r, t.org, ACC_ORG_MANAGE_TEAMS, "manage teams"))
        return;
    if (t.is_owners) {
        http_error(r, 422, NULL, "the owners team cannot be deleted");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_team_delete(r->srv->db, r->arena, t.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

/* POST/DELETE of users (by_membership false: ids are usernames) or
 * organization memberships ("ou-..."). */
static void change_members(struct http_req *r, bool add, bool by_membership)
{
    struct st_team t;
    struct st_org o;
    if (!api_team_access(r, http_param(r, "id"), &t, &o, NULL) ||
        !api_org_allow(r, t.org, ACC_ORG_MANAGE_MEMBERSHIP,
                       "change team members") ||
        (t.is_owners && !api_org_allow(r, t.org, ACC_ORG_OWNER,
                                       "change the owners team's members")))
        return;
    const char *type = by_membership ? "organization-memberships" : "users";
    json_t *list = api_ws_id_list_body(r, type);
    if (list == NULL)
        return;
    size_t n = json_array_size(list);
    const char **ids = arena_alloc(r->arena, sizeof(char *) * (n + 1));
    const char **inv = arena_alloc(r->arena, sizeof(char *) * (n + 1));
    int nids = 0, ninv = 0;
    struct tr_errbuf eb = {{0}};
    for (size_t i = 0; i < n; i++) {
        const char *id =
            json_string_value(json_object_get(json_array_get(list, i), "id"));
        struct st_user u;
        tr_err e = TR_ERR_NOT_FOUND;
        if (id == NULL || *id == '\0') {
            http_error(r, 422, NULL, "every data[].id must be a string");
            return;
        }
        bool invited = false;
        if (by_membership) {
            const char *v = membership_user(r, &o, id, &invited, &e, &eb);
            if (invited)
                inv[ninv++] = v;
            else
                ids[nids++] = v;
        } else {
            e = store_user_by_name(r->srv->db, r->arena, id, &u, &eb);
            ids[nids++] = e == TR_OK ? u.id : NULL;
        }
        if (e == TR_ERR_NOT_FOUND) {
            http_error(
                r, 404, "not found",
                arena_printf(r->arena, "%s %s not found",
                             by_membership ? "organization membership" : "user",
                             id));
            return;
        }
        if (e != TR_OK) {
            api_store_fail(r, e, &eb);
            return;
        }
    }
    tr_err e = store_team_set_memberships(r->srv->db, r->arena, t.id, add, ids,
                                          nids, inv, ninv, &eb);
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(&eb, TR_ERR_INVALID, "%s", eb.msg);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, "", 0);
}

static void users_add(struct http_req *r)
{
    change_members(r, true, false);
}

static void users_remove(struct http_req *r)
{
    change_members(r, false, false);
}

static void memberships_add(struct http_req *r)
{
    change_members(r, true, true);
}

static void memberships_remove(struct http_req *r)
{
    change_members(r, false, true);
}

const struct route api_team_routes[] = {
    {"GET", "/api/v2/organizations/:org/teams", team_list, ROUTE_AUTH},
    {"POST", "/api/v2/organizations/:org/teams", team_create, ROUTE_AUTH},
    {"GET", "/api/v2/teams/:id", team_show, ROUTE_AUTH},
    {"PATCH", "/api/v2/teams/:id", team_update, ROUTE_AUTH},
    {"DELETE", "/api/v2/teams/:id", team_delete, ROUTE_AUTH},
    {"POST", "/api/v2/teams/:id/relationships/users", users_add, ROUTE_AUTH},
    {"DELETE", "/api/v2/teams/:id/relationships/users", users_remove,
     ROUTE_AUTH},
    {"POST", "/api/v2/teams/:id/relationships/organization-memberships",
     memberships_add, ROUTE_AUTH},
    {"DELETE", "/api/v2/teams/:id/relationships/organization-memberships",
     memberships_remove, ROUTE_AUTH},
    {0},
};
