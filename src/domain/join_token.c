/*
 * join_token.c - the cluster's join token (see join_token.h).
 *
 * A token is "trjoin" and 64 hex digits (32 random bytes).  It is stored
 * as envelope_seal() text, so reading it needs the key-encryption key
 * every primary holds.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/join_token.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "crypto/digest.h"
#include "crypto/envelope.h"
#include "store/store.h"

#define SITE_KEY "join-token"

static char *fresh_token(struct arena *a)
{
    unsigned char rnd[32];
    util_random(rnd, sizeof rnd);
    char *t = arena_alloc(a, 6 + 2 * sizeof rnd + 1);
    memcpy(t, "trjoin", 6);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(t + 6 + 2 * i, 3, "%02x", rnd[i]);
    return t;
}

static tr_err seal(struct terrace_server *srv, struct arena *a,
                   const char *token, char **out, struct tr_errbuf *eb)
{
    return envelope_seal(srv->keys, a, token, strlen(token), out, eb);
}

tr_err join_token_get(struct terrace_server *srv, struct arena *a, char **token,
                      struct tr_errbuf *eb)
{
    char *sealed = NULL;
    tr_err e = store_site_get(srv->db, a, SITE_KEY, &sealed, eb);
    if (e == TR_ERR_NOT_FOUND) {
        char *mine = NULL, *seed = fresh_token(a);
        e = srv->cfg.join_token_file[0] != '\0'
                ? file_read_secret(a, srv->cfg.join_token_file, &seed, eb)
                : TR_OK;
        if (e == TR_OK)
            e = seal(srv, a, seed, &mine, eb);
        /* concurrent first starts: the first writer's token holds */
        if (e == TR_OK)
            e = store_site_claim(srv->db, a, SITE_KEY, mine, &sealed, eb);
    }
    if (e == TR_OK)
        e = envelope_open(srv->keys, a, sealed, token, NULL, eb);
    return e;
}

tr_err join_token_rotate(struct terrace_server *srv, struct arena *a,
                         char **token, struct tr_errbuf *eb)
{
    char *t = fresh_token(a);
    char *sealed = NULL;
    tr_err e = seal(srv, a, t, &sealed, eb);
    if (e == TR_OK)
        e = store_site_put(srv->db, a, SITE_KEY, sealed, eb);
    if (e == TR_OK)
        *token = t;
    return e;
}

tr_err join_token_check(struct terrace_server *srv, struct arena *a,
                        const char *given, bool *ok, struct tr_errbuf *eb)
{
    *ok = false;
    char *want = NULL;
    tr_err e = join_token_get(srv, a, &want, eb);
    if (e != TR_OK || given == NULL)
        return e;
    const char *dw = digest_sha256_hex(a, want, strlen(want));
    const char *dg = digest_sha256_hex(a, given, strlen(given));
    *ok = CRYPTO_memcmp(dw, dg, 64) == 0;
    return TR_OK;
}
