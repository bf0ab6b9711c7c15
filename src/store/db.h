/*
 * db.h - the small SQL interface the store is written against, with two
 * backends: SQLite (demo) and PostgreSQL (cluster).
 *
 * Statements use PostgreSQL's $1..$n placeholders; the SQLite backend
 * rewrites them to ?1..?n.  All parameters and results are text (NULL is SQL
 * NULL), so the store code is one portable dialect.  Dialect differences
 * the store needs are exposed as small functions (db_for_update()).
 *
 * A struct db is a fixed pool of connections, safe to share between
 * threads; a struct db_conn is used by one thread between db_acquire() and
 * db_release().  Unique-constraint violations come back as
 * TR_ERR_CONFLICT so callers can answer 409/422 without parsing messages.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_DB_H
#define TR_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/err.h"

enum db_kind { DB_SQLITE = 1, DB_PG = 2 };

struct db;
struct db_conn;

struct db_rows {
    int nrows;
    int ncols;
    char **cols;  /* column names */
    char **cells; /* row-major, nrows * ncols, NULL for SQL NULL */
};

/* target: a file path for SQLite, a libpq conninfo/URL for PostgreSQL. */
tr_err db_open(enum db_kind kind, const char *target, int pool_size,
               struct db **out, struct tr_errbuf *eb);
void db_close(struct db *db);
enum db_kind db_kind(const struct db *db);

/* The read cache lookups on db use (store/read_cache.h; NULL: none).  Set
 * before the first request; db_close() leaves it to its owner. */
struct read_cache;
void db_set_read_cache(struct db *db, struct read_cache *rc);
struct read_cache *db_read_cache(const struct db *db);

/* Connections handed out now and the pool's size (for /metrics). */
void db_pool_stats(struct db *db, int *in_use, int *size);

/* Connections open now (1..pool size).  Thread-safe. */
int db_pool_open(struct db *db);

/* How long the pool's last connection may go untaken before a release
 * closes it (default 60 s; tests shorten it).  The first one stays. */
void db_set_idle_close(struct db *db, int64_t ms);

/* Blocks until a connection is free. */
struct db_conn *db_acquire(struct db *db);
void db_release(struct db_conn *c);

/* Runs sql with n text params.  rows may be NULL when no result is wanted;
 * result memory lives in a.  affected (nullable) gets the changed row count. */
tr_err db_query(struct db_conn *c, struct arena *a, const char *sql, int n,
                const char *const *params, struct db_rows **rows,
                int64_t *affected, struct tr_errbuf *eb);

/* Convenience: params as varargs of const char * (NULL allowed). */
#define DB_NARGS(...)                                                          \
    ((int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)))
#define db_q(c, a, rows, eb, sql, ...)                                         \
    db_query((c), (a), (sql), DB_NARGS(__VA_ARGS__),                           \
             (const char *const[]){__VA_ARGS__}, (rows), NULL, (eb))
#define db_x(c, a, affected, eb, sql, ...)                                     \
    db_query((c), (a), (sql), DB_NARGS(__VA_ARGS__),                           \
             (const char *const[]){__VA_ARGS__}, NULL, (affected), (eb))

/* One page of a list: runs select_sql (without LIMIT; " LIMIT $<n+1>
 * OFFSET $<n+2>" is appended, limit and offset bound after the n params)
 * into rows, then count_sql ("SELECT count(*) AS n ..." over the same n
 * params) into total (nullable). */
tr_err db_page(struct db_conn *c, struct arena *a, const char *select_sql,
               const char *count_sql, int n, const char *const *params,
               int offset, int limit, struct db_rows **rows, int64_t *total,
               struct tr_errbuf *eb);

/* Transactions.  db_begin() takes the write lock at once on SQLite
 * (BEGIN IMMEDIATE) so two writers never deadlock upgrading. */
tr_err db_begin(struct db_conn *c, struct tr_errbuf *eb);
tr_err db_commit(struct db_conn *c, struct tr_errbuf *eb);
void db_rollback(struct db_conn *c);

/* " FOR UPDATE" on PostgreSQL, "" on SQLite (whose write transaction
 * already excludes other writers). */
const char *db_for_update(const struct db_conn *c);
/* " FOR UPDATE SKIP LOCKED" on PostgreSQL (a claimer passes over rows
 * another transaction holds), "" on SQLite. */
const char *db_skip_locked(const struct db_conn *c);
enum db_kind db_conn_kind(const struct db_conn *c);

/* Cell accessors; out-of-range row/col is a bug (TR_ALWAYS: aborts in
 * debug builds, NULL in release builds). */
const char *db_cell(const struct db_rows *r, int row, int col);
/* Cell by column name; NULL if the column does not exist or is NULL. */
const char *db_get(const struct db_rows *r, int row, const char *name);
int64_t db_get_i64(const struct db_rows *r, int row, const char *name);
bool db_get_bool(const struct db_rows *r, int row, const char *name);

/* Backend entry points, used by db.c only. */
struct db_backend {
    tr_err (*connect)(const char *target, void **handle, struct tr_errbuf *eb);
    void (*disconnect)(void *handle);
    tr_err (*query)(void *handle, struct arena *a, const char *sql, int n,
                    const char *const *params, struct db_rows **rows,
                    int64_t *affected, struct tr_errbuf *eb);
    const char *begin_sql;
};
extern const struct db_backend db_sqlite_backend;
extern const struct db_backend db_pg_backend;

/* Debug builds: records sql for the query-plan test (db_trace.c); used
 * by db.c only.  db_trace_count() is the number of statements the
 * calling thread has run (the server reports a request's in a header, for
 * the test that a page costs as many statements as one item). */
#ifdef TR_DEBUG
void db_trace(const char *sql, int n);
long db_trace_count(void);
#else
static inline void db_trace(const char *sql, int n)
{
    (void)sql;
    (void)n;
}
static inline long db_trace_count(void)
{
    return 0;
}
#endif

/* A libpq function by name, from the libpq db_pg.c loads (once, with
 * dlopen), for code that needs a connection of its own outside the pool
 * (leader election, LISTEN); NULL with eb set when libpq cannot be
 * loaded or lacks it. */
void *db_pg_symbol(const char *name, struct tr_errbuf *eb);

#endif
