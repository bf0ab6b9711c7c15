/*
 * compat.c - the metadata and administration endpoints that TFE clients
 * and go-tfe's tests expect besides the resources Terrace manages:
 *
 *   GET  /api/meta/ip-ranges                     no token; If-Modified-Since
 *   GET  /api/v2/workspaces/:id/resources        the current state's resources
 *   GET  /api/v2/admin/feature-sets              site admins; q=, page[]
 *   POST /api/v2/admin/organizations/:name/subscription   site admins
 *
 * IP ranges come from the node setting ip-ranges (core/ip_ranges.h) and
 * count as modified when this process started: Last-Modified says so, and
 * a request whose If-Modified-Since is that time or later gets 304.
 *
 * Workspace resources are read from the resource summary stored with the
 * current state version (domain/state_check.h): one item per managed
 * resource block (data sources are not under management), created,
 * updated and modified by that version, since no older version is
 * compared; name-index is null.
 *
 * Feature sets and subscriptions: HCP Terraform sells plans (feature sets)
 * and an organization's subscription picks one.  Terrace has no plans:
 * every organization is entitled to everything Terrace serves.  The
 * feature sets listed carry HCP Terraform's plan names so that tools
 * written against its admin API (go-tfe's test setup upgrades each test
 * organization to "Business") find the one they ask for; each grants the
 * same entitlements.  A subscription is checked (organization, feature
 * set, attribute types) and answered 201, but nothing is stored, since
 * there is nothing it could change.  Only site admins see these routes;
 * everyone else gets 404 as for the other admin routes.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"
#include "core/ip_ranges.h"
#include "core/rfc3339.h"
#include "core/util.h"
#include "crypto/digest.h"
#include "domain/state_check.h"
#include "http/metrics.h"

/* ---- IP ranges -------------------------------------------------------- */

/* An HTTP date (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT") as Unix
 * seconds, or -1 when s is not one (RFC 9110: then the header is
 * ignored). */
static int64_t http_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    return (int64_t)timegm(&tm);
}

static void ip_ranges(struct http_req *r)
{
    json_t *lists = NULL;
    struct tr_errbuf eb = {{0}};
    /* checked at start (cfg_load), so this cannot fail */
    tr_err e = ip_ranges_parse(r->srv->cfg.ip_ranges, &lists, &eb);
    if (e != TR_OK) {
        http_fail(r, e, &eb);
        return;
    }
    int64_t since = http_metrics_start_time(r->srv->metrics);
    time_t t = (time_t)since;
    struct tm tm;
    char date[64];
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    http_add_header(r, "Last-Modified", arena_strdup(r->arena, date));
    const char *ims = http_header(r, "If-Modified-Since");
    int64_t when = ims != NULL ? http_date(ims) : -1;
    if (when >= since) {
        json_decref(lists);
        http_reply(r, 304, NULL, "", 0);
        return;
    }
    char *text = json_dumps(lists, JSON_COMPACT);
    json_decref(lists);
    char *body = arena_strdup(r->arena, text != NULL ? text : "{}");
    free(text);
    http_reply(r, 200, "application/json", body, strlen(body));
}

/* ---- workspace resources ---------------------------------------------- */

/* The provider as TFE shows it: `provider["registry.terraform.io/
 * hashicorp/null"]` -> "hashicorp/null", `provider.null` (0.12 states)
 * -> "null"; a module prefix and an alias are dropped. */
static const char *provider_name(struct arena *a, const char *p)
{
    const char *s = strstr(p, "provider[\"");
    if (s != NULL) {
        s += strlen("provider[\"");
        const char *e = strchr(s, '"');
        size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
        char *addr = arena_strndup(a, s, n);
        char *first = strchr(addr, '/');
        /* HOST/NAMESPACE/TYPE: without the host */
        if (first != NULL && strchr(first + 1, '/') != NULL)
            return first + 1;
        return addr;
    }
    s = strstr(p, "provider.");
    if (s == NULL)
        return p;
    s += strlen("provider.");
    const char *dot = strchr(s, '.');
    return dot != NULL ? arena_strndup(a, s, (size_t)(dot - s)) : s;
}

static json_t *resource_json(struct http_req *r, const struct st_sv *sv,
                             json_t *res)
{
    const char *type = json_string_value(json_object_get(res, "type"));
    const char *name = json_string_value(json_object_get(res, "name"));
    const char *module = json_string_value(json_object_get(res, "module"));
    const char *prov = json_string_value(json_object_get(res, "provider"));
    if (module == NULL || *module == '\0')
        module = "root";
    const char *address =
        strcmp(module, "root") == 0
            ? arena_printf(r->arena, "%s.%s", type, name)
            : arena_printf(r->arena, "%s.%s.%s", module, type, name);
    /* stable per workspace and address */
    const char *key =
        arena_printf(r->arena, "%s\n%s", sv->workspace_id, address);
    char *hex = digest_sha256_hex(r->arena, key, strlen(key));
    hex[16] = '\0';
    json_t *attrs = json_pack(
        "{s:s,s:s,s:o,s:o,s:s,s:s,s:s,s:s,s:n}", "address", address, "name",
        name, "created-at", api_time(sv->created_at), "updated-at",
        api_time(sv->created_at), "module", module, "provider",
        provider_name(r->arena, prov != NULL ? prov : ""), "provider-type",
        type, "modified-by-state-version-id", sv->id, "name-index");
    return json_pack("{s:s,s:s,s:o}", "id",
                     arena_printf(r->arena, "wsr-%s", hex), "type", "resources",
                     "attributes", attrs);
}

static void ws_resources(struct http_req *r)
{
    struct st_workspace ws;
    struct page p;
    if (!api_workspace_access(r, http_param(r, "id"), &ws) ||
        !jsonapi_page(r, &p))
        return;
    json_t *items = json_array();
    int64_t total = 0;
    if (ws.current_sv != NULL) {
        struct st_sv sv;
        struct tr_errbuf eb = {{0}};
        tr_err e = store_sv_get(r->srv->db, r->arena, ws.current_sv, &sv, &eb);
        if (e != TR_OK) {
            json_decref(items);
            api_store_fail(r, e, &eb);
            return;
        }
        json_t *list, *mods, *provs;
        state_resource_attrs(sv.resources, &list, &mods, &provs);
        json_decref(mods);
        json_decref(provs);
        int64_t first = (int64_t)(p.number - 1) * p.size;
        size_t i;
        json_t *res;
        json_array_foreach(list, i, res)
        {
            const char *type = json_string_value(json_object_get(res, "type"));
            if (type == NULL || strncmp(type, "data.", 5) == 0 ||
                !json_is_string(json_object_get(res, "name")))
                continue;
            if (total >= first && total < first + p.size)
                json_array_append_new(items, resource_json(r, &sv, res));
            total++;
        }
        json_decref(list);
    }
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, total));
}

/* ---- feature sets and subscriptions ----------------------------------- */

/* HCP Terraform's plan names; every one grants all Terrace serves. */
static const char *const feature_sets[] = {"Free", "Standard", "Plus",
                                           "Business", "Trial"};
#define NFEATURE_SETS (sizeof(feature_sets) / sizeof(feature_sets[0]))

static bool need_admin(struct http_req *r)
{
    if (r->who.kind == PRINC_USER && r->who.is_admin)
        return true;
    http_error(r, 404, "not found", "resource not found");
    return false;
}

static const char *feature_set_id(struct http_req *r, const char *name)
{
    char *id = arena_printf(r->arena, "fs-%s", name);
    for (char *c = id; *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return id;
}

static json_t *feature_set_json(struct http_req *r, const char *name)
{
    return json_pack("{s:s,s:s,s:{s:s,s:b,s:b,s:b}}", "id",
                     feature_set_id(r, name), "type", "feature-sets",
                     "attributes", "name", name, "operations", 1,
                     "state-storage", 1, "cost-estimation", 1);
}

static void feature_sets_list(struct http_req *r)
{
    struct page p;
    if (!need_admin(r) || !jsonapi_page(r, &p))
        return;
    const char *q = http_query(r, "q");
    json_t *items = json_array();
    int64_t total = 0, first = (int64_t)(p.number - 1) * p.size;
    for (size_t i = 0; i < NFEATURE_SETS; i++) {
        if (q != NULL && *q != '\0' && strcasestr(feature_sets[i], q) == NULL)
            continue;
        if (total >= first && total < first + p.size)
            json_array_append_new(items, feature_set_json(r, feature_sets[i]));
        total++;
    }
    http_reply_json(r, 200, jsonapi_list_doc(items, &p, total));
}

/* A non-negative integer attribute, or absent; 422 otherwise. */
static bool opt_count(struct http_req *r, json_t *data, const char *name,
                      int64_t min, json_t *attrs)
{
    int64_t v = 0;
    bool present = false;
    if (!jsonapi_attr_int(r, data, name, &v, &present))
        return false;
    if (!present)
        return true;
    if (v < min) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena, "attribute %s must be at least %lld",
                                name, (long long)min));
        return false;
    }
    json_object_set_new(attrs, name, json_integer((json_int_t)v));
    return true;
}

static void subscription_update(struct http_req *r)
{
    if (!need_admin(r))
        return;
    struct st_org o;
    if (!api_org_access(r, http_param(r, "name"), &o))
        return;
    json_t *data = jsonapi_body(r, NULL);
    if (data == NULL)
        return;
    const char *type = json_string_value(json_object_get(data, "type"));
    if (type == NULL || (strcmp(type, "subscription") != 0 &&
                         strcmp(type, "subscriptions") != 0)) {
        http_error(r, 409, "conflict", "data.type must be \"subscriptions\"");
        return;
    }
    const char *fs = jsonapi_rel_id(data, "feature-set");
    if (fs == NULL) {
        http_error(r, 422, NULL,
                   "relationships.feature-set.data.id is required: a feature "
                   "set id from GET /api/v2/admin/feature-sets");
        return;
    }
    const char *name = NULL;
    for (size_t i = 0; i < NFEATURE_SETS && name == NULL; i++)
        if (strcmp(feature_set_id(r, feature_sets[i]), fs) == 0)
            name = feature_sets[i];
    if (name == NULL) {
        http_error(r, 422, NULL,
                   arena_printf(r->arena,
                                "feature set %.64s does not exist (see GET "
                                "/api/v2/admin/feature-sets)",
                                fs));
        return;
    }
    json_t *attrs = http_json_own(r, json_object());
    if (!opt_count(r, data, "runs-ceiling", 1, attrs) ||
        !opt_count(r, data, "contract-user-limit", 0, attrs) ||
        !opt_count(r, data, "contract-apply-limit", 0, attrs))
        return;
    const char *start = NULL;
    if (!jsonapi_attr_str(r, data, "contract-start-at", &start))
        return;
    if (start != NULL && rfc3339_parse(start, NULL, NULL) != TR_OK) {
        http_error(r, 422, NULL,
                   "attribute contract-start-at must be an RFC 3339 time "
                   "such as 2024-05-01T12:00:00Z");
        return;
    }
    if (start != NULL)
        json_object_set_new(attrs, "contract-start-at", json_string(start));
    json_object_set_new(attrs, "is-active", json_true());
    const char *sfx = strchr(o.id, '-');
    http_reply_json(
        r, 201,
        json_pack(
            "{s:{s:s,s:s,s:O,s:{s:{s:{s:s,s:s}},s:{s:{s:s,s:s}}}}}", "data",
            "id", arena_printf(r->arena, "sub-%s", sfx ? sfx + 1 : o.id),
            "type", "subscriptions", "attributes", attrs, "relationships",
            "feature-set", "data", "id", fs, "type", "feature-sets",
            "organization", "data", "id", o.name, "type", "organizations"));
}

const struct route api_compat_routes[] = {
    {"GET", "/api/meta/ip-ranges", ip_ranges, 0},
    {"GET", "/api/v2/workspaces/:id/resources", ws_resources,
     ROUTE_AUTH | ROUTE_WS_READ},
    {"GET", "/api/v2/admin/feature-sets", feature_sets_list, ROUTE_AUTH},
    {"POST", "/api/v2/admin/organizations/:name/subscription",
     subscription_update, ROUTE_AUTH},
    {0},
};
