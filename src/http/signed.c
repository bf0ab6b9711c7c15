/*
 * signed.c - signed capability URLs for uploads and downloads that arrive
 * without a token (the CLI's foreign PUT, log and state downloads).
 *
 * URL form: <external-url><path>?expires=<unix>&sig=<hex>, where sig is
 * HMAC-SHA256(signing key, "<path>\n<expires>").  A URL is valid until it
 * expires; the path names exactly one object.
 *
 * The signing key is never stored: every node derives it from the
 * key-encryption key and a random per-installation salt kept in the
 * database (keys_derive(), purpose "url-signing"), so every node holding
 * the installation's KEK signs and verifies the same URLs, while a copy
 * of the database alone can forge none.  Before migration 10 the key
 * itself sat in site_settings ("url-signing-key"); that row is deleted,
 * and URLs signed with it no longer verify.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <assert.h>
#include <openssl/crypto.h>
#include <string.h>

#include "core/util.h"
#include "crypto/digest.h"
#include "crypto/keys.h"
#include "http/http.h"
#include "store/store.h"

#define SIGNING_SALT "url-signing-salt"
#define SIGNING_PURPOSE "url-signing"

tr_err http_signing_init(struct terrace_server *srv, struct tr_errbuf *eb)
{
    static const char hex[] = "0123456789abcdef";
    struct arena *a = arena_new();
    char *salt = NULL;
    unsigned char key[KEYS_DERIVED_LEN];
    tr_err e = store_site_secret(srv->db, a, SIGNING_SALT, 32, &salt, eb);
    if (e == TR_OK)
        e = keys_derive(srv->keys, SIGNING_PURPOSE, salt, strlen(salt), key,
                        eb);
    if (e == TR_OK) {
        static_assert(sizeof(srv->signing_key) == 2 * KEYS_DERIVED_LEN + 1,
                      "signing_key holds the derived key in hex");
        for (size_t i = 0; i < KEYS_DERIVED_LEN; i++) {
            srv->signing_key[2 * i] = hex[key[i] >> 4];
            srv->signing_key[2 * i + 1] = hex[key[i] & 15];
        }
        srv->signing_key[2 * KEYS_DERIVED_LEN] = '\0';
    }
    OPENSSL_cleanse(key, sizeof(key));
    arena_destroy(a);
    return e;
}

char *http_sign(struct arena *a, const char *key, const char *path,
                const char *expires)
{
    char *msg = arena_printf(a, "%s\n%s", path, expires);
    return digest_hmac_sha256_hex(a, key, strlen(key), msg, strlen(msg));
}

bool http_sig_valid(struct arena *a, const char *key, const char *path,
                    const char *expires, const char *sig)
{
    return sig != NULL && digest_equal(http_sign(a, key, path, expires), sig);
}

char *http_signed_url(struct http_req *r, const char *path, int64_t ttl)
{
    char *exp =
        arena_printf(r->arena, "%lld", (long long)(util_now_unix() + ttl));
    return arena_printf(r->arena, "%s%s?expires=%s&sig=%s",
                        r->srv->external_url, path, exp,
                        http_sign(r->arena, r->srv->signing_key, path, exp));
}

bool http_check_signature(struct http_req *r)
{
    const char *exp = http_query(r, "expires");
    const char *sig = http_query(r, "sig");
    int64_t t = 0;
    if (exp == NULL || sig == NULL || util_parse_i64(exp, &t) != TR_OK ||
        !http_sig_valid(r->arena, r->srv->signing_key, r->path, exp, sig)) {
        http_error(r, 404, "not found", "this URL is not valid");
        return false;
    }
    if (t < util_now_unix()) {
        http_error(r, 404, "not found", "this URL has expired");
        return false;
    }
    return true;
}
