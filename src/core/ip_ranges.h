/*
 * ip_ranges.h - the node setting ip-ranges: the address ranges this
 * installation publishes at GET /api/meta/ip-ranges (api/compat.c), as
 * HCP Terraform publishes the ranges its API, notifications, Sentinel
 * and VCS connections come from.
 *
 * The setting is a list of groups separated by ';', each KIND=CIDR[,CIDR]
 * with KIND one of api, notifications, sentinel, vcs and every CIDR an
 * IPv4 or IPv6 network with its prefix length ("192.0.2.0/24",
 * "2001:db8::/32").  Blanks around the parts are ignored, a kind may
 * appear once, and a kind not named publishes an empty list; the empty
 * setting (the default) publishes four empty lists.  Example:
 *
 *   api=192.0.2.0/24,2001:db8::/32;notifications=198.51.100.7/32
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_IP_RANGES_H
#define TR_IP_RANGES_H

#include <jansson.h>

#include "core/err.h"

/* Parses spec (NULL reads as "") into a new JSON object holding the four
 * lists {"api": [...], "notifications": [...], "sentinel": [...],
 * "vcs": [...]}, each CIDR as given (blanks trimmed).  TR_ERR_CONFIG with
 * a message naming the offending part when spec breaks the rules above;
 * *out is then untouched.  out may be NULL (a check only). */
tr_err ip_ranges_parse(const char *spec, json_t **out, struct tr_errbuf *eb);

#endif
