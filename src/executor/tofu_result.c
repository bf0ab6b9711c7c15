/*
 * tofu_result.c - what a finished phase reports, read from tofu's output:
 * the plan's resource counts and has_changes from `show -json` (or, for a
 * plan whose JSON waits for its apply, from its "Plan: ..." line), and the
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

/* out without its terminal escape sequences, in a. */
static char *plain(struct arena *a, const char *out, size_t len)
{
    char *t = arena_strndup(a, out ? out : "", len);
    char *w = t;
    for (const char *p = t; *p; p++) {
        if (*p == '\033') {
            /* ESC [ digits ; ... and the final letter, which p++ skips */
            p += 1 + strspn(p + 1, "[0123456789;");
            if (*p == '\0')
                break;
            continue;
        }
        *w++ = *p;
    }
    *w = '\0';
    return t;
}

bool tofu_plan_summary(struct arena *a, const char *out, size_t len,
                       struct job_result *res)
{
    const char *t = plain(a, out, len);
    const char *s = NULL;
    for (const char *p = strstr(t, "Plan: "); p != NULL;
         p = strstr(p + 1, "Plan: "))
        if (p == t || p[-1] == '\n')
            s = p + 6;
    if (s == NULL)
        return false;
    int v[5] = {0}, seen = 0;
    static const char *const what[5] = {"import", "add", "change", "destroy",
                                        "forget"};
    while (*s != '\0' && *s != '\n') {
        int n = 0, used = 0;
        char word[16];
        if (sscanf(s, "%d to %15[a-z]%n", &n, word, &used) != 2 || n < 0)
            return false;
        int k = 0;
        while (k < 5 && strcmp(word, what[k]) != 0)
            k++;
        if (k == 5)
            return false;
        v[k] = n;
        seen |= 1 << k;
        s += used;
        if (*s == '.')
            break;
        if (s[0] != ',' || s[1] != ' ')
            return false;
        s += 2;
    }
    /* add, change and destroy are always there */
    if ((seen & 0xe) != 0xe || *s != '.')
        return false;
    res->imports = v[0];
    res->additions = v[1];
    res->changes = v[2];
    res->destructions = v[3];
    res->has_changes = true;
    return true;
}

void tofu_apply_summary(struct arena *a, const char *out, size_t len,
                        struct job_result *res)
{
    char *t = plain(a, out, len);
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
