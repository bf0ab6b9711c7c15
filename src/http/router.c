/*
 * router.c - matches METHOD + path against the route tables.
 *
 * Patterns are '/'-separated; a segment ":name" captures one segment.
 * Tables are scanned in order and the first full match wins, so literal
 * routes go before parameterised ones that could shadow them.  The scan is
 * linear (a few hundred routes at most; measured in bench/).
 *
 * http_log_path() gives the access log a path it may keep: the segments a
 * route captures as ":sig" (the signature of a signed URL, a capability
 * for a day) are replaced, whatever the method; a path no route matches
 * has any 64-hex-digit segment (the shape of such a signature) replaced.
 * libmicrohttpd hands over the path without its query string, so query
 * parameters never reach the log.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <string.h>

#include "core/buf.h"
#include "http/http.h"
#include "http/http_int.h"

static const struct route *const *tables;

void http_set_routes(const struct route *const *t)
{
    tables = t;
}

/* Matches one pattern; fills params on success. */
static bool match(const char *pat, const char *path, struct arena *a, int *n,
                  const char **names, const char **values)
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

int http_route_count(void)
{
    int n = 0;
    for (int t = 0; tables != NULL && tables[t] != NULL; t++)
        for (const struct route *r = tables[t]; r->pattern != NULL; r++)
            n++;
    return n;
}

const struct route *http_route_at(int i)
{
    for (int t = 0; tables != NULL && tables[t] != NULL && i >= 0; t++)
        for (const struct route *r = tables[t]; r->pattern != NULL; r++)
            if (i-- == 0)
                return r;
    return NULL;
}

int http_route_index(const struct route *route)
{
    int base = 0;
    for (int t = 0; tables != NULL && tables[t] != NULL; t++) {
        const struct route *r = tables[t];
        while (r->pattern != NULL)
            r++;
        if (route >= tables[t] && route < r)
            return base + (int)(route - tables[t]);
        base += (int)(r - tables[t]);
    }
    return -1;
}

const char *http_param(const struct http_req *r, const char *name)
{
    for (int i = 0; i < r->nparams; i++)
        if (strcmp(r->pnames[i], name) == 0)
            return r->pvalues[i];
    return NULL;
}

#define REDACTED "REDACTED"

/* Path parameters whose values are secrets. */
static bool secret_param(const char *name, size_t len)
{
    return len == 3 && strncmp(name, "sig", 3) == 0;
}

static bool hex_secret(const char *seg, size_t len)
{
    if (len != 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)seg[i]))
            return false;
    return true;
}

/* The first route pattern (any method) that path matches, or NULL. */
static const char *any_pattern(const char *path, struct arena *a)
{
    int n = 0;
    const char *names[HTTP_MAX_PARAMS], *values[HTTP_MAX_PARAMS];
    if (tables == NULL)
        return NULL;
    for (int t = 0; tables[t] != NULL; t++)
        for (const struct route *r = tables[t]; r->pattern != NULL; r++)
            if (match(r->pattern, path, a, &n, names, values))
                return r->pattern;
    return NULL;
}

static void put_escaped(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7f && c != '%') {
            buf_append(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
    }
}

char *http_log_text(struct arena *a, const char *s)
{
    struct buf b;
    buf_init(&b, 0);
    put_escaped(&b, s, strlen(s));
    char *out = arena_strndup(a, b.data ? b.data : "", b.len);
    buf_free(&b);
    return out;
}

char *http_log_path(struct arena *a, const char *path)
{
    const char *pat = any_pattern(path, a); /* segments align with path's */
    struct buf b;
    buf_init(&b, 0);
    for (const char *p = path;; p++) {
        size_t sl = strcspn(p, "/");
        bool secret;
        if (pat != NULL) {
            size_t pl = strcspn(pat, "/");
            secret = pl > 0 && pat[0] == ':' && secret_param(pat + 1, pl - 1);
            pat += pl;
            if (*pat == '/')
                pat++;
        } else {
            secret = hex_secret(p, sl);
        }
        if (secret)
            buf_puts(&b, REDACTED);
        else
            put_escaped(&b, p, sl);
        p += sl;
        if (*p == '\0')
            break;
        buf_append(&b, "/", 1);
    }
    char *out = arena_strndup(a, b.data ? b.data : "", b.len);
    buf_free(&b);
    return out;
}
