/*
 * join_token.h - the cluster's join token: the shared secret a secondary
 * presents once (POST /api/internal/v1/join) to get a node credential of
 * its own.
 *
 * It lives in site_settings under "join-token", sealed under the
 * key-encryption key (envelope.h), never in clear: a copy of the database
 * alone does not let anyone join.  The first primary to start makes it
 * (store_site_claim(), so primaries starting together agree on one);
 * rotating replaces it, and the old one stops admitting joins at once.
 * Nodes that joined keep their credentials.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_JOIN_TOKEN_H
#define TR_JOIN_TOKEN_H

#include <stdbool.h>

#include "core/arena.h"
#include "core/server.h"

/* The current token (*token in a), made first if there is none. */
tr_err join_token_get(struct terrace_server *srv, struct arena *a, char **token,
                      struct tr_errbuf *eb);

/* Replaces the token with a fresh one (*token in a). */
tr_err join_token_rotate(struct terrace_server *srv, struct arena *a,
                         char **token, struct tr_errbuf *eb);

/* *ok: given is the current token, compared in constant time (digests of
 * both, so not even its length leaks).  given NULL is never ok. */
tr_err join_token_check(struct terrace_server *srv, struct arena *a,
                        const char *given, bool *ok, struct tr_errbuf *eb);

#endif
