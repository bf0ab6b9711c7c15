/*
 * test_store_tools.c - unit tests for src/store/store_tools.c: semantic
 * version checks and ordering, create/read/list/update/delete, usage
 * counts, and store_tool_resolve() ("latest" is the highest enabled,
 * non-beta version by semantic-version precedence), on SQLite and, when
 * TERRACE_TEST_PG_URL is set, on a throwaway PostgreSQL database (tool
 * versions are site-wide, so a shared database would not do).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct db *db; /* st.db */
    struct arena *a;
};

static int setup(void **state, enum db_kind kind)
{
    struct fx *f = calloc(1, sizeof(*f));
    *state = f;
    if (f == NULL || ut_store_open(&f->st, kind, 2, "test_store_tools") != 0)
        return -1;
    f->db = f->st.db;
    f->a = arena_new();
    return 0;
}

static int setup_sqlite(void **state)
{
    return setup(state, DB_SQLITE);
}

static int setup_pg(void **state)
{
    return setup(state, DB_PG);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        return 0;
    arena_destroy(f->a);
    int rc = ut_store_close(&f->st);
    free(f);
    return rc;
}

static void test_versions(void **state)
{
    (void)state;
    const char *good[] = {"0.0.0", "1.10.10", "1.11.0-beta1",
                          "1.2.3-rc.1+build.5", "10.20.30+meta"};
    const char *bad[] = {
        "",       "1",       "1.2",        "1.2.3.4",       "01.2.3",
        "1.2.3-", "1.2.3+",  "1.2.3-a..b", "v1.2.3",        "1.2.3 ",
        "latest", "1.2.3-ü", "1.2.x",      "1234567890.0.0"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(store_tool_valid_version(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (store_tool_valid_version(bad[i]))
            fail_msg("%s accepted", bad[i]);
    /* semver.org's precedence example, in order */
    const char *order[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                           "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                           "1.0.0-rc.1",  "1.0.0",         "1.2.0",
                           "1.10.0",      "2.0.0"};
    size_t n = sizeof(order) / sizeof(order[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < n; k++) {
            int c = store_tool_vercmp(order[i], order[k]);
            int want = i < k ? -1 : i > k ? 1 : 0;
            if ((c > 0) - (c < 0) != want)
                fail_msg("%s vs %s: %d", order[i], order[k], c);
        }
    assert_int_equal(store_tool_vercmp("1.0.0+a", "1.0.0+b"), 0);
}

static struct st_tool add(struct fx *f, const char *version, bool enabled,
                          bool beta)
{
    struct st_tool in = {.version = version,
                         .path = "/usr/bin/tofu",
                         .sha256 = "ab",
                         .enabled = enabled,
                         .beta = beta};
    struct st_tool out;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(store_tool_create(f->db, f->a, &in, &out, &eb), TR_OK);
    return out;
}

static void test_crud_and_resolve(void **state)
{
    struct fx *f = *state;
    const char *path = NULL, *sha = NULL, *ver = NULL;
    struct tr_errbuf eb = {{0}};
    assert_int_equal(
        store_tool_resolve(f->db, f->a, "latest", &path, &sha, &ver, &eb),
        TR_ERR_NOT_FOUND);

    struct st_tool t9 = add(f, "1.9.0", true, false);
    assert_true(strncmp(t9.id, "tool-", 5) == 0);
    assert_true(t9.enabled);
    assert_int_equal(t9.usage, 0);
    assert_null(t9.deprecated_reason);
    add(f, "1.10.1", true, false);
    add(f, "1.11.0-rc1", true, false); /* pre-release: below 1.11.0 */
    add(f, "1.12.0", false, false);    /* disabled */
    add(f, "1.13.0", true, true);      /* beta: not "latest" */
    struct st_tool dup = {.version = "1.9.0", .path = "/x", .sha256 = "c"};
    assert_int_equal(store_tool_create(f->db, f->a, &dup, NULL, &eb),
                     TR_ERR_CONFLICT);

    assert_int_equal(
        store_tool_resolve(f->db, f->a, "latest", &path, &sha, &ver, &eb),
        TR_OK);
    assert_string_equal(ver, "1.11.0-rc1");
    assert_string_equal(path, "/usr/bin/tofu");
    assert_string_equal(sha, "ab");
    add(f, "1.11.0", true, false);
    assert_int_equal(
        store_tool_resolve(f->db, f->a, NULL, &path, &sha, &ver, &eb), TR_OK);
    assert_string_equal(ver, "1.11.0");
    /* exact versions: enabled ones, beta included; disabled never */
    assert_int_equal(
        store_tool_resolve(f->db, f->a, "1.13.0", &path, &sha, &ver, &eb),
        TR_OK);
    assert_int_equal(
        store_tool_resolve(f->db, f->a, "1.12.0", &path, &sha, &ver, &eb),
        TR_ERR_NOT_FOUND);
    assert_int_equal(
        store_tool_resolve(f->db, f->a, "9.9.9", &path, &sha, &ver, &eb),
        TR_ERR_NOT_FOUND);

    /* list: newest first, filter and search */
    struct st_tool *items = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(store_tool_list(f->db, f->a, NULL, NULL, 0, 100, &items,
                                     &n, &total, &eb),
                     TR_OK);
    assert_int_equal(n, 6);
    assert_int_equal(total, 6);
    const char *want[] = {"1.13.0",     "1.12.0", "1.11.0",
                          "1.11.0-rc1", "1.10.1", "1.9.0"};
    for (int i = 0; i < 6; i++)
        assert_string_equal(items[i].version, want[i]);
    assert_int_equal(store_tool_list(f->db, f->a, NULL, NULL, 4, 100, &items,
                                     &n, &total, &eb),
                     TR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(total, 6);
    assert_int_equal(store_tool_list(f->db, f->a, NULL, NULL, 10, 100, &items,
                                     &n, &total, &eb),
                     TR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_tool_list(f->db, f->a, "1.10.1", NULL, 0, 100,
                                     &items, &n, &total, &eb),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_tool_list(f->db, f->a, NULL, "1.1", 0, 100, &items,
                                     &n, &total, &eb),
                     TR_OK);
    assert_int_equal(n, 5);
    assert_int_equal(store_tool_list(f->db, f->a, NULL, "%", 0, 100, &items, &n,
                                     &total, &eb),
                     TR_OK);
    assert_int_equal(n, 0);

    /* update, including a rename onto a taken version */
    struct st_tool u = t9;
    u.version = "1.9.1";
    u.deprecated = true;
    u.deprecated_reason = "old";
    u.enabled = false;
    assert_int_equal(store_tool_update(f->db, f->a, t9.id, &u, &eb), TR_OK);
    struct st_tool got;
    assert_int_equal(store_tool_get(f->db, f->a, t9.id, &got, &eb), TR_OK);
    assert_string_equal(got.version, "1.9.1");
    assert_true(got.deprecated);
    assert_string_equal(got.deprecated_reason, "old");
    assert_false(got.enabled);
    u.version = "1.10.1";
    assert_int_equal(store_tool_update(f->db, f->a, t9.id, &u, &eb),
                     TR_ERR_CONFLICT);
    assert_int_equal(store_tool_update(f->db, f->a, "tool-none", &u, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_tool_by_version(f->db, f->a, "1.9.1", &got, &eb),
                     TR_OK);
    assert_string_equal(got.id, t9.id);

    /* delete */
    assert_int_equal(store_tool_delete(f->db, f->a, t9.id, &eb), TR_OK);
    assert_int_equal(store_tool_delete(f->db, f->a, t9.id, &eb),
                     TR_ERR_NOT_FOUND);
    assert_int_equal(store_tool_get(f->db, f->a, t9.id, &got, &eb),
                     TR_ERR_NOT_FOUND);
}

static void test_usage(void **state)
{
    struct fx *f = *state;
    struct tr_errbuf eb = {{0}};
    struct st_tool t = add(f, "2.0.0", true, false);
    const char *org = util_new_id(f->a, "org");
    assert_int_equal(store_org_create(f->db, f->a, org, "o@example.com", NULL,
                                      NULL, NULL, &eb),
                     TR_OK);
    for (int i = 0; i < 2; i++) {
        struct st_workspace w = {
            .org = org,
            .name = i == 0 ? "pinned" : "floating",
            .execution_mode = "remote",
            .terraform_version = i == 0 ? "2.0.0" : "latest",
            .working_directory = "",
            .description = "",
        };
        assert_int_equal(store_ws_create(f->db, f->a, &w, NULL, &eb), TR_OK);
    }
    struct st_tool got;
    assert_int_equal(store_tool_get(f->db, f->a, t.id, &got, &eb), TR_OK);
    assert_int_equal(got.usage, 1);
    struct st_tool *items = NULL;
    int n = 0;
    int64_t total = 0;
    assert_int_equal(store_tool_list(f->db, f->a, "2.0.0", NULL, 0, 10, &items,
                                     &n, &total, &eb),
                     TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].usage, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_crud_and_resolve),
        cmocka_unit_test(test_usage),
    };
    int failed = cmocka_run_group_tests_name("store_tools_sqlite", tests,
                                             setup_sqlite, teardown);
    if (ut_pg_url() != NULL)
        failed += cmocka_run_group_tests_name("store_tools_pg", tests, setup_pg,
                                              teardown);
    else
        printf("[  SKIPPED ] store_tools_pg: TERRACE_TEST_PG_URL not set\n");
    return failed != 0;
}
