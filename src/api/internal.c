/*
 * internal.c - the internal API that secondaries call on any primary
 * (/api/internal/v1/, a route table of its own, never part of the public
 * API): join, the node's own heartbeat and leave, job claims, run
 * finality and tool binaries.  The job routes are in internal_jobs.c.
 *
 *   POST /join {"join_token","name","address","version","capacity"}
 *        -> 201 {"node_id","credential"}
 *   POST /agents/join {"agent_token","name","version","capacity"}
 *        -> 201 {"node_id" (agent-...),"credential","pool_id"}: an agent
 *        of the token's pool (the address is the caller's), which claims
 *        only that pool's jobs (store_job_claim())
 *   POST /nodes/heartbeat {"running_jobs","state"} -> 200 {"node_id"}
 *   POST /nodes/leave -> 204 (the credential stops working)
 *   POST /claim?wait=MS (0..30000) -> 200 {"job":{...}} or 204; the
 *        node confirms the job with its first heartbeat for it, or the
 *        job goes back to the queue (job_service_claim_remote())
 *   GET  /runs/:id/final -> 200 {"final":bool}
 *   GET  /tools/:version -> the binary, header X-Terrace-Sha256; at
 *        most tool-downloads at once per primary, 503 + Retry-After
 *        beyond
 *   GET  /tool-versions/:version ("latest" too) -> {"version","sha256"}
 *   jobs/:id/heartbeat | log | config | plan | files/:kind | finish,
 *        and json-plan after the finish (internal_jobs.c)
 * The job object has struct job's fields by their names (executor/job.h)
 * but no local paths (tool_path, ca_file).
 *
 * Every route but the joins needs a node credential (ROUTE_NODE,
 * auth.c); join needs the cluster's join token (domain/join_token.h),
 * compared in constant time, agents/join an agent token (stored hashed). Bodies
 * are plain JSON; errors are JSON:API error documents like the public API's,
 * and a refused request changes nothing.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdatomic.h>

#include "api/api.h"
#include "api/internal_int.h"
#include "core/log.h"
#include "domain/job_service.h"
#include "domain/join_token.h"
#include "executor/tool_install.h"

#define TOOL_RETRY_AFTER "3" /* s, when tool-downloads are all taken */

/* ---- bodies -------------------------------------------------------------- */

json_t *api_internal_body(struct http_req *r)
{
    if (r->body.len == 0)
        return http_json_own(r, json_object());
    json_error_t jerr;
    json_t *doc =
        http_json_own(r, json_loadb(r->body.data, r->body.len, 0, &jerr));
    if (doc == NULL) {
        http_error(r, 400, NULL,
                   arena_printf(r->arena, "malformed JSON: %s at line %d",
                                jerr.text, jerr.line));
        return NULL;
    }
    if (!json_is_object(doc)) {
        http_error(r, 400, NULL, "the body must be a JSON object");
        return NULL;
    }
    return doc;
}

bool api_internal_str(struct http_req *r, json_t *o, const char *name,
                      bool required, size_t max, const char **out)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return true;
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "%s is required", name));
        return false;
    }
    if (!json_is_string(v) || json_string_length(v) > max ||
        (required && json_string_length(v) == 0)) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "%s must be a non-empty string of at most "
                                "%zu bytes",
                                name, max));
        return false;
    }
    *out = json_string_value(v);
    return true;
}

bool api_internal_int(struct http_req *r, json_t *o, const char *name,
                      int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "%s must be an integer %lld..%lld",
                                name, (long long)lo, (long long)hi));
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

bool api_internal_bool(struct http_req *r, json_t *o, const char *name,
                       bool *out)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "%s must be true or false", name));
        return false;
    }
    *out = json_is_true(v);
    return true;
}

void api_internal_reply(struct http_req *r, int status, json_t *doc)
{
    http_reply_json(r, status, doc);
    r->content_type = "application/json";
}

/* ---- nodes --------------------------------------------------------------- */

static void join(struct http_req *r)
{
    json_t *b = api_internal_body(r);
    const char *token = NULL, *name = NULL, *address = NULL, *version = NULL;
    int64_t capacity = 1;
    if (b == NULL || !api_internal_str(r, b, "join_token", true, 256, &token) ||
        !api_internal_str(r, b, "name", true, 128, &name) ||
        !api_internal_str(r, b, "address", false, 256, &address) ||
        !api_internal_str(r, b, "version", false, 64, &version) ||
        !api_internal_int(r, b, "capacity", 0, 4096, &capacity))
        return;
    struct tr_errbuf eb = {{0}};
    bool ok = false;
    tr_err e = join_token_check(r->srv, r->arena, token, &ok, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (!ok) {
        http_error(r, 401, "unauthorized",
                   "the join token is wrong or was rotated; get the current "
                   "one with `terrace admin join-token`");
        return;
    }
    struct st_node in = {.name = name,
                         .role = "secondary",
                         .address = address,
                         .version = version,
                         .capacity = capacity};
    struct st_node n;
    char *cred = NULL;
    e = store_node_register(r->srv->db, r->arena, &in, &n, &cred, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_internal_reply(
        r, 201, json_pack("{s:s,s:s}", "node_id", n.id, "credential", cred));
}

/* An agent registers with an agent token: it becomes a node of role
 * agent in the token's pool, and claims only that pool's jobs. */
static void agent_join(struct http_req *r)
{
    json_t *b = api_internal_body(r);
    const char *token = NULL, *name = NULL, *version = NULL;
    int64_t capacity = 1;
    if (b == NULL ||
        !api_internal_str(r, b, "agent_token", true, 256, &token) ||
        !api_internal_str(r, b, "name", true, 128, &name) ||
        !api_internal_str(r, b, "version", false, 64, &version) ||
        !api_internal_int(r, b, "capacity", 0, 4096, &capacity))
        return;
    struct tr_errbuf eb = {{0}};
    struct st_agent_token t;
    tr_err e = store_atoken_use(r->srv->db, r->arena, token, &t, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 401, "unauthorized",
                   "the agent token is wrong or was revoked; create one "
                   "under the agent pool's authentication-tokens");
        return;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    struct st_node in = {.name = name,
                         .role = "agent",
                         .address = http_client_ip(r),
                         .version = version,
                         .capacity = capacity,
                         .pool_id = t.pool_id,
                         .agent_token_id = t.id};
    struct st_node n;
    char *cred = NULL;
    e = store_node_register(r->srv->db, r->arena, &in, &n, &cred, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    log_info("agent %s (%s) registered in pool %s", n.id, n.name, t.pool_id);
    api_internal_reply(r, 201,
                       json_pack("{s:s,s:s,s:s}", "node_id", n.id, "credential",
                                 cred, "pool_id", t.pool_id));
}

static void node_heartbeat(struct http_req *r)
{
    json_t *b = api_internal_body(r);
    int64_t running = 0;
    const char *state = NULL;
    if (b == NULL ||
        !api_internal_int(r, b, "running_jobs", 0, 1 << 20, &running) ||
        !api_internal_str(r, b, "state", false, 16, &state))
        return;
    if (state != NULL && strcmp(state, "active") != 0 &&
        strcmp(state, "draining") != 0) {
        http_error(r, 422, NULL, "state must be active or draining");
        return;
    }
    struct tr_errbuf eb = {{0}};
    tr_err e = store_node_heartbeat(r->srv->db, r->arena, r->who.node_id,
                                    running, &eb);
    if (e == TR_OK && state != NULL)
        e = store_node_set_state(r->srv->db, r->arena, r->who.node_id, state,
                                 &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (r->who.node_was_gone)
        log_info("node %s (%s), marked gone after its heartbeats stopped, "
                 "is heard again: active",
                 r->who.node_id, r->who.node_name);
    api_internal_reply(r, 200, json_pack("{s:s}", "node_id", r->who.node_id));
}

static void leave(struct http_req *r)
{
    struct tr_errbuf eb = {{0}};
    /* revoked too: the credential of a node that left ends with it (a
     * node only marked gone for silence comes back by heartbeating) */
    tr_err e = store_node_leave(r->srv->db, r->arena, r->who.node_id, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply(r, 204, NULL, NULL, 0);
}

/* ---- claim --------------------------------------------------------------- */

static json_t *str_list(const char **items, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

/* struct job as the contract names its fields; no local paths. */
static json_t *job_json(const struct job *j)
{
    json_t *vars = json_array();
    for (int i = 0; i < j->nvars; i++)
        json_array_append_new(
            vars,
            json_pack("{s:s,s:s,s:b,s:b,s:b}", "key", j->vars[i].key, "value",
                      j->vars[i].value, "env", j->vars[i].env, "hcl",
                      j->vars[i].hcl, "sensitive", j->vars[i].sensitive));
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?}",
        "id", j->id, "phase", j->phase == JOB_APPLY ? "apply" : "plan",
        "run_id", j->run_id, "phase_id", j->phase_id, "org", j->org, "org_id",
        j->org_id, "workspace", j->workspace, "workspace_id", j->workspace_id,
        "cv_id", j->cv_id, "working_directory", j->working_directory,
        "tool_version", j->tool_version, "tool_sha256", j->tool_sha256, "token",
        j->token, "api_url", j->api_url);
    json_object_set_new(o, "speculative", json_boolean(j->speculative));
    json_object_set_new(o, "is_destroy", json_boolean(j->is_destroy));
    json_object_set_new(o, "refresh", json_boolean(j->refresh));
    json_object_set_new(o, "refresh_only", json_boolean(j->refresh_only));
    json_object_set_new(o, "save_plan", json_boolean(j->save_plan));
    json_object_set_new(o, "structured", json_boolean(j->structured));
    json_object_set_new(o, "want_schemas", json_boolean(j->want_schemas));
    json_object_set_new(o, "defer_json", json_boolean(j->defer_json));
    json_object_set_new(o, "make_json", json_boolean(j->make_json));
    json_object_set_new(o, "targets", str_list(j->targets, j->ntargets));
    json_object_set_new(o, "replaces", str_list(j->replaces, j->nreplaces));
    json_object_set_new(o, "vars", vars);
    json_object_set_new(o, "timeout_s", json_integer(j->timeout_s));
    if (j->ssh_key != NULL)
        json_object_set_new(o, "ssh_key", json_string(j->ssh_key));
    return o;
}

/* Answers a claim: 200 with the job, 204 when none came. */
static void claim_reply(struct http_req *r, tr_err e, const struct job *j,
                        const struct tr_errbuf *eb)
{
    if (e == TR_ERR_NOT_FOUND) {
        http_reply(r, 204, NULL, NULL, 0);
        return;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, eb);
        return;
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "job", job_json(j));
    api_internal_reply(r, 200, doc);
}

/* A parked claim ended (the job service's waiter thread). */
static void claim_done(void *arg, tr_err e, const struct job *j,
                       const struct tr_errbuf *eb)
{
    struct http_req *r = arg;
    claim_reply(r, e, j, eb);
    http_resume(r);
}

/* The connection is suspended: the job service takes the wait. */
static void claim_park(struct http_req *r, void *arg)
{
    const int64_t *deadline = arg;
    job_service_park(r->srv->job_service, r->arena, r->who.node_id, *deadline,
                     claim_done, r);
}

static void claim(struct http_req *r)
{
    int64_t wait = 0;
    const char *w = http_query(r, "wait");
    if (w != NULL &&
        (util_parse_i64(w, &wait) != TR_OK || wait < 0 || wait > 30000)) {
        http_error(r, 400, NULL, "wait must be an integer 0..30000 (ms)");
        return;
    }
    int64_t *deadline = arena_alloc(r->arena, sizeof(*deadline));
    *deadline = util_now_ms() + wait;
    /* the look's rows and job in an arena of their own, gone once the
     * reply is written: a claim that parks keeps only its request */
    struct arena *a = arena_new();
    struct job j;
    struct tr_errbuf eb = {{0}};
    tr_err e = job_service_claim_remote(r->srv->job_service, a, r->who.node_id,
                                        &j, &eb);
    /* long polls wait without holding an HTTP worker thread */
    if (e == TR_ERR_NOT_FOUND && wait > 0)
        http_suspend(r, claim_park, deadline);
    else
        claim_reply(r, e, &j, &eb);
    arena_destroy(a);
}

/* ---- runs and tools ------------------------------------------------------ */

static void run_final(struct http_req *r)
{
    bool final = false;
    struct tr_errbuf eb = {{0}};
    tr_err e = job_service_run_final(r->srv->job_service, http_param(r, "id"),
                                     &final, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_internal_reply(r, 200, json_pack("{s:b}", "final", final));
}

/* A registered official version whose binary another primary installed
 * from the release mirror is installed here too, and must be the same
 * binary (as a claim does, executor/job_tool.c). */
static tr_err install_here(struct http_req *r, const char *version,
                           const char *sha, const char **path,
                           struct tr_errbuf *eb)
{
    struct terrace_server *srv = r->srv;
    struct st_tool reg;
    if (store_tool_by_version(srv->db, r->arena, version, &reg, NULL) !=
            TR_OK ||
        !reg.official || !tool_install_enabled(srv->cfg.tool_mirror))
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "the binary of tool version %s is not on this primary",
                       version);
    struct tool_install_req req = {
        .mirror = srv->cfg.tool_mirror,
        .dir = arena_printf(r->arena, "%s/tools", srv->cfg.data_dir),
        .version = version,
    };
    const char *got = NULL;
    struct tr_errbuf why = {{0}};
    tr_err e = tool_install(r->arena, &req, path, &got, &why);
    if (e != TR_OK)
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "tool version %s is not on this primary and could not "
                       "be installed: %s",
                       version, tr_errbuf_msg(&why, e));
    if (strcasecmp(got, sha) != 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "tool version %s from the mirror (sha256 %s) is not "
                       "the registered binary (sha256 %s)",
                       version, got, sha);
    return TR_OK;
}

/* One tool send ended (the request's arena goes with its connection's
 * last byte, or with the connection). */
static void tool_send_done(void *arg)
{
    struct terrace_server *srv = arg;
    atomic_fetch_sub(&srv->tool_sends, 1);
}

/* Takes one of the tool-downloads slots for this request, or answers 503
 * with Retry-After: a binary of 100 MB and more sent to every secondary
 * at once would take the CPU and the connections that heartbeats,
 * claims and readiness checks need. */
static bool tool_slot(struct http_req *r)
{
    struct terrace_server *srv = r->srv;
    int limit = srv->cfg.tool_downloads > 0 ? srv->cfg.tool_downloads : 1;
    if (atomic_fetch_add(&srv->tool_sends, 1) >= limit) {
        atomic_fetch_sub(&srv->tool_sends, 1);
        http_add_header(r, "Retry-After", TOOL_RETRY_AFTER);
        http_error(r, 503, "service unavailable",
                   arena_printf(r->arena,
                                "this primary is sending the tool to %d "
                                "other nodes; try again in " TOOL_RETRY_AFTER
                                " s",
                                limit));
        return false;
    }
    arena_on_destroy(r->arena, tool_send_done, srv);
    return true;
}

/* What version want names and its checksum, without the binary: a
 * secondary fetches the tool before it claims a job (job_http.c). */
static void tool_meta(struct http_req *r)
{
    const char *want = http_param(r, "version");
    const char *path = NULL, *sha = NULL, *version = NULL;
    struct tr_errbuf eb = {{0}};
    bool ok = strcmp(want, "latest") == 0 || store_tool_valid_version(want);
    tr_err e = ok ? store_tool_resolve(r->srv->db, r->arena, want, &path, &sha,
                                       &version, &eb)
                  : TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 404, NULL,
                   arena_printf(r->arena,
                                "tool version %s is not registered or is "
                                "disabled",
                                ok ? want : "(invalid)"));
        return;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    api_internal_reply(
        r, 200, json_pack("{s:s,s:s}", "version", version, "sha256", sha));
}

static void tool(struct http_req *r)
{
    const char *want = http_param(r, "version");
    const char *path = NULL, *sha = NULL, *version = NULL;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_tool_valid_version(want)
                   ? store_tool_resolve(r->srv->db, r->arena, want, &path, &sha,
                                        &version, &eb)
                   : TR_ERR_NOT_FOUND;
    if (e == TR_ERR_NOT_FOUND) {
        http_error(
            r, 404, NULL,
            arena_printf(r->arena,
                         "tool version %s is not registered or is "
                         "disabled",
                         store_tool_valid_version(want) ? want : "(invalid)"));
        return;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (!tool_slot(r))
        return;
    if (access(path, R_OK) != 0) {
        e = install_here(r, version, sha, &path, &eb);
        if (e != TR_OK) {
            api_store_fail(r, e, &eb);
            return;
        }
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        http_error(r, 404, NULL,
                   arena_printf(r->arena,
                                "the binary of tool version %s is not on "
                                "this primary",
                                version));
        return;
    }
    http_add_header(r, "X-Terrace-Sha256", sha);
    http_reply_file(r, 200, "application/octet-stream", fd,
                    (uint64_t)st.st_size);
}

const struct route api_internal_routes[] = {
    {"POST", "/api/internal/v1/join", join, 0},
    {"POST", "/api/internal/v1/agents/join", agent_join, 0},
    {"POST", "/api/internal/v1/nodes/heartbeat", node_heartbeat, ROUTE_NODE},
    {"POST", "/api/internal/v1/nodes/leave", leave, ROUTE_NODE},
    {"POST", "/api/internal/v1/claim", claim, ROUTE_NODE},
    {"GET", "/api/internal/v1/runs/:id/final", run_final, ROUTE_NODE},
    {"GET", "/api/internal/v1/tools/:version", tool, ROUTE_NODE},
    {"GET", "/api/internal/v1/tool-versions/:version", tool_meta, ROUTE_NODE},
    {0},
};
