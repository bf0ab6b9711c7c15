/*
 * store_ws_int.h - helpers shared by the store's files: a small builder
 * for statements whose WHERE clause depends on the request (with its
 * "IN ($1, $2, ...)" lists), and LIKE patterns with escaped wildcards.
 *
 * Everything lives in the arena passed in.  A builder holds at most
 * SQLB_MAX_PARAMS values; binding more marks it overflowed, and
 * sqlb_query() and sqlb_page(), the only ways to run one, then answer
 * TR_ERR_INVALID without running it.  Internal to src/store (STYLE.md
 * rule 3).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_STORE_WS_INT_H
#define TR_STORE_WS_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"

#define SQLB_MAX_PARAMS 256

/* A statement built piece by piece with numbered parameters. */
struct sqlb {
    struct arena *a;
    char *sql;
    const char *params[SQLB_MAX_PARAMS];
    int n;
    bool overflow; /* a value beyond SQLB_MAX_PARAMS was bound */
};

static inline void sqlb_init(struct sqlb *q, struct arena *a, const char *sql)
{
    q->a = a;
    q->sql = arena_strdup(a, sql);
    q->n = 0;
    q->overflow = false;
}

static inline void sqlb_add(struct sqlb *q, const char *text)
{
    q->sql = arena_printf(q->a, "%s%s", q->sql, text);
}

/* Binds v as the next parameter and returns its placeholder ("$3").
 * Callers bound the count by their own limits (at most 100 tags, ids);
 * past SQLB_MAX_PARAMS the value is dropped and the builder overflowed. */
static inline const char *sqlb_param(struct sqlb *q, const char *v)
{
    if (q->n >= SQLB_MAX_PARAMS) {
        q->overflow = true;
        return "NULL";
    }
    q->params[q->n++] = v;
    return arena_printf(q->a, "$%d", q->n);
}

/* TR_OK, or TR_ERR_INVALID if q overflowed (then it must not run). */
static inline tr_err sqlb_check(const struct sqlb *q, struct tr_errbuf *eb)
{
    if (!q->overflow)
        return TR_OK;
    return tr_fail(eb, TR_ERR_INVALID,
                   "too many values in one request (at most %d)",
                   SQLB_MAX_PARAMS);
}

/* db_query() of q, unless it overflowed. */
static inline tr_err sqlb_query(struct db_conn *c, const struct sqlb *q,
                                struct db_rows **rows, int64_t *affected,
                                struct tr_errbuf *eb)
{
    tr_err e = sqlb_check(q, eb);
    if (e != TR_OK)
        return e;
    return db_query(c, q->a, q->sql, q->n, q->params, rows, affected, eb);
}

/* db_page() of select_sql (columns, then w's FROM/WHERE, then the order)
 * counted by "SELECT count(*) AS n" over w, unless w overflowed. */
static inline tr_err sqlb_page(struct db_conn *c, const struct sqlb *w,
                               const char *select_sql, int offset, int limit,
                               struct db_rows **rows, int64_t *total,
                               struct tr_errbuf *eb)
{
    tr_err e = sqlb_check(w, eb);
    if (e != TR_OK)
        return e;
    return db_page(c, w->a, select_sql,
                   arena_printf(w->a, "SELECT count(*) AS n%s", w->sql), w->n,
                   w->params, offset, limit, rows, total, eb);
}

/* Appends fmt with every "?" replaced by the next value of the list. */
static inline void sqlb_addv(struct sqlb *q, const char *fmt, int nv, ...)
{
    va_list ap;
    va_start(ap, nv);
    for (const char *p = fmt; *p; p++) {
        if (*p == '?' && nv > 0) {
            sqlb_add(q, sqlb_param(q, va_arg(ap, const char *)));
            nv--;
        } else {
            char c[2] = {*p, '\0'};
            sqlb_add(q, c);
        }
    }
    va_end(ap);
}

/* Binds the n values of v and appends their placeholders, "$3, $4"; "NULL"
 * when n is 0, so that "x IN (NULL)" is valid SQL and never true. */
static inline void sqlb_list(struct sqlb *q, const char *const *v, int n)
{
    if (n == 0)
        sqlb_add(q, "NULL");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            sqlb_add(q, ", ");
        sqlb_add(q, sqlb_param(q, v[i]));
    }
}

/* Appends " IN ($3, $4)" over the n values of v (sqlb_list()). */
static inline void sqlb_in(struct sqlb *q, const char *const *v, int n)
{
    sqlb_add(q, " IN (");
    sqlb_list(q, v, n);
    sqlb_add(q, ")");
}

/* "pre%q%post" with LIKE's wildcards in q escaped by '\'; use with
 * ESCAPE '\'.  star_wild: '*' in q becomes '%' (wildcard-name search). */
static inline char *store_like(struct arena *a, const char *pre, const char *q,
                               const char *post, bool star_wild)
{
    size_t n = strlen(q);
    char *out = arena_alloc(a, n * 2 + strlen(pre) + strlen(post) + 1);
    char *p = out;
    for (const char *s = pre; *s; s++)
        *p++ = *s;
    for (size_t i = 0; i < n; i++) {
        if (star_wild && q[i] == '*') {
            *p++ = '%';
            continue;
        }
        if (q[i] == '%' || q[i] == '_' || q[i] == '\\')
            *p++ = '\\';
        *p++ = q[i];
    }
    for (const char *s = post; *s; s++)
        *p++ = *s;
    *p = '\0';
    return out;
}

/* The organization of workspace id, in a, the row locked for the rest of
 * the transaction on PostgreSQL; TR_ERR_NOT_FOUND if none. */
static inline tr_err store_ws_org_locked(struct db_conn *c, struct arena *a,
                                         const char *id, const char **org,
                                         struct tr_errbuf *eb)
{
    struct db_rows *r = NULL;
    const char *sql = arena_printf(
        a, "SELECT org FROM workspaces WHERE id = $1%s", db_for_update(c));
    tr_err e = db_q(c, a, &r, eb, sql, id);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "workspace %s not found", id);
    if (e == TR_OK)
        *org = db_get(r, 0, "org");
    return e;
}

/* Byte-order collation for ORDER BY, the same on both backends (SQLite's
 * default is already binary; PostgreSQL's depends on the locale). */
static inline const char *store_bytes_order(const struct db_conn *c)
{
    return db_conn_kind(c) == DB_PG ? " COLLATE \"C\"" : "";
}

/* A workspace read: the select list on c's dialect (store_workspaces.c),
 * over STORE_WS_JOIN (the workspace as w, its current state version as
 * sv); store_ws_fill() fills w from row i of such a read, in a. */
#define STORE_WS_JOIN                                                          \
    "workspaces w LEFT JOIN state_versions sv ON sv.id = w.current_sv"
const char *store_ws_cols(const struct db_conn *c);
void store_ws_fill(struct arena *a, const struct db_rows *r, int i,
                   struct st_workspace *w);

/* Links the workspace to the tags named (creating missing tags of org);
 * replace: first unlink every other tag.  Runs on c, inside the caller's
 * transaction (store_tags.c). */
tr_err store_ws_tags_set(struct db_conn *c, struct arena *a, const char *org,
                         const char *ws_id, const char *const *names, int n,
                         bool replace, struct tr_errbuf *eb);

#endif
