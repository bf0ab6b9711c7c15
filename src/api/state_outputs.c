/*
 * state_outputs.c - state version outputs.
 *
 *   GET /workspaces/:id/current-state-version-outputs   sensitive -> null
 *   GET /state-versions/:id/outputs                      values shown
 *   GET /state-version-outputs/:id                       value shown
 *   GET /workspaces/:id?include=outputs   (workspaces.c) sensitive -> null
 *
 * Outputs are extracted from the state file when a version is finalized
 * (never from json-state-outputs) and stored with the version in the same
 * transaction, sensitive values sealed (envelope.h) like sensitive
 * variables.  As in TFE, the current-outputs list hides sensitive values
 * and clients read each one by id; a workspace without state has no
 * outputs (an empty list, so `output` prints nothing instead of failing).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/state_int.h"
#include "core/log.h"
#include "crypto/envelope.h"

static json_t *text_json(const char *text)
{
    json_t *j = text ? state_json_load(text, strlen(text)) : NULL;
    return j ? j : json_null();
}

/* The stored value text: sensitive ones are sealed (envelope.h); values
 * stored before that are plain. */
static const char *value_text(struct http_req *r, const struct st_sv_output *o)
{
    char *plain = NULL;
    if (!envelope_is_sealed(o->value))
        return o->value;
    struct tr_errbuf eb = {{0}};
    tr_err e = r->srv->keys == NULL
                   ? tr_fail(&eb, TR_ERR_CRYPTO, "no keyring is loaded")
                   : envelope_open(r->srv->keys, r->arena, o->value, &plain,
                                   NULL, &eb);
    if (e != TR_OK) {
        log_error("state output %s: cannot open its sealed value: %s", o->id,
                  tr_errbuf_msg(&eb, e));
        return NULL;
    }
    return plain;
}

json_t *api_sv_output_json(struct http_req *r, const struct st_sv_output *o,
                           bool hide)
{
    json_t *value =
        hide && o->sensitive ? json_null() : text_json(value_text(r, o));
    return json_pack(
        "{s:s,s:s,s:{s:s,s:b,s:s,s:o,s:o},s:{s:s}}", "id", o->id, "type",
        "state-version-outputs", "attributes", "name", o->name, "sensitive",
        o->sensitive, "type", o->type, "value", value, "detailed-type",
        text_json(o->detailed_type), "links", "self",
        arena_printf(r->arena, "/api/v2/state-version-outputs/%s", o->id));
}

/* A page of sv_id's outputs (none when sv_id is NULL). */
static void outputs_reply(struct http_req *r, const char *sv_id, bool hide)
{
    struct tr_errbuf eb = {{0}};
    struct page p;
    struct st_sv_output *outs = NULL;
    int n = 0;
    int64_t total = 0;
    if (!jsonapi_page(r, &p))
        return;
    tr_err e = TR_OK;
    if (sv_id != NULL)
        e = store_sv_outputs(r->srv->db, r->arena, sv_id,
                             (p.number - 1) * p.size, p.size, &outs, &n, &total,
                             &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, api_sv_output_json(r, &outs[i], hide));
    api_sv_reply_doc(r, 200, jsonapi_list_doc(items, &p, total));
}

void api_sv_outputs(struct http_req *r)
{
    struct st_sv sv;
    if (api_sv_access(r, http_param(r, "id"), &sv, NULL, ACC_WS_OUTPUTS))
        outputs_reply(r, sv.id, false);
}

void api_ws_current_outputs(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace ws;
    struct st_sv sv;
    if (!api_workspace_access(r, http_param(r, "id"), &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_OUTPUTS, "read state outputs"))
        return;
    tr_err e = store_sv_current(r->srv->db, r->arena, ws.id, &sv, &eb);
    if (e != TR_OK && e != TR_ERR_NOT_FOUND) {
        api_store_fail(r, e, &eb);
        return;
    }
    outputs_reply(r, e == TR_OK ? sv.id : NULL, true);
}

void api_sv_output_show(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_sv_output o;
    struct st_sv sv;
    tr_err e =
        store_sv_output_get(r->srv->db, r->arena, http_param(r, "id"), &o, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (api_sv_access(r, o.sv_id, &sv, NULL, ACC_WS_OUTPUTS))
        api_sv_reply_doc(
            r, 200,
            json_pack("{s:o}", "data", api_sv_output_json(r, &o, false)));
}

bool api_ws_outputs_rel(struct http_req *r, const struct st_workspace *w,
                        json_t *rels, json_t *included)
{
    struct st_sv_output *outs = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e = TR_OK;
    if (w->current_sv != NULL)
        e = store_sv_outputs(r->srv->db, r->arena, w->current_sv, 0, -1, &outs,
                             &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++) {
        const struct st_sv_output *o = &outs[i];
        json_array_append_new(data, json_pack("{s:s,s:s}", "id", o->id, "type",
                                              "workspace-outputs"));
        json_t *value =
            o->sensitive ? json_null() : text_json(value_text(r, o));
        json_array_append_new(
            included,
            json_pack("{s:s,s:s,s:{s:s,s:b,s:s,s:o},s:{s:s}}", "id", o->id,
                      "type", "workspace-outputs", "attributes", "name",
                      o->name, "sensitive", o->sensitive, "output-type",
                      o->type, "value", value, "links", "self",
                      arena_printf(r->arena, "/api/v2/state-version-outputs/%s",
                                   o->id)));
    }
    json_object_set_new(rels, "outputs", json_pack("{s:o}", "data", data));
    return true;
}
