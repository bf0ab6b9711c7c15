/*
 * unit_store_fx.h - the fixture the store unit tests share: one migrated
 * store per group (SQLite, then PostgreSQL when TERRACE_TEST_PG_URL is
 * set) and a fresh arena for each test.
 *
 * A test file lists its tests with ut_fx_each_setup/ut_fx_each_teardown
 * and runs them with ut_fx_run(); a file that needs rows in every group
 * or values in every test wraps the setups and keeps its own data behind
 * ext.  Include after <cmocka.h>; static inline like unit_util.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_UNIT_STORE_FX_H
#define TR_UNIT_STORE_FX_H

#include <stdio.h>
#include <stdlib.h>

#include "unit_util.h"

struct ut_fx {
    struct ut_store st;
    struct db *db;   /* st.db */
    struct arena *a; /* this test's, freed after it */
    void *ext;       /* the file's own data, NULL unless it sets it */
};

/* Group setup: allocates the fixture and opens a migrated store of kind. */
static inline int ut_fx_open(void **state, enum db_kind kind)
{
    struct ut_fx *f = calloc(1, sizeof(*f));
    *state = f;
    if (f == NULL || ut_store_open(&f->st, kind, 2, "test_store") != 0)
        return -1;
    f->db = f->st.db;
    return 0;
}

static inline int ut_fx_setup_sqlite(void **state)
{
    return ut_fx_open(state, DB_SQLITE);
}

static inline int ut_fx_setup_pg(void **state)
{
    return ut_fx_open(state, DB_PG);
}

/* Group teardown: closes and removes the store, frees the fixture. */
static inline int ut_fx_teardown(void **state)
{
    struct ut_fx *f = *state;
    if (f == NULL)
        return 0;
    int rc = ut_store_close(&f->st);
    free(f);
    return rc;
}

static inline int ut_fx_each_setup(void **state)
{
    struct ut_fx *f = *state;
    f->a = arena_new();
    return 0;
}

static inline int ut_fx_each_teardown(void **state)
{
    struct ut_fx *f = *state;
    arena_destroy(f->a);
    f->a = NULL;
    f->ext = NULL;
    return 0;
}

/* Runs the n tests as group <name>_sqlite, then <name>_pg when
 * TERRACE_TEST_PG_URL is set (else says it skipped).  setup_sqlite and
 * setup_pg: the group setups, NULL for ut_fx_setup_sqlite/_pg.  Returns
 * main()'s exit status. */
static inline int ut_fx_run(const char *name, const struct CMUnitTest *tests,
                            size_t n, CMFixtureFunction setup_sqlite,
                            CMFixtureFunction setup_pg)
{
    char group[128];
    snprintf(group, sizeof(group), "%s_sqlite", name);
    int failed = _cmocka_run_group_tests(
        group, tests, n, setup_sqlite ? setup_sqlite : ut_fx_setup_sqlite,
        ut_fx_teardown);
    snprintf(group, sizeof(group), "%s_pg", name);
    if (ut_pg_url() != NULL)
        failed += _cmocka_run_group_tests(group, tests, n,
                                          setup_pg ? setup_pg : ut_fx_setup_pg,
                                          ut_fx_teardown);
    else
        printf("[  SKIPPED ] %s: TERRACE_TEST_PG_URL not set\n", group);
    return failed != 0;
}

#define UT_FX_TEST(fn)                                                         \
    cmocka_unit_test_setup_teardown(fn, ut_fx_each_setup, ut_fx_each_teardown)

#endif
