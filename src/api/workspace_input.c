/*
 * workspace_input.c - the attributes of workspace create and update
 * requests: type and value checks, the settings JSON they become, and the
 * execution-mode rules.
 *
 * TFE attributes Terrace stores but does not act on live in the settings
 * JSON object under their TFE names; `settings_attrs` lists them with
 * their defaults, and api_ws_settings_view() gives a workspace's values
 * merged over those defaults.  "setting-overwrites" records whether the
 * execution mode was chosen on the workspace (true) or inherited from the
 * organization's default-execution-mode (false); the inherited mode is
 * resolved when the workspace is created or updated.
 *
 * Every check writes a 422 (or the status noted) and returns false, so a
 * rejected request changes nothing.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "api/workspaces_int.h"
#include "core/rfc3339.h"

enum attr_kind { A_BOOL, A_STR_NULL, A_STRLIST, A_TIME_NULL, A_DUR_NULL };

/* TFE attributes kept in settings, with their defaults (JSON text). */
static const struct {
    const char *name;
    enum attr_kind kind;
    const char *def;
} settings_attrs[] = {
    {"allow-destroy-plan", A_BOOL, "true"},
    {"assessments-enabled", A_BOOL, "false"},
    {"auto-apply-run-trigger", A_BOOL, "false"},
    {"auto-destroy-at", A_TIME_NULL, "null"},
    {"auto-destroy-activity-duration", A_DUR_NULL, "null"},
    {"file-triggers-enabled", A_BOOL, "true"},
    {"global-remote-state", A_BOOL, "false"},
    {"project-remote-state", A_BOOL, "false"},
    {"queue-all-runs", A_BOOL, "false"},
    {"speculative-enabled", A_BOOL, "true"},
    /* false (TFE says true): runs stream tofu's human-readable output,
     * which the CLI prints as it is.  True works too: runs then write
     * JSON logs and the provider schemas, and the CLI renders both, but
     * each plan pays for a `tofu providers schema -json` (which starts
     * every provider), so it is the user's choice */
    {"structured-run-output-enabled", A_BOOL, "false"},
    {"source-name", A_STR_NULL, "null"},
    {"source-url", A_STR_NULL, "null"},
    {"trigger-prefixes", A_STRLIST, "[]"},
    {"trigger-patterns", A_STRLIST, "[]"},
};
#define NSETTINGS ((int)(sizeof(settings_attrs) / sizeof(settings_attrs[0])))

#define MAX_TEXT 4096 /* description, source-url and similar strings */

/* The defaults overlaid by the stored settings (known keys only). */
json_t *api_ws_settings_view(const char *text)
{
    json_t *s = json_loads(text ? text : "{}", 0, NULL);
    json_t *out = json_object();
    for (int i = 0; i < NSETTINGS; i++) {
        json_t *v = json_object_get(s, settings_attrs[i].name);
        json_object_set_new(out, settings_attrs[i].name,
                            v != NULL ? json_incref(v)
                                      : json_loads(settings_attrs[i].def,
                                                   JSON_DECODE_ANY, NULL));
    }
    json_t *ov = json_object_get(s, "setting-overwrites");
    json_object_set_new(
        out, "setting-overwrites",
        json_is_object(ov)
            ? json_incref(ov)
            : json_pack("{s:b,s:b}", "execution-mode", 0, "agent-pool", 0));
    json_decref(s);
    return out;
}

/* The raw text of each known key's value in the settings object text
 * (val[i], len[i]; NULL: absent) and of "setting-overwrites" (the last
 * entry); false, with nothing found, when text is not a JSON object.
 * As with json_loads(), a key given twice keeps its last value. */
static bool settings_scan(const char *text, const char **val, size_t *len)
{
    for (int i = 0; i <= NSETTINGS; i++)
        val[i] = NULL;
    const char *s = text;
    while (*s == ' ' || *s == '\n')
        s++;
    if (*s++ != '{')
        return false;
    for (;;) {
        while (*s == ' ' || *s == '\n' || *s == ',')
            s++;
        if (*s == '}')
            return true;
        const char *key = s + 1, *end = jw_skip_value(s);
        if (*s != '"' || end == NULL)
            break;
        size_t klen = (size_t)(end - key - 1);
        for (s = end; *s == ' ' || *s == '\n'; s++)
            ;
        const char *v = s + 1;
        end = *s == ':' ? jw_skip_value(v) : NULL;
        if (end == NULL)
            break;
        while (*v == ' ' || *v == '\n')
            v++;
        for (int i = 0; i <= NSETTINGS; i++) {
            const char *name =
                i < NSETTINGS ? settings_attrs[i].name : "setting-overwrites";
            if (strlen(name) == klen && memcmp(name, key, klen) == 0) {
                val[i] = v;
                len[i] = (size_t)(end - v);
            }
        }
        s = end;
    }
    for (int i = 0; i <= NSETTINGS; i++)
        val[i] = NULL;
    return false;
}

void api_ws_settings_write(struct jw *w, const char *text)
{
    const char *val[NSETTINGS + 1];
    size_t len[NSETTINGS + 1];
    settings_scan(text ? text : "{}", val, len);
    for (int i = 0; i < NSETTINGS; i++) {
        jw_key(w, settings_attrs[i].name);
        if (val[i] != NULL)
            jw_raw(w, val[i], len[i]);
        else
            jw_raw(w, settings_attrs[i].def, strlen(settings_attrs[i].def));
    }
    jw_key(w, "setting-overwrites");
    if (val[NSETTINGS] != NULL && *val[NSETTINGS] == '{')
        jw_raw(w, val[NSETTINGS], len[NSETTINGS]);
    else
        jw_raw(w, "{\"execution-mode\":false,\"agent-pool\":false}", 43);
    /* TFE's can-queue-destroy-plan follows allow-destroy-plan (entry 0) */
    jw_key(w, "can-queue-destroy-plan");
    if (val[0] != NULL)
        jw_raw(w, val[0], len[0]);
    else
        jw_bool(w, true);
}

/* ---- request attributes ------------------------------------------------ */

static bool bad(struct http_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes a 422 with the formatted detail; returns false. */
static bool bad(struct http_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *msg = arena_vprintf(r->arena, fmt, ap);
    va_end(ap);
    http_error(r, 422, NULL, msg);
    return false;
}

/* "latest", a version ("1.9.0", "1.10.0-rc1") or a constraint list
 * ("~> 1.9", ">= 1.5, < 2.0"). */
static bool valid_tf_version(const char *s)
{
    if (strcmp(s, "latest") == 0)
        return true;
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    const char *p = s;
    for (;;) {
        while (*p == ' ')
            p++;
        while (*p != '\0' && strchr("~<>=!", *p) != NULL)
            p++;
        while (*p == ' ')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (*p != '\0' &&
               (isalnum((unsigned char)*p) || strchr(".-+", *p) != NULL))
            p++;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return true;
        if (*p++ != ',')
            return false;
    }
}

/* A relative path without ".." components. */
static bool valid_workdir(const char *s)
{
    if (strlen(s) > 255 || s[0] == '/' || strchr(s, '\\') != NULL)
        return false;
    for (const char *p = s; *p; p++)
        if (p[0] == '.' && p[1] == '.' && (p == s || p[-1] == '/') &&
            (p[2] == '/' || p[2] == '\0'))
            return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20)
            return false;
    return true;
}

/* "14d", "24h": 1 to 4 digits, greater than 0, then d or h. */
static bool valid_duration(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 5 || (s[n - 1] != 'd' && s[n - 1] != 'h'))
        return false;
    int v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    return v > 0;
}

/* One settings attribute: type and value checks, then into in->patch. */
static bool take_setting(struct http_req *r, int i, json_t *v, struct ws_in *in)
{
    const char *name = settings_attrs[i].name;
    switch (settings_attrs[i].kind) {
    case A_BOOL:
        if (!json_is_boolean(v))
            return bad(r, "attribute %s must be true or false", name);
        break;
    case A_STR_NULL:
        if (!json_is_null(v) &&
            (!json_is_string(v) || json_string_length(v) > MAX_TEXT))
            return bad(r, "attribute %s must be a string or null", name);
        break;
    case A_TIME_NULL:
        if (!json_is_null(v) &&
            (!json_is_string(v) ||
             rfc3339_parse(json_string_value(v), NULL, NULL) != TR_OK))
            return bad(r, "attribute %s must be an RFC 3339 time or null",
                       name);
        break;
    case A_DUR_NULL:
        if (!json_is_null(v) &&
            (!json_is_string(v) || !valid_duration(json_string_value(v))))
            return bad(r, "attribute %s must be like \"14d\" or \"24h\"", name);
        break;
    case A_STRLIST:
        if (!json_is_array(v) || json_array_size(v) > API_WS_MAX_ITEMS)
            return bad(r, "attribute %s must be a list of strings", name);
        for (size_t k = 0; k < json_array_size(v); k++) {
            json_t *s = json_array_get(v, k);
            if (!json_is_string(s) || json_string_length(s) > 255)
                return bad(r, "attribute %s must be a list of strings", name);
        }
        break;
    }
    json_object_set(in->patch, name, v);
    return true;
}

static bool take_overwrites(struct http_req *r, json_t *v, struct ws_in *in)
{
    if (v == NULL)
        return true;
    if (!json_is_object(v))
        return bad(r, "attribute %s must be an object", "setting-overwrites");
    json_t *e = json_object_get(v, "execution-mode");
    json_t *p = json_object_get(v, "agent-pool");
    if ((e != NULL && !json_is_boolean(e)) ||
        (p != NULL && !json_is_boolean(p)))
        return bad(r, "attribute %s takes true or false values",
                   "setting-overwrites");
    in->ov_exec = e == NULL ? -1 : json_is_true(e);
    in->ov_pool = p == NULL ? -1 : json_is_true(p);
    return true;
}

/* The tag-names attribute and the tags relationship (by name or id). */
static bool take_tags(struct http_req *r, json_t *data, struct ws_in *in,
                      const char *org)
{
    json_t *names = json_object_get(jsonapi_attrs(data), "tag-names");
    json_t *rels = json_object_get(
        json_object_get(json_object_get(data, "relationships"), "tags"),
        "data");
    size_t nn = names ? json_array_size(names) : 0;
    size_t nr = rels ? json_array_size(rels) : 0;
    if ((names != NULL && !json_is_array(names)) ||
        (rels != NULL && !json_is_array(rels)))
        return bad(r, "%s must be a list", names ? "tag-names" : "tags");
    if (names == NULL && rels == NULL)
        return true;
    if (nn + nr > API_WS_MAX_ITEMS)
        return bad(r, "a workspace takes at most %d tags", API_WS_MAX_ITEMS);
    in->has_tags = true;
    in->tags = arena_alloc(r->arena, sizeof(char *) * (nn + nr + 1));
    for (size_t i = 0; i < nn + nr; i++) {
        json_t *t =
            i < nn ? json_array_get(names, i) : json_array_get(rels, i - nn);
        const char *name = NULL;
        if (i >= nn) {
            json_t *id = json_object_get(t, "id");
            if (json_is_string(id) && json_string_length(id) > 0) {
                struct st_tag tag;
                struct tr_errbuf eb = {{0}};
                tr_err e = store_tag_get(r->srv->db, r->arena,
                                         json_string_value(id), &tag, &eb);
                if (e == TR_OK && !util_streq(tag.org, org))
                    e = tr_fail(&eb, TR_ERR_NOT_FOUND, "tag not found");
                if (e != TR_OK) {
                    api_store_fail(r, e, &eb);
                    return false;
                }
                name = tag.name;
            } else {
                t = json_object_get(json_object_get(t, "attributes"), "name");
            }
        }
        if (name == NULL && json_is_string(t))
            name = json_string_value(t);
        if (name == NULL || !api_tag_name_valid(name))
            return bad(r,
                       "invalid tag name %s: use lower-case letters, "
                       "digits, '-', '_' and ':' (at most 255)",
                       name ? name : "(not a string)");
        in->tags[in->ntags++] = name;
    }
    return true;
}

/* The agent-pool-id attribute or the agent-pool relationship: a pool id,
 * or none ("" from the tfe provider, {} from pytfe, or null). */
static bool take_pool(struct http_req *r, json_t *data, struct ws_in *in)
{
    json_t *v = json_object_get(jsonapi_attrs(data), "agent-pool-id");
    json_t *rel =
        json_object_get(json_object_get(data, "relationships"), "agent-pool");
    if (v == NULL && rel != NULL) {
        v = json_object_get(rel, "data");
        if (v == NULL)
            return bad(r, "relationships.agent-pool needs data");
        if (json_is_object(v) && json_object_size(v) > 0) {
            v = json_object_get(v, "id");
            if (!json_is_string(v) || json_string_length(v) == 0)
                return bad(r, "relationships.agent-pool needs data.id");
        }
    }
    if (v == NULL)
        return true;
    in->has_pool = true;
    if (json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
        (json_is_string(v) && json_string_length(v) == 0)) {
        in->agent_pool_id = NULL;
        return true;
    }
    if (!json_is_string(v) || json_string_length(v) > 64)
        return bad(r, "agent-pool-id must be the id of an agent pool "
                      "(apool-...), or null");
    in->agent_pool_id = json_string_value(v);
    return true;
}

static bool take_strings(struct http_req *r, json_t *data, struct ws_in *in)
{
    if (!jsonapi_attr_str(r, data, "name", &in->name) ||
        !jsonapi_attr_str(r, data, "description", &in->description) ||
        !jsonapi_attr_str(r, data, "execution-mode", &in->execution_mode) ||
        !jsonapi_attr_str(r, data, "terraform-version",
                          &in->terraform_version) ||
        !jsonapi_attr_str(r, data, "working-directory",
                          &in->working_directory) ||
        !jsonapi_attr_bool(r, data, "auto-apply", &in->auto_apply) ||
        !jsonapi_attr_bool(r, data, "operations", &in->operations))
        return false;
    if (in->name != NULL && !util_valid_name(in->name))
        return bad(r, "Name may only contain letters, numbers, -, and _ "
                      "(at most 90 characters)");
    if (in->description != NULL && strlen(in->description) > MAX_TEXT)
        return bad(r, "description is longer than %d characters", MAX_TEXT);
    if (in->execution_mode != NULL &&
        strcmp(in->execution_mode, "remote") != 0 &&
        strcmp(in->execution_mode, "local") != 0 &&
        strcmp(in->execution_mode, "agent") != 0)
        return bad(r, "execution-mode must be remote, local or agent");
    if (in->execution_mode != NULL && in->operations >= 0)
        return bad(r, "operations is deprecated and cannot be set together "
                      "with execution-mode");
    if (in->terraform_version != NULL &&
        !valid_tf_version(in->terraform_version))
        return bad(r,
                   "terraform-version %s is not \"latest\", a version "
                   "or a version constraint",
                   in->terraform_version);
    if (in->working_directory != NULL && !valid_workdir(in->working_directory))
        return bad(r,
                   "working-directory %s must be a relative path "
                   "inside the configuration",
                   in->working_directory);
    return true;
}

/* Reads and checks every attribute of a create or update body. */
bool api_ws_parse(struct http_req *r, json_t *data, struct ws_in *in,
                  const char *org)
{
    memset(in, 0, sizeof(*in));
    in->auto_apply = in->operations = in->ov_exec = in->ov_pool = -1;
    in->patch = http_json_own(r, json_object());
    json_t *attrs = jsonapi_attrs(data);
    if (!take_strings(r, data, in) ||
        !take_overwrites(r, json_object_get(attrs, "setting-overwrites"), in) ||
        !take_tags(r, data, in, org) ||
        !api_tb_from_body(r, data, &in->has_bindings, &in->bindings,
                          &in->nbindings))
        return false;
    if (!take_pool(r, data, in))
        return false;
    json_t *v = json_object_get(attrs, "vcs-repo");
    if (v != NULL && !json_is_null(v) &&
        !(json_is_object(v) && json_object_size(v) == 0))
        return bad(r, "vcs-repo: Terrace does not connect workspaces to "
                      "VCS repositories");
    for (int i = 0; i < NSETTINGS; i++) {
        v = json_object_get(attrs, settings_attrs[i].name);
        if (v != NULL && !take_setting(r, i, v, in))
            return false;
    }
    size_t np = json_array_size(json_object_get(in->patch, "trigger-prefixes"));
    size_t nt = json_array_size(json_object_get(in->patch, "trigger-patterns"));
    if (np > 0 && nt > 0)
        return bad(r, "trigger-prefixes and trigger-patterns cannot both be "
                      "set");
    if (np > 0)
        json_object_set_new(in->patch, "trigger-patterns", json_array());
    if (nt > 0)
        json_object_set_new(in->patch, "trigger-prefixes", json_array());
    json_t *prj =
        json_object_get(json_object_get(data, "relationships"), "project");
    if (prj != NULL) {
        in->project_id = jsonapi_rel_id(data, "project");
        if (in->project_id == NULL)
            return bad(r, "relationships.project needs data.id");
    }
    return true;
}

/* The organization's default-execution-mode, "remote" if unset. */
static const char *org_default_mode(struct http_req *r, const char *org)
{
    struct st_org o;
    const char *mode = "remote";
    if (store_org_get(r->srv->db, r->arena, org, &o, NULL) != TR_OK)
        return mode;
    json_t *s = json_loads(o.settings ? o.settings : "{}", 0, NULL);
    const char *m = json_string_value(json_object_get(s, "default-execution-"
                                                         "mode"));
    if (util_streq(m, "local"))
        mode = "local";
    else if (util_streq(m, "agent"))
        mode = "agent";
    json_decref(s);
    return mode;
}

/* The organization's default agent pool, or NULL. */
static const char *org_default_pool(struct http_req *r, const char *org)
{
    struct st_org o;
    if (store_org_get(r->srv->db, r->arena, org, &o, NULL) != TR_OK)
        return NULL;
    json_t *s =
        http_json_own(r, json_loads(o.settings ? o.settings : "{}", 0, NULL));
    return json_string_value(json_object_get(s, "default-agent-pool"));
}

/* Resolves the execution mode and setting-overwrites of in, given the
 * current overwrites (cur_exec/cur_pool; create: false).  Writes the
 * overwrites into in->patch; *mode gets the new mode or NULL (keep). */
void api_ws_resolve_mode(struct http_req *r, struct ws_in *in, const char *org,
                         bool cur_exec, bool cur_pool, bool create,
                         const char **mode)
{
    bool ov_exec = cur_exec;
    *mode = NULL;
    if (in->ov_exec == 0) {
        *mode = org_default_mode(r, org);
        ov_exec = false;
    } else if (in->execution_mode != NULL) {
        *mode = in->execution_mode;
        ov_exec = true;
    } else if (in->operations >= 0) {
        *mode = in->operations ? "remote" : "local";
        ov_exec = true;
    } else if (create) {
        *mode = org_default_mode(r, org);
    }
    if (in->ov_exec == 1) /* marked as its own without a new value */
        ov_exec = true;
    bool ov_pool = cur_pool;
    if (in->ov_pool >= 0)
        ov_pool = in->ov_pool == 1;
    else if (in->ov_exec == 0)
        ov_pool = false;
    else if (ov_exec != cur_exec || (ov_exec && *mode != NULL))
        ov_pool = ov_exec;
    json_object_set_new(in->patch, "setting-overwrites",
                        json_pack("{s:b,s:b}", "execution-mode", ov_exec,
                                  "agent-pool", ov_pool));
}

const char *api_ws_dump(struct http_req *r, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    const char *out = arena_strdup(r->arena, s);
    free(s);
    return out;
}

bool api_ws_resolve_pool(struct http_req *r, const struct ws_in *in,
                         const char *org, const char *ws_id,
                         const char *project_id, const char *mode,
                         const char *cur_pool, const char **pool)
{
    *pool = NULL;
    if (!util_streq(mode, "agent")) {
        if (in->has_pool && in->agent_pool_id != NULL)
            return bad(r,
                       "agent-pool-id %s needs execution-mode agent; the "
                       "workspace's execution mode is %s",
                       in->agent_pool_id, mode);
        *pool = cur_pool != NULL ? "" : NULL; /* cleared when leaving */
        return true;
    }
    if (!in->has_pool && cur_pool != NULL) {
        *pool = NULL; /* stays in its pool: checked when it was set */
        return true;
    }
    const char *want = in->has_pool ? in->agent_pool_id : cur_pool;
    if (want == NULL) /* inherited with the organization's mode */
        want = org_default_pool(r, org);
    if (want == NULL)
        return bad(r, "execution-mode agent needs an agent pool: set "
                      "agent-pool-id to a pool of the organization");
    struct tr_errbuf eb = {{0}};
    const char *prj = project_id;
    struct st_project p;
    tr_err e = TR_OK;
    if (prj == NULL) {
        e = store_project_default(r->srv->db, r->arena, org, &p, &eb);
        prj = e == TR_OK ? p.id : NULL;
    }
    if (e == TR_OK)
        e = store_apool_check(r->srv->db, r->arena, want, org, ws_id, prj, &eb);
    if (e == TR_ERR_NOT_FOUND || e == TR_ERR_INVALID)
        return bad(r, "%s", tr_errbuf_msg(&eb, e));
    if (e != TR_OK) {
        api_store_fail(r, e, &eb);
        return false;
    }
    *pool = want;
    return true;
}
