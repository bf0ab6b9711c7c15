/*
 * plan_redact.c - secrets out of JSON plans (see plan_redact.h).
 *
 * A sensitivity mask mirrors the value it describes: true marks the whole
 * value sensitive, an object or array marks members.  redact() walks a
 * value and its mask together and replaces each sensitive part with null.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/plan_redact.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* Replaces the parts of *v marked by mask with null (in place). */
static void redact(json_t **v, json_t *mask, int depth)
{
    if (mask == NULL || *v == NULL || depth > MAX_DEPTH)
        return;
    if (json_is_true(mask)) {
        json_decref(*v);
        *v = json_null();
        return;
    }
    if (json_is_object(mask) && json_is_object(*v)) {
        const char *k;
        json_t *m;
        json_object_foreach(mask, k, m)
        {
            json_t *child = json_object_get(*v, k);
            if (child == NULL)
                continue;
            json_incref(child);
            redact(&child, m, depth + 1);
            json_object_set_new(*v, k, child);
        }
    } else if (json_is_array(mask) && json_is_array(*v)) {
        size_t i;
        json_t *m;
        json_array_foreach(mask, i, m)
        {
            json_t *child = json_array_get(*v, i);
            if (child == NULL)
                break;
            json_incref(child);
            redact(&child, m, depth + 1);
            json_array_set_new(*v, i, child);
        }
    }
}

/* obj[key] redacted by obj[mask_key]. */
static void redact_member(json_t *obj, const char *key, const char *mask_key)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return;
    json_incref(v);
    redact(&v, json_object_get(obj, mask_key), 0);
    json_object_set_new(obj, key, v);
}

/* A change object: before/after by before_sensitive/after_sensitive. */
static void redact_change(json_t *change)
{
    if (!json_is_object(change))
        return;
    redact_member(change, "before", "before_sensitive");
    redact_member(change, "after", "after_sensitive");
}

static void redact_changes(json_t *list)
{
    size_t i;
    json_t *rc;
    json_array_foreach(list, i, rc)
        redact_change(json_object_get(rc, "change"));
}

/* planned_values / prior_state values: modules of resources carrying
 * values + sensitive_values, outputs with a sensitive flag. */
static void redact_module(json_t *mod, int depth)
{
    if (!json_is_object(mod) || depth > MAX_DEPTH)
        return;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(mod, "resources"), i, x)
        redact_member(x, "values", "sensitive_values");
    json_array_foreach(json_object_get(mod, "child_modules"), i, x)
        redact_module(x, depth + 1);
}

static void redact_values(json_t *values)
{
    if (!json_is_object(values))
        return;
    const char *k;
    json_t *out;
    json_object_foreach(json_object_get(values, "outputs"), k, out)
    {
        if (json_is_true(json_object_get(out, "sensitive")))
            json_object_set_new(out, "value", json_null());
    }
    redact_module(json_object_get(values, "root_module"), 0);
}

static bool listed(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Input variable values: sensitive in the configuration or listed. */
static void redact_variables(json_t *plan, const char *const *secret, int n)
{
    json_t *decl = json_object_get(
        json_object_get(json_object_get(plan, "configuration"), "root_module"),
        "variables");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(plan, "variables"), k, v)
    {
        bool sens = listed(k, secret, n) ||
                    json_is_true(
                        json_object_get(json_object_get(decl, k), "sensitive"));
        if (sens && json_is_object(v))
            json_object_set_new(v, "value", json_null());
    }
}

static char *dump(struct arena *a, json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT);
    char *out = arena_strdup(a, s != NULL ? s : "{}");
    free(s);
    *len = strlen(out);
    return out;
}

/* Adds the "type" of every change in arr to the managed or data set. */
static void collect_types(json_t *arr, json_t *managed, json_t *data)
{
    size_t i;
    json_t *rc;
    json_array_foreach(arr, i, rc)
    {
        const char *type = json_string_value(json_object_get(rc, "type"));
        const char *mode = json_string_value(json_object_get(rc, "mode"));
        if (type != NULL)
            json_object_set_new(
                mode != NULL && strcmp(mode, "data") == 0 ? data : managed,
                type, json_true());
    }
}

/* Keeps in the schema object s[key] only the types in want. */
static void keep_types(json_t *s, const char *key, json_t *want)
{
    json_t *all = json_object_get(s, key);
    if (!json_is_object(all))
        return;
    json_t *kept = json_object();
    const char *type;
    json_t *v;
    json_object_foreach(all, type, v)
    {
        if (json_object_get(want, type) != NULL)
            json_object_set(kept, type, v);
    }
    json_object_set_new(s, key, kept);
}

/* The provider schemas of the schemas document, for the types the plan's
 * changes and drift name (a provider's schema can be megabytes). */
static void merge_schemas(json_t *plan, json_t *red, const char *text,
                          size_t len)
{
    json_t *doc = json_loadb(text, len, 0, NULL);
    json_t *ps = json_object_get(doc, "provider_schemas");
    if (!json_is_object(ps)) {
        json_decref(doc);
        return;
    }
    json_t *managed = json_object(), *data = json_object();
    collect_types(json_object_get(plan, "resource_changes"), managed, data);
    collect_types(json_object_get(plan, "resource_drift"), managed, data);
    const char *name;
    json_t *p;
    json_object_foreach(ps, name, p)
    {
        keep_types(p, "resource_schemas", managed);
        keep_types(p, "data_source_schemas", data);
    }
    json_object_set(red, "provider_schemas", ps);
    json_t *fv = json_object_get(doc, "format_version");
    if (json_is_string(fv))
        json_object_set(red, "provider_format_version", fv);
    json_decref(managed);
    json_decref(data);
    json_decref(doc);
}

tr_err plan_redact(struct arena *a, const char *json, size_t len,
                   const char *schemas, size_t schemas_len,
                   const char *const *secret_vars, int nsecret, char **full,
                   size_t *full_len, char **redacted, size_t *redacted_len,
                   struct tr_errbuf *eb)
{
    static const char *const keep[] = {
        "plan_format_version",     "output_changes",      "resource_changes",
        "resource_drift",          "relevant_attributes", "deferred_changes",
        "provider_format_version", "provider_schemas",
    };
    json_t *plan = json_loadb(json, len, 0, NULL);
    if (!json_is_object(plan)) {
        json_decref(plan);
        return tr_fail(eb, TR_ERR_INVALID, "the JSON plan is not an object");
    }
    redact_changes(json_object_get(plan, "resource_changes"));
    redact_changes(json_object_get(plan, "resource_drift"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(plan, "output_changes"), k, v)
        redact_change(v);
    redact_values(json_object_get(plan, "planned_values"));
    redact_values(
        json_object_get(json_object_get(plan, "prior_state"), "values"));
    redact_variables(plan, secret_vars, nsecret);
    json_t *red = json_object();
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        json_t *x = json_object_get(plan, keep[i]);
        if (x != NULL)
            json_object_set(red, keep[i], x);
    }
    if (schemas != NULL)
        merge_schemas(plan, red, schemas, schemas_len);
    /* the CLI decodes these as strings */
    if (json_object_get(red, "provider_format_version") == NULL)
        json_object_set_new(red, "provider_format_version", json_string("1.0"));
    if (json_object_get(red, "provider_schemas") == NULL)
        json_object_set_new(red, "provider_schemas", json_object());
    json_object_del(plan, "provider_schemas");
    *full = dump(a, plan, full_len);
    *redacted = dump(a, red, redacted_len);
    json_decref(plan);
    json_decref(red);
    return TR_OK;
}
