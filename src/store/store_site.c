/*
 * store_site.c - site-wide settings, such as the salt every node derives
 * the URL-signing key with (http/signed.c) and the id of the key-
 * encryption key the data is sealed under.  Nothing here is secret in
 * clear: a copy of this table must not let anyone forge or read
 * anything (the cluster's join token is stored sealed under the KEK).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "crypto/digest.h"
#include "store/store.h"

tr_err store_site_claim(struct db *db, struct arena *a, const char *key,
                        const char *proposed, char **value,
                        struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    /* insert-if-absent, then read whichever value won */
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO site_settings (key, value) VALUES ($1, $2)"
                    " ON CONFLICT (key) DO NOTHING",
                    key, proposed);
    if (e == TR_OK)
        e = db_q(c, a, &r, eb, "SELECT value FROM site_settings WHERE key = $1",
                 key);
    if (e == TR_OK && r->nrows != 1)
        e = tr_fail(eb, TR_ERR_INTERNAL, "site setting %s missing", key);
    if (e == TR_OK)
        *value = (char *)db_cell(r, 0, 0);
    db_release(c);
    return e;
}

tr_err store_site_put(struct db *db, struct arena *a, const char *key,
                      const char *value, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    tr_err e = db_x(c, a, NULL, eb,
                    "INSERT INTO site_settings (key, value) VALUES ($1, $2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    key, value);
    db_release(c);
    return e;
}

tr_err store_site_get(struct db *db, struct arena *a, const char *key,
                      char **value, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(db);
    struct db_rows *r = NULL;
    tr_err e = db_q(c, a, &r, eb,
                    "SELECT value FROM site_settings WHERE key = $1", key);
    if (e == TR_OK && r->nrows == 0)
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "site setting %s is not set", key);
    if (e == TR_OK)
        *value = (char *)db_cell(r, 0, 0);
    db_release(c);
    return e;
}

tr_err store_site_secret(struct db *db, struct arena *a, const char *key,
                         int nbytes, char **value, struct tr_errbuf *eb)
{
    unsigned char rnd[64];
    if (nbytes > (int)sizeof(rnd))
        nbytes = sizeof(rnd);
    util_random(rnd, (size_t)nbytes);
    char *fresh = digest_sha256_hex(a, rnd, (size_t)nbytes);
    return store_site_claim(db, a, key, fresh, value, eb);
}
