/*
 * router.c - matches METHOD + path against the route tables.
 *
 * Patterns are '/'-separated; a segment ":name" captures one segment.
 * Tables are scanned in order and the first full match wins, so literal
 * routes go before parameterised ones that could shadow them.  The scan is
 * linear (a few hundred routes at most; measured in bench/).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "http/http.h"

static const struct route *const *tables;

void http_set_routes(const struct route *const *t)
{
    tables = t;
}

/* Matches one pattern; fills params on success. */
static bool match(const char *pat, const char *path, struct arena *a,
                  int *n, const char **names, const char **values)
{
    int np = 0;
    while (*pat && *path) {
        if (*pat != '/' || *path != '/')
            return false;
        pat++;
        path++;
        const char *pe = strchr(pat, '/');
        const char *se = strchr(path, '/');
        size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
        size_t sl = se ? (size_t)(se - path) : strlen(path);
        if (pat[0] == ':') {
            if (sl == 0 || np >= HTTP_MAX_PARAMS)
                return false;
            names[np] = arena_strndup(a, pat + 1, pl - 1);
            values[np] = arena_strndup(a, path, sl);
            np++;
        } else if (pl != sl || strncmp(pat, path, pl) != 0) {
            return false;
        }
        pat += pl;
        path += sl;
    }
    /* tolerate one trailing slash on the request */
    if (*pat == '\0' && path[0] == '/' && path[1] == '\0')
        path++;
    if (*pat != '\0' || *path != '\0')
        return false;
    *n = np;
    return true;
}

const struct route *http_match(const char *method, const char *path,
                               struct arena *a, int *nparams,
                               const char **names, const char **values,
                               bool *path_exists)
{
    *path_exists = false;
    if (tables == NULL)
        return NULL;
    for (int t = 0; tables[t] != NULL; t++) {
        for (const struct route *r = tables[t]; r->pattern != NULL; r++) {
            if (!match(r->pattern, path, a, nparams, names, values))
                continue;
            if (strcmp(r->method, method) == 0)
                return r;
            *path_exists = true;
        }
    }
    return NULL;
}

const char *http_param(const struct http_req *r, const char *name)
{
    for (int i = 0; i < r->nparams; i++)
        if (strcmp(r->pnames[i], name) == 0)
            return r->pvalues[i];
    return NULL;
}
