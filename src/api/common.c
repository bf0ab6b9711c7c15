/*
 * common.c - the API side of access checks (the decisions are
 * domain/access.c's) and error plumbing shared by the API files.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/api.h"
#include "core/check.h"
#include "blob/blob.h"
#include "domain/access.h"

void api_store_fail(struct http_req *r, tr_err e, const struct tr_errbuf *eb)
{
    http_fail(r, e, eb); /* logs a 5xx with its cause */
}

bool api_body_opt_string(struct http_req *r, const char *name, size_t max,
                         const char *msg, const char **out)
{
    *out = NULL;
    if (r->body.len == 0)
        return true;
    json_error_t jerr;
    json_t *doc =
        http_json_own(r, json_loadb(r->body.data, r->body.len, 0, &jerr));
    if (doc == NULL) {
        http_error(r, 400, NULL,
                   arena_printf(r->arena, "malformed JSON: %s at line %d",
                                jerr.text, jerr.line));
        return false;
    }
    if (!json_is_object(doc)) {
        http_error(r, 400, NULL, "the body must be a JSON object");
        return false;
    }
    json_t *v = json_object_get(doc, name);
    if (v == NULL)
        v = json_object_get(
            json_object_get(json_object_get(doc, "data"), "attributes"), name);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v) || json_string_length(v) > max) {
        http_error(r, 422, NULL, msg);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

struct access_caller api_caller(const struct http_req *r)
{
    struct access_caller c = {.kind = ACCESS_NONE};
    switch (r->who.kind) {
    case PRINC_USER:
        c.kind = ACCESS_USER;
        c.user_id = r->who.user_id;
        c.is_admin = r->who.is_admin;
        break;
    case PRINC_TEAM:
        c.kind = ACCESS_TEAM;
        c.team_id = r->who.team_id;
        break;
    case PRINC_ORG:
        c.kind = ACCESS_ORG;
        c.org = r->who.org;
        break;
    case PRINC_RUN:
        c.kind = ACCESS_RUN;
        c.run_id = r->who.run_id;
        break;
    default:
        break;
    }
    return c;
}

access_t api_perms_cached(struct http_req *r, const char *key)
{
    if (r->who.perm_of != NULL && strcmp(r->who.perm_of, key) == 0)
        return r->who.perms;
    for (int i = 0; i < r->who.npage; i++)
        if (strcmp(r->who.page_ids[i], key) == 0)
            return r->who.page_perms[i];
    return 0;
}

void api_perms_cache(struct http_req *r, const char *key, access_t perms)
{
    r->who.perm_of = arena_strdup(r->arena, key);
    r->who.perms = perms;
}

bool api_org_perms(struct http_req *r, const char *name, struct st_org *out,
                   access_t *perms)
{
    struct tr_errbuf eb = {{0}};
    struct st_org o;
    access_t f = 0;
    struct access_caller who = api_caller(r);
    tr_err e = store_org_get(r->srv->db, r->arena, name, &o, &eb);
    if (e == TR_OK)
        e = access_org(r->srv->db, r->arena, &who, o.name, &f, &eb);
    if (e == TR_OK && !(f & ACC_ORG_SEE))
        e = TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "organization %s not found", name));
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (out != NULL)
        *out = o;
    if (perms != NULL)
        *perms = f;
    return true;
}

bool api_org_access(struct http_req *r, const char *name, struct st_org *out)
{
    return api_org_perms(r, name, out, NULL);
}

access_t api_org_flags(struct http_req *r, const char *org)
{
    if (r->who.org_perm_of != NULL && strcmp(r->who.org_perm_of, org) == 0)
        return r->who.org_perms;
    access_t f = 0;
    struct access_caller who = api_caller(r);
    if (access_org(r->srv->db, r->arena, &who, org, &f, NULL) != TR_OK)
        return 0;
    r->who.org_perm_of = arena_strdup(r->arena, org);
    r->who.org_perms = f;
    return f;
}

bool api_org_may(struct http_req *r, const char *org, access_t need)
{
    return (api_org_flags(r, org) & need) == need;
}

void api_visible_to(struct http_req *r, const char *org, access_t all,
                    const char **user, const char **team)
{
    *user = *team = NULL;
    if (r->who.kind != PRINC_USER && r->who.kind != PRINC_TEAM)
        return;
    if (api_org_may(r, org, all))
        return;
    if (r->who.kind == PRINC_USER)
        *user = r->who.user_id;
    else
        *team = r->who.team_id;
}

bool api_org_admin(struct http_req *r, const char *org)
{
    return api_org_may(r, org, ACC_ORG_OWNER);
}

bool api_org_allow(struct http_req *r, const char *org, access_t need,
                   const char *what)
{
    if (api_org_may(r, org, need))
        return true;
    http_error(
        r, 403, "forbidden",
        arena_printf(r->arena, "you may not %s in organization %s", what, org));
    return false;
}

void api_lock_identity(const struct http_req *r, const char **kind,
                       const char **holder)
{
    switch (r->who.kind) {
    case PRINC_ORG:
        *kind = "org";
        *holder = r->who.token_id;
        break;
    case PRINC_RUN:
        *kind = "run";
        *holder = r->who.run_id;
        break;
    case PRINC_TEAM:
        *kind = "team";
        *holder = r->who.team_id;
        break;
    default:
        *kind = "user";
        *holder = r->who.user_id;
        break;
    }
}

void api_reply_object(struct http_req *r, const char *key, const char *ctype)
{
    struct blob_reader *rd = NULL;
    uint64_t size = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = blob_reader_open(r->srv->blob, key, &rd, &size, &eb);
    if (e != TR_OK) { /* a row naming an object that is gone is a bug */
        api_store_fail(r, e == TR_ERR_NOT_FOUND ? TR_ERR_INTERNAL : e, &eb);
        return;
    }
    http_reply_blob(r, 200, ctype, rd, size);
}

json_t *api_time(const char *iso)
{
    return iso != NULL ? json_string(iso) : json_null();
}

json_t *api_jw_tree(const struct jw *j, struct buf *b)
{
    json_t *out = NULL;
    if (jw_error(j) == TR_OK)
        out = json_loadb(b->data, b->len, 0, NULL);
    buf_free(b);
    return TR_ALWAYS(out != NULL) ? out : json_object();
}

void api_rel_write(struct jw *j, const char *key, const char *type,
                   const char *id)
{
    jw_key(j, key);
    jw_obj(j);
    jw_key(j, "data");
    if (id == NULL) {
        jw_null(j);
    } else {
        jw_obj(j);
        jw_kstr(j, "id", id);
        jw_kstr(j, "type", type);
        jw_obj_end(j);
    }
    jw_obj_end(j);
}
