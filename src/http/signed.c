/*
 * signed.c - signed capability URLs for uploads and downloads that arrive
 * without a token (the CLI's foreign PUT, log and state downloads).
 *
 * URL form: <external-url><path>?expires=<unix>&sig=<hex>, where sig is
 * HMAC-SHA256(site key, "<path>\n<expires>").  The key is shared by every
 * node through the database.  A URL is valid until it expires; the path
 * names exactly one object.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "crypto/digest.h"
#include "core/util.h"
#include "http/http.h"

static char *sign(struct arena *a, const char *key, const char *path,
                  const char *expires)
{
    char *msg = arena_printf(a, "%s\n%s", path, expires);
    return digest_hmac_sha256_hex(a, key, strlen(key), msg, strlen(msg));
}

char *http_signed_url(struct http_req *r, const char *path, int64_t ttl)
{
    char *exp = arena_printf(r->arena, "%lld",
                             (long long)(util_now_unix() + ttl));
    return arena_printf(r->arena, "%s%s?expires=%s&sig=%s",
                        r->srv->external_url, path, exp,
                        sign(r->arena, r->srv->signing_key, path, exp));
}

bool http_check_signature(struct http_req *r)
{
    const char *exp = http_query(r, "expires");
    const char *sig = http_query(r, "sig");
    int64_t t = 0;
    if (exp == NULL || sig == NULL || util_parse_i64(exp, &t) != TR_OK) {
        http_error(r, 404, "not found", "this URL is not valid");
        return false;
    }
    char *want = sign(r->arena, r->srv->signing_key, r->path, exp);
    if (!digest_equal(want, sig)) {
        http_error(r, 404, "not found", "this URL is not valid");
        return false;
    }
    if (t < util_now_unix()) {
        http_error(r, 404, "not found", "this URL has expired");
        return false;
    }
    return true;
}
