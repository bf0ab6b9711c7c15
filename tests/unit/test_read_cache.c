/*
 * test_read_cache.c - unit tests for src/store/read_cache.c: two
 * "primaries" (two pools on one PostgreSQL database, each with its own
 * read cache) look a token and a workspace up while the other one, or a
 * plain SQL connection, changes what those lookups return; every lookup
 * must see every change committed before it started.  PostgreSQL only
 * (TERRACE_TEST_PG_URL; the demo's SQLite has no read cache).
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

#include "core/fault.h"
#include "core/util.h"
#include "store/read_cache.h"
#include "store/store.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct db *db1, *db2; /* db1 = st.db */
    struct read_cache *rc1, *rc2;
    struct arena *a;
    char *secret;
    const char *ws_id, *user_id;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    *state = f;
    int rc = ut_store_open(&f->st, DB_PG, 4, "test_read_cache");
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    struct tr_errbuf eb = {{0}};
    f->db1 = f->st.db;
    if (db_open(DB_PG, f->st.target, 4, &f->db2, &eb) != TR_OK)
        return -1;
    f->rc1 = read_cache_new(f->db1);
    f->rc2 = read_cache_new(f->db2);
    db_set_read_cache(f->db1, f->rc1);
    db_set_read_cache(f->db2, f->rc2);
    f->a = arena_new();
    struct st_user u;
    struct st_workspace in = {.org = "o", .name = "w"}, ws;
    if (store_org_create(f->db1, f->a, "o", "o@x", NULL, NULL, NULL, &eb) !=
            TR_OK ||
        store_user_create(f->db1, f->a, "alice", "a@x", false, &u, &eb) !=
            TR_OK ||
        store_token_create(f->db1, f->a, "user", u.id, "t", u.id, NULL, NULL,
                           &f->secret, &eb) != TR_OK ||
        store_ws_create(f->db1, f->a, &in, &ws, &eb) != TR_OK) {
        fprintf(stderr, "setup: %s\n", eb.msg);
        return -1;
    }
    f->ws_id = ws.id;
    f->user_id = u.id;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fault_reset();
    if (f->db2 != NULL)
        db_close(f->db2);
    int rc = ut_store_close(&f->st);
    read_cache_free(f->rc1);
    read_cache_free(f->rc2);
    arena_destroy(f->a);
    free(f);
    return rc;
}

/* Runs one statement on db outside any transaction. */
static void sql(struct db *db, struct arena *a, const char *text)
{
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(db);
    tr_err e = db_query(c, a, text, 0, NULL, NULL, NULL, &eb);
    db_release(c);
    if (e != TR_OK)
        fail_msg("%s: %s", text, eb.msg);
}

/* The token and workspace as db's lookup sees them. */
static struct st_workspace look(struct fx *f, struct db *db,
                                struct st_token *tok)
{
    struct st_token t;
    struct st_workspace ws;
    bool found = false;
    assert_int_equal(store_token_lookup_ws(db, f->a, f->secret, f->ws_id,
                                           tok != NULL ? tok : &t, &ws, &found,
                                           NULL),
                     TR_OK);
    assert_true(found);
    return ws;
}

static struct read_cache_stats stats(struct read_cache *rc)
{
    struct read_cache_stats s;
    read_cache_stats(rc, &s);
    return s;
}

static void test_second_lookup_is_a_hit(void **state)
{
    struct fx *f = *state;
    look(f, f->db1, NULL);
    struct read_cache_stats before = stats(f->rc1);
    struct st_token tok;
    struct st_workspace ws = look(f, f->db1, &tok);
    struct read_cache_stats after = stats(f->rc1);
    assert_int_equal(after.hits - before.hits, 2); /* token and workspace */
    assert_int_equal(after.misses, before.misses);
    assert_int_equal(after.polls - before.polls, 1);
    assert_string_equal(ws.id, f->ws_id);
    assert_string_equal(ws.name, "w");
    assert_string_equal(tok.user_name, "alice");
}

/* Each change, committed through the other pool, is seen by the next
 * lookup on db1, which had the old value cached. */
static void test_changes_through_the_other_primary(void **state)
{
    struct fx *f = *state;
    struct arena *a = f->a;
    look(f, f->db1, NULL); /* cached */
    sql(f->db2, a,
        arena_printf(a,
                     "UPDATE workspaces SET description = 'd1'"
                     " WHERE id = '%s'",
                     f->ws_id));
    assert_string_equal(look(f, f->db1, NULL).description, "d1");
    assert_string_equal(look(f, f->db1, NULL).description, "d1");

    sql(f->db2, a,
        "INSERT INTO tags (id, org, name, created_at)"
        " VALUES ('tag-1', 'o', 'blue', '2026-01-01T00:00:00Z')");
    sql(f->db2, a,
        arena_printf(a,
                     "INSERT INTO workspace_tags (workspace_id, tag_id)"
                     " VALUES ('%s', 'tag-1')",
                     f->ws_id));
    struct st_workspace ws = look(f, f->db1, NULL);
    assert_int_equal(ws.ntags, 1);
    assert_string_equal(ws.tag_names[0], "blue");
    /* a tag's name is every workspace's: "w*" */
    sql(f->db2, a, "UPDATE tags SET name = 'green' WHERE id = 'tag-1'");
    ws = look(f, f->db1, NULL);
    assert_int_equal(ws.ntags, 1);
    assert_string_equal(ws.tag_names[0], "green");

    sql(f->db2, a,
        arena_printf(a,
                     "INSERT INTO variables (id, workspace_id, key, category,"
                     " version_id, created_at) VALUES ('var-1', '%s', 'k',"
                     " 'terraform', 'v1', '2026-01-01T00:00:00Z')",
                     f->ws_id));
    ws = look(f, f->db1, NULL);
    assert_int_equal(ws.nvars, 1);
    assert_string_equal(ws.var_ids[0], "var-1");
    sql(f->db2, a, "DELETE FROM variables WHERE id = 'var-1'");
    assert_int_equal(look(f, f->db1, NULL).nvars, 0);

    /* the owner's flags come with the token: "t*" */
    struct st_token tok;
    look(f, f->db1, &tok);
    assert_false(tok.user_admin);
    sql(f->db2, a,
        arena_printf(a, "UPDATE users SET is_admin = 1 WHERE id = '%s'",
                     f->user_id));
    look(f, f->db1, &tok);
    assert_true(tok.user_admin);
    sql(f->db2, a,
        arena_printf(a, "UPDATE users SET is_admin = 0 WHERE id = '%s'",
                     f->user_id));
    look(f, f->db1, &tok);
    assert_false(tok.user_admin);
}

/* The lock through the store, on the other pool. */
static void test_lock_through_the_store(void **state)
{
    struct fx *f = *state;
    assert_false(look(f, f->db1, NULL).locked);
    assert_int_equal(store_ws_lock(f->db2, f->a, f->ws_id, "user", f->user_id,
                                   "r", NULL, NULL),
                     TR_OK);
    struct st_workspace ws = look(f, f->db1, NULL);
    assert_true(ws.locked);
    assert_string_equal(ws.lock_holder, f->user_id);
    assert_int_equal(
        store_ws_unlock(f->db2, f->a, f->ws_id, "user", f->user_id, NULL, NULL),
        TR_OK);
    assert_false(look(f, f->db1, NULL).locked);
}

/* Within one request (read_cache_scope()), the second lookup waits for
 * no poll: the first one's began after the request arrived.  A request
 * that arrives after that poll began polls again, and sees a change
 * committed before it arrived. */
static void test_request_scope(void **state)
{
    struct fx *f = *state;
    look(f, f->db1, NULL);
    read_cache_scope(util_mono_us());
    struct read_cache_stats before = stats(f->rc1);
    look(f, f->db1, NULL);
    look(f, f->db1, NULL);
    assert_int_equal(stats(f->rc1).polls - before.polls, 1);
    read_cache_scope(0);

    sql(f->db2, f->a,
        arena_printf(f->a,
                     "UPDATE workspaces SET description = 'next'"
                     " WHERE id = '%s'",
                     f->ws_id));
    read_cache_scope(util_mono_us());
    before = stats(f->rc1);
    assert_string_equal(look(f, f->db1, NULL).description, "next");
    assert_int_equal(stats(f->rc1).polls - before.polls, 1);
    read_cache_scope(0);

    /* outside a request every fence polls */
    before = stats(f->rc1);
    look(f, f->db1, NULL);
    look(f, f->db1, NULL);
    assert_int_equal(stats(f->rc1).polls - before.polls, 2);
}

/* A page of workspaces takes them from the cache, fills it with the ones
 * it lacks, and shows a change committed through the other pool. */
static void test_list_from_cache(void **state)
{
    struct fx *f = *state;
    struct arena *a = f->a;
    struct st_workspace in = {.org = "o", .name = "w2"}, w2, *ws = NULL;
    assert_int_equal(store_ws_create(f->db1, a, &in, &w2, NULL), TR_OK);
    look(f, f->db1, NULL); /* "w" is cached, "w2" is not */
    struct st_ws_filter filt = {.org = "o"};
    int n = 0;
    int64_t total = 0;
    struct read_cache_stats before = stats(f->rc1);
    assert_int_equal(
        store_ws_list(f->db1, a, &filt, 0, 100, &ws, &n, &total, NULL), TR_OK);
    struct read_cache_stats after = stats(f->rc1);
    assert_int_equal(n, 2);
    assert_int_equal(total, 2);
    assert_string_equal(ws[0].id, f->ws_id);
    assert_string_equal(ws[1].id, w2.id);
    assert_string_equal(ws[1].name, "w2");
    assert_int_equal(after.hits - before.hits, 1);
    assert_int_equal(after.misses - before.misses, 1);
    /* both cached now */
    assert_int_equal(
        store_ws_list(f->db1, a, &filt, 0, 100, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(stats(f->rc1).hits - after.hits, 2);

    sql(f->db2, a,
        arena_printf(a,
                     "UPDATE workspaces SET description = 'listed'"
                     " WHERE id = '%s'",
                     w2.id));
    assert_int_equal(
        store_ws_list(f->db1, a, &filt, 0, 100, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ws[1].description, "listed");
    /* past the end: no rows, the count still */
    assert_int_equal(
        store_ws_list(f->db1, a, &filt, 5, 100, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(total, 2);
    /* the page's order and bounds are the database's */
    assert_int_equal(
        store_ws_list(f->db1, a, &filt, 1, 1, &ws, &n, &total, NULL), TR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(total, 2);
    assert_string_equal(ws[0].id, w2.id);
}

/* A transaction that was open (its xid below later snapshots' xmin)
 * while db1 polled and filled its cache is still seen once it commits. */
static void test_change_committed_after_polls(void **state)
{
    struct fx *f = *state;
    struct arena *a = f->a;
    struct tr_errbuf eb = {{0}};
    struct db_conn *c = db_acquire(f->db2);
    assert_int_equal(db_begin(c, &eb), TR_OK);
    assert_int_equal(db_query(c, a,
                              arena_printf(a,
                                           "UPDATE workspaces SET"
                                           " description = 'late'"
                                           " WHERE id = '%s'",
                                           f->ws_id),
                              0, NULL, NULL, NULL, &eb),
                     TR_OK);
    /* a younger transaction ends meanwhile: snapshots' xmax passes the
     * open one's xid, their xmin stays below it */
    sql(f->db2, a, "UPDATE tags SET name = name");
    for (int i = 0; i < 3; i++) /* polls while it is open; cached */
        assert_string_not_equal(look(f, f->db1, NULL).description, "late");
    assert_int_equal(db_commit(c, &eb), TR_OK);
    db_release(c);
    assert_string_equal(look(f, f->db1, NULL).description, "late");
    /* applied once: the next lookups are hits again */
    look(f, f->db1, NULL);
    struct read_cache_stats before = stats(f->rc1);
    look(f, f->db1, NULL);
    assert_int_equal(stats(f->rc1).hits - before.hits, 2);
}

static void test_token_deleted_elsewhere(void **state)
{
    struct fx *f = *state;
    struct st_user u;
    struct st_token t, got;
    char *secret = NULL;
    assert_int_equal(
        store_user_create(f->db1, f->a, "bob", "b@x", false, &u, NULL), TR_OK);
    assert_int_equal(store_token_create(f->db1, f->a, "user", u.id, "t", u.id,
                                        NULL, &t, &secret, NULL),
                     TR_OK);
    for (int i = 0; i < 2; i++) /* cached */
        assert_int_equal(store_token_lookup(f->db1, f->a, secret, &got, NULL),
                         TR_OK);
    assert_int_equal(store_token_delete(f->db2, f->a, t.id, NULL), TR_OK);
    assert_int_equal(store_token_lookup(f->db1, f->a, secret, &got, NULL),
                     TR_ERR_NOT_FOUND);
    /* an expiry set elsewhere counts at once too */
    assert_int_equal(store_token_create(f->db1, f->a, "user", u.id, "t", u.id,
                                        NULL, &t, &secret, NULL),
                     TR_OK);
    assert_int_equal(store_token_lookup(f->db1, f->a, secret, &got, NULL),
                     TR_OK);
    sql(f->db2, f->a,
        arena_printf(f->a,
                     "UPDATE tokens SET expired_at = '2001-01-01T00:00:00Z'"
                     " WHERE id = '%s'",
                     t.id));
    assert_int_equal(store_token_lookup(f->db1, f->a, secret, &got, NULL),
                     TR_ERR_NOT_FOUND);
}

/* A failed poll: the lookup reads the database (and caches nothing);
 * the change made meanwhile is seen by the polls after it. */
static void test_failed_poll(void **state)
{
    struct fx *f = *state;
    look(f, f->db1, NULL);
    fault_arm("read_cache.poll", 1);
    sql(f->db2, f->a,
        arena_printf(f->a,
                     "UPDATE workspaces SET description = 'during'"
                     " WHERE id = '%s'",
                     f->ws_id));
    struct read_cache_stats before = stats(f->rc1);
    assert_string_equal(look(f, f->db1, NULL).description, "during");
    assert_true(fault_fired());
    struct read_cache_stats after = stats(f->rc1);
    assert_int_equal(after.poll_failures - before.poll_failures, 1);
    assert_int_equal(after.hits, before.hits);
    fault_reset();
    sql(f->db2, f->a,
        arena_printf(f->a,
                     "UPDATE workspaces SET description = 'after'"
                     " WHERE id = '%s'",
                     f->ws_id));
    assert_string_equal(look(f, f->db1, NULL).description, "after");
}

static int64_t count(struct db *db, struct arena *a, const char *q)
{
    struct db_rows *r = NULL;
    struct db_conn *c = db_acquire(db);
    tr_err e = db_q(c, a, &r, NULL, q, );
    db_release(c);
    assert_int_equal(e, TR_OK);
    return db_get_i64(r, 0, "n");
}

/* Pruning keeps what the slowest live reader has not read; a reader whose
 * record was pruned empties its cache before using it again. */
static void test_prune_and_forgotten_reader(void **state)
{
    struct fx *f = *state;
    struct arena *a = f->a;
    look(f, f->db1, NULL);
    look(f, f->db2, NULL); /* both registered */
    read_cache_tune(f->rc1, 0, 0);
    sql(f->db1, a,
        arena_printf(a,
                     "UPDATE workspaces SET description = 'p1'"
                     " WHERE id = '%s'",
                     f->ws_id));
    /* db1 reads and prunes; db2's record still holds the change back */
    look(f, f->db1, NULL);
    look(f, f->db1, NULL);
    assert_true(
        count(f->db1, a, "SELECT count(*) AS n FROM read_cache_changes") > 0);
    assert_string_equal(look(f, f->db2, NULL).description, "p1");
    /* db2 forgotten (as after ten silent minutes), the rows pruned */
    sql(f->db1, a, "DELETE FROM read_cache_readers");
    sql(f->db1, a,
        arena_printf(a,
                     "UPDATE workspaces SET description = 'p2'"
                     " WHERE id = '%s'",
                     f->ws_id));
    look(f, f->db1, NULL); /* registers again and prunes */
    look(f, f->db1, NULL);
    assert_int_equal(
        count(f->db1, a, "SELECT count(*) AS n FROM read_cache_readers"), 1);
    sql(f->db1, a, "DELETE FROM read_cache_changes");
    /* db2 never saw "p2"'s record; it finds its own record gone and
     * empties its cache instead of answering "p1" */
    read_cache_tune(f->rc2, 0, 60000);
    struct read_cache_stats before = stats(f->rc2);
    assert_string_equal(look(f, f->db2, NULL).description, "p2");
    assert_int_equal(stats(f->rc2).flushes - before.flushes, 1);
    read_cache_tune(f->rc1, 10000, 60000);
    read_cache_tune(f->rc2, 10000, 60000);
}

int main(void)
{
    if (ut_pg_url() == NULL) {
        printf("[  SKIPPED ] read_cache: TERRACE_TEST_PG_URL not set\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_lookup_is_a_hit),
        cmocka_unit_test(test_changes_through_the_other_primary),
        cmocka_unit_test(test_lock_through_the_store),
        cmocka_unit_test(test_request_scope),
        cmocka_unit_test(test_list_from_cache),
        cmocka_unit_test(test_change_committed_after_polls),
        cmocka_unit_test(test_token_deleted_elsewhere),
        cmocka_unit_test(test_failed_poll),
        cmocka_unit_test(test_prune_and_forgotten_reader),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
