/*
 * state_versions.c - remote state: creating, listing and reading state
 * versions, rollback, and the route table of all remote-state endpoints
 * (outputs in state_outputs.c, bytes in state_transfer.c).
 *
 *   POST  /workspaces/:id/state-versions          create (inline or pending)
 *   PATCH /workspaces/:id/state-versions          rollback (TFE's shape)
 *   GET   /workspaces/:id/state-versions          list, newest first
 *   GET   /state-versions?filter[workspace][name]=&filter[organization][name]=
 *   GET   /workspaces/:id/current-state-version
 *   GET   /workspaces/:id/current-state-version-outputs
 *   GET   /state-versions/:id[/outputs]
 *   GET   /state-version-outputs/:id
 *   GET   /state-versions/:id/download, /json-download  (token or signature)
 *   PUT   /state-versions/:id/upload, /json-upload      (signature only)
 *
 * Data safety (DESIGN.md "Rules that keep data safe"):
 *   1. A request is checked completely (base64, md5 of the decoded bytes,
 *      the state parses as a v4 state, size, lock, successor rule) before
 *      anything is written; a rejected request changes nothing.
 *   2. The blob is made durable first; then one transaction inserts the
 *      row and its outputs and moves workspaces.current_sv
 *      (store_sv_create / store_sv_finalize).  A crash in between leaves
 *      an unreferenced blob, never a current version without bytes.
 *   3. Successor rule (store_sv_successor): same lineage, serial not lower,
 *      equal serial only with equal md5; force skips it.  Violations are
 *      409, as OTF answers; malformed input is 422.
 *   4. The caller must hold the workspace lock (409 otherwise), checked
 *      again inside the writing transaction.
 *
 * TFE records the serial and lineage given as attributes; go-tfe's own
 * conformance tests send serial 0 or 1 for a file whose serial is 2 and a
 * lineage that differs from the file's, so these are not required to
 * match the file (the CLI always sends the file's values).  A missing
 * lineage attribute takes the file's.  Outputs always come from the state
 * file; json-state-outputs is accepted and ignored.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/state_int.h"
#include "blob/blob.h"
#include "core/check.h"
#include "crypto/digest.h"
#include "crypto/envelope.h"

/* Seconds between intermediate state snapshots the CLI may push during an
 * apply (sent on state-version create and current-state-version reads;
 * without the header it pushes none).  OpenTofu and Terraform wait
 * max(this, their own 20 s floor) between snapshots, so today a crash
 * loses at most about 20 s of applied work; a smaller value costs nothing
 * with them and lets a client that allows it snapshot sooner.  Cost:
 * bench/RESULTS.md ("snapshot interval"). */
#define SNAPSHOT_INTERVAL "5"

/* ---- documents ---------------------------------------------------------- */

void api_sv_reply_doc(struct http_req *r, int status, json_t *doc)
{
    size_t len = 0;
    char *s = state_json_dump(r->arena, doc, &len);
    json_decref(doc);
    http_reply(r, status, "application/vnd.api+json", s, len);
}

static json_t *ref(const char *type, const char *id)
{
    if (id == NULL)
        return json_null();
    return json_pack("{s:s,s:s}", "type", type, "id", id);
}

/* key: the signed URL of the state version's what, or null unless on. */
static void signed_url(struct http_req *r, struct jw *j, const char *key,
                       const struct st_sv *sv, const char *what, bool on)
{
    jw_key(j, key);
    if (!on) {
        jw_null(j);
        return;
    }
    char *path =
        arena_printf(r->arena, "/api/v2/state-versions/%s/%s", sv->id, what);
    jw_str(j, http_signed_url(r, path, r->srv->cfg.upload_url_ttl));
}

/* The state version resource object, the one serializer of it. */
static void sv_write(struct http_req *r, struct jw *j, const struct st_sv *sv,
                     const struct st_sv_output *outs, int nouts)
{
    bool final = strcmp(sv->status, "finalized") == 0;
    bool pending = strcmp(sv->status, "pending") == 0;
    char *attrs[3];
    size_t alen[3];
    state_attrs_text(r->arena, sv->resources, attrs, alen);
    jw_obj(j);
    jw_kstr(j, "id", sv->id);
    jw_kstr(j, "type", "state-versions");
    jw_key(j, "attributes");
    jw_obj(j);
    jw_kstr(j, "created-at", sv->created_at);
    jw_kint(j, "size", sv->size);
    jw_kstr(j, "status", sv->status);
    jw_kint(j, "serial", sv->serial);
    jw_kstr(j, "lineage", sv->lineage);
    jw_kint(j, "state-version", 4);
    jw_kstr(j, "terraform-version", sv->terraform_version);
    jw_kbool(j, "resources-processed", final);
    static const char *const names[3] = {"resources", "modules", "providers"};
    for (int k = 0; k < 3; k++) {
        jw_key(j, names[k]);
        jw_raw(j, attrs[k], alen[k]);
    }
    jw_knull(j, "vcs-commit-sha");
    jw_knull(j, "vcs-commit-url");
    signed_url(r, j, "hosted-state-download-url", sv, "download", final);
    signed_url(r, j, "hosted-json-state-download-url", sv, "json-download",
               final && sv->json_blob_key);
    signed_url(r, j, "hosted-state-upload-url", sv, "upload", pending);
    signed_url(r, j, "hosted-json-state-upload-url", sv, "json-upload",
               pending);
    jw_obj_end(j);
    jw_key(j, "relationships");
    jw_obj(j);
    api_rel_write(j, "run", "runs", sv->run_id);
    api_rel_write(j, "created-by", "users", sv->created_by);
    api_rel_write(j, "workspace", "workspaces", sv->workspace_id);
    jw_key(j, "outputs");
    jw_obj(j);
    jw_key(j, "data");
    jw_arr(j);
    for (int i = 0; i < nouts; i++) {
        jw_obj(j);
        jw_kstr(j, "type", "state-version-outputs");
        jw_kstr(j, "id", outs[i].id);
        jw_obj_end(j);
    }
    jw_arr_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
    jw_key(j, "links");
    jw_obj(j);
    jw_key(j, "self");
    jw_str_begin(j);
    jw_str_add(j, "/api/v2/state-versions/");
    jw_str_add(j, sv->id);
    jw_str_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

/* The same as a tree (new reference): sv_write()'s text, parsed. */
static json_t *sv_json(struct http_req *r, const struct st_sv *sv,
                       const struct st_sv_output *outs, int nouts)
{
    struct buf b;
    buf_init(&b, 0);
    struct jw j;
    jw_init(&j, &b);
    sv_write(r, &j, sv, outs, nouts);
    json_t *out = NULL;
    if (jw_error(&j) == TR_OK)
        out = state_json_load(b.data, b.len);
    buf_free(&b);
    return TR_ALWAYS(out != NULL) ? out : json_object();
}

/* include=...: true if the value is valid; *outputs says whether outputs
 * were asked for.  Writes 400 for unknown names. */
static bool parse_include(struct http_req *r, bool *outputs)
{
    static const char *const known[] = {"outputs",
                                        "created_by",
                                        "run",
                                        "run.created_by",
                                        "run.configuration_version",
                                        NULL};
    *outputs = false;
    const char *inc = http_query(r, "include");
    if (inc == NULL || *inc == '\0')
        return true;
    char *copy = arena_strdup(r->arena, inc), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (known[i] != NULL && strcmp(known[i], t) != 0)
            i++;
        if (known[i] == NULL) {
            http_error(
                r, 400, "Invalid include parameter",
                arena_printf(r->arena, "Invalid include parameter: %.100s", t));
            return false;
        }
        if (i == 0)
            *outputs = true;
    }
    return true;
}

json_t *api_sv_resource(struct http_req *r, const char *sv_id)
{
    struct st_sv sv;
    struct st_sv_output *outs = NULL;
    int n = 0;
    if (sv_id == NULL ||
        store_sv_get(r->srv->db, r->arena, sv_id, &sv, NULL) != TR_OK ||
        store_sv_outputs(r->srv->db, r->arena, sv.id, 0, -1, &outs, &n, NULL,
                         NULL) != TR_OK)
        return NULL;
    return sv_json(r, &sv, outs, n);
}

/* Answers {"data": sv} (plus included outputs).  extra (stolen, nullable)
 * is merged into the relationships. */
static void reply_sv(struct http_req *r, int status, const struct st_sv *sv,
                     bool include_outputs, json_t *extra)
{
    struct tr_errbuf eb = {{0}};
    struct st_sv_output *outs = NULL;
    int n = 0;
    tr_err e = store_sv_outputs(r->srv->db, r->arena, sv->id, 0, -1, &outs, &n,
                                NULL, &eb);
    if (e != TR_OK) {
        json_decref(extra);
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *data = sv_json(r, sv, outs, n);
    if (extra != NULL)
        json_object_update(json_object_get(data, "relationships"), extra);
    json_decref(extra);
    json_t *doc = json_pack("{s:o}", "data", data);
    if (include_outputs) {
        json_t *inc = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(inc, api_sv_output_json(r, &outs[i], false));
        json_object_set_new(doc, "included", inc);
    }
    api_sv_reply_doc(r, status, doc);
}

bool api_sv_access(struct http_req *r, const char *id, struct st_sv *sv,
                   struct st_workspace *ws, access_t need)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace w;
    tr_err e = store_sv_get(r->srv->db, r->arena, id, sv, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found", "state version not found");
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (ws == NULL)
        ws = &w;
    return api_workspace_access(r, sv->workspace_id, ws) &&
           api_ws_allow(r, ws, need, "read state versions");
}

/* ---- create ------------------------------------------------------------- */

struct st_sv_output *api_sv_outputs_of(struct http_req *r,
                                       const struct state_info *si)
{
    struct st_sv_output *outs =
        arena_alloc(r->arena, sizeof(*outs) * (size_t)(si->noutputs + 1));
    for (int i = 0; i < si->noutputs; i++) {
        outs[i] = (struct st_sv_output){
            .name = si->outputs[i].name,
            .sensitive = si->outputs[i].sensitive,
            .type = si->outputs[i].type,
            .detailed_type = si->outputs[i].detailed_type,
            .value = si->outputs[i].value,
        };
        /* a sensitive value is kept sealed in its column */
        char *sealed = NULL;
        const char *v = outs[i].value;
        if (outs[i].sensitive && v != NULL && r->srv->keys != NULL &&
            envelope_seal(r->srv->keys, r->arena, v, strlen(v), &sealed,
                          NULL) == TR_OK)
            outs[i].value = sealed;
    }
    return outs;
}

struct create_req {
    int64_t serial;
    const char *md5;
    const char *lineage;
    const char *state;        /* base64 or NULL */
    const char *json_state;   /* base64 or NULL */
    const char *json_outputs; /* base64 or NULL; ignored */
    int force;                /* -1 absent */
    const char *run_id;
};

static bool invalid(struct http_req *r, const char *msg)
{
    http_error(r, 422, NULL, msg);
    return false;
}

static bool is_md5(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return n == 32 && s[n] == '\0';
}

static bool parse_create(struct http_req *r, json_t *data, struct create_req *q)
{
    bool has_serial = false;
    q->force = -1;
    if (!jsonapi_attr_int(r, data, "serial", &q->serial, &has_serial) ||
        !jsonapi_attr_str(r, data, "md5", &q->md5) ||
        !jsonapi_attr_str(r, data, "lineage", &q->lineage) ||
        !jsonapi_attr_str(r, data, "state", &q->state) ||
        !jsonapi_attr_str(r, data, "json-state", &q->json_state) ||
        !jsonapi_attr_str(r, data, "json-state-outputs", &q->json_outputs) ||
        !jsonapi_attr_bool(r, data, "force", &q->force))
        return false;
    if (!has_serial)
        return invalid(r, "attribute serial is required");
    if (q->serial < 0)
        return invalid(r, "attribute serial must not be negative");
    if (q->md5 == NULL)
        return invalid(r, "attribute md5 is required");
    if (!is_md5(q->md5))
        return invalid(r, "attribute md5 must be 32 hexadecimal digits");
    char *md5 = arena_strdup(r->arena, q->md5);
    for (char *p = md5; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    q->md5 = md5;
    if (q->lineage != NULL && strlen(q->lineage) > 200)
        return invalid(r, "attribute lineage is too long");
    if (q->json_state != NULL && q->state == NULL)
        return invalid(r, "attribute json-state needs state; upload both "
                          "through the upload URLs instead");
    json_t *run =
        json_object_get(json_object_get(data, "relationships"), "run");
    if (run != NULL && !json_is_null(json_object_get(run, "data"))) {
        q->run_id = jsonapi_rel_id(data, "run");
        if (q->run_id == NULL || strncmp(q->run_id, "run-", 4) != 0 ||
            strlen(q->run_id) > 64)
            return invalid(r, "relationship run must name a run");
    }
    return true;
}

/* Decodes base64 attribute `name` into *out, bounded by max bytes. */
static bool decode(struct http_req *r, const char *name, const char *b64,
                   int64_t max, unsigned char **out, size_t *len)
{
    size_t n = strlen(b64);
    if ((uint64_t)(n / 4) * 3 > (uint64_t)max + 3) {
        http_error(r, 413, NULL,
                   arena_printf(r->arena,
                                "attribute %s is larger than the limit of "
                                "%lld bytes",
                                name, (long long)max));
        return false;
    }
    if (digest_b64_decode(r->arena, b64, n, out, len) != TR_OK)
        return invalid(
            r,
            arena_printf(r->arena, "attribute %s is not valid base64", name));
    if ((int64_t)*len > max) {
        http_error(r, 413, NULL,
                   arena_printf(r->arena,
                                "attribute %s is larger than the limit of "
                                "%lld bytes",
                                name, (long long)max));
        return false;
    }
    return true;
}

static bool holds_lock(struct http_req *r, const struct st_workspace *ws)
{
    const char *kind, *holder;
    api_lock_identity(r, &kind, &holder);
    if (ws->locked && util_streq(ws->lock_kind, kind) &&
        util_streq(ws->lock_holder, holder))
        return true;
    http_error(r, 409, "conflict",
               ws->locked ? "the workspace is locked by someone else; it "
                            "must be locked by the caller to create a "
                            "state version"
                          : "the workspace must be locked by the caller to "
                            "create a state version");
    return false;
}

static void remove_blobs(struct http_req *r, const char *k1, const char *k2)
{
    if (k1 != NULL)
        blob_remove(r->srv->blob, k1, NULL);
    if (k2 != NULL)
        blob_remove(r->srv->blob, k2, NULL);
}

static char *blob_key(struct http_req *r, const char *ws, const char *sv,
                      const char *ext)
{
    return arena_printf(r->arena, "state/%s/%s.%s", ws, sv, ext);
}

/* Writes the checked state (and JSON state) and commits the finalized
 * version; answers 201 (extra as in reply_sv) or the error. */
static void write_finalized(struct http_req *r, struct st_sv *sv,
                            const struct state_info *si, const void *raw,
                            size_t rawlen, const void *json, size_t jsonlen,
                            int skip, json_t *extra)
{
    struct tr_errbuf eb = {{0}};
    const char *kind, *holder;
    api_lock_identity(r, &kind, &holder);
    struct st_sv_output *outs = api_sv_outputs_of(r, si);
    tr_err e = blob_put(r->srv->blob, sv->blob_key, raw, rawlen, &eb);
    if (e == TR_OK && json != NULL)
        e = blob_put(r->srv->blob, sv->json_blob_key, json, jsonlen, &eb);
    if (e == TR_OK)
        e = store_sv_create(r->srv->db, r->arena, sv, outs, si->noutputs, skip,
                            kind, holder, sv, &eb);
    if (e != TR_OK) {
        json_decref(extra);
        remove_blobs(r, sv->blob_key, json ? sv->json_blob_key : NULL);
        api_store_fail(r, e, &eb);
        return;
    }
    http_add_header(r, "X-Terraform-Snapshot-Interval", SNAPSHOT_INTERVAL);
    reply_sv(r, 201, sv, false, extra);
}

static void create_inline(struct http_req *r, const struct create_req *q,
                          struct st_sv *sv)
{
    struct tr_errbuf eb = {{0}};
    int64_t max = r->srv->cfg.max_state;
    unsigned char *raw = NULL, *json = NULL;
    size_t rawlen = 0, jsonlen = 0;
    struct state_info si;
    if (!decode(r, "state", q->state, max, &raw, &rawlen))
        return;
    if (!digest_equal(digest_md5_hex(r->arena, raw, rawlen), q->md5)) {
        invalid(r, "md5 does not match the decoded state");
        return;
    }
    tr_err e = state_parse(r->arena, raw, rawlen, &si, &eb);
    if (e != TR_OK) {
        http_fail(r, e, &eb);
        return;
    }
    if (q->json_state != NULL) {
        if (!decode(r, "json-state", q->json_state, max * 2, &json, &jsonlen))
            return;
        if (!state_is_json(json, jsonlen)) {
            invalid(r, "attribute json-state is not JSON");
            return;
        }
    }
    if (q->json_outputs != NULL) {
        unsigned char *tmp = NULL;
        size_t tl = 0;
        if (!decode(r, "json-state-outputs", q->json_outputs, max * 2, &tmp,
                    &tl))
            return;
    }
    if (q->lineage == NULL)
        sv->lineage = si.lineage;
    sv->status = "finalized";
    sv->size = (int64_t)rawlen;
    sv->sha256 = digest_sha256_hex(r->arena, raw, rawlen);
    sv->terraform_version = si.terraform_version;
    sv->resources = si.resources;
    sv->blob_key = blob_key(r, sv->workspace_id, sv->id, "tfstate");
    sv->json_blob_key =
        json ? blob_key(r, sv->workspace_id, sv->id, "json") : NULL;
    int skip = q->force == 1 ? SV_FORCE : 0;
    e = store_sv_check(r->srv->db, r->arena, sv->workspace_id, sv->serial,
                       sv->lineage, sv->md5, skip, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    write_finalized(r, sv, &si, raw, rawlen, json, jsonlen, skip, NULL);
}

static void create_pending(struct http_req *r, const struct create_req *q,
                           struct st_sv *sv)
{
    struct tr_errbuf eb = {{0}};
    const char *kind, *holder;
    api_lock_identity(r, &kind, &holder);
    sv->status = "pending";
    sv->force = q->force == 1;
    sv->blob_key = blob_key(r, sv->workspace_id, sv->id, "tfstate");
    tr_err e =
        store_sv_check(r->srv->db, r->arena, sv->workspace_id, sv->serial,
                       sv->lineage, sv->md5, sv->force ? SV_FORCE : 0, &eb);
    if (e == TR_OK)
        e = store_sv_create(r->srv->db, r->arena, sv, NULL, 0, 0, kind, holder,
                            sv, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_add_header(r, "X-Terraform-Snapshot-Interval", SNAPSHOT_INTERVAL);
    reply_sv(r, 201, sv, false, NULL);
}

static void sv_create(struct http_req *r)
{
    struct st_workspace ws;
    struct create_req q = {0};
    if (!api_workspace_access(r, http_param(r, "id"), &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_STATE_WRITE, "create state versions"))
        return;
    json_t *data = jsonapi_body(r, "state-versions");
    if (data == NULL || !parse_create(r, data, &q) || !holds_lock(r, &ws))
        return;
    struct st_sv sv = {
        .id = util_new_id(r->arena, "sv"),
        .workspace_id = ws.id,
        .serial = q.serial,
        .lineage = q.lineage ? q.lineage : "",
        .md5 = q.md5,
        .run_id = q.run_id,
        .created_by = r->who.kind == PRINC_USER ? r->who.user_id : NULL,
        .terraform_version = "",
        .resources = "[]",
    };
    if (q.state != NULL)
        create_inline(r, &q, &sv);
    else
        create_pending(r, &q, &sv);
}

/* ---- rollback ----------------------------------------------------------- */

/* PATCH /workspaces/:id/state-versions: a new version with the content of
 * rollback-state-version and serial current+1, made current. */
static void sv_rollback(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace ws;
    struct st_sv target, cur;
    if (!api_workspace_access(r, http_param(r, "id"), &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_STATE_WRITE, "roll back state"))
        return;
    json_t *data = jsonapi_body(r, "state-versions");
    if (data == NULL)
        return;
    const char *tid = jsonapi_rel_id(data, "rollback-state-version");
    if (tid == NULL) {
        invalid(r, "relationship rollback-state-version is required");
        return;
    }
    if (!holds_lock(r, &ws))
        return;
    tr_err e = store_sv_get(r->srv->db, r->arena, tid, &target, &eb);
    if (e == TR_OK && strcmp(target.workspace_id, ws.id) != 0)
        e = TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found", "state version not found");
        return;
    }
    if (e == TR_OK && strcmp(target.status, "finalized") != 0) {
        invalid(r, "only a finalized state version can be rolled back to");
        return;
    }
    if (e == TR_OK)
        e = store_sv_current(r->srv->db, r->arena, ws.id, &cur, &eb);
    /* serials come from clients, up to INT64_MAX */
    int64_t next = 0;
    if (e == TR_OK && !util_add_i64(cur.serial, 1, &next)) {
        invalid(r, "cannot roll back: the current state's serial is the "
                   "largest possible, so no later serial exists");
        return;
    }
    char *raw = NULL, *json = NULL, *out = NULL;
    size_t rawlen = 0, jsonlen = 0, outlen = 0;
    int64_t max = r->srv->cfg.max_state;
    if (e == TR_OK)
        e = blob_get(r->srv->blob, r->arena, target.blob_key, (size_t)max, &raw,
                     &rawlen, &eb);
    if (e == TR_OK && target.json_blob_key != NULL)
        e = blob_get(r->srv->blob, r->arena, target.json_blob_key,
                     (size_t)max * 2, &json, &jsonlen, &eb);
    if (e == TR_OK)
        e = state_with_serial(r->arena, raw, rawlen, next, &out, &outlen, &eb);
    struct state_info si = {0};
    if (e == TR_OK)
        e = state_parse(r->arena, out, outlen, &si, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e == TR_ERR_INVALID ? TR_ERR_INTERNAL : e, &eb);
        return;
    }
    struct st_sv sv = {
        .id = util_new_id(r->arena, "sv"),
        .workspace_id = ws.id,
        .serial = next,
        .lineage = target.lineage,
        .md5 = digest_md5_hex(r->arena, out, outlen),
        .sha256 = digest_sha256_hex(r->arena, out, outlen),
        .size = (int64_t)outlen,
        .status = "finalized",
        .created_by = r->who.kind == PRINC_USER ? r->who.user_id : NULL,
        .terraform_version = si.terraform_version,
        .resources = si.resources,
    };
    sv.blob_key = blob_key(r, ws.id, sv.id, "tfstate");
    sv.json_blob_key = json ? blob_key(r, ws.id, sv.id, "json") : NULL;
    /* the response names the source, as TFE's does */
    json_t *extra = json_pack("{s:{s:o}}", "rollback-state-version", "data",
                              ref("state-versions", target.id));
    write_finalized(r, &sv, &si, out, outlen, json, jsonlen, SV_SKIP_LINEAGE,
                    extra);
}

/* ---- reads -------------------------------------------------------------- */

static void list_reply(struct http_req *r, const struct st_workspace *ws)
{
    struct tr_errbuf eb = {{0}};
    struct page p;
    struct st_sv *svs = NULL;
    int n = 0;
    int64_t total = 0;
    if (!jsonapi_page(r, &p))
        return;
    tr_err e =
        store_sv_list(r->srv->db, r->arena, ws->id, (p.number - 1) * p.size,
                      p.size, &svs, &n, &total, &eb);
    struct st_sv_output **outs = NULL;
    int *nouts = NULL;
    if (e == TR_OK)
        e = store_sv_outputs_of(r->srv->db, r->arena, svs, n, &outs, &nouts,
                                &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    struct jw j;
    http_jw_start(r, &j);
    jw_obj(&j);
    jw_key(&j, "data");
    jw_arr(&j);
    for (int i = 0; i < n; i++)
        sv_write(r, &j, &svs[i], outs[i], nouts[i]);
    jw_arr_end(&j);
    jsonapi_write_meta(&j, &p, total);
    jw_obj_end(&j);
    http_reply_jw(r, 200, &j);
}

static void ws_sv_list(struct http_req *r)
{
    struct st_workspace ws;
    if (api_workspace_access(r, http_param(r, "id"), &ws) &&
        api_ws_allow(r, &ws, ACC_WS_STATE_READ, "read state versions"))
        list_reply(r, &ws);
}

static void sv_list(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace ws;
    const char *name = http_query(r, "filter[workspace][name]");
    const char *org = http_query(r, "filter[organization][name]");
    if (name == NULL || *name == '\0' || org == NULL || *org == '\0') {
        http_error(r, 400, NULL,
                   "filter[workspace][name] and filter[organization][name] "
                   "are required");
        return;
    }
    if (!api_org_access(r, org, NULL))
        return;
    tr_err e = store_ws_get_by_name(r->srv->db, r->arena, org, name, &ws, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found", "workspace not found");
        return;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (api_workspace_access(r, ws.id, &ws) &&
        api_ws_allow(r, &ws, ACC_WS_STATE_READ, "read state versions"))
        list_reply(r, &ws);
}

static void sv_show(struct http_req *r)
{
    struct st_sv sv;
    bool outputs = false;
    if (parse_include(r, &outputs) &&
        api_sv_access(r, http_param(r, "id"), &sv, NULL, ACC_WS_STATE_READ))
        reply_sv(r, 200, &sv, outputs, NULL);
}

static void ws_current(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace ws;
    struct st_sv sv;
    bool outputs = false;
    http_add_header(r, "X-Terraform-Snapshot-Interval", SNAPSHOT_INTERVAL);
    if (!parse_include(r, &outputs) ||
        !api_workspace_access(r, http_param(r, "id"), &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_STATE_READ, "read state versions"))
        return;
    tr_err e = store_sv_current(r->srv->db, r->arena, ws.id, &sv, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_sv(r, 200, &sv, outputs, NULL);
}

const struct route api_state_routes[] = {
    {"GET", "/api/v2/state-versions", sv_list, ROUTE_AUTH},
    {"POST", "/api/v2/workspaces/:id/state-versions", sv_create,
     ROUTE_AUTH | ROUTE_RUN | ROUTE_BIG_JSON},
    {"PATCH", "/api/v2/workspaces/:id/state-versions", sv_rollback, ROUTE_AUTH},
    {"GET", "/api/v2/workspaces/:id/state-versions", ws_sv_list,
     ROUTE_AUTH | ROUTE_RUN | ROUTE_WS_READ},
    {"GET", "/api/v2/workspaces/:id/current-state-version", ws_current,
     ROUTE_AUTH | ROUTE_RUN | ROUTE_WS_READ},
    {"GET", "/api/v2/workspaces/:id/current-state-version-outputs",
     api_ws_current_outputs, ROUTE_AUTH | ROUTE_RUN | ROUTE_WS_READ},
    {"GET", "/api/v2/state-versions/:id", sv_show, ROUTE_AUTH | ROUTE_RUN},
    {"GET", "/api/v2/state-versions/:id/outputs", api_sv_outputs,
     ROUTE_AUTH | ROUTE_RUN},
    {"GET", "/api/v2/state-versions/:id/download", api_sv_download, 0},
    {"GET", "/api/v2/state-versions/:id/json-download", api_sv_json_download,
     0},
    {"PUT", "/api/v2/state-versions/:id/upload", api_sv_upload,
     ROUTE_STREAM | ROUTE_SIGNED},
    {"PUT", "/api/v2/state-versions/:id/json-upload", api_sv_json_upload,
     ROUTE_SPOOL | ROUTE_SIGNED},
    {"GET", "/api/v2/state-version-outputs/:id", api_sv_output_show,
     ROUTE_AUTH | ROUTE_RUN},
    {0},
};
