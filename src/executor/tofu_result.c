/*
 * tofu_result.c - what a finished phase reports, read from tofu's output:
 * the plan's resource counts and has_changes from `show -json`, and the
 * apply's counts from its "Apply complete!" line.
 *
 * has_changes follows tofu's own Changes.Empty(): any resource action
 * other than no-op, a move (previous_address), an import, or a root
 * output change; plus drift in refresh-only mode, which is what such a
 * plan would apply.  Counts: "create" is an addition, "delete" a
 * destruction, "update" a change (a replacement counts as both addition
 * and destruction, as TFE does), a non-null "importing" an import.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "executor/executor_int.h"

static const char *str_at(json_t *arr, size_t i)
{
    const char *s = json_string_value(json_array_get(arr, i));
    return s ? s : "";
}

tr_err tofu_count_plan(const char *path, bool refresh_only,
                       struct job_result *res, struct tr_errbuf *eb)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (doc == NULL)
        return tr_fail(eb, TR_ERR_INVALID, "cannot read the JSON plan: %s",
                       jerr.text);
    bool other = false;
    size_t i;
    json_t *rc;
    json_array_foreach(json_object_get(doc, "resource_changes"), i, rc)
    {
        json_t *ch = json_object_get(rc, "change");
        json_t *acts = json_object_get(ch, "actions");
        for (size_t k = 0; k < json_array_size(acts); k++) {
            const char *act = str_at(acts, k);
            if (strcmp(act, "create") == 0)
                res->additions++;
            else if (strcmp(act, "delete") == 0)
                res->destructions++;
            else if (strcmp(act, "update") == 0)
                res->changes++;
            else if (strcmp(act, "no-op") != 0)
                other = true;
        }
        json_t *imp = json_object_get(ch, "importing");
        if (imp != NULL && !json_is_null(imp))
            res->imports++;
        if (json_object_get(rc, "previous_address") != NULL)
            other = true;
    }
    const char *key;
    json_t *oc;
    json_object_foreach(json_object_get(doc, "output_changes"), key, oc)
    {
        json_t *acts = json_object_get(oc, "actions");
        for (size_t k = 0; k < json_array_size(acts); k++)
            if (strcmp(str_at(acts, k), "no-op") != 0)
                other = true;
    }
    if (refresh_only &&
        json_array_size(json_object_get(doc, "resource_drift")) > 0)
        other = true;
    res->has_changes =
        other ||
        res->additions + res->changes + res->destructions + res->imports > 0;
    json_decref(doc);
    return TR_OK;
}

void tofu_apply_summary(struct arena *a, const char *out, size_t len,
                        struct job_result *res)
{
    char *t = arena_strndup(a, out ? out : "", len);
    char *w = t;
    for (const char *p = t; *p; p++) {
        if (*p == '\033') {
            p += strspn(p + 1, "[0123456789;");
            if (*p == '\0')
                break;
            continue;
        }
        *w++ = *p;
    }
    *w = '\0';
    const char *key = "Apply complete! Resources: ";
    char *s = NULL;
    for (char *p = strstr(t, key); p != NULL; p = strstr(p + 1, key))
        s = p + strlen(key);
    if (s == NULL)
        return;
    int imp = 0, add = 0, chg = 0, del = 0;
    if (sscanf(s, "%d imported, %d added, %d changed, %d destroyed", &imp, &add,
               &chg, &del) == 4 ||
        (imp = 0, sscanf(s, "%d added, %d changed, %d destroyed", &add, &chg,
                         &del) == 3)) {
        res->imports = imp;
        res->additions = add;
        res->changes = chg;
        res->destructions = del;
    }
}
