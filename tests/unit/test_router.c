/*
 * test_router.c - unit tests for src/http/router.c: literal and ":param"
 * segments, the tolerated trailing slash, 405 detection through
 * path_exists, first-match-wins across and within tables, http_param(),
 * and the access log's http_log_path()/http_log_text(): signatures cut,
 * control bytes escaped.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"

static void h_a(struct http_req *r)
{
    (void)r;
}
static void h_b(struct http_req *r)
{
    (void)r;
}

static const struct route orgs[] = {
    {"GET", "/api/v2/organizations", h_a, ROUTE_AUTH},
    {"POST", "/api/v2/organizations", h_a, ROUTE_AUTH},
    {"GET", "/api/v2/organizations/new", h_a, 0}, /* literal first */
    {"GET", "/api/v2/organizations/:name", h_b, ROUTE_AUTH},
    {"PATCH", "/api/v2/organizations/:name", h_b, ROUTE_AUTH},
    {"GET", "/api/v2/organizations/:org/workspaces/:ws", h_a, 0},
    {"GET", "/api/v2/ping", h_a, 0},
    {NULL, NULL, NULL, 0},
};

static const struct route ws[] = {
    {"POST", "/api/v2/workspaces/:id/actions/lock", h_a, ROUTE_AUTH},
    {"GET", "/api/v2/workspaces/:id", h_a, ROUTE_AUTH},
    /* shadowed: the table above already matches GET .../:id */
    {"GET", "/api/v2/workspaces/:other", h_b, ROUTE_AUTH},
    /* shadowed by orgs[] in the earlier table */
    {"GET", "/api/v2/ping", h_b, 0},
    {"PUT", "/uploads/:a/:b/:c/:d/:e/:f", h_a, ROUTE_SPOOL},
    {"PUT", "/too/:a/:b/:c/:d/:e/:f/:g", h_a, 0}, /* over the limit */
    {"GET", "/", h_b, 0},
    {"GET", "/logs/:id/:expires/:sig", h_a, ROUTE_SIGNED},
    {NULL, NULL, NULL, 0},
};

static const struct route *const all[] = {orgs, ws, NULL};

struct m {
    const struct route *route;
    int n;
    const char *names[HTTP_MAX_PARAMS];
    const char *values[HTTP_MAX_PARAMS];
    bool exists;
};

static struct arena *arena;

static struct m match(const char *method, const char *path)
{
    struct m m = {0};
    m.n = -1;
    m.route =
        http_match(method, path, arena, &m.n, m.names, m.values, &m.exists);
    return m;
}

static int setup(void **state)
{
    (void)state;
    arena = arena_new();
    http_set_routes(all);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_destroy(arena);
    http_set_routes(NULL);
    return 0;
}

static void test_literal(void **state)
{
    (void)state;
    struct m m = match("GET", "/api/v2/organizations");
    assert_ptr_equal(m.route, &orgs[0]);
    assert_int_equal(m.n, 0);
    m = match("POST", "/api/v2/organizations");
    assert_ptr_equal(m.route, &orgs[1]);
    m = match("GET", "/api/v2/ping");
    assert_ptr_equal(m.route, &orgs[6]);
    m = match("GET", "/");
    assert_ptr_equal(m.route, &ws[6]);
    /* prefixes and extensions of a route do not match */
    assert_null(match("GET", "/api/v2").route);
    assert_null(match("GET", "/api/v2/pingx").route);
    assert_null(match("GET", "/api/v2/ping/x").route);
    assert_null(match("GET", "api/v2/ping").route);
    assert_null(match("GET", "").route);
    /* methods are case-sensitive, as HTTP says */
    assert_null(match("get", "/api/v2/ping").route);
}

static void test_params(void **state)
{
    (void)state;
    struct m m = match("GET", "/api/v2/organizations/acme");
    assert_ptr_equal(m.route, &orgs[3]);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.names[0], "name");
    assert_string_equal(m.values[0], "acme");
    m = match("GET", "/api/v2/organizations/acme/workspaces/prod-1");
    assert_ptr_equal(m.route, &orgs[5]);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.names[0], "org");
    assert_string_equal(m.values[0], "acme");
    assert_string_equal(m.names[1], "ws");
    assert_string_equal(m.values[1], "prod-1");
    m = match("POST", "/api/v2/workspaces/ws-123/actions/lock");
    assert_ptr_equal(m.route, &ws[0]);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.values[0], "ws-123");
    /* a parameter is one whole, non-empty segment */
    assert_ptr_not_equal(match("GET", "/api/v2/organizations/").route,
                         &orgs[3]);
    assert_null(match("GET", "/api/v2/organizations//workspaces/x").route);
    assert_null(match("POST", "/api/v2/workspaces//actions/lock").route);
    assert_null(match("GET", "/api/v2/organizations/a/b").route);
    /* the most parameters a route may have */
    m = match("PUT", "/uploads/1/2/3/4/5/6");
    assert_ptr_equal(m.route, &ws[4]);
    assert_int_equal(m.n, HTTP_MAX_PARAMS);
    assert_string_equal(m.names[5], "f");
    assert_string_equal(m.values[5], "6");
    /* one more never matches (and never writes past the arrays) */
    assert_null(match("PUT", "/too/1/2/3/4/5/6/7").route);
}

static void test_trailing_slash(void **state)
{
    (void)state;
    struct m m = match("GET", "/api/v2/ping/");
    assert_ptr_equal(m.route, &orgs[6]);
    m = match("GET", "/api/v2/organizations/acme/");
    assert_ptr_equal(m.route, &orgs[3]);
    assert_string_equal(m.values[0], "acme");
    m = match("POST", "/api/v2/workspaces/ws-1/actions/lock/");
    assert_ptr_equal(m.route, &ws[0]);
    /* one slash only */
    assert_null(match("GET", "/api/v2/ping//").route);
    /* the bare organizations path with a slash is the list, not :name */
    m = match("GET", "/api/v2/organizations/");
    assert_ptr_equal(m.route, &orgs[0]);
    assert_int_equal(m.n, 0);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    /* the path exists for other methods: 405 */
    struct m m = match("DELETE", "/api/v2/organizations");
    assert_null(m.route);
    assert_true(m.exists);
    m = match("DELETE", "/api/v2/organizations/acme");
    assert_null(m.route);
    assert_true(m.exists);
    m = match("GET", "/api/v2/workspaces/ws-1/actions/lock");
    assert_null(m.route);
    assert_true(m.exists);
    m = match("POST", "/api/v2/ping/");
    assert_null(m.route);
    assert_true(m.exists);
    /* no such path at all: 404 */
    m = match("GET", "/api/v2/nothing-here");
    assert_null(m.route);
    assert_false(m.exists);
    m = match("DELETE", "/api/v2/organizations/acme/extra/deep");
    assert_null(m.route);
    assert_false(m.exists);
    /* a match resets an earlier "exists" */
    m = match("GET", "/api/v2/ping");
    assert_non_null(m.route);
    assert_false(m.exists);
}

static void test_first_match_wins(void **state)
{
    (void)state;
    /* within a table: the literal listed before the parameter */
    struct m m = match("GET", "/api/v2/organizations/new");
    assert_ptr_equal(m.route, &orgs[2]);
    assert_int_equal(m.n, 0);
    /* within a table: the earlier of two parameter routes */
    m = match("GET", "/api/v2/workspaces/ws-9");
    assert_ptr_equal(m.route, &ws[1]);
    assert_string_equal(m.names[0], "id");
    /* across tables: the earlier table */
    m = match("GET", "/api/v2/ping");
    assert_ptr_equal(m.route->handler, h_a);
    /* method is part of the match: PATCH skips the GET routes */
    m = match("PATCH", "/api/v2/organizations/new");
    assert_ptr_equal(m.route, &orgs[4]);
    assert_string_equal(m.values[0], "new");
}

static void test_no_tables(void **state)
{
    (void)state;
    http_set_routes(NULL);
    struct m m = match("GET", "/api/v2/ping");
    assert_null(m.route);
    assert_false(m.exists);
    static const struct route empty[] = {{NULL, NULL, NULL, 0}};
    static const struct route *const none[] = {empty, NULL};
    http_set_routes(none);
    assert_null(match("GET", "/").route);
}

static void test_http_param(void **state)
{
    (void)state;
    struct http_req r;
    memset(&r, 0, sizeof(r));
    bool exists = false;
    r.route = http_match("GET", "/api/v2/organizations/acme/workspaces/prod",
                         arena, &r.nparams, r.pnames, r.pvalues, &exists);
    assert_ptr_equal(r.route, &orgs[5]);
    assert_int_equal(r.nparams, 2);
    assert_string_equal(http_param(&r, "org"), "acme");
    assert_string_equal(http_param(&r, "ws"), "prod");
    assert_null(http_param(&r, "name"));
    assert_null(http_param(&r, ""));
    r.nparams = 0;
    assert_null(http_param(&r, "org"));
}

static void test_log_path(void **state)
{
    (void)state;
    const char *sig =
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char path[256];
    snprintf(path, sizeof(path), "/logs/plan-1/1700000000/%s", sig);
    assert_string_equal(http_log_path(arena, path),
                        "/logs/plan-1/1700000000/REDACTED");
    /* whatever its shape, and with the tolerated trailing slash */
    assert_string_equal(http_log_path(arena, "/logs/a/b/short"),
                        "/logs/a/b/REDACTED");
    assert_string_equal(http_log_path(arena, "/logs/a/b/c/"),
                        "/logs/a/b/REDACTED/");
    /* no route: segments shaped like a signature go */
    snprintf(path, sizeof(path), "/logs/a/%s/extra/more", sig);
    assert_string_equal(http_log_path(arena, path),
                        "/logs/a/REDACTED/extra/more");
    snprintf(path, sizeof(path), "/x/%.63s", sig); /* 63 digits stay */
    assert_string_equal(http_log_path(arena, path), path);
    /* other params and literals stay as they were */
    assert_string_equal(http_log_path(arena, "/api/v2/organizations/acme"),
                        "/api/v2/organizations/acme");
    assert_string_equal(http_log_path(arena, "/"), "/");
    assert_string_equal(http_log_path(arena, ""), "");
    /* bytes that could forge a log line are escaped, and so is '%' */
    assert_string_equal(http_log_path(arena, "/a\nb\x1b[31m c%0A\x80"),
                        "/a%0Ab%1B[31m%20c%250A%80");
    assert_string_equal(http_log_text(arena, "GET\r\n"), "GET%0D%0A");
    /* with no route tables at all, only the shape rule applies */
    http_set_routes(NULL);
    assert_string_equal(http_log_path(arena, "/logs/a/b/c"), "/logs/a/b/c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_first_match_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_param, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
