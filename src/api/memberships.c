/*
 * memberships.c - organization memberships and invitations (TFE's
 * organization-memberships), routed by organizations.c's table:
 *
 *   GET/POST /organizations/:name/organization-memberships
 *            list (q, filter[status], filter[email], paging,
 *            include=user,teams) / invite by email, optionally into
 *            teams (owners only)
 *   GET      /organization-memberships            the caller's own
 *   GET/DELETE /organization-memberships/:id
 *   POST     /organization-memberships/:id/actions/accept
 *
 * An invitation is "invited" until its user accepts it with the accept
 * action (TFE accepts in its web UI; Terrace has none, so this is
 * Terrace's own route); only then does the user see the organization.
 * The invited user sees their own memberships (the list without an
 * organization, and show) and may accept, or decline / leave with
 * DELETE.  An invitation to an address no account has yet names the id
 * that account will get (store_memberships.c).  When the leader has SMTP
 * settings it mails each invitation (notify.c); the request never waits
 * for that.
 *
 * An invitation may name teams of the organization; the user joins them
 * on acceptance (store_memberships.c), and until then they are the
 * membership's teams relationship.
 *
 * Owners decide through api_org_admin(); an organization keeps its last
 * owner.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/accounts.h"
#include "core/log.h"

#define MAX_EMAIL_FILTER 100 /* addresses in one filter[email] */

static json_t *membership_json(struct http_req *r,
                               const struct st_membership *m)
{
    json_t *teams = json_array();
    for (int i = 0; i < m->nteams; i++)
        json_array_append_new(teams, json_pack("{s:s,s:s}", "type", "teams",
                                               "id", m->team_ids[i]));
    return json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:s},s:{s:{s:{s:s,s:s}},s:{s:{s:s,s:s}},s:{s:o}},"
        "s:{s:s}}",
        "id", m->id, "type", "organization-memberships", "attributes", "status",
        m->status, "email", m->email ? m->email : "", "created-at",
        m->created_at, "relationships", "organization", "data", "type",
        "organizations", "id", m->org, "user", "data", "type", "users", "id",
        m->invitee_id, "teams", "data", teams, "links", "self",
        arena_printf(r->arena, "/api/v2/organization-memberships/%s", m->id));
}

/* The membership's user for `included`; an invitation to an address with
 * no account yet shows the reserved id and the address only. */
static json_t *user_json(struct http_req *r, const struct st_membership *m)
{
    if (m->has_user)
        return api_user_json(r, &m->user, USER_VIEW_SELF, NULL, 0);
    return json_pack("{s:s,s:s,s:{s:n,s:s},s:{s:s}}", "id", m->invitee_id,
                     "type", "users", "attributes", "username", "email",
                     m->email, "links", "self",
                     arena_printf(r->arena, "/api/v2/users/%s", m->invitee_id));
}

static json_t *team_json(struct http_req *r, const struct st_team *t)
{
    return json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:I,s:s},s:{s:{s:{s:s,s:s}}},s:{s:s}}", "id",
        t->id, "type", "teams", "attributes", "name", t->name, "visibility",
        t->visibility, "users-count", (json_int_t)t->user_count, "created-at",
        t->created_at, "relationships", "organization", "data", "type",
        "organizations", "id", t->org, "links", "self",
        arena_printf(r->arena, "/api/v2/teams/%s", t->id));
}

/* What include= asks for. */
struct incl {
    bool user, teams;
};

/* The teams of the n memberships ms, id -> document, read with one query
 * per page (store_team_get_many()); a team gone meanwhile is absent.
 * NULL after answering a store error. */
static json_t *teams_of(struct http_req *r, const struct st_membership *ms,
                        int n)
{
    json_t *docs = http_json_own(r, json_object());
    int total = 0;
    for (int i = 0; i < n; i++)
        total += ms[i].nteams;
    const char **ids =
        arena_alloc(r->arena, sizeof(char *) * (size_t)(total + 1));
    int nids = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < ms[i].nteams; k++)
            if (json_object_get(docs, ms[i].team_ids[k]) == NULL) {
                json_object_set_new(docs, ms[i].team_ids[k], json_null());
                ids[nids++] = ms[i].team_ids[k];
            }
    struct st_team *teams = NULL;
    int nteams = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_team_get_many(r->srv->db, r->arena, ids, nids, &teams,
                                   &nteams, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return NULL;
    }
    json_object_clear(docs);
    for (int i = 0; i < nteams; i++)
        json_object_set_new(docs, teams[i].id, team_json(r, &teams[i]));
    return docs;
}

/* Appends to included the user (inc.user) and teams (inc.teams, from
 * teams_of()) of m, each team once (seen holds the ids already there). */
static void add_included(struct http_req *r, json_t *included, json_t *seen,
                         const struct st_membership *m, struct incl inc,
                         json_t *teams)
{
    if (inc.user)
        json_array_append_new(included, user_json(r, m));
    for (int i = 0; inc.teams && i < m->nteams; i++) {
        if (json_object_get(seen, m->team_ids[i]) != NULL)
            continue;
        json_object_set_new(seen, m->team_ids[i], json_true());
        json_t *t = json_object_get(teams, m->team_ids[i]);
        if (t != NULL)
            json_array_append(included, t);
    }
}

/* include=: "user" and "teams".  Answers 400 on anything else. */
static bool parse_include(struct http_req *r, struct incl *inc)
{
    inc->user = inc->teams = false;
    const char *v = http_query(r, "include");
    if (v == NULL || *v == '\0')
        return true;
    char *copy = arena_strdup(r->arena, v), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "user") == 0) {
            inc->user = true;
        } else if (strcmp(t, "teams") == 0) {
            inc->teams = true;
        } else {
            http_error(
                r, 400, "bad request",
                arena_printf(r->arena, "Invalid include parameter: %s", t));
            return false;
        }
    }
    return true;
}

static void reply_one(struct http_req *r, int status,
                      const struct st_membership *m, struct incl inc)
{
    json_t *teams = inc.teams ? teams_of(r, m, 1) : NULL;
    if (inc.teams && teams == NULL)
        return;
    json_t *doc = json_pack("{s:o}", "data", membership_json(r, m));
    if (inc.user || inc.teams) {
        json_t *included = json_array(), *seen = json_object();
        add_included(r, included, seen, m, inc, teams);
        json_decref(seen);
        json_object_set_new(doc, "included", included);
    }
    http_reply_json(r, status, doc);
}

static void reply_list(struct http_req *r, const struct page *p,
                       const struct st_membership_filter *f, struct incl inc)
{
    struct st_membership *ms = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_membership_list(r->srv->db, r->arena, f,
                                     (p->number - 1) * p->size, p->size, &ms,
                                     &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *teams = inc.teams ? teams_of(r, ms, n) : NULL;
    if (inc.teams && teams == NULL)
        return;
    json_t *items = json_array(), *included = json_array();
    json_t *seen = json_object();
    for (int i = 0; i < n; i++) {
        json_array_append_new(items, membership_json(r, &ms[i]));
        add_included(r, included, seen, &ms[i], inc, teams);
    }
    json_decref(seen);
    json_t *doc = jsonapi_list_doc(items, p, total);
    if (inc.user || inc.teams)
        json_object_set(doc, "included", included);
    json_decref(included);
    http_reply_json(r, 200, doc);
}

/* filter[status]: NULL, "invited" or "active"; false after answering 400. */
static bool status_filter(struct http_req *r, const char **status)
{
    *status = http_query(r, "filter[status]");
    if (*status != NULL && **status == '\0')
        *status = NULL;
    if (*status == NULL || strcmp(*status, "invited") == 0 ||
        strcmp(*status, "active") == 0)
        return true;
    http_error(r, 400, "bad request",
               arena_printf(r->arena,
                            "filter[status] must be invited or active, not %s",
                            *status));
    return false;
}

/* filter[email]: a comma-separated list of addresses; false after
 * answering 400. */
static bool email_filter(struct http_req *r, struct st_membership_filter *f)
{
    const char *v = http_query(r, "filter[email]");
    if (v == NULL || *v == '\0')
        return true;
    const char **emails =
        arena_alloc(r->arena, sizeof(char *) * MAX_EMAIL_FILTER);
    char *copy = arena_strdup(r->arena, v), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        const char *why = NULL;
        if (f->nemails == MAX_EMAIL_FILTER)
            why = "filter[email] takes at most 100 addresses";
        else if (!api_valid_email(t))
            why = arena_printf(r->arena,
                               "filter[email]: %s is not a valid address", t);
        if (why != NULL) {
            http_error(r, 400, "bad request", why);
            return false;
        }
        emails[f->nemails++] = t;
    }
    f->emails = emails;
    return true;
}

void api_memberships_list(struct http_req *r)
{
    struct st_org o;
    struct page p;
    struct incl inc;
    struct st_membership_filter f = {0};
    if (!api_org_access(r, http_param(r, "name"), &o) || !jsonapi_page(r, &p) ||
        !parse_include(r, &inc) || !status_filter(r, &f.status) ||
        !email_filter(r, &f))
        return;
    f.org = o.name;
    f.query = http_query(r, "q");
    reply_list(r, &p, &f, inc);
}

void api_memberships_own(struct http_req *r)
{
    struct page p;
    struct incl inc;
    struct st_membership_filter f = {0};
    if (!api_need_user(r, false) || !jsonapi_page(r, &p) ||
        !parse_include(r, &inc) || !status_filter(r, &f.status))
        return;
    f.user_id = r->who.user_id;
    reply_list(r, &p, &f, inc);
}

/* relationships.teams of an invitation: absent, null or an array of
 * {"type": "teams", "id": ...}, its ids in *ids (*n of them).  Answers
 * 422 and returns false otherwise.  Whether each is a team of the
 * organization is the store's check, in the invitation's transaction. */
static bool teams_ok(struct http_req *r, json_t *data, const char ***ids,
                     int *n)
{
    *ids = NULL;
    *n = 0;
    json_t *rel =
        json_object_get(json_object_get(data, "relationships"), "teams");
    json_t *teams = json_object_get(rel, "data");
    if (rel != NULL && !json_is_object(rel)) {
        http_error(r, 422, NULL, "relationships.teams must be an object");
        return false;
    }
    if (teams == NULL || json_is_null(teams))
        return true;
    if (!json_is_array(teams)) {
        http_error(r, 422, NULL,
                   "relationships.teams.data must be an array of teams");
        return false;
    }
    *ids = arena_alloc(r->arena, sizeof(char *) * (json_array_size(teams) + 1));
    size_t i;
    json_t *t;
    json_array_foreach(teams, i, t)
    {
        const char *id = json_string_value(json_object_get(t, "id"));
        const char *type = json_string_value(json_object_get(t, "type"));
        if (id == NULL || (type != NULL && strcmp(type, "teams") != 0)) {
            http_error(r, 422, NULL,
                       "each of relationships.teams.data must be "
                       "{\"type\": \"teams\", \"id\": ...}");
            return false;
        }
        (*ids)[(*n)++] = id;
    }
    return true;
}

void api_membership_create(struct http_req *r)
{
    struct st_org o;
    if (!api_org_access(r, http_param(r, "name"), &o))
        return;
    if (!api_org_admin(r, o.name)) {
        http_error(r, 403, NULL, "only owners may invite members");
        return;
    }
    json_t *data = jsonapi_body(r, "organization-memberships");
    const char *email = NULL;
    if (data == NULL || !jsonapi_attr_str(r, data, "email", &email))
        return;
    if (email == NULL || !api_valid_email(email)) {
        http_error(r, 422, NULL,
                   email == NULL
                       ? "email is required"
                       : arena_printf(r->arena,
                                      "email %s is not a valid address",
                                      email));
        return;
    }
    const char **team_ids = NULL;
    int nteams = 0;
    if (!teams_ok(r, data, &team_ids, &nteams))
        return;
    struct st_membership m;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_membership_invite_teams(r->srv->db, r->arena, o.name,
                                             email, team_ids, nteams, &m, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s membership %s: %s invited to organization %s by %s",
             r->request_id, m.id, m.invitee_id, o.name,
             r->who.username ? r->who.username : "an organization token");
    reply_one(r, 201, &m, (struct incl){.user = true});
}

/* Whether the caller may see membership m (*ok): its own user, a site
 * admin, the organization's token, or an active member of the
 * organization.  Errors are the store's. */
static tr_err may_see(struct http_req *r, const struct st_membership *m,
                      bool *own, bool *ok, struct tr_errbuf *eb)
{
    *own = r->who.kind == PRINC_USER && m->user_id != NULL &&
           strcmp(m->user_id, r->who.user_id) == 0;
    *ok = *own || r->who.is_admin;
    if (!*ok && r->who.kind == PRINC_ORG)
        *ok = strcmp(r->who.org, m->org) == 0;
    else if (!*ok && r->who.kind == PRINC_USER)
        return store_org_is_member(r->srv->db, r->arena, m->org, r->who.user_id,
                                   ok, eb);
    return TR_OK;
}

/* Loads the route's membership if the caller may see it; else answers
 * 404 and returns false. */
static bool load(struct http_req *r, struct st_membership *m, bool *own)
{
    struct tr_errbuf eb = {{0}};
    bool ok = false;
    tr_err e =
        store_membership_get(r->srv->db, r->arena, http_param(r, "id"), m, &eb);
    if (e == TR_OK)
        e = may_see(r, m, own, &ok, &eb);
    if (e == TR_OK && !ok)
        e = TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found", "membership not found");
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    return true;
}

void api_membership_show(struct http_req *r)
{
    struct st_membership m;
    struct incl inc;
    bool own;
    if (parse_include(r, &inc) && load(r, &m, &own))
        reply_one(r, 200, &m, inc);
}

void api_membership_delete(struct http_req *r)
{
    struct st_membership m;
    bool own;
    if (!load(r, &m, &own))
        return;
    if (!own && !api_org_admin(r, m.org)) {
        http_error(r, 403, NULL, "only owners may remove members");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_membership_delete(r->srv->db, r->arena, m.id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s membership %s of %s in organization %s removed by %s",
             r->request_id, m.id, m.invitee_id, m.org,
             r->who.username ? r->who.username : "an organization token");
    http_reply(r, 204, NULL, "", 0);
}

void api_membership_accept(struct http_req *r)
{
    struct st_membership m;
    bool own;
    if (!load(r, &m, &own))
        return;
    if (!own) {
        http_error(r, 403, NULL,
                   "only the invited user may accept an invitation");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_membership_accept(r->srv->db, r->arena, m.id, m.user_id, &eb);
    if (e == TR_OK)
        e = store_membership_get(r->srv->db, r->arena, m.id, &m, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("rid=%s membership %s: %s joined organization %s", r->request_id,
             m.id, m.user_id, m.org);
    reply_one(r, 200, &m, (struct incl){0});
}
