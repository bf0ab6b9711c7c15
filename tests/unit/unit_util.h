/*
 * unit_util.h - helpers shared by the cmocka unit tests: temporary
 * directories, throwaway PostgreSQL databases and migrated stores on
 * either backend.
 *
 * Include after <cmocka.h>.  Everything is static inline so each test
 * program uses only what it needs without unused-function warnings.
 *
 * PostgreSQL: when TERRACE_TEST_PG_URL is set (a libpq URL or conninfo),
 * ut_pg_create() makes a fresh database t_<random> on that server and
 * returns a conninfo naming it, so concurrent test programs never share
 * tables; ut_pg_drop() removes it again.  When the variable is unset the
 * PostgreSQL tests call skip().
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_UNIT_UTIL_H
#define TR_UNIT_UTIL_H

#include <dirent.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"
#include "store/store.h"

/* ---- temporary directories -------------------------------------------- */

static inline int ut_rm_entry(const char *path, const struct stat *st, int flag,
                              struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Creates /tmp/<tag>.XXXXXX into out (at least 64 bytes); false on error. */
static inline bool ut_mkdtemp(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "/tmp/%s.XXXXXX", tag);
    return mkdtemp(out) != NULL;
}

static inline int ut_rmtree(const char *dir)
{
    return nftw(dir, ut_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Number of entries (files and directories, recursively) under dir. */
static inline int ut_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        n++;
        if (de->d_type == DT_DIR) {
            char sub[1024];
            if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >=
                (int)sizeof(sub))
                continue;
            int k = ut_count_entries(sub);
            if (k > 0)
                n += k;
        }
    }
    closedir(d);
    return n;
}

/* Number of regular files under dir (recursively) whose name starts with
 * prefix ("" for all). */
static inline int ut_count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[1024];
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >=
            (int)sizeof(sub))
            continue;
        if (de->d_type == DT_DIR) {
            int k = ut_count_files(sub, prefix);
            if (k > 0)
                n += k;
        } else if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static inline bool ut_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    fputs(text, f);
    return fclose(f) == 0;
}

/* ---- throwaway PostgreSQL databases ------------------------------------ */

static inline const char *ut_pg_url(void)
{
    const char *u = getenv("TERRACE_TEST_PG_URL");
    return u != NULL && *u != '\0' ? u : NULL;
}

/* Creates a fresh database and writes its name (at least 32 bytes) and a
 * conninfo for it (malloc'd, caller frees).  Returns false (after printing
 * why) if the server cannot be reached or the database not created. */
static inline bool ut_pg_create(char *name, size_t nn, char **conninfo)
{
    const char *url = ut_pg_url();
    if (url == NULL)
        return false;
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg: %s", PQerrorMessage(c));
        PQfinish(c);
        return false;
    }
    unsigned char rnd[6];
    util_random(rnd, sizeof(rnd));
    snprintf(name, nn, "t_%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5]);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "pg: %s", PQerrorMessage(c));
    PQclear(r);
    /* in keyword=value strings a later keyword wins, so appending
     * dbname retargets the caller's URL at the new database */
    if (ok) {
        struct buf b;
        buf_init(&b, 0);
        buf_printf(&b, "%s dbname=%s", url, name);
        *conninfo = buf_steal(&b, NULL);
    }
    PQfinish(c);
    return ok;
}

static inline void ut_pg_drop(const char *name)
{
    const char *url = ut_pg_url();
    if (url == NULL || name == NULL || *name == '\0')
        return;
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) == CONNECTION_OK) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                 name);
        PQclear(PQexec(c, sql));
    }
    PQfinish(c);
}

/* ---- a store on either backend ----------------------------------------- */

struct ut_store {
    enum db_kind kind;
    char dir[64];     /* temporary directory (both kinds); SQLite: t.db */
    char pg_name[32]; /* DB_PG: this store's own database */
    char target[512]; /* SQLite file or PostgreSQL conninfo for db_open() */
    struct db *db;
};

/* Makes the place for a store without opening it: a temporary directory
 * /tmp/<tag>.XXXXXX and, for DB_PG, a fresh database; s->target names the
 * SQLite file or the conninfo.  Returns 0 when ready, 1 when the test
 * should skip (DB_PG without TERRACE_TEST_PG_URL), -1 on an error (after
 * printing why). */
static inline int ut_store_prepare(struct ut_store *s, enum db_kind kind,
                                   const char *tag)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    if (kind == DB_PG && ut_pg_url() == NULL)
        return 1;
    if (!ut_mkdtemp(s->dir, sizeof(s->dir), tag)) {
        fprintf(stderr, "%s: cannot make a temporary directory\n", tag);
        return -1;
    }
    if (kind == DB_PG) {
        char *ci = NULL;
        if (!ut_pg_create(s->pg_name, sizeof(s->pg_name), &ci))
            return -1;
        snprintf(s->target, sizeof(s->target), "%s", ci);
        free(ci);
    } else {
        snprintf(s->target, sizeof(s->target), "%s/t.db", s->dir);
    }
    return 0;
}

/* ut_store_prepare(), then opens the store with pool_size connections and
 * migrates it.  Returns 0 ok, 1 skip, -1 error (printed). */
static inline int ut_store_open(struct ut_store *s, enum db_kind kind,
                                int pool_size, const char *tag)
{
    int rc = ut_store_prepare(s, kind, tag);
    if (rc != 0)
        return rc;
    struct tr_errbuf eb = {{0}};
    if (db_open(kind, s->target, pool_size, &s->db, &eb) != TR_OK ||
        store_migrate(s->db, &eb) != TR_OK) {
        fprintf(stderr, "%s: cannot open the store: %s\n", tag, eb.msg);
        return -1;
    }
    return 0;
}

/* Runs n fixture statements on db in order.  Returns 0, or -1 (printed)
 * at the first that fails. */
static inline int ut_run_sql(struct db *db, struct arena *a,
                             const char *const *sql, size_t n)
{
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(db);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (db_query(c, a, sql[i], 0, NULL, NULL, NULL, &eb) != TR_OK) {
            fprintf(stderr, "fixture: %s\n", eb.msg);
            rc = -1;
        }
    }
    db_release(c);
    return rc;
}

/* Closes the database, drops the PostgreSQL database and removes the
 * directory; safe on a zeroed or half-made store.  Returns the directory
 * removal's result (0 ok). */
static inline int ut_store_close(struct ut_store *s)
{
    db_close(s->db);
    s->db = NULL;
    if (s->pg_name[0])
        ut_pg_drop(s->pg_name);
    s->pg_name[0] = '\0';
    int rc = s->dir[0] ? ut_rmtree(s->dir) : 0;
    s->dir[0] = '\0';
    return rc;
}

/* The "n" column of a parameterless counting query (SELECT count(*) AS n
 * ...); fails the test if the query fails. */
static inline int64_t ut_count(struct db *db, struct arena *a, const char *sql)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    assert_int_equal(db_query(c, a, sql, 0, NULL, &r, NULL, NULL), TR_OK);
    db_release(c);
    return db_get_i64(r, 0, "n");
}

#endif
