/*
 * rfc3339.c - RFC 3339 date-time parsing; the rules are in rfc3339.h.
 *
 * Calendar arithmetic is done here rather than with timegm(), which
 * normalizes out-of-range fields (Feb 30 becomes Mar 2) and depends on
 * time_t's range: days are counted from 0000-01-01 in the proleptic
 * Gregorian calendar, where every year divisible by 4 is a leap year
 * except centuries not divisible by 400 (year 0 is a leap year).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/rfc3339.h"

#include <stdbool.h>
#include <stddef.h>

/* Days from 0000-01-01 to 1970-01-01. */
#define EPOCH_DAYS 719528
#define DAY_SECS 86400

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Leap years in [0, y), for y >= 0. */
static int64_t leaps_before(int64_t y)
{
    if (y <= 0)
        return 0;
    return 1 + (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;
}

/* Days from 1970-01-01 to y-m-d (negative before). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t days = 365 * y + leaps_before(y);
    for (int i = 1; i < m; i++)
        days += month_days(y, i);
    return days + d - 1 - EPOCH_DAYS;
}

/* Whether day (days from 1970-01-01, year 0's first day minus one or
 * later) is the last day of its month. */
static bool last_of_month(int64_t day)
{
    /* the day before 0000-01-01 is -0001-12-31 */
    if (day < -EPOCH_DAYS)
        return true;
    int64_t y = (day + EPOCH_DAYS) / 366; /* at most the real year */
    while (days_from_civil(y + 1, 1, 1) <= day)
        y++;
    int64_t rest = day - days_from_civil(y, 1, 1); /* 0-based day of year */
    for (int m = 1; m <= 12; m++) {
        if (rest < month_days(y, m))
            return rest == month_days(y, m) - 1;
        rest -= month_days(y, m);
    }
    return false; /* not reached */
}

/* n ASCII digits at *p as a number, advancing *p; -1 if one is missing. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

/* Whether **p is c, advancing past it if so. */
static bool take(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The fraction after a '.': one or more digits, nanoseconds from the
 * first nine; -1 without a digit. */
static int32_t fraction(const char **p)
{
    if (!is_digit(**p))
        return -1;
    int32_t ns = 0;
    int n = 0;
    for (; is_digit(**p); (*p)++, n++)
        if (n < 9)
            ns = ns * 10 + (**p - '0');
    for (; n < 9; n++)
        ns *= 10;
    return ns;
}

/* "Z", "z", "+hh:mm" or "-hh:mm" as seconds east of UTC; false if
 * malformed or out of range. */
static bool offset(const char **p, int64_t *out)
{
    if (take(p, 'Z') || take(p, 'z')) {
        *out = 0;
        return true;
    }
    int sign = **p == '+' ? 1 : **p == '-' ? -1 : 0;
    if (sign == 0)
        return false;
    (*p)++;
    int oh = digits(p, 2);
    if (oh < 0 || oh > 23 || !take(p, ':'))
        return false;
    int om = digits(p, 2);
    if (om < 0 || om > 59)
        return false;
    *out = sign * (int64_t)(oh * 3600 + om * 60);
    return true;
}

tr_err rfc3339_parse(const char *s, int64_t *secs, int32_t *nsec)
{
    if (s == NULL)
        return TR_ERR_INVALID;
    const char *p = s;
    int y = digits(&p, 4);
    if (y < 0 || !take(&p, '-'))
        return TR_ERR_INVALID;
    int mo = digits(&p, 2);
    if (mo < 1 || mo > 12 || !take(&p, '-'))
        return TR_ERR_INVALID;
    int d = digits(&p, 2);
    if (d < 1 || d > month_days(y, mo))
        return TR_ERR_INVALID;
    if (!take(&p, 'T') && !take(&p, 't'))
        return TR_ERR_INVALID;
    int h = digits(&p, 2);
    if (h < 0 || h > 23 || !take(&p, ':'))
        return TR_ERR_INVALID;
    int mi = digits(&p, 2);
    if (mi < 0 || mi > 59 || !take(&p, ':'))
        return TR_ERR_INVALID;
    int sec = digits(&p, 2);
    if (sec < 0 || sec > 60)
        return TR_ERR_INVALID;
    int32_t ns = 0;
    if (take(&p, '.') && (ns = fraction(&p)) < 0)
        return TR_ERR_INVALID;
    int64_t off = 0;
    if (!offset(&p, &off) || *p != '\0')
        return TR_ERR_INVALID;
    int64_t t =
        days_from_civil(y, mo, d) * DAY_SECS + h * 3600 + mi * 60 + sec - off;
    if (sec == 60) {
        /* a leap second ends a UTC day that ends a month: t is then the
         * following midnight */
        if (t % DAY_SECS != 0 || !last_of_month(t / DAY_SECS - 1))
            return TR_ERR_INVALID;
    }
    if (secs != NULL)
        *secs = t;
    if (nsec != NULL)
        *nsec = ns;
    return TR_OK;
}
