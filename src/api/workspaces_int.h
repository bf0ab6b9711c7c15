/*
 * workspaces_int.h - what the workspace API files share: the workspace
 * and project documents, lookups with access checks, and the handlers the
 * workspace route table (workspaces.c) lists from workspace_lock.c and
 * workspace_tags.c.
 *
 * Internal to src/api; other modules use api.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_API_WORKSPACES_INT_H
#define TR_API_WORKSPACES_INT_H

#include "api/api.h"

/* Most tags, ids or names one request may name. */
#define API_WS_MAX_ITEMS 100

/* What a create or update request asks for; NULL / -1: not given. */
struct ws_in {
    const char *name;
    const char *description;
    const char *execution_mode;
    const char *terraform_version;
    const char *working_directory;
    const char *project_id;
    int auto_apply;
    int operations;
    int ov_exec;   /* setting-overwrites.execution-mode */
    int ov_pool;   /* setting-overwrites.agent-pool */
    bool has_pool; /* agent-pool-id or relationships.agent-pool given */
    const char *agent_pool_id; /* NULL: none */
    json_t *patch; /* settings attributes given (owned by the request) */
    bool has_tags;
    const char **tags;
    int ntags;
    bool has_bindings; /* relationships.tag-bindings given */
    struct st_tag_binding *bindings;
    int nbindings;
};

/* workspace_input.c: reads and checks every attribute of a create or
 * update body (data) for a workspace of org; false after writing the
 * error. */
bool api_ws_parse(struct http_req *r, json_t *data, struct ws_in *in,
                  const char *org);

/* Resolves the execution mode and setting-overwrites of in, given the
 * current overwrites (create: false, false).  Writes the overwrites into
 * in->patch; *mode gets the new mode or NULL (keep). */
void api_ws_resolve_mode(struct http_req *r, struct ws_in *in, const char *org,
                         bool cur_exec, bool cur_pool, bool create,
                         const char **mode);

/* The agent pool a workspace of org (ws_id NULL: being created) in
 * project_id (NULL: the default project) gets with execution mode mode
 * (the new one or the kept one), given its current pool cur_pool:
 * *pool is the pool, "" to clear it, NULL to keep it.  The pool must be
 * in org and allow the workspace.  False after writing a 422. */
bool api_ws_resolve_pool(struct http_req *r, const struct ws_in *in,
                         const char *org, const char *ws_id,
                         const char *project_id, const char *mode,
                         const char *cur_pool, const char **pool);

/* A workspace's settings merged over the defaults (new reference). */
json_t *api_ws_settings_view(const char *settings);
/* The same as members of the object j is writing, in the same order,
 * then "can-queue-destroy-plan" (allow-destroy-plan's value), without
 * parsing the text into a tree. */
void api_ws_settings_write(struct jw *j, const char *settings);

/* Compact JSON text of j in the request arena. */
const char *api_ws_dump(struct http_req *r, json_t *j);

/* The workspace resource object (data of a document), written into j:
 * the one serializer of a workspace, for reads, lists and includes. */
void api_ws_write(struct http_req *r, struct jw *j,
                  const struct st_workspace *w);
/* The same as a tree (new reference), for documents built as trees
 * (includes); it is api_ws_write()'s text, parsed. */
json_t *api_ws_json(struct http_req *r, const struct st_workspace *w);
/* Reads the caller's flags on the n workspaces ws (one page) with one
 * query and keeps them for api_ws_perms() for the rest of the request. */
void api_ws_page_perms(struct http_req *r, const struct st_workspace *ws,
                       int n);
/* A JSON:API list document of page p of the workspaces f selects (*ws, *n:
 * those workspaces); NULL after answering a store failure. */
json_t *api_ws_list_doc(struct http_req *r, const struct st_ws_filter *f,
                        const struct page *p, struct st_workspace **ws, int *n);

/* Answers the list document of page p of the workspaces f selects,
 * written as it goes; false after answering a store failure. */
bool api_ws_list_reply(struct http_req *r, const struct st_ws_filter *f,
                       const struct page *p);

/* Answers status with {"data": <workspace>}. */
void api_ws_reply(struct http_req *r, int status, const struct st_workspace *w);

/* Loads workspace `name` of organization `org` if the caller may see it;
 * otherwise writes 404 and returns false. */
bool api_ws_access_name(struct http_req *r, const char *org, const char *name,
                        struct st_workspace *out);

/* Loads the workspace named by the route (":id", or ":org" + ":name"). */
bool api_ws_from_route(struct http_req *r, struct st_workspace *out);

/* workspace_tags.c: tag names: 1..255 of lower-case letters, digits, '-', '_'
 * and ':'. */
bool api_tag_name_valid(const char *s);

/* The project resource object (projects.c). */
json_t *api_project_json(struct http_req *r, const struct st_project *p);
/* Loads project id if the caller may see its organization; otherwise
 * writes 404 (or the access error) and returns false (projects.c). */
bool api_project_access(struct http_req *r, const char *id,
                        struct st_project *out);
/* The caller's flags for project p (projects.c). */
access_t api_project_perms(struct http_req *r, const struct st_project *p);
/* True when the caller has every flag of need on p; otherwise writes 403
 * "you may not <what> project .." (projects.c). */
bool api_project_allow(struct http_req *r, const struct st_project *p,
                       access_t need, const char *what);

/* tag_bindings.c: the "tag-bindings" relationship of a create or update
 * body (data): *present is false when it is absent; else *list has its *n
 * bindings, checked.  False after writing the error. */
bool api_tb_from_body(struct http_req *r, json_t *data, bool *present,
                      struct st_tag_binding **list, int *n);
/* A tag-bindings (or, effective, effective-tag-bindings) resource. */
json_t *api_tb_json(struct http_req *r, const struct st_tag_binding *b,
                    bool effective);
/* Sets rels' "effective-tag-bindings" to the owner's effective bindings
 * and appends their resources to included (nullable); false after
 * answering a store failure. */
bool api_tb_effective(struct http_req *r, enum st_tb_owner kind, const char *id,
                      json_t *rels, json_t *included);
/* The tag-bindings and effective-tag-bindings relationship links of the
 * resource at base ("/api/v2/workspaces/ws-..."). */
void api_tb_rel_links(struct http_req *r, json_t *rels, const char *base);

/* workspace_tags.c: parses a body whose "data" is an array of resource
 * identifiers of type `type` (1..API_WS_MAX_ITEMS entries).  Returns the array
 * (borrowed) or NULL after writing 400/409/422. */
json_t *api_ws_id_list_body(struct http_req *r, const char *type);
/* The same body's ids, in r's arena; false after writing the error. */
bool api_ws_ids(struct http_req *r, const char *type, const char ***ids,
                int *n);

/* workspace_consumers.c: remote-state-consumers relationships */
void api_ws_consumers_list(struct http_req *r);
void api_ws_consumers_add(struct http_req *r);
void api_ws_consumers_set(struct http_req *r);
void api_ws_consumers_remove(struct http_req *r);

/* workspace_lock.c */
void api_ws_lock(struct http_req *r);
void api_ws_unlock(struct http_req *r);
void api_ws_force_unlock(struct http_req *r);

/* workspace_tags.c */
void api_ws_tags_list(struct http_req *r);
void api_ws_tags_add(struct http_req *r);
void api_ws_tags_remove(struct http_req *r);
void api_org_tags_list(struct http_req *r);
void api_org_tags_delete(struct http_req *r);
void api_tag_add_workspaces(struct http_req *r);

#endif
