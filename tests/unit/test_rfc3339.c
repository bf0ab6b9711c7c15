/*
 * test_rfc3339.c - unit tests for src/core/rfc3339.c: the calendar (leap
 * years, month lengths, years 0000 and 9999), fractions, offsets, leap
 * seconds, and what is refused (missing parts, trailing text, signs and
 * extra digits in the year, a space for 'T'), then a round trip against
 * glibc's gmtime_r over the whole 0000-9999 range.
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
#include <time.h>

#include "core/rfc3339.h"

struct good {
    const char *s;
    int64_t secs;
    int32_t nsec;
};

static void check_good(const struct good *g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t secs = 12345;
        int32_t nsec = 12345;
        tr_err e = rfc3339_parse(g[i].s, &secs, &nsec);
        if (e != TR_OK || secs != g[i].secs || nsec != g[i].nsec)
            fail_msg("%s: got %d, %lld, %ld; want %lld, %ld", g[i].s, e,
                     (long long)secs, (long)nsec, (long long)g[i].secs,
                     (long)g[i].nsec);
        /* either output is optional */
        assert_int_equal(rfc3339_parse(g[i].s, &secs, NULL), TR_OK);
        assert_int_equal(rfc3339_parse(g[i].s, NULL, NULL), TR_OK);
    }
}

static void check_bad(const char *const *bad, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t secs = 12345;
        int32_t nsec = 12345;
        tr_err e = rfc3339_parse(bad[i], &secs, &nsec);
        if (e != TR_ERR_INVALID)
            fail_msg("%s: accepted as %lld", bad[i] ? bad[i] : "(null)",
                     (long long)secs);
        assert_int_equal(rfc3339_parse(bad[i], NULL, NULL), TR_ERR_INVALID);
        /* outputs untouched */
        assert_int_equal(secs, 12345);
        assert_int_equal(nsec, 12345);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_calendar(void **state)
{
    (void)state;
    static const struct good good[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"1969-12-31T23:59:59Z", -1, 0},
        {"2024-05-01T12:00:00Z", 1714564800, 0},
        {"2024-02-29T00:00:00Z", 1709164800, 0}, /* leap year */
        {"2000-02-29T12:00:00Z", 951825600, 0},  /* divisible by 400 */
        {"1904-02-29T00:00:00Z", -2077747200, 0},
        {"2025-01-31T00:00:00Z", 1738281600, 0},
        {"2025-02-28T23:59:59Z", 1740787199, 0},
        {"2025-12-31T23:59:59Z", 1767225599, 0},
        {"0000-01-01T00:00:00Z", -62167219200, 0},
        {"0000-02-29T00:00:00Z", -62162121600, 0}, /* year 0 is leap */
        {"0001-01-01T00:00:00Z", -62135596800, 0},
        {"9999-12-31T23:59:59Z", 253402300799, 0},
    };
    check_good(good, N(good));
    static const char *const bad[] = {
        "2025-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", /* century not divisible by 400 */
        "2100-02-29T00:00:00Z", "2025-02-30T00:00:00Z", "2024-02-30T00:00:00Z",
        "2025-04-31T00:00:00Z", /* day 31 in 30-day months */
        "2025-06-31T00:00:00Z", "2025-09-31T00:00:00Z", "2025-11-31T00:00:00Z",
        "2025-01-32T00:00:00Z", "2025-01-00T00:00:00Z", "2025-00-10T00:00:00Z",
        "2025-13-10T00:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T23:60:00Z",
        "2025-01-01T23:59:61Z", "2025-01-01T23:59:99Z",
    };
    check_bad(bad, N(bad));
}

static void test_years(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "-001-01-01T00:00:00Z",  "-0001-01-01T00:00:00Z",
        "+2025-01-01T00:00:00Z", "10000-01-01T00:00:00Z",
        "99999-01-01T00:00:00Z", "2147483648-01-01T00:00:00Z",
        "999-01-01T00:00:00Z",   "25-01-01T00:00:00Z",
        "2025-1-01T00:00:00Z",   "2025-01-1T00:00:00Z",
        " 2025-01-01T00:00:00Z", "2O25-01-01T00:00:00Z",
    };
    check_bad(bad, N(bad));
}

static void test_fraction(void **state)
{
    (void)state;
    static const struct good good[] = {
        {"2025-01-01T00:00:00.1Z", 1735689600, 100000000},
        {"2025-01-01T00:00:00.12Z", 1735689600, 120000000},
        {"2025-01-01T00:00:00.123Z", 1735689600, 123000000},
        {"2025-01-01T00:00:00.1234Z", 1735689600, 123400000},
        {"2025-01-01T00:00:00.12345Z", 1735689600, 123450000},
        {"2025-01-01T00:00:00.123456Z", 1735689600, 123456000},
        {"2025-01-01T00:00:00.1234567Z", 1735689600, 123456700},
        {"2025-01-01T00:00:00.12345678Z", 1735689600, 123456780},
        {"2025-01-01T00:00:00.123456789Z", 1735689600, 123456789},
        {"2025-01-01T00:00:00.000000001Z", 1735689600, 1},
        /* beyond nine digits: allowed by the grammar, dropped */
        {"2025-01-01T00:00:00.1234567899999Z", 1735689600, 123456789},
        {"2025-01-01T00:00:00.0Z", 1735689600, 0},
        {"9999-12-31T23:59:59.999999999Z", 253402300799, 999999999},
        /* before 1970 the fraction still counts forward */
        {"1969-12-31T23:59:59.5Z", -1, 500000000},
    };
    check_good(good, N(good));
    static const char *const bad[] = {
        "2025-01-01T00:00:00.Z",   "2025-01-01T00:00:00.",
        "2025-01-01T00:00:00,5Z",  "2025-01-01T00:00:00.5",
        "2025-01-01T00:00:00..5Z", "2025-01-01T00:00:00.5.5Z",
        "2025-01-01T00:00:00.x5Z", "2025-01-01T00:00.5Z",
    };
    check_bad(bad, N(bad));
}

static void test_offsets(void **state)
{
    (void)state;
    static const struct good good[] = {
        {"2025-01-01T00:00:00Z", 1735689600, 0},
        {"2025-01-01T00:00:00z", 1735689600, 0},
        {"2025-01-01t00:00:00Z", 1735689600, 0},
        {"2025-01-01t00:00:00z", 1735689600, 0},
        {"2025-01-01T00:00:00+00:00", 1735689600, 0},
        {"2025-01-01T00:00:00-00:00", 1735689600, 0},
        {"2025-01-01T01:30:00+01:30", 1735689600, 0},
        {"2024-12-31T19:00:00-05:00", 1735689600, 0},
        {"2025-01-01T23:59:00+23:59", 1735689600, 0},
        {"2024-12-31T00:01:00-23:59", 1735689600, 0},
        {"2025-01-01T00:00:00.25+02:00", 1735682400, 250000000},
    };
    check_good(good, N(good));
    static const char *const bad[] = {
        "2025-01-01T00:00:00", /* the offset is required */
        "2025-01-01T00:00:00+24:00",  "2025-01-01T00:00:00-24:00",
        "2025-01-01T00:00:00+23:60",  "2025-01-01T00:00:00+99:99",
        "2025-01-01T00:00:00+0100",   "2025-01-01T00:00:00+01",
        "2025-01-01T00:00:00+1:00",   "2025-01-01T00:00:00+01:0",
        "2025-01-01T00:00:00 +01:00", "2025-01-01T00:00:00UTC",
        "2025-01-01T00:00:00GMT",     "2025-01-01T00:00:00A",
        "2025-01-01T00:00:00+-1:00",  "2025-01-01T00:00:00ZZ",
    };
    check_bad(bad, N(bad));
}

static void test_separator(void **state)
{
    (void)state;
    /* RFC 3339 5.6 lets an application choose a space; Terrace does not */
    static const char *const bad[] = {
        "2025-01-01 00:00:00Z",
        "2025-01-0100:00:00Z",
        "2025-01-01_00:00:00Z",
        "2025-01-01TT00:00:00Z",
    };
    check_bad(bad, N(bad));
}

static void test_leap_second(void **state)
{
    (void)state;
    /* 23:59:60 UTC at the end of a month reads as the next midnight */
    static const struct good good[] = {
        {"1990-12-31T23:59:60Z", 662688000, 0},
        {"1990-12-31T15:59:60-08:00", 662688000, 0}, /* RFC 3339 5.8 */
        {"2016-12-31T23:59:60.5Z", 1483228800, 500000000},
        {"2015-06-30T23:59:60Z", 1435708800, 0},
        {"2025-05-31T23:59:60Z", 1748736000, 0},
        {"2025-02-28T23:59:60Z", 1740787200, 0},
        {"2024-02-29T23:59:60Z", 1709251200, 0},
        {"2025-12-31T22:59:60-01:00", 1767225600, 0},
        {"2016-01-01T00:59:60+01:00", 1451606400, 0},
        {"0000-01-01T00:59:60+01:00", -62167219200, 0},
    };
    check_good(good, N(good));
    static const char *const bad[] = {
        "2025-05-14T12:00:60Z",      /* not the end of a day */
        "2025-05-30T23:59:60Z",      /* not the end of a month */
        "2024-02-28T23:59:60Z",      /* 2024 has Feb 29 */
        "2025-12-31T23:58:60Z",      /* not the last minute */
        "2025-12-31T23:59:60+01:00", /* 22:59:60 UTC */
        "2025-12-31T23:59:60-00:01", /* 00:00:60 UTC */
    };
    check_bad(bad, N(bad));
}

static void test_missing_and_trailing(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        "Z",
        "2025",
        "2025-01",
        "2025-01-01",
        "2025-01-01T",
        "2025-01-01T12",
        "2025-01-01T12:00",
        "2025-01-01T12:00Z",
        "2025-01-01T12:00:00",
        "T12:00:00Z",
        "2025-01-01T12:00:00Z ",
        "2025-01-01T12:00:00Z\n",
        "2025-01-01T12:00:00Zx",
        "2025-01-01T12:00:00+01:00:00",
        "2025-01-01T12:00:00+01:00Z",
        "2025-01-01T12:00:00Z2025",
        "now",
        "1735689600",
    };
    check_bad(bad, N(bad));
    /* a NUL ends the string: what follows is not looked at */
    int64_t secs = 0;
    assert_int_equal(
        rfc3339_parse("2025-01-01T00:00:00Z\0garbage", &secs, NULL), TR_OK);
    assert_int_equal(secs, 1735689600);
}

/* Every third day from 0000-01-01 to 9999-12-31, at a varying time of
 * day, printed by gmtime_r and parsed back. */
static void test_round_trip(void **state)
{
    (void)state;
    const int64_t first = -62167219200, last = 253402300799;
    int n = 0;
    for (int64_t t = first; t <= last; t += 3 * 86400 + 4099) {
        time_t tt = (time_t)t;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        char s[64];
        snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
        int64_t got = 0;
        if (rfc3339_parse(s, &got, NULL) != TR_OK || got != t)
            fail_msg("%s: got %lld, want %lld", s, (long long)got,
                     (long long)t);
        n++;
    }
    assert_true(n > 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calendar),
        cmocka_unit_test(test_years),
        cmocka_unit_test(test_fraction),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_separator),
        cmocka_unit_test(test_leap_second),
        cmocka_unit_test(test_missing_and_trailing),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
