/*
 * ip_ranges.c - parser and checker of the ip-ranges setting (ip_ranges.h).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/ip_ranges.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

static const char *const kinds[] = {"api", "notifications", "sentinel", "vcs"};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* The longest part worth looking at: an IPv6 address with a prefix. */
#define MAX_CIDR 64

/* [s, e) without leading and trailing blanks. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* True when [s, e) is ADDRESS/PREFIX with a prefix no longer than the
 * address family allows. */
static bool valid_cidr(const char *s, const char *e)
{
    size_t n = (size_t)(e - s);
    char text[MAX_CIDR];
    if (n == 0 || n >= sizeof(text))
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    char *slash = strchr(text, '/');
    if (slash == NULL || slash[1] == '\0' || strlen(slash + 1) > 3)
        return false;
    *slash = '\0';
    int prefix = 0;
    for (const char *p = slash + 1; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        prefix = prefix * 10 + (*p - '0');
    }
    unsigned char addr[16];
    if (inet_pton(AF_INET, text, addr) == 1)
        return prefix <= 32;
    if (inet_pton(AF_INET6, text, addr) == 1)
        return prefix <= 128;
    return false;
}

static int kind_index(const char *s, const char *e)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (strlen(kinds[i]) == (size_t)(e - s) &&
            memcmp(kinds[i], s, (size_t)(e - s)) == 0)
            return (int)i;
    return -1;
}

/* One group KIND=CIDR[,CIDR...] in [s, e), appended to lists. */
static tr_err parse_group(const char *s, const char *e, json_t *lists,
                          bool *seen, struct tr_errbuf *eb)
{
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (eq == NULL)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "ip-ranges: expected KIND=CIDR[,CIDR...] in \"%.*s\"",
                       (int)(e - s > 80 ? 80 : e - s), s);
    const char *ks = s, *ke = eq;
    trim(&ks, &ke);
    int k = kind_index(ks, ke);
    if (k < 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "ip-ranges: unknown kind \"%.*s\" (api, "
                       "notifications, sentinel or vcs)",
                       (int)(ke - ks > 40 ? 40 : ke - ks), ks);
    if (seen[k])
        return tr_fail(eb, TR_ERR_CONFIG, "ip-ranges: %s is given twice",
                       kinds[k]);
    seen[k] = true;
    json_t *list = json_object_get(lists, kinds[k]);
    const char *p = eq + 1;
    while (p <= e) {
        const char *comma = memchr(p, ',', (size_t)(e - p));
        const char *end = comma != NULL ? comma : e;
        const char *cs = p, *ce = end;
        trim(&cs, &ce);
        if (cs == ce && comma == NULL && json_array_size(list) == 0)
            break; /* "vcs=": an empty list, said outright */
        if (!valid_cidr(cs, ce))
            return tr_fail(eb, TR_ERR_CONFIG,
                           "ip-ranges: %s: \"%.*s\" is not a network in CIDR "
                           "notation (ADDRESS/PREFIX, e.g. 192.0.2.0/24)",
                           kinds[k], (int)(ce - cs > 80 ? 80 : ce - cs), cs);
        json_array_append_new(list, json_stringn(cs, (size_t)(ce - cs)));
        p = end + 1;
    }
    return TR_OK;
}

tr_err ip_ranges_parse(const char *spec, json_t **out, struct tr_errbuf *eb)
{
    json_t *lists = json_object();
    for (size_t i = 0; i < NKINDS; i++)
        json_object_set_new(lists, kinds[i], json_array());
    bool seen[NKINDS] = {false};
    const char *p = spec != NULL ? spec : "";
    const char *end = p + strlen(p);
    tr_err e = TR_OK;
    while (e == TR_OK && p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *ge = semi != NULL ? semi : end;
        const char *gs = p, *gt = ge;
        trim(&gs, &gt);
        if (gs < gt)
            e = parse_group(gs, gt, lists, seen, eb);
        p = ge + 1;
    }
    if (e != TR_OK || out == NULL) {
        json_decref(lists);
        return e;
    }
    *out = lists;
    return TR_OK;
}
