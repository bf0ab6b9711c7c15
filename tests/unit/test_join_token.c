/*
 * test_join_token.c - unit tests for src/domain/join_token.c: the first
 * get makes the token and later gets (and a second node with the same
 * KEK) see the same one; what the database holds is sealed and never the
 * token; check accepts only the current token (not a prefix, an
 * extension or NULL); rotating replaces it and the old one stops
 * passing; a node with another KEK cannot read it.
 *
 * Runs on SQLite and, when TERRACE_TEST_PG_URL is set, on PostgreSQL.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "crypto/keys.h"
#include "domain/join_token.h"
#include "unit_util.h"

struct fx {
    struct ut_store st;
    struct arena *a;
};

static const enum db_kind k_sqlite = DB_SQLITE;
static const enum db_kind k_pg = DB_PG;

static int setup(void **state)
{
    const enum db_kind *kind = *state;
    struct fx *fx = calloc(1, sizeof(*fx));
    fx->a = arena_new();
    *state = fx;
    return ut_store_open(&fx->st, *kind, 2, "test_join_token") < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    int rc = ut_store_close(&fx->st);
    arena_destroy(fx->a);
    free(fx);
    return rc;
}

static struct fx *fixture(void **state)
{
    struct fx *fx = *state;
    if (fx->st.db == NULL)
        skip(); /* PostgreSQL without a server */
    return fx;
}

/* A node on db whose KEK is 32 bytes of seed. */
static void node(struct terrace_server *srv, struct db *db, unsigned char seed)
{
    unsigned char kek[KEYS_KEK_LEN];
    memset(kek, seed, sizeof(kek));
    memset(srv, 0, sizeof(*srv));
    srv->db = db;
    assert_int_equal(keys_open_bytes(kek, NULL, &srv->keys, NULL), TR_OK);
}

static bool passes(struct terrace_server *srv, struct arena *a,
                   const char *given)
{
    bool ok = true;
    assert_int_equal(join_token_check(srv, a, given, &ok, NULL), TR_OK);
    return ok;
}

static void test_made_once_and_sealed(void **state)
{
    struct fx *fx = fixture(state);
    struct terrace_server one, two;
    node(&one, fx->st.db, 7);
    node(&two, fx->st.db, 7);
    char *t1 = NULL, *t2 = NULL, *t3 = NULL;
    assert_int_equal(join_token_get(&one, fx->a, &t1, NULL), TR_OK);
    assert_int_equal(strlen(t1), 70);
    assert_memory_equal(t1, "trjoin", 6);
    assert_int_equal(join_token_get(&one, fx->a, &t2, NULL), TR_OK);
    assert_int_equal(join_token_get(&two, fx->a, &t3, NULL), TR_OK);
    assert_string_equal(t1, t2);
    assert_string_equal(t1, t3);
    char *stored = NULL;
    assert_int_equal(
        store_site_get(fx->st.db, fx->a, "join-token", &stored, NULL), TR_OK);
    assert_null(strstr(stored, t1));
    assert_null(strstr(stored, t1 + 6));
    /* another KEK cannot open it */
    struct terrace_server other;
    node(&other, fx->st.db, 9);
    char *t4 = NULL;
    assert_int_equal(join_token_get(&other, fx->a, &t4, NULL), TR_ERR_CRYPTO);
    keys_close(one.keys);
    keys_close(two.keys);
    keys_close(other.keys);
}

static void test_check_and_rotate(void **state)
{
    struct fx *fx = fixture(state);
    struct terrace_server srv;
    node(&srv, fx->st.db, 3);
    char *t = NULL;
    assert_int_equal(join_token_get(&srv, fx->a, &t, NULL), TR_OK);
    assert_true(passes(&srv, fx->a, t));
    assert_false(passes(&srv, fx->a, NULL));
    assert_false(passes(&srv, fx->a, ""));
    assert_false(passes(&srv, fx->a, arena_strndup(fx->a, t, 69)));
    assert_false(passes(&srv, fx->a, arena_printf(fx->a, "%sx", t)));
    char *fresh = NULL;
    assert_int_equal(join_token_rotate(&srv, fx->a, &fresh, NULL), TR_OK);
    assert_string_not_equal(fresh, t);
    assert_false(passes(&srv, fx->a, t));
    assert_true(passes(&srv, fx->a, fresh));
    char *now = NULL;
    assert_int_equal(join_token_get(&srv, fx->a, &now, NULL), TR_OK);
    assert_string_equal(now, fresh);
    keys_close(srv.keys);
}

#define BOTH(f)                                                                \
    {"sqlite/" #f, f, setup, teardown, (void *)&k_sqlite},                     \
    {                                                                          \
        "pg/" #f, f, setup, teardown, (void *)&k_pg                            \
    }

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        BOTH(test_made_once_and_sealed),
        BOTH(test_check_and_rotate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
