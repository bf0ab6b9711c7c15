/*
 * rfc3339.h - the one parser of RFC 3339 date-times ("2024-05-01T12:00:00Z",
 * "2024-05-01T14:00:00.25+02:00"), for API input and stored timestamps.
 *
 * What is accepted, RFC 3339 section 5.6's date-time and nothing else:
 *   - a year of exactly four digits, 0000 to 9999 (proleptic Gregorian;
 *     no sign, no fifth digit), a month 01-12 and a day that exists in
 *     that month and year (Feb 29 only in leap years: 2000 yes, 1900 no);
 *   - 'T' or 't' between date and time; a space, which section 5.6 lets
 *     applications choose, is refused: the TFE API and its Go clients
 *     send 'T', and one spelling keeps stored values comparable;
 *   - hour 00-23, minute 00-59, second 00-59, or 60 where section 5.7
 *     allows a leap second: 23:59:60 UTC on the last day of a month.
 *     Unix time has no leap seconds, so :60 reads as the next second
 *     (the following midnight);
 *   - an optional fraction of one or more digits; the first nine give
 *     the nanoseconds, later ones are dropped;
 *   - 'Z', 'z' or a numeric offset +hh:mm / -hh:mm with hh 00-23 and mm
 *     00-59 ("-00:00" is UTC).  The offset is required.
 * Digits are ASCII only; nothing may follow, and no blank may precede.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_RFC3339_H
#define TR_RFC3339_H

#include <stdint.h>

#include "core/err.h"

/* Parses s into Unix seconds (UTC) and the fraction in nanoseconds
 * (0-999999999); either output may be NULL (a check only).
 * TR_ERR_INVALID for NULL or anything the rules above refuse; the
 * outputs are then untouched. */
tr_err rfc3339_parse(const char *s, int64_t *secs, int32_t *nsec);

#endif
