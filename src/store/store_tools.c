/*
 * store_tools.c - tool versions: the tofu and terraform binaries runs may
 * use, registered by version with their local path and sha256.
 *
 * A version string is a semantic version (1.10.10, 1.11.0-beta1); it is
 * unique across the site.  "latest" resolves to the highest enabled,
 * non-beta version by semantic-version precedence (a pre-release ranks
 * below its release), so it is computed here rather than in SQL.  Usage
 * counts the workspaces whose terraform_version names the version.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "store/store.h"
#include "store/store_ws_int.h"

#define TOOL_COLS                                                              \
    "id, version, path, sha256, enabled, official, beta, deprecated,"          \
    " deprecated_reason, created_at"

#define TOOL_USAGE                                                             \
    "(SELECT count(*) FROM workspaces w"                                       \
    " WHERE w.terraform_version = t.version) AS usage"

#define MAX_VERSION 64

static void fill(const struct db_rows *r, int i, struct st_tool *t)
{
    t->id = db_get(r, i, "id");
    t->version = db_get(r, i, "version");
    t->path = db_get(r, i, "path");
    t->sha256 = db_get(r, i, "sha256");
    t->enabled = db_get_bool(r, i, "enabled");
    t->official = db_get_bool(r, i, "official");
    t->beta = db_get_bool(r, i, "beta");
    t->deprecated = db_get_bool(r, i, "deprecated");
    t->deprecated_reason = db_get(r, i, "deprecated_reason");
    t->created_at = db_get(r, i, "created_at");
    t->usage = db_get(r, i, "usage") ? db_get_i64(r, i, "usage") : 0;
}

/* ---- semantic versions ------------------------------------------------ */

/* Digits only, no leading zero (except "0"), at most 9 of them. */
static bool numeric(const char *s, size_t n)
{
    if (n == 0 || n > 9 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Dot-separated non-empty identifiers of [0-9A-Za-z-]. */
static bool idents(const char *s, size_t n)
{
    if (n == 0)
        return false;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (run == 0)
                return false;
            run = 0;
        } else if (isalnum(ch) || ch == '-') {
            run++;
        } else {
            return false;
        }
    }
    return run > 0;
}

bool store_tool_valid_version(const char *v)
{
    if (v == NULL || strlen(v) > MAX_VERSION)
        return false;
    const char *p = v;
    for (int part = 0; part < 3; part++) {
        size_t n = strspn(p, "0123456789");
        if (!numeric(p, n))
            return false;
        p += n;
        if (part < 2) {
            if (*p != '.')
                return false;
            p++;
        }
    }
    const char *plus = strchr(p, '+');
    size_t pre_end = plus ? (size_t)(plus - p) : strlen(p);
    if (*p == '-') {
        if (!idents(p + 1, pre_end - 1))
            return false;
    } else if (pre_end != 0) {
        return false;
    }
    return plus == NULL || idents(plus + 1, strlen(plus + 1));
}

static long num_at(const char **p)
{
    long v = strtol(*p, (char **)p, 10);
    if (**p == '.')
        (*p)++;
    return v;
}

/* Compares two pre-release strings (without '-'; up to '+' or NUL). */
static int cmp_pre(const char *a, const char *b)
{
    for (;;) {
        size_t na = strcspn(a, ".+"), nb = strcspn(b, ".+");
        bool da = na > 0 && strspn(a, "0123456789") >= na;
        bool db = nb > 0 && strspn(b, "0123456789") >= nb;
        int c;
        if (da && db)
            c = (na != nb) ? (na < nb ? -1 : 1) : strncmp(a, b, na);
        else if (da != db)
            c = da ? -1 : 1;
        else {
            size_t m = na < nb ? na : nb;
            c = strncmp(a, b, m);
            if (c == 0 && na != nb)
                c = na < nb ? -1 : 1;
        }
        if (c != 0)
            return c < 0 ? -1 : 1;
        a += na;
        b += nb;
        bool ea = *a != '.', eb = *b != '.';
        if (ea || eb)
            return ea && eb ? 0 : ea ? -1 : 1;
        a++;
        b++;
    }
}

int store_tool_vercmp(const char *a, const char *b)
{
    const char *pa = a, *pb = b;
    for (int i = 0; i < 3; i++) {
        long x = num_at(&pa), y = num_at(&pb);
        if (x != y)
            return x < y ? -1 : 1;
    }
    bool ha = *pa == '-', hb = *pb == '-';
    if (!ha || !hb)
        return ha == hb ? 0 : ha ? -1 : 1;
    return cmp_pre(pa + 1, pb + 1);
}

/* ---- rows ------------------------------------------------------------- */

/* usage: count the workspaces pinned to it (the admin API shows it; a
 * run's tool lookup must not pay for it). */
static tr_err read_tool(struct db_conn *c, struct arena *a, const char *col,
                        const char *val, bool usage, struct st_tool *out,
                        struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    arena_printf(a,
                                 "SELECT " TOOL_COLS "%s"
                                 " FROM tool_versions t WHERE %s = $1",
                                 usage ? ", " TOOL_USAGE : "", col),
                    val);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "tool version not found");
    if (e == TR_OK)
        fill(r, 0, out);
    return e;
}

static const char *b01(bool b)
{
    return b ? "1" : "0";
}

tr_err store_tool_create(struct db *db, struct arena *a,
                         const struct st_tool *in, struct st_tool *out,
                         struct tr_errbuf *eb)
{
    TR_ASSERT(in->version != NULL && in->path != NULL && in->sha256 != NULL);
    const char *id = in->id ? in->id : util_new_id(a, "tool");
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO tool_versions (" TOOL_COLS ")"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                    id, in->version, in->path, in->sha256, b01(in->enabled),
                    b01(in->official), b01(in->beta), b01(in->deprecated),
                    in->deprecated_reason, util_now_iso(a));
    if (e == TR_ERR_CONFLICT)
        e = tr_fail(eb, e, "version %s is already registered", in->version);
    if (e == TR_OK && out != NULL)
        e = read_tool(c, a, "id", id, true, out, eb);
    db_release(c);
    return e;
}

tr_err store_tool_get(struct db *db, struct arena *a, const char *id,
                      struct st_tool *out, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = read_tool(c, a, "id", id, true, out, eb);
    db_release(c);
    return e;
}

tr_err store_tool_by_version(struct db *db, struct arena *a,
                             const char *version, struct st_tool *out,
                             struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = read_tool(c, a, "version", version, false, out, eb);
    db_release(c);
    return e;
}

/* Sorts newest first by semantic version. */
static int by_version_desc(const void *x, const void *y)
{
    const struct st_tool *a = x, *b = y;
    return store_tool_vercmp(b->version, a->version);
}

tr_err store_tool_list(struct db *db, struct arena *a, const char *version,
                       const char *search, int offset, int limit,
                       struct st_tool **out, int *n, int64_t *total,
                       struct tr_errbuf *eb)
{
    const char *v = version && *version ? version : NULL;
    const char *s =
        search && *search ? store_like(a, "%", search, "%", false) : NULL;
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " TOOL_COLS ", " TOOL_USAGE " FROM tool_versions t"
                    " WHERE (CAST($1 AS TEXT) IS NULL OR version = $1)"
                    " AND (CAST($2 AS TEXT) IS NULL"
                    " OR version LIKE $2 ESCAPE '\\')",
                    v, s);
    db_release(c);
    if (e != TR_OK)
        return e;
    /* the table is small: order by semantic version in memory */
    struct st_tool *all = arena_alloc(a, sizeof(*all) * (r->nrows + 1));
    for (int i = 0; i < r->nrows; i++)
        fill(r, i, &all[i]);
    qsort(all, (size_t)r->nrows, sizeof(*all), by_version_desc);
    *total = r->nrows;
    int start = offset < r->nrows ? offset : r->nrows;
    int cnt = r->nrows - start < limit ? r->nrows - start : limit;
    *out = all + start;
    *n = cnt < 0 ? 0 : cnt;
    return TR_OK;
}

tr_err store_tool_update(struct db *db, struct arena *a, const char *id,
                         const struct st_tool *in, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t affected = 0;
    tr_err e = db_x(c, a, &affected, eb,
                    "UPDATE tool_versions SET version = $2, path = $3,"
                    " sha256 = $4, enabled = $5, official = $6, beta = $7,"
                    " deprecated = $8, deprecated_reason = $9 WHERE id = $1",
                    id, in->version, in->path, in->sha256, b01(in->enabled),
                    b01(in->official), b01(in->beta), b01(in->deprecated),
                    in->deprecated_reason);
    db_release(c);
    if (e == TR_ERR_CONFLICT)
        return tr_fail(eb, e, "version %s is already registered", in->version);
    if (e == TR_OK && affected == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "tool version not found");
    return e;
}

tr_err store_tool_delete(struct db *db, struct arena *a, const char *id,
                         struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    int64_t affected = 0;
    tr_err e = db_x(c, a, &affected, eb,
                    "DELETE FROM tool_versions WHERE id = $1", id);
    db_release(c);
    if (e == TR_OK && affected == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "tool version not found");
    return e;
}

tr_err store_tool_resolve(struct db *db, struct arena *a, const char *want,
                          const char **path, const char **sha256,
                          const char **version, struct tr_errbuf *eb)
{
    bool latest = want == NULL || *want == '\0' || strcmp(want, "latest") == 0;
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT " TOOL_COLS " FROM tool_versions t"
                    " WHERE enabled = 1"
                    " AND (CAST($1 AS TEXT) IS NULL OR version = $1)",
                    latest ? NULL : want);
    db_release(c);
    if (e != TR_OK)
        return e;
    int best = -1;
    for (int i = 0; i < r->nrows; i++) {
        const char *v = db_get(r, i, "version");
        if (latest && db_get_bool(r, i, "beta"))
            continue;
        if (best < 0 || store_tool_vercmp(v, db_get(r, best, "version")) > 0)
            best = i;
    }
    if (best < 0)
        return latest ? tr_fail(eb, TR_ERR_NOT_FOUND,
                                "no enabled tool version is registered")
                      : tr_fail(eb, TR_ERR_NOT_FOUND,
                                "tool version %s is not registered or is "
                                "disabled",
                                want);
    *path = db_get(r, best, "path");
    *sha256 = db_get(r, best, "sha256");
    *version = db_get(r, best, "version");
    return TR_OK;
}
