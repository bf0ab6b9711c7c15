/*
 * state_transfer.c - the bytes of a state version: downloads and the
 * upload URLs of the pending (upload-URL) flow.
 *
 *   GET /state-versions/:id/download, /json-download
 *       with the caller's token (the CLI sends it to the download URL)
 *       or, without an Authorization header, a valid signature
 *   PUT /state-versions/:id/upload, /json-upload
 *       signature only (go-tfe's foreign PUT carries no token); the body
 *       is never held in memory
 *
 * A state upload with a Content-Length makes one pass (state_upload.h):
 * the version is looked up before the body is read (a finalized or
 * discarded one is refused with 409 at once), then the body is checked
 * as v4 state, digested and streamed sealed to the blob store while it
 * arrives.  The object is committed only when the md5 declared when the
 * version was created matches, the state is usable and the successor
 * rule holds; otherwise the backend aborts it.  Then one transaction
 * finalizes the version and makes it current (store_sv_finalize).
 * Without a Content-Length (chunked) the body is spooled to disk and the
 * same checks run on the spool before it moves into the store.  A
 * rejected upload leaves the version pending so the client may retry.
 * The JSON state (spooled, checked as JSON) may arrive before or after
 * the state (go-tfe sends both at once), once.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>
#include <unistd.h>

#include "api/state_int.h"
#include "blob/blob.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto/digest.h"
#include "domain/state_upload.h"

static void download(struct http_req *r, bool json)
{
    struct tr_errbuf eb = {{0}};
    struct st_sv sv;
    const char *id = http_param(r, "id");
    if (http_header(r, "Authorization") != NULL) {
        if (!http_authenticate(r) ||
            !api_sv_access(r, id, &sv, NULL, ACC_WS_STATE_READ))
            return;
    } else {
        if (!http_check_signature(r))
            return;
        tr_err e = store_sv_get(r->srv->db, r->arena, id, &sv, &eb);
        if (e != TR_OK) {
            api_store_fail(r, e, &eb);
            return;
        }
    }
    const char *key = json ? sv.json_blob_key : sv.blob_key;
    if (strcmp(sv.status, "finalized") != 0 || key == NULL) {
        http_error(r, 404, "not found",
                   json ? "this state version has no JSON state"
                        : "this state version has no state yet");
        return;
    }
    api_reply_object(r, key, "application/json");
}

void api_sv_download(struct http_req *r)
{
    download(r, false);
}

void api_sv_json_download(struct http_req *r)
{
    download(r, true);
}

static void digest_block(void *arg, const void *data, size_t len)
{
    digest_stream_update(arg, data, len);
}

/* One pass over the spooled body: its md5 and sha256, and the state
 * checked as it streams by (state_parse_fd_with reads to the end even
 * when it refuses the state, so the digests are always whole).  False
 * when the spool cannot be read (answered). */
static bool spool_check(struct http_req *r, struct state_info *si,
                        tr_err *parse, struct tr_errbuf *eb, char **md5,
                        char **sha)
{
    struct digest_stream *d = digest_stream_new(r->arena);
    *parse =
        state_parse_fd_with(r->arena, r->spool_fd, digest_block, d, si, eb);
    if (*parse == TR_ERR_IO) {
        log_error("rid=%s %s", r->request_id, eb->msg);
        http_fail(r, TR_ERR_IO, NULL);
        return false;
    }
    digest_stream_final(d, r->arena, md5, sha);
    return true;
}

/* Loads the version an upload URL names, after its signature, and
 * rewinds the spool file. */
static bool upload_target(struct http_req *r, struct st_sv *sv)
{
    struct tr_errbuf eb = {{0}};
    if (!http_check_signature(r))
        return false;
    tr_err e = store_sv_get(r->srv->db, r->arena, http_param(r, "id"), sv, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (lseek(r->spool_fd, 0, SEEK_SET) != 0) {
        http_fail(r, TR_ERR_IO, NULL);
        return false;
    }
    return true;
}

/* Records a checked upload: the successor rule, then the version
 * finalized with what the check found.  commit stores the blob (after
 * the early answer of the successor rule, before the row). */
static tr_err upload_record(struct http_req *r, const struct st_sv *sv,
                            const struct state_info *si, char *sha,
                            tr_err (*commit)(struct http_req *, void *,
                                             struct tr_errbuf *),
                            void *arg, struct tr_errbuf *eb)
{
    /* early answer; finalize checks again */
    tr_err e =
        store_sv_check(r->srv->db, r->arena, sv->workspace_id, sv->serial,
                       *sv->lineage ? sv->lineage : si->lineage, sv->md5,
                       sv->force ? SV_FORCE : 0, eb);
    if (e == TR_OK)
        e = commit(r, arg, eb);
    if (e != TR_OK)
        return e;
    struct st_sv fin = {
        .size = (int64_t)r->body_len,
        .sha256 = sha,
        .lineage = si->lineage,
        .terraform_version = si->terraform_version,
        .resources = si->resources,
    };
    return store_sv_finalize(r->srv->db, r->arena, sv->id, &fin,
                             api_sv_outputs_of(r, si), si->noutputs, NULL, eb);
}

static tr_err commit_spool(struct http_req *r, void *arg, struct tr_errbuf *eb)
{
    const struct st_sv *sv = arg;
    return blob_put_file(r->srv->blob, sv->blob_key, r->spool_path, eb);
}

/* The upload of a version refused before any of its bytes is read. */
static bool upload_refused(struct http_req *r, const struct st_sv *sv)
{
    if (strcmp(sv->status, "pending") == 0)
        return false;
    http_error(
        r, 409, "conflict",
        arena_printf(r->arena, "state version %s is %s", sv->id, sv->status));
    return true;
}

/* An upload without a declared length: spooled, then checked. */
static void upload_spooled(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_sv sv;
    struct state_info si = {0};
    char *md5 = NULL, *sha = NULL;
    if (!upload_target(r, &sv) || upload_refused(r, &sv))
        return;
    tr_err e;
    if (!spool_check(r, &si, &e, &eb, &md5, &sha))
        return;
    if (!digest_equal(md5, sv.md5)) {
        http_error(r, 422, NULL,
                   "md5 of the uploaded state does not match the state "
                   "version's md5");
        return;
    }
    if (e == TR_OK)
        e = upload_record(r, &sv, &si, sha, commit_spool, &sv, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 200, NULL, "", 0);
}

/* A streamed upload (state_upload.h): the version it targets, kept from
 * the early call to the last. */
struct upload_ctx {
    struct st_sv sv;
    struct state_upload *u;
};

static void upload_ctx_free(void *p)
{
    struct upload_ctx *c = p;
    state_upload_free(c->u);
}

/* Before the body: the version must be pending; the body then streams
 * through the check into the blob store (or, without a Content-Length,
 * into a spool file). */
static void upload_begin(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct upload_ctx *c = arena_alloc(r->arena, sizeof(*c));
    tr_err e =
        store_sv_get(r->srv->db, r->arena, http_param(r, "id"), &c->sv, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (upload_refused(r, &c->sv))
        return;
    const char *cl = http_header(r, "Content-Length");
    int64_t len = 0;
    if (cl == NULL || util_parse_i64(cl, &len) != TR_OK || len < 0) {
        e = blob_spool(r->srv->blob, r->arena, &r->spool_fd, &r->spool_path,
                       &eb);
        if (e != TR_OK)
            http_fail(r, e, &eb);
        return;
    }
    e = state_upload_start(r->srv->blob, c->sv.blob_key, (uint64_t)len, &c->u,
                           &r->spool_fd, &eb);
    if (e != TR_OK) {
        log_error("rid=%s %s", r->request_id, eb.msg);
        http_fail(r, e, NULL);
        return;
    }
    arena_on_destroy(r->arena, upload_ctx_free, c);
    r->handler_ctx = c;
}

static tr_err commit_stream(struct http_req *r, void *arg, struct tr_errbuf *eb)
{
    tr_err e = state_upload_finish(arg, true, eb);
    if (e != TR_OK)
        log_error("rid=%s %s", r->request_id, eb->msg);
    return e;
}

void api_sv_upload(struct http_req *r)
{
    if (r->early) {
        upload_begin(r);
        return;
    }
    struct upload_ctx *c = r->handler_ctx;
    if (c == NULL) {
        upload_spooled(r);
        return;
    }
    struct tr_errbuf eb = {{0}};
    struct state_info si = {0};
    char *md5 = NULL, *sha = NULL;
    tr_err e = state_upload_checked(c->u, &si, &md5, &sha, &eb);
    bool md5_ok = digest_equal(md5, c->sv.md5);
    if (e == TR_OK && md5_ok)
        e = upload_record(r, &c->sv, &si, sha, commit_stream, c->u, &eb);
    /* not committed: aborted before the answer (no-op once committed) */
    (void)state_upload_finish(c->u, false, NULL);
    if (!md5_ok) {
        http_error(r, 422, NULL,
                   "md5 of the uploaded state does not match the state "
                   "version's md5");
        return;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 200, NULL, "", 0);
}

void api_sv_json_upload(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    struct st_sv sv;
    if (!upload_target(r, &sv))
        return;
    if (strcmp(sv.status, "discarded") == 0 || sv.json_blob_key != NULL) {
        http_error(r, 409, "conflict",
                   "this state version already has a JSON state or was "
                   "discarded");
        return;
    }
    if (!state_is_json_fd(r->spool_fd)) {
        http_error(r, 422, NULL, "the JSON state is not JSON");
        return;
    }
    /* a key per upload: a concurrent loser cannot overwrite the winner */
    char *key = arena_printf(r->arena, "state/%s/%s-%s.json", sv.workspace_id,
                             sv.id, util_new_id(r->arena, "j"));
    tr_err e = blob_put_file(r->srv->blob, key, r->spool_path, &eb);
    if (e == TR_OK)
        e = store_sv_set_json(r->srv->db, r->arena, sv.id, key, &eb);
    if (e == TR_ERR_CONFLICT)
        blob_remove(r->srv->blob, key, NULL);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 200, NULL, "", 0);
}
