/*
 * runs.c - the runs API: create, read, list, the organization's run queue
 * and capacity, and the run document shared by the other run files.
 *
 *   POST /runs                                 create (workspace + cv)
 *   GET  /runs/:id[?include=...]               read
 *   GET  /workspaces/:id/runs                  list, newest first
 *   GET  /organizations/:org/runs/queue        active runs, oldest first
 *   GET  /organizations/:org/capacity          pending and running counts
 *
 * A run answers 404 to callers who may not see its workspace, exactly as
 * a run that does not exist.  The state machine itself is domain/run.h;
 * this file validates requests and renders documents.  The actions and
 * permissions blocks are computed from the run's status when rendered, so
 * they are always true to it.
 *
 * Run variables are HCL literals from the CLI; TFE does not treat them as
 * secret, but they are never logged here and are stored sealed
 * (run_variables()).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <string.h>

#include "api/runs_int.h"
#include "api/workspaces_int.h"
#include "core/fault.h"
#include "core/log.h"

#define MAX_ADDRS 100
#define MAX_ADDR_LEN 1024
#define MAX_VARS 200
#define MAX_VAR_VALUE (64 * 1024)
#define MAX_MESSAGE (64 * 1024)

/* ---- access -------------------------------------------------------------- */

static void run_not_found(struct http_req *r, const char *id)
{
    http_error(r, 404, "not found",
               arena_printf(r->arena, "run %s not found", id));
}

bool api_run_access(struct http_req *r, const char *id, struct st_run *out,
                    struct st_workspace *ws)
{
    struct tr_errbuf eb = {{0}};
    struct st_workspace w;
    tr_err e = store_run_get(r->srv->db, r->arena, id, out, &eb);
    if (e == TR_ERR_NOT_FOUND) {
        run_not_found(r, id);
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (api_workspace_access(r, out->workspace_id, ws != NULL ? ws : &w))
        return true;
    if (r->status == 404)
        run_not_found(r, id);
    return false;
}

void api_run_fail(struct http_req *r, tr_err e, const struct tr_errbuf *eb)
{
    if (e == TR_ERR_CONFLICT)
        http_error(r, 409, "transition not allowed", tr_errbuf_msg(eb, e));
    else
        api_store_fail(r, e, eb);
}

/* ---- documents ----------------------------------------------------------- */

json_t *api_rel(const char *type, const char *id)
{
    if (id == NULL)
        return json_pack("{s:n}", "data");
    return json_pack("{s:{s:s,s:s}}", "data", "id", id, "type", type);
}

/* A JSON text (array or object) as a value; def when unparsable. */
static json_t *parsed(const char *text, const char *def)
{
    json_t *j = json_loads(text != NULL ? text : def, 0, NULL);
    return j != NULL ? j : json_loads(def, 0, NULL);
}

/* The caller's flags on the run's workspace: cached by the access check
 * that let the caller see the run (a list's: its workspace's). */
static access_t run_perms(struct http_req *r, const struct st_run *run)
{
    access_t f = api_perms_cached(r, run->workspace_id);
    struct st_workspace w;
    if (f == 0 && r->who.kind != PRINC_RUN &&
        store_ws_get(r->srv->db, r->arena, run->workspace_id, &w, NULL) ==
            TR_OK)
        f = api_ws_perms(r, &w);
    return f;
}

/* key: s, left out when s is NULL (as json_string(NULL) was). */
static void opt_str(struct jw *j, const char *key, const char *s)
{
    if (s != NULL)
        jw_kstr(j, key, s);
}

static void run_attrs(struct http_req *r, struct jw *j,
                      const struct st_run *run)
{
    struct run_actions ac;
    run_actions(run, util_now_unix(), &ac);
    access_t f = run_perms(r, run);
    bool write = r->who.kind != PRINC_RUN && (f & ACC_WS_APPLY) != 0;
    bool pending = util_streq(run->status, "pending");
    jw_key(j, "attributes");
    jw_obj(j);
    jw_key(j, "actions");
    jw_obj(j);
    jw_kbool(j, "is-cancelable", ac.is_cancelable);
    jw_kbool(j, "is-confirmable", ac.is_confirmable);
    jw_kbool(j, "is-discardable", ac.is_discardable);
    jw_kbool(j, "is-force-cancelable", ac.is_force_cancelable);
    jw_obj_end(j);
    jw_key(j, "permissions");
    jw_obj(j);
    static const char *const can[] = {
        "can-apply",         "can-cancel",       "can-discard",
        "can-force-execute", "can-force-cancel", "can-override-policy"};
    for (size_t i = 0; i < sizeof(can) / sizeof(can[0]); i++)
        jw_kbool(j, can[i], write);
    jw_obj_end(j);
    jw_kbool(j, "allow-empty-apply", run->allow_empty_apply);
    jw_kbool(j, "auto-apply", run->auto_apply);
    jw_kstr(j, "created-at", run->created_at);
    jw_kstr(j, "force-cancel-available-at", run->force_cancel_at);
    jw_kbool(j, "has-changes", run->has_changes);
    jw_kbool(j, "is-destroy", run->is_destroy);
    opt_str(j, "message", run->message);
    jw_kbool(j, "plan-only", run->plan_only);
    jw_kint(j, "position-in-queue", pending ? run->ahead + 1 : 0);
    jw_kbool(j, "refresh", run->refresh);
    jw_kbool(j, "refresh-only", run->refresh_only);
    jw_key(j, "replace-addrs");
    jw_json(j, run->replace_addrs, "[]");
    jw_key(j, "target-addrs");
    jw_json(j, run->target_addrs, "[]");
    jw_kbool(j, "save-plan", run->save_plan);
    opt_str(j, "source", run->source);
    opt_str(j, "status", run->status);
    jw_key(j, "status-timestamps");
    jw_json(j, run->status_timestamps, "{}");
    jw_kstr(j, "terraform-version",
            run->terraform_version && *run->terraform_version
                ? run->terraform_version
                : NULL);
    jw_kstr(j, "trigger-reason", "manual");
    const char *vars = "[]";
    struct tr_errbuf eb = {{0}};
    tr_err e = run_variables(r->srv, r->arena, run, &vars, &eb);
    if (e != TR_OK)
        log_error("run %s: variables: %s", run->id, tr_errbuf_msg(&eb, e));
    jw_key(j, "variables");
    jw_json(j, vars, "[]");
    jw_kstr(j, "error-message", run->error_message);
    jw_obj_end(j);
}

/* {"data": [comments]} of the run (full only: a query), and its link. */
static void comments_rel(struct http_req *r, struct jw *j,
                         const struct st_run *run, bool full)
{
    struct st_comment *cm = NULL;
    int n = 0;
    jw_key(j, "comments");
    jw_obj(j);
    jw_key(j, "data");
    jw_arr(j);
    if (full && store_comment_list(r->srv->db, r->arena, run->id, &cm, &n,
                                   NULL) == TR_OK)
        for (int i = 0; i < n; i++) {
            jw_obj(j);
            jw_kstr(j, "id", cm[i].id);
            jw_kstr(j, "type", "comments");
            jw_obj_end(j);
        }
    jw_arr_end(j);
    jw_key(j, "links");
    jw_obj(j);
    jw_key(j, "related");
    jw_str_begin(j);
    jw_str_add(j, "/api/v2/runs/");
    jw_str_add(j, run->id);
    jw_str_add(j, "/comments");
    jw_str_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

/* key: {"data": []}. */
static void empty_rel(struct jw *j, const char *key)
{
    jw_key(j, key);
    jw_obj(j);
    jw_key(j, "data");
    jw_arr(j);
    jw_arr_end(j);
    jw_obj_end(j);
}

void api_run_write(struct http_req *r, struct jw *j, const struct st_run *run,
                   bool full)
{
    jw_obj(j);
    jw_kstr(j, "id", run->id);
    jw_kstr(j, "type", "runs");
    run_attrs(r, j, run);
    jw_key(j, "relationships");
    jw_obj(j);
    api_rel_write(j, "workspace", "workspaces", run->workspace_id);
    api_rel_write(j, "configuration-version", "configuration-versions",
                  run->cv_id);
    api_rel_write(j, "plan", "plans", run->plan_id);
    api_rel_write(j, "apply", "applies", run->apply_id);
    api_rel_write(j, "created-by", "users", run->created_by);
    api_rel_write(j, "cost-estimate", "cost-estimates", run->cost_estimate_id);
    empty_rel(j, "policy-checks");
    empty_rel(j, "task-stages");
    jw_key(j, "run-events");
    jw_obj(j);
    jw_key(j, "links");
    jw_obj(j);
    jw_key(j, "related");
    jw_str_begin(j);
    jw_str_add(j, "/api/v2/runs/");
    jw_str_add(j, run->id);
    jw_str_add(j, "/run-events");
    jw_str_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
    comments_rel(r, j, run, full);
    jw_obj_end(j);
    jw_key(j, "links");
    jw_obj(j);
    jw_key(j, "self");
    jw_str_begin(j);
    jw_str_add(j, "/api/v2/runs/");
    jw_str_add(j, run->id);
    jw_str_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

json_t *api_run_json(struct http_req *r, const struct st_run *run, bool full)
{
    struct buf b;
    buf_init(&b, 0);
    struct jw j;
    jw_init(&j, &b);
    api_run_write(r, &j, run, full);
    return api_jw_tree(&j, &b);
}

/* Answers status with {"data": <run>}, comments included. */
static void reply_run(struct http_req *r, int status, const struct st_run *run)
{
    struct jw j;
    http_jw_start(r, &j);
    jw_obj(&j);
    jw_key(&j, "data");
    api_run_write(r, &j, run, true);
    jw_obj_end(&j);
    http_reply_jw(r, status, &j);
}

void api_run_reply(struct http_req *r, int status, const char *id)
{
    struct st_run run;
    struct tr_errbuf eb = {{0}};
    tr_err e = store_run_get(r->srv->db, r->arena, id, &run, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_run(r, status, &run);
}

json_t *api_run_user_json(struct http_req *r, const char *user_id)
{
    struct st_user u;
    if (user_id == NULL ||
        store_user_get(r->srv->db, r->arena, user_id, &u, NULL) != TR_OK)
        return NULL;
    return json_pack("{s:s,s:s,s:{s:s,s:b},s:{s:s}}", "id", u.id, "type",
                     "users", "attributes", "username", u.username,
                     "is-service-account", 0, "links", "self",
                     arena_printf(r->arena, "/api/v2/users/%s", u.id));
}

/* Enough of a configuration version for include=configuration_version. */
static json_t *cv_json(struct http_req *r, const struct st_cv *cv)
{
    return json_pack(
        "{s:s,s:s,s:{s:s,s:s,s:b,s:b,s:b,s:o,s:o,s:[]},s:{s:s}}", "id", cv->id,
        "type", "configuration-versions", "attributes", "status", cv->status,
        "source", cv->source ? cv->source : "tfe-api", "speculative",
        cv->speculative, "provisional", cv->provisional, "auto-queue-runs",
        cv->auto_queue_runs, "status-timestamps",
        parsed(cv->status_timestamps, "{}"), "error-message",
        api_time(cv->error_message), "changed-files", "links", "self",
        arena_printf(r->arena, "/api/v2/configuration-versions/%s", cv->id));
}

/* ---- include ------------------------------------------------------------- */

enum {
    INC_PLAN = 1,
    INC_APPLY = 2,
    INC_WS = 4,
    INC_CV = 8,
    INC_USER = 16,
    INC_CE = 32,
};

static bool parse_include(struct http_req *r, int *flags)
{
    static const struct {
        const char *name;
        int flag;
    } known[] = {
        {"plan", INC_PLAN},
        {"apply", INC_APPLY},
        {"workspace", INC_WS},
        {"configuration_version", INC_CV},
        {"configuration_version.ingress_attributes", INC_CV},
        {"created_by", INC_USER},
        {"cost_estimate", INC_CE},
        {"task_stages", 0},
        {"policy_checks", 0},
        {"run_events", 0},
    };
    *flags = 0;
    const char *inc = http_query(r, "include");
    if (inc == NULL || *inc == '\0')
        return true;
    char *copy = arena_strdup(r->arena, inc), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        size_t i = 0, n = sizeof(known) / sizeof(known[0]);
        while (i < n && strcmp(known[i].name, t) != 0)
            i++;
        if (i == n) {
            http_error(
                r, 400, "Invalid include parameter",
                arena_printf(r->arena, "Invalid include parameter: %.100s", t));
            return false;
        }
        *flags |= known[i].flag;
    }
    return true;
}

static void add_unique(json_t *inc, json_t *obj)
{
    if (obj == NULL)
        return;
    const char *id = json_string_value(json_object_get(obj, "id"));
    const char *type = json_string_value(json_object_get(obj, "type"));
    size_t i;
    json_t *x;
    json_array_foreach(inc, i, x)
    {
        if (util_streq(json_string_value(json_object_get(x, "id")), id) &&
            util_streq(json_string_value(json_object_get(x, "type")), type)) {
            json_decref(obj);
            return;
        }
    }
    json_array_append_new(inc, obj);
}

static json_t *phase_obj(struct http_req *r, const char *id)
{
    struct st_phase p;
    if (id == NULL ||
        store_phase_get(r->srv->db, r->arena, id, &p, NULL) != TR_OK)
        return NULL;
    return api_phase_json(r, &p);
}

static json_t *cost_estimate_obj(const struct st_run *run)
{
    if (run->cost_estimate_id == NULL)
        return NULL;
    return json_pack("{s:s,s:s,s:{s:s}}", "id", run->cost_estimate_id, "type",
                     "cost-estimates", "attributes", "status",
                     run_cost_estimate_status(run));
}

/* The objects include= asked for, for the runs given. */
static json_t *included(struct http_req *r, int flags,
                        const struct st_run *runs, int n)
{
    json_t *inc = json_array();
    for (int i = 0; i < n; i++) {
        const struct st_run *run = &runs[i];
        if (flags & INC_PLAN)
            add_unique(inc, phase_obj(r, run->plan_id));
        if (flags & INC_APPLY)
            add_unique(inc, phase_obj(r, run->apply_id));
        if (flags & INC_USER)
            add_unique(inc, api_run_user_json(r, run->created_by));
        if (flags & INC_CE)
            add_unique(inc, cost_estimate_obj(run));
        struct st_workspace w;
        if ((flags & INC_WS) &&
            store_ws_get(r->srv->db, r->arena, run->workspace_id, &w, NULL) ==
                TR_OK)
            add_unique(inc, api_ws_json(r, &w));
        struct st_cv cv;
        if ((flags & INC_CV) && run->cv_id != NULL &&
            store_cv_get(r->srv->db, r->arena, run->cv_id, &cv, NULL) == TR_OK)
            add_unique(inc, cv_json(r, &cv));
    }
    return inc;
}

/* ---- create -------------------------------------------------------------- */

/* attrs[name]: absent, or an array of at most MAX_ADDRS resource addresses;
 * *out gets its compact JSON text. */
static bool addr_list(struct http_req *r, json_t *attrs, const char *name,
                      const char **out)
{
    json_t *v = json_object_get(attrs, name);
    *out = "[]";
    if (v == NULL || json_is_null(v))
        return true;
    bool ok = json_is_array(v) && json_array_size(v) <= MAX_ADDRS;
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        const char *t = json_string_value(s);
        ok = ok && t != NULL && *t != '\0' && strlen(t) <= MAX_ADDR_LEN &&
             strpbrk(t, "\n\r\t ") == NULL;
    }
    if (!ok) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "attribute %s must be a list of at most %d "
                                "resource addresses",
                                name, MAX_ADDRS));
        return false;
    }
    *out = api_ws_dump(r, v);
    return true;
}

/* An input variable name: a letter or '_', then letters, digits, '_',
 * '-'. */
static bool var_name(const char *s)
{
    if (s == NULL || (!isalpha((unsigned char)*s) && *s != '_'))
        return false;
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '_' && s[n] != '-')
            return false;
    return n <= 128;
}

/* variables: [{"key": name, "value": HCL literal}], keys unique. */
static bool run_vars(struct http_req *r, json_t *attrs, const char **out)
{
    json_t *v = json_object_get(attrs, "variables");
    *out = "[]";
    if (v == NULL || json_is_null(v))
        return true;
    const char *why = NULL;
    if (!json_is_array(v) || json_array_size(v) > MAX_VARS)
        why = "must be a list of at most 200 {key, value} objects";
    json_t *clean = http_json_own(r, json_array());
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        const char *k = json_string_value(json_object_get(x, "key"));
        const char *val = json_string_value(json_object_get(x, "value"));
        if (why != NULL)
            break;
        if (!json_is_object(x) || k == NULL || val == NULL)
            why = "entries must be objects with string key and value";
        else if (!var_name(k))
            why = "keys must be valid variable names";
        else if (strlen(val) > MAX_VAR_VALUE)
            why = "values must be at most 65536 bytes";
        for (size_t j = 0; why == NULL && j < i; j++)
            if (util_streq(k, json_string_value(json_object_get(
                                  json_array_get(v, j), "key"))))
                why = "keys must be unique";
        if (why == NULL)
            json_array_append_new(
                clean, json_pack("{s:s,s:s}", "key", k, "value", val));
    }
    if (why != NULL) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "attribute variables %s", why));
        return false;
    }
    *out = api_ws_dump(r, clean);
    return true;
}

/* Flags: -1 when absent. */
struct run_in {
    const char *message;
    const char *terraform_version;
    int is_destroy, refresh, refresh_only, plan_only, save_plan, auto_apply,
        allow_empty_apply, allow_config_generation;
    const char *targets, *replaces, *variables;
};

static bool parse_attrs(struct http_req *r, json_t *data, struct run_in *in)
{
    *in = (struct run_in){.is_destroy = -1,
                          .refresh = -1,
                          .refresh_only = -1,
                          .plan_only = -1,
                          .save_plan = -1,
                          .auto_apply = -1,
                          .allow_empty_apply = -1,
                          .allow_config_generation = -1};
    json_t *attrs = jsonapi_attrs(data);
    if (!jsonapi_attr_str(r, data, "message", &in->message) ||
        !jsonapi_attr_str(r, data, "terraform-version",
                          &in->terraform_version) ||
        !jsonapi_attr_bool(r, data, "is-destroy", &in->is_destroy) ||
        !jsonapi_attr_bool(r, data, "refresh", &in->refresh) ||
        !jsonapi_attr_bool(r, data, "refresh-only", &in->refresh_only) ||
        !jsonapi_attr_bool(r, data, "plan-only", &in->plan_only) ||
        !jsonapi_attr_bool(r, data, "save-plan", &in->save_plan) ||
        !jsonapi_attr_bool(r, data, "auto-apply", &in->auto_apply) ||
        !jsonapi_attr_bool(r, data, "allow-empty-apply",
                           &in->allow_empty_apply) ||
        !jsonapi_attr_bool(r, data, "allow-config-generation",
                           &in->allow_config_generation) ||
        !addr_list(r, attrs, "target-addrs", &in->targets) ||
        !addr_list(r, attrs, "replace-addrs", &in->replaces) ||
        !run_vars(r, attrs, &in->variables))
        return false;
    const char *why = NULL;
    if (in->message != NULL && strlen(in->message) > MAX_MESSAGE)
        why = "message must be at most 65536 bytes";
    else if (in->terraform_version != NULL && in->plan_only != 1)
        why = "terraform-version can only be set for plan-only runs";
    else if (in->terraform_version != NULL &&
             !store_tool_valid_version(in->terraform_version))
        why = "terraform-version must be a version such as 1.8.0";
    else if (in->refresh_only == 1 && in->is_destroy == 1)
        why = "refresh-only cannot be combined with is-destroy";
    else if (in->refresh_only == 1 && in->refresh == 0)
        why = "refresh-only requires refresh";
    else if (in->save_plan == 1 && in->plan_only == 1)
        why = "save-plan cannot be combined with plan-only";
    if (why != NULL) {
        http_error(r, 422, NULL, why);
        return false;
    }
    return true;
}

/* relationships.<name>.data: absent/null, or {"type": type, "id": id}. */
static bool rel_ref(struct http_req *r, json_t *data, const char *name,
                    const char *type, const char **id)
{
    json_t *rel = json_object_get(json_object_get(data, "relationships"), name);
    json_t *d = json_object_get(rel, "data");
    *id = NULL;
    if (rel == NULL || d == NULL || json_is_null(d))
        return true;
    const char *t = json_string_value(json_object_get(d, "type"));
    const char *v = json_string_value(json_object_get(d, "id"));
    if (!json_is_object(d) || v == NULL || *v == '\0' || strlen(v) > 64) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "relationship %s must name a %s by id", name,
                                type));
        return false;
    }
    if (t != NULL && strcmp(t, type) != 0) {
        http_error(r, 409, "conflict",
                   arena_printf(r->arena,
                                "relationship %s must be of type \"%s\"", name,
                                type));
        return false;
    }
    *id = v;
    return true;
}

/* The configuration version the run uses: the one named (an uploaded
 * version of the workspace), else the workspace's current one. */
static bool run_cv(struct http_req *r, const struct st_workspace *w,
                   const char *cv_id, struct st_cv *cv)
{
    struct tr_errbuf eb = {{0}};
    tr_err e = cv_id != NULL
                   ? store_cv_get(r->srv->db, r->arena, cv_id, cv, &eb)
                   : store_cv_current(r->srv->db, r->arena, w->id, cv, &eb);
    if (e == TR_ERR_NOT_FOUND && cv_id != NULL) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "configuration version %s not found",
                                cv_id));
        return false;
    }
    if (e == TR_ERR_NOT_FOUND) {
        http_error(r, 422, NULL,
                   "the workspace has no configuration version: upload one "
                   "first");
        return false;
    }
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    if (!util_streq(cv->workspace_id, w->id)) {
        http_error(r, 404, "not found",
                   arena_printf(r->arena, "configuration version %s not found",
                                cv_id));
        return false;
    }
    if (!util_streq(cv->status, "uploaded")) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "configuration version %s is %s; a run needs "
                                "an uploaded configuration",
                                cv->id, cv->status));
        return false;
    }
    return true;
}

static void run_create_h(struct http_req *r)
{
    struct st_workspace w;
    struct st_cv cv;
    struct run_in in;
    const char *ws_id = NULL, *cv_id = NULL;
    if (r->who.kind == PRINC_RUN) {
        http_error(r, 403, "forbidden", "a run token cannot queue runs");
        return;
    }
    json_t *data = jsonapi_body(r, "runs");
    if (data == NULL || !parse_attrs(r, data, &in) ||
        !rel_ref(r, data, "workspace", "workspaces", &ws_id) ||
        !rel_ref(r, data, "configuration-version", "configuration-versions",
                 &cv_id))
        return;
    if (ws_id == NULL) {
        http_error(r, 422, NULL,
                   "relationship workspace is required: the run needs a "
                   "workspace");
        return;
    }
    if (!api_workspace_access(r, ws_id, &w) ||
        !api_ws_allow(r, &w, ACC_WS_PLAN, "queue runs") ||
        !run_cv(r, &w, cv_id, &cv))
        return;
    if (util_streq(w.execution_mode, "local")) {
        http_error(r, 409, "conflict",
                   "the workspace uses local execution; runs happen on the "
                   "CLI's machine");
        return;
    }
    struct st_run run = {
        .workspace_id = w.id,
        .org = w.org,
        .cv_id = cv.id,
        .message = in.message != NULL ? in.message : "Triggered via API",
        .is_destroy = in.is_destroy == 1,
        .refresh = in.refresh != 0,
        .refresh_only = in.refresh_only == 1,
        .plan_only = in.plan_only == 1 || cv.speculative,
        .save_plan = in.save_plan == 1,
        .auto_apply = in.auto_apply >= 0 ? in.auto_apply == 1 : w.auto_apply,
        .allow_empty_apply = in.allow_empty_apply == 1,
        .terraform_version = in.terraform_version,
        .target_addrs = in.targets,
        .replace_addrs = in.replaces,
        .variables = in.variables,
        .created_by = r->who.user_id,
        .source = "tfe-api",
    };
    struct tr_errbuf eb = {{0}};
    tr_err e = run_create(r->srv, r->arena, &run, &run, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    reply_run(r, 201, &run);
}

tr_err api_run_from_cv(struct http_req *r, const struct st_cv *cv,
                       struct tr_errbuf *eb)
{
    struct st_workspace w;
    if (!cv->auto_queue_runs || cv->provisional)
        return TR_OK;
    tr_err e = store_ws_get(r->srv->db, r->arena, cv->workspace_id, &w, eb);
    if (e != TR_OK)
        return e;
    if (util_streq(w.execution_mode, "local"))
        return TR_OK;
    struct st_run run = {
        .workspace_id = cv->workspace_id,
        .org = w.org,
        .cv_id = cv->id,
        .message = "Triggered via API",
        .refresh = true,
        .plan_only = cv->speculative,
        .auto_apply = w.auto_apply,
        .created_by = r->who.user_id,
        .source = "tfe-configuration-version",
    };
    if (fault_hit("run.autoqueue"))
        return tr_fail(eb, TR_ERR_DB, "injected fault");
    return run_create(r->srv, r->arena, &run, &run, eb);
}

/* ---- read and list ------------------------------------------------------- */

static void run_show(struct http_req *r)
{
    struct st_run run;
    int flags = 0;
    if (!api_run_access(r, http_param(r, "id"), &run, NULL) ||
        !parse_include(r, &flags))
        return;
    if (flags == 0) {
        reply_run(r, 200, &run);
        return;
    }
    json_t *doc = json_pack("{s:o}", "data", api_run_json(r, &run, true));
    json_object_set_new(doc, "included", included(r, flags, &run, 1));
    http_reply_json(r, 200, doc);
}

static bool known_status(const char *s)
{
    static const char *const all[] = {
        "pending",
        "fetching",
        "fetching_completed",
        "pre_plan_running",
        "pre_plan_completed",
        "queuing",
        "plan_queued",
        "planning",
        "planned",
        "cost_estimating",
        "cost_estimated",
        "policy_checking",
        "policy_override",
        "policy_soft_failed",
        "policy_checked",
        "confirmed",
        "post_plan_running",
        "post_plan_completed",
        "post_plan_awaiting_decision",
        "planned_and_finished",
        "planned_and_saved",
        "apply_queued",
        "applying",
        "applied",
        "discarded",
        "errored",
        "canceled",
        "force_canceled",
        "queuing_apply",
        "pre_apply_running",
        "pre_apply_completed",
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(s, all[i]) == 0)
            return true;
    return false;
}

/* A comma list from query key into *out (at most 40 items), each passing
 * ok (NULL: any); 400 otherwise. */
static bool query_list(struct http_req *r, const char *key,
                       bool (*ok)(const char *), const char ***out, int *n)
{
    const char *s = http_query(r, key);
    *out = NULL;
    *n = 0;
    if (s == NULL || *s == '\0')
        return true;
    const char **items = arena_alloc(r->arena, sizeof(char *) * 41);
    char *copy = arena_strdup(r->arena, s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (*n >= 40 || (ok != NULL && !ok(t))) {
            http_error(
                r, 400, NULL,
                arena_printf(r->arena, "invalid %s value: %.64s", key, t));
            return false;
        }
        items[(*n)++] = t;
    }
    *out = items;
    return true;
}

static bool known_operation(const char *s)
{
    static const char *const all[] = {"plan_only",    "plan_and_apply",
                                      "save_plan",    "destroy",
                                      "refresh_only", "empty_apply"};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(s, all[i]) == 0)
            return true;
    return false;
}

/* Answers a page of runs matching f. */
static void reply_list(struct http_req *r, const struct st_run_filter *f,
                       const struct page *p, int flags)
{
    struct st_run *runs = NULL;
    int n = 0;
    int64_t total = 0;
    struct tr_errbuf eb = {{0}};
    tr_err e =
        store_run_list(r->srv->db, r->arena, f, (p->number - 1) * p->size,
                       p->size, &runs, &n, &total, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    if (flags == 0) { /* written as it goes */
        struct jw j;
        http_jw_start(r, &j);
        jw_obj(&j);
        jw_key(&j, "data");
        jw_arr(&j);
        for (int i = 0; i < n; i++)
            api_run_write(r, &j, &runs[i], false);
        jw_arr_end(&j);
        jsonapi_write_meta(&j, p, total);
        jw_obj_end(&j);
        http_reply_jw(r, 200, &j);
        return;
    }
    json_t *items = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(items, api_run_json(r, &runs[i], false));
    json_t *doc = jsonapi_list_doc(items, p, total);
    json_object_set_new(doc, "included", included(r, flags, runs, n));
    http_reply_json(r, 200, doc);
}

static void run_list(struct http_req *r)
{
    struct st_workspace w;
    struct page p;
    int flags = 0;
    struct st_run_filter f = {0};
    const char **st = NULL, **ops = NULL, **src = NULL;
    if (!api_ws_from_route(r, &w) || !jsonapi_page(r, &p) ||
        !parse_include(r, &flags) ||
        !query_list(r, "filter[status]", known_status, &st, &f.nstatuses) ||
        !query_list(r, "filter[operation]", known_operation, &ops,
                    &f.noperations) ||
        !query_list(r, "filter[source]", NULL, &src, &f.nsources))
        return;
    f.workspace_id = w.id;
    f.statuses = st;
    f.operations = ops;
    f.sources = src;
    const char *user = http_query(r, "search[user]");
    const char *commit = http_query(r, "search[commit]");
    if ((commit != NULL && *commit != '\0')) {
        /* no VCS: no run has a commit */
        reply_list(
            r, &(struct st_run_filter){.workspace_id = w.id, .user_id = "-"},
            &p, flags);
        return;
    }
    if (user != NULL && *user != '\0') {
        struct st_user u;
        f.user_id =
            store_user_by_name(r->srv->db, r->arena, user, &u, NULL) == TR_OK
                ? u.id
                : "-";
    }
    f.search = http_query(r, "search[basic]");
    reply_list(r, &f, &p, flags);
}

static void run_queue(struct http_req *r)
{
    static const char *const active[] = {"pending",      "plan_queued",
                                         "planning",     "confirmed",
                                         "apply_queued", "applying"};
    struct st_org o;
    struct page p;
    int flags = 0;
    if (!api_org_access(r, http_param(r, "org"), &o) ||
        !api_org_allow(r, o.name, ACC_ORG_READ_WS, "read the run queue") ||
        !jsonapi_page(r, &p) || !parse_include(r, &flags))
        return;
    struct st_run_filter f = {.org = o.name,
                              .statuses = active,
                              .nstatuses = 6,
                              .oldest_first = true};
    reply_list(r, &f, &p, flags);
}

static void org_capacity(struct http_req *r)
{
    static const char *const pending[] = {"pending", "plan_queued",
                                          "apply_queued", "confirmed"};
    static const char *const running[] = {"planning", "applying"};
    struct st_org o;
    if (!api_org_access(r, http_param(r, "org"), &o))
        return;
    struct st_run *runs = NULL;
    int n = 0;
    int64_t np = 0, nr = 0;
    struct tr_errbuf eb = {{0}};
    struct st_run_filter f = {
        .org = o.name, .statuses = pending, .nstatuses = 4};
    tr_err e =
        store_run_list(r->srv->db, r->arena, &f, 0, 1, &runs, &n, &np, &eb);
    f.statuses = running;
    f.nstatuses = 2;
    if (e == TR_OK)
        e = store_run_list(r->srv->db, r->arena, &f, 0, 1, &runs, &n, &nr, &eb);
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return;
    }
    http_reply_json(r, 200,
                    json_pack("{s:{s:s,s:s,s:{s:I,s:I}}}", "data", "id", o.name,
                              "type", "organization-capacity", "attributes",
                              "pending", (json_int_t)np, "running",
                              (json_int_t)nr));
}

const struct route api_run_routes[] = {
    {"POST", "/api/v2/runs", run_create_h, ROUTE_AUTH},
    {"GET", "/api/v2/runs/:id", run_show, ROUTE_AUTH},
    {"GET", "/api/v2/workspaces/:id/runs", run_list,
     ROUTE_AUTH | ROUTE_WS_READ},
    {"GET", "/api/v2/organizations/:org/runs/queue", run_queue, ROUTE_AUTH},
    {"GET", "/api/v2/organizations/:org/capacity", org_capacity, ROUTE_AUTH},
    {0},
};
