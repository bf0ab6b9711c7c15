/*
 * config_versions.c - configuration versions: the configuration tarballs
 * the CLI uploads before a remote run (go-tfe configuration_version.go).
 *
 *   POST /workspaces/:id/configuration-versions        create (pending)
 *   GET  /workspaces/:id/configuration-versions        list, newest first
 *   GET  /configuration-versions/:id                   read
 *   PUT  /configuration-versions/:id/upload            signature only
 *   GET  /configuration-versions/:id/download          token
 *   POST /configuration-versions/:id/actions/archive
 *
 * The upload URL appears only in the create response, as in TFE.  The
 * PUT is authorized by its signature alone; the Bearer token older go-tfe
 * sends along is ignored.  Its body is spooled to disk and checked
 * completely (executor/archive.h: gzip'ed or plain tar, no absolute or
 * ".." names, no escaping or nested symlinks, no hard links or special
 * files; at most max-config-size bytes unpacked, and at most
 * max-config-ratio times the compressed size once past a few MiB, so a
 * decompression bomb is refused after a few MiB of work) before anything
 * is stored:
 *
 *   good archive: blob made durable, then pending -> uploaded, then
 *                 api_cv_uploaded() queues the run auto-queue-runs asks
 *                 for, all before the PUT answers 200
 *   run not queued (database failing, disk full): the version goes back
 *                 to pending and its blob is removed, and the PUT answers
 *                 5xx, so the client sees the failure and may upload to
 *                 the same URL again; if even that revert fails, the
 *                 version stays uploaded with no run, and the next upload
 *                 (allowed: no run used it) queues the run
 *   bad archive:  pending -> errored with the reason, 422, no blob
 *   uploaded, no run used it yet: another upload replaces the tarball
 *                 (as TFE's upload URL allows; go-tfe's tests do it);
 *                 a bad archive then gets 422 and the version keeps its
 *                 configuration
 *   otherwise:    409, nothing changes
 *
 * Each upload writes its own blob key, so of two racing uploads the loser
 * (409 from the conditional store update) removes only its own bytes.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "api/workspaces_int.h"
#include "blob/blob.h"
#include "core/log.h"
#include "executor/archive.h"

/* ---- documents ----------------------------------------------------------- */

static json_t *cv_json(struct http_req *r, const struct st_cv *cv,
                       const char *upload_url)
{
    bool errored = strcmp(cv->status, "errored") == 0;
    json_t *ts = cv->status_timestamps
                     ? json_loads(cv->status_timestamps, 0, NULL)
                     : NULL;
    if (!json_is_object(ts)) {
        json_decref(ts);
        ts = json_object();
    }
    json_t *attrs = json_pack(
        "{s:b,s:o,s:o,s:s,s:b,s:b,s:s,s:o,s:o,s:[]}", "auto-queue-runs",
        cv->auto_queue_runs, "error",
        errored ? json_string("invalid_archive") : json_null(), "error-message",
        errored && cv->error_message ? json_string(cv->error_message)
                                     : json_null(),
        "source", cv->source, "speculative", cv->speculative, "provisional",
        cv->provisional, "status", cv->status, "status-timestamps", ts,
        "upload-url", upload_url ? json_string(upload_url) : json_null(),
        "changed-files");
    const char *self =
        arena_printf(r->arena, "/api/v2/configuration-versions/%s", cv->id);
    return json_pack("{s:s,s:s,s:o,s:{s:{s:n}},s:{s:s,s:s}}", "id", cv->id,
                     "type", "configuration-versions", "attributes", attrs,
                     "relationships", "ingress-attributes", "data", "links",
                     "self", self, "download",
                     arena_printf(r->arena, "%s/download", self));
}

static void reply_cv(struct http_req *r, int status, const struct st_cv *cv,
                     const char *upload_url)
{
    http_reply_json(r, status,
                    json_pack("{s:o}", "data", cv_json(r, cv, upload_url)));
}

/* include=...: ingress_attributes and run are accepted; there is nothing
 * to include yet (no VCS ingress, runs link back on their own side). */
static bool parse_include(struct http_req *r)
{
    const char *inc = http_query(r, "include");
    if (inc == NULL || *inc == '\0')
        return true;
    char *copy = arena_strdup(r->arena, inc), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "ingress_attributes") != 0 && strcmp(t, "run") != 0) {
            http_error(
                r, 400, "Invalid include parameter",
                arena_printf(r->arena, "Invalid include parameter: %.100s", t));
            return false;
        }
    }
    return true;
}

/* Loads version id if the caller may see its workspace (ws nullable);
 * otherwise writes 404 and returns false. */
static bool cv_access(struct http_req *r, const char *id, struct st_cv *cv,
                      struct st_workspace *ws)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace w;
    tr_err e = store_cv_get(r->srv->db, r->arena, id, cv, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, "not found", "configuration version not found");
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    return api_workspace_access(r, cv->workspace_id, ws ? ws : &w);
}

/* ---- handlers ------------------------------------------------------------ */

static void cv_create(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace ws;
    int auto_queue = -1, speculative = -1, provisional = -1;
    if (!api_workspace_access(r, http_param(r, "id"), &ws))
        return;
    json_t *data = jsonapi_body(r, "configuration-versions");
    if (data == NULL ||
        !jsonapi_attr_bool(r, data, "auto-queue-runs", &auto_queue) ||
        !jsonapi_attr_bool(r, data, "speculative", &speculative) ||
        !jsonapi_attr_bool(r, data, "provisional", &provisional) ||
        !api_ws_allow(r, &ws, ACC_WS_PLAN, "upload configurations"))
        return;
    struct st_cv in = {
        .id = util_new_id(r->arena, "cv"),
        .workspace_id = ws.id,
        .source = "tfe-api",
        .auto_queue_runs = auto_queue != 0,
        .speculative = speculative == 1,
        .provisional = provisional == 1,
        .created_by = r->who.kind == PRINC_USER ? r->who.user_id : NULL,
    };
    struct st_cv cv;
    tr_err e = store_cv_create(r->srv->db, r->arena, &in, &cv, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    char *path = arena_printf(
        r->arena, "/api/v2/configuration-versions/%s/upload", cv.id);
    reply_cv(r, 201, &cv, http_signed_url(r, path, r->srv->cfg.upload_url_ttl));
}

static void cv_show(struct http_req *r)
{
    struct st_cv cv;
    if (parse_include(r) && cv_access(r, http_param(r, "id"), &cv, NULL))
        reply_cv(r, 200, &cv, NULL);
}

static void cv_list(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace ws;
    struct page p;
    struct st_cv *cvs = NULL;
    int n = 0;
    int64_t total = 0;
    if (!parse_include(r) || !jsonapi_page(r, &p) ||
        !api_workspace_access(r, http_param(r, "id"), &ws))
        return;
    tr_err e =
        store_cv_list(r->srv->db, r->arena, ws.id, (p.number - 1) * p.size,
                      p.size, &cvs, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, cv_json(r, &cvs[i], NULL));
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, total));
}

/* Why archive_check() refused the upload, with what the uploader can do
 * about a limit. */
static const char *refusal(struct http_req *r, tr_err e,
                           const struct tr_errbuf *eb)
{
    if (e != TR_ERR_TOO_LARGE)
        return eb->msg;
    return arena_printf(r->arena,
                        "%s; leave large or generated files out of the "
                        "upload (.terraformignore)",
                        eb->msg);
}

/* A rejected archive: the version turns errored with the reason. */
static void upload_rejected(struct http_req *r, const struct st_cv *cv,
                            const char *why)
{
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_cv_set_errored(r->srv->db, r->arena, cv->id, why, NULL, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_error(r, 422, "invalid configuration archive", why);
}

/* The upload stored the configuration but its run could not be queued:
 * undo the first upload (key not NULL) if the database lets us, and fail
 * the request, so no upload succeeds without the run it asked for. */
static void run_not_queued(struct http_req *r, const struct st_cv *cv,
                           const char *key, tr_err e,
                           const struct tr_errbuf *why)
{
    struct tr_errbuf eb = {{0}};
    log_error("rid=%s cannot queue a run for %s: %s", r->request_id, cv->id,
              tr_errbuf_msg(why, e));
    bool undone =
        key != NULL &&
        store_cv_unset_upload(r->srv->db, r->arena, cv->id, key, &eb) == TR_OK;
    if (undone)
        blob_remove(r->srv->blob, key, NULL);
    int status = http_status_for(e) >= 500 ? http_status_for(e) : 500;
    http_error(r, status, NULL,
               undone ? "the configuration could not be stored with its run; "
                        "upload it again"
                      : "the configuration was stored but its run could not "
                        "be queued; upload it again to queue the run");
}

static void cv_upload(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_cv cv;
    if (!http_check_signature(r))
        return;
    tr_err e =
        store_cv_get(r->srv->db, r->arena, http_param(r, "id"), &cv, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    bool again = strcmp(cv.status, "uploaded") == 0;
    if (strcmp(cv.status, "pending") != 0 && !again) {
        http_error(r, 409, "conflict",
                   arena_printf(r->arena,
                                "configuration version %s is %s and accepts "
                                "no upload",
                                cv.id, cv.status));
        return;
    }
    const struct archive_limits lim = {
        .max_unpacked = (uint64_t)r->srv->cfg.max_config_size,
        .max_entries = ARCHIVE_MAX_ENTRIES,
        .max_ratio = r->srv->cfg.max_config_ratio,
    };
    e = archive_check(r->spool_path, &lim, &eb);
    if ((e == TR_ERR_INVALID || e == TR_ERR_TOO_LARGE) && again) {
        /* the version keeps its good configuration */
        http_error(r, 422, "invalid configuration archive", refusal(r, e, &eb));
        return;
    }
    if (e == TR_ERR_INVALID || e == TR_ERR_TOO_LARGE) {
        upload_rejected(r, &cv, refusal(r, e, &eb));
        return;
    }
    char *key =
        arena_printf(r->arena, "config/%s/%s-%s.tar.gz", cv.workspace_id, cv.id,
                     util_new_id(r->arena, "u"));
    const char *old_key = NULL;
    if (e == TR_OK)
        e = blob_put_file(r->srv->blob, key, r->spool_path, &eb);
    if (e == TR_OK) {
        e = again ? store_cv_replace_upload(r->srv->db, r->arena, cv.id, key,
                                            (int64_t)r->body_len, &old_key, &eb)
                  : store_cv_set_uploaded(r->srv->db, r->arena, cv.id, key,
                                          (int64_t)r->body_len, &cv, &eb);
        if (e != TR_OK)
            blob_remove(r->srv->blob, key, NULL);
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (old_key != NULL) /* replaced: the first upload's bytes go */
        blob_remove(r->srv->blob, old_key, NULL);
    e = api_cv_uploaded(r, &cv, &eb);
    if (e != TR_OK) {
        run_not_queued(r, &cv, again ? NULL : key, e, &eb);
        return;
    }
    http_reply(r, 200, NULL, "", 0);
}

static void cv_download(struct http_req *r)
{
    struct st_cv cv;
    if (!cv_access(r, http_param(r, "id"), &cv, NULL))
        return;
    if (strcmp(cv.status, "uploaded") != 0 || cv.blob_key == NULL) {
        http_error(r, 404, "not found",
                   "this configuration version has no configuration to "
                   "download");
        return;
    }
    api_reply_object(r, cv.blob_key, "application/octet-stream");
}

static void cv_archive(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_cv cv;
    struct st_workspace ws;
    const char *key = NULL;
    if (!cv_access(r, http_param(r, "id"), &cv, &ws) ||
        !api_ws_allow(r, &ws, ACC_WS_PLAN, "archive configurations"))
        return;
    tr_err e = store_cv_archive(r->srv->db, r->arena, cv.id, &key, &eb);
    if (e == TR_ERR_CONFLICT) {
        http_error(r, 409, "transition not allowed", eb.msg);
        return;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (key != NULL) /* a leftover blob is garbage, not an error */
        blob_remove(r->srv->blob, key, NULL);
    http_reply(r, 202, NULL, "", 0);
}

tr_err api_cv_uploaded(struct http_req *r, const struct st_cv *cv,
                       struct tr_errbuf *eb)
{
    return api_run_from_cv(r, cv, eb);
}

const struct route api_cv_routes[] = {
    {"POST", "/api/v2/workspaces/:id/configuration-versions", cv_create,
     ROUTE_AUTH},
    {"GET", "/api/v2/workspaces/:id/configuration-versions", cv_list,
     ROUTE_AUTH | ROUTE_WS_READ},
    {"GET", "/api/v2/configuration-versions/:id", cv_show, ROUTE_AUTH},
    {"PUT", "/api/v2/configuration-versions/:id/upload", cv_upload,
     ROUTE_SPOOL | ROUTE_SIGNED},
    {"GET", "/api/v2/configuration-versions/:id/download", cv_download,
     ROUTE_AUTH},
    {"POST", "/api/v2/configuration-versions/:id/actions/archive", cv_archive,
     ROUTE_AUTH},
    {0},
};
