/*
 * test_ip_ranges.c - unit tests for src/core/ip_ranges.c: the four lists
 * from a setting (blanks, empty kinds, IPv4 and IPv6, prefix bounds) and
 * what is refused (no prefix, unknown or repeated kind, bad addresses),
 * with the output left alone on a refusal; and cfg_load() refusing a bad
 * setting at start.
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

#include "core/config.h"
#include "core/ip_ranges.h"

/* The lists of spec as compact JSON (caller frees), or NULL. */
static char *parsed(const char *spec)
{
    json_t *j = NULL;
    struct tr_errbuf eb = {{0}};
    if (ip_ranges_parse(spec, &j, &eb) != TR_OK)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static void expect(const char *spec, const char *want)
{
    char *got = parsed(spec);
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", spec ? spec : "(null)",
                 got ? got : "(refused)", want);
    free(got);
}

static void test_empty(void **state)
{
    (void)state;
    const char *none =
        "{\"api\":[],\"notifications\":[],\"sentinel\":[],\"vcs\":[]}";
    expect("", none);
    expect(NULL, none);
    expect("  ;  ; ", none);
    expect("vcs=", none);
    assert_int_equal(ip_ranges_parse("", NULL, NULL), TR_OK);
}

static void test_lists(void **state)
{
    (void)state;
    expect("api=192.0.2.0/24, 2001:db8::/32 ; notifications = 198.51.100.7/32"
           ";sentinel=0.0.0.0/0;vcs=::/0,::1/128",
           "{\"api\":[\"192.0.2.0/24\",\"2001:db8::/32\"],"
           "\"notifications\":[\"198.51.100.7/32\"],"
           "\"sentinel\":[\"0.0.0.0/0\"],\"vcs\":[\"::/0\",\"::1/128\"]}");
    expect("vcs=10.0.0.0/8", "{\"api\":[],\"notifications\":[],\"sentinel\":[],"
                             "\"vcs\":[\"10.0.0.0/8\"]}");
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "api=192.0.2.0",
        "api=192.0.2.0/",
        "api=192.0.2.0/33",
        "api=2001:db8::/129",
        "api=192.0.2.0/-1",
        "api=192.0.2.0/1000",
        "api=192.0.2.0/24,",
        "api=,192.0.2.0/24",
        "api=300.0.2.0/24",
        "api=example.com/24",
        "api",
        "web=192.0.2.0/24",
        "API=192.0.2.0/24",
        "api=192.0.2.0/24;api=192.0.2.0/25",
        "api=192.0.2.0/24 10.0.0.0/8",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = (json_t *)&j; /* must stay untouched */
        json_t *before = j;
        struct tr_errbuf eb = {{0}};
        tr_err e = ip_ranges_parse(bad[i], &j, &eb);
        if (e != TR_ERR_CONFIG)
            fail_msg("%s: accepted", bad[i]);
        assert_ptr_equal(j, before);
        assert_non_null(strstr(tr_errbuf_msg(&eb, e), "ip-ranges"));
    }
}

static void test_config(void **state)
{
    (void)state;
    struct cfg c;
    struct tr_errbuf eb = {{0}};
    char *good[] = {"terraced", "--ip-ranges", "api=192.0.2.0/24"};
    assert_int_equal(cfg_load(&c, 3, good, &eb), TR_OK);
    assert_string_equal(c.ip_ranges, "api=192.0.2.0/24");
    char *bad[] = {"terraced", "--ip-ranges", "api=192.0.2.0"};
    tr_err e = cfg_load(&c, 3, bad, &eb);
    assert_int_equal(e, TR_ERR_CONFIG);
    assert_non_null(strstr(tr_errbuf_msg(&eb, e), "CIDR"));
    char *dflt[] = {"terraced"};
    assert_int_equal(cfg_load(&c, 1, dflt, &eb), TR_OK);
    assert_string_equal(c.ip_ranges, "");
}

int main(void)
{
    unsetenv("TERRACE_IP_RANGES");
    unsetenv("TERRACE_CONFIG");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
