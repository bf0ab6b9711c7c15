/*
 * common.c - access checks and error plumbing shared by the API files.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/api.h"
#include "blob/blob.h"

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

/* A run token reaches only its own run's organization. */
static bool run_in_org(struct http_req *r, const char *org)
{
    struct st_run run;
    return store_run_get(r->srv->db, r->arena, r->who.run_id, &run, NULL) ==
               TR_OK &&
           strcmp(run.org, org) == 0;
}

bool api_org_access(struct http_req *r, const char *name, struct st_org *out)
{
    struct tr_errbuf eb = {{0}};
    struct st_org o;
    tr_err e = store_org_get(r->srv->db, r->arena, name, &o, &eb);
    if (e == TR_OK) {
        bool ok = r->who.is_admin;
        if (r->who.kind == PRINC_ORG)
            ok = strcmp(r->who.org, o.name) == 0;
        else if (r->who.kind == PRINC_RUN)
            ok = run_in_org(r, o.name);
        else if (!ok && r->who.kind == PRINC_USER)
            e = store_org_is_member(r->srv->db, r->arena, o.name,
                                    r->who.user_id, &ok, &eb);
        if (e == TR_OK && !ok)
            e = TR_ERR_NOT_FOUND;
    }
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
    return true;
}

bool api_org_admin(const struct http_req *r, const char *org)
{
    (void)org; /* every member owns the organization until teams exist */
    return r->who.kind != PRINC_NONE;
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
