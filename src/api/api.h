/*
 * api.h - the TFE-compatible API: one route table per resource file, and
 * the access checks every handler shares.
 *
 * Handlers validate everything they receive, answer a JSON:API document
 * (or error) and change nothing on a rejected request.  Objects the caller
 * may not see answer 404 exactly as if they did not exist.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_API_H
#define TR_API_H

#include "http/http.h"
#include "domain/access.h"
#include "store/store.h"

/* Route tables (each ends with a {0} entry). */
extern const struct route api_meta_routes[];
extern const struct route api_org_routes[];
extern const struct route api_user_routes[];
extern const struct route api_project_routes[];
extern const struct route api_workspace_routes[];
extern const struct route api_tag_binding_routes[];
extern const struct route api_run_trigger_routes[];
extern const struct route api_ssh_key_routes[];
extern const struct route api_state_routes[];
extern const struct route api_tool_routes[];
extern const struct route api_var_routes[];
extern const struct route api_varset_routes[];
extern const struct route api_cv_routes[];
extern const struct route api_run_routes[];
extern const struct route api_run_action_routes[];
extern const struct route api_plan_apply_routes[];
extern const struct route api_run_log_routes[];
extern const struct route api_node_routes[];
/* ip-ranges, workspace resources, feature sets (compat.c) */
extern const struct route api_compat_routes[];
/* teams (teams.c), team access (team_access.c), team tokens
 * (team_tokens.c) */
extern const struct route api_team_routes[];
extern const struct route api_team_access_routes[];
extern const struct route api_team_token_routes[];
/* notification configurations (notifications.c) */
extern const struct route api_notification_routes[];
/* agent pools, agent tokens and agents (agent_pools.c) */
extern const struct route api_agent_pool_routes[];
/* Requests for a JSON plan on its way, parked (json_wait.c): made before
 * the HTTP server starts (srv->json_wait; without it such a request is
 * answered at once), stopped before it stops (every parked request is
 * answered), then freed. */
struct json_wait *api_json_wait_new(struct terrace_server *srv);
void api_json_wait_stop(struct json_wait *jw);
void api_json_wait_free(struct json_wait *jw);

/* /authentication-tokens/:id for an agent token: tokens.c hands the ids
 * api_agent_token_id() accepts (agtok-...) to these. */
bool api_agent_token_id(const char *id);
void api_agent_token_get(struct http_req *r);
void api_agent_token_delete(struct http_req *r);

/* The internal API for cluster nodes (internal.c, internal_jobs.c): a
 * table of its own, served by primaries only, with node credentials. */
extern const struct route api_internal_routes[];
extern const struct route api_internal_job_routes[];
/* GET/POST /api/v2/admin/join-token (join_token.c): primaries only. */
extern const struct route api_join_token_routes[];

/* All public tables, NULL-terminated, for http_set_routes(). */
extern const struct route *const api_all_routes[];
/* The public tables and the internal ones: what a primary serves. */
extern const struct route *const api_primary_routes[];
/* The public tables and the internal ones without join-token
 * administration: what a demo serves (agents join it). */
extern const struct route *const api_demo_routes[];

/* The caller as the permission model (domain/access.h) sees it. */
struct access_caller api_caller(const struct http_req *r);

/* Loads organization `name` if the caller may see it (site admins, its
 * members, its tokens, its runs' tokens); *perms (nullable) gets the
 * caller's ACC_ORG_ flags.  Otherwise writes 404 and returns false. */
bool api_org_perms(struct http_req *r, const char *name, struct st_org *out,
                   access_t *perms);
bool api_org_access(struct http_req *r, const char *name, struct st_org *out);

/* The caller's ACC_ORG_ flags in org (0 after a store failure), computed
 * once per request and organization. */
access_t api_org_flags(struct http_req *r, const char *org);
/* True when the caller has every ACC_ORG_ flag of need in org; writes
 * nothing (a store failure is a no). */
bool api_org_may(struct http_req *r, const char *org, access_t need);
/* True when the caller owns the organization (owners team, site admins,
 * the organization's token). */
bool api_org_admin(struct http_req *r, const char *org);
/* api_org_may(), or writes 403 "you may not <what> in organization .."
 * and returns false. */
bool api_org_allow(struct http_req *r, const char *org, access_t need,
                   const char *what);

/* For a list of org's workspaces or projects: when the caller (a user or a
 * team token) lacks the organization flag all that shows every one,
 * *user or *team gets whose team access limits the list; else both NULL. */
void api_visible_to(struct http_req *r, const char *org, access_t all,
                    const char **user, const char **team);

/* A one-entry cache of the caller's flags for one object per request:
 * 0 when key is not the cached one. */
access_t api_perms_cached(struct http_req *r, const char *key);
void api_perms_cache(struct http_req *r, const char *key, access_t perms);

/* Loads workspace `id` if the caller may see it (ACC_WS_SEE); otherwise
 * writes 404 and returns false.  Implemented in workspaces.c. */
bool api_workspace_access(struct http_req *r, const char *id,
                          struct st_workspace *out);

/* The caller's flags for workspace w (organization, project and workspace
 * flags; 0 after a store failure).  Implemented in workspaces.c. */
access_t api_ws_perms(struct http_req *r, const struct st_workspace *w);

/* True when the caller has every flag of need on workspace w; otherwise
 * writes 403 "you may not <what> in workspace .." (404 for a run token,
 * which sees no more than it may use) and returns false. */
bool api_ws_allow(struct http_req *r, const struct st_workspace *w,
                  access_t need, const char *what);

/* The caller's identity as a workspace lock records it: ("user", user id),
 * ("org", token id), ("team", team id) or ("run", run id). */
void api_lock_identity(const struct http_req *r, const char **kind,
                       const char **holder);

/* The state-versions resource object for id (for include=), or NULL if it
 * cannot be loaded.  The caller has checked access to its workspace.
 * Implemented in state_versions.c. */
json_t *api_sv_resource(struct http_req *r, const char *sv_id);

/* Sets rels' "outputs" to the outputs of workspace w's current state
 * (workspace-outputs, as TFE's include=outputs) and appends their
 * resources to included, sensitive values as null; false after answering
 * a store failure.  Implemented in state_outputs.c. */
bool api_ws_outputs_rel(struct http_req *r, const struct st_workspace *w,
                        json_t *rels, json_t *included);

/* Answers doc (consumed) as JSON:API with numbers in shortest form, as
 * state output values need.  Implemented in state_versions.c. */
void api_sv_reply_doc(struct http_req *r, int status, json_t *doc);

/* Store errors to responses: NOT_FOUND keeps eb's text, others map through
 * http_fail(); logs 5xx with the request id. */
void api_store_fail(struct http_req *r, tr_err e, const struct tr_errbuf *eb);

/* The optional string attribute `name` of a plain JSON ({"name": ..}) or
 * JSON:API ({"data": {"attributes": {"name": ..}}}) body: *out is NULL
 * for an empty body or an absent or null attribute.  Writes 400 (malformed
 * JSON, not an object) or 422 with `msg` (not a string of at most max
 * bytes) and returns false. */
bool api_body_opt_string(struct http_req *r, const char *name, size_t max,
                         const char *msg, const char **out);

/* Called once a configuration version has been uploaded (synchronously,
 * in the upload request, after the version is stored as uploaded, before
 * the answer): queues a run when cv->auto_queue_runs.  An error means the
 * run is not queued and the upload must not answer success.
 * Implemented in config_versions.c. */
tr_err api_cv_uploaded(struct http_req *r, const struct st_cv *cv,
                       struct tr_errbuf *eb);

/* Loads run `id` (and its workspace, nullable) if the caller may see the
 * workspace's organization; otherwise writes 404 and returns false.
 * Implemented in runs.c. */
bool api_run_access(struct http_req *r, const char *id, struct st_run *out,
                    struct st_workspace *ws);

/* Queues the run an uploaded configuration version with auto-queue-runs
 * asks for (plan-only when speculative); TR_OK when none is asked for.
 * On error no run exists and eb says why.  Implemented in runs.c. */
tr_err api_run_from_cv(struct http_req *r, const struct st_cv *cv,
                       struct tr_errbuf *eb);

/* ISO time string or JSON null. */
json_t *api_time(const char *iso);
/* key: {"data": {"id": id, "type": type}}, or {"data": null} without id,
 * as the next member of the object j is writing. */
void api_rel_write(struct jw *j, const char *key, const char *type,
                   const char *id);
/* The document j wrote into b as a json_t tree, for the callers that
 * still build trees (include=, variable sets); b is freed.  An empty
 * object when the writer failed (never expected: TR_ALWAYS). */
json_t *api_jw_tree(const struct jw *j, struct buf *b);

/* Answers 200 with the stored object key (blob.h) as ctype; a missing
 * object is a 500 (the row that names it says it exists). */
void api_reply_object(struct http_req *r, const char *key, const char *ctype);

#endif
