/*
 * keys.c - keyrings: the local-file key-encryption key provider, and the
 * dispatch to the Vault one (keys_vault.c) and to an old keyring kept
 * for unwrapping.
 *
 * The KEK is 32 bytes held in malloc'd memory for the life of the
 * keyring and wiped on close.  Its id is "local-" plus 16 hex digits of
 * HMAC-SHA256(key, "terrace kek id"), so the id names the key without
 * revealing it and two different keys practically never share an id.
 *
 * Creating the file: write a temporary file in the same directory
 * (O_EXCL, mode 0600), fsync it, link() it to the final name (which fails
 * if another process got there first: then that key is used), unlink the
 * temporary name and fsync the directory.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "crypto/keys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "crypto/envelope.h"
#include "crypto/keys_int.h"

enum kind { KIND_LOCAL, KIND_VAULT };

struct keyring {
    enum kind kind;
    char id[KEYS_ID_MAX + 1];
    unsigned char kek[KEYS_KEK_LEN]; /* KIND_LOCAL */
    struct keys_vault *vault;        /* KIND_VAULT */
    struct keyring *old;             /* unwrap-only, or NULL */
};

static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > KEYS_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

static void derive_id(const unsigned char *key, char *out, size_t n)
{
    static const char msg[] = "terrace kek id";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    HMAC(EVP_sha256(), key, KEYS_KEK_LEN, (const unsigned char *)msg,
         sizeof(msg) - 1, mac, &mlen);
    snprintf(out, n, "local-%02x%02x%02x%02x%02x%02x%02x%02x", mac[0], mac[1],
             mac[2], mac[3], mac[4], mac[5], mac[6], mac[7]);
    OPENSSL_cleanse(mac, sizeof(mac));
}

tr_err keys_open_bytes(const unsigned char key[KEYS_KEK_LEN], const char *id,
                       struct keyring **out, struct tr_errbuf *eb)
{
    if (id != NULL && !valid_id(id))
        return tr_fail(eb, TR_ERR_CONFIG, "invalid key id");
    struct keyring *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    memcpy(k->kek, key, KEYS_KEK_LEN);
    if (id != NULL)
        snprintf(k->id, sizeof(k->id), "%s", id);
    else
        derive_id(k->kek, k->id, sizeof(k->id));
    *out = k;
    return TR_OK;
}

tr_err keys_open_vault(const struct keys_vault_cfg *vc, struct keyring **out,
                       struct tr_errbuf *eb)
{
    struct keyring *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    k->kind = KIND_VAULT;
    tr_err e = keys_vault_open(vc, &k->vault, k->id, eb);
    if (e != TR_OK) {
        free(k);
        return e;
    }
    *out = k;
    return TR_OK;
}

void keys_add_old(struct keyring *k, struct keyring *old)
{
    keys_close(k->old);
    k->old = old;
}

void keys_close(struct keyring *k)
{
    if (k == NULL)
        return;
    keys_close(k->old);
    if (k->vault != NULL)
        keys_vault_close(k->vault);
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

const char *keys_id(const struct keyring *k)
{
    return k->id;
}

bool keys_holds(const struct keyring *k, const char *id)
{
    for (; k != NULL; k = k->old)
        if (id != NULL && strcmp(id, k->id) == 0)
            return true;
    return false;
}

bool keys_is_current(const struct keyring *k, const char *kek_id,
                     const unsigned char *w, size_t wlen)
{
    if (kek_id == NULL || strcmp(kek_id, k->id) != 0)
        return false;
    return k->kind == KIND_LOCAL || keys_vault_is_latest(k->vault, w, wlen);
}

tr_err keys_refresh(struct keyring *k, struct tr_errbuf *eb)
{
    return k->kind == KIND_VAULT ? keys_vault_refresh(k->vault, eb) : TR_OK;
}

/* ---- the key file ------------------------------------------------------ */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 32 raw bytes, or 64 hex digits with an optional trailing newline. */
static bool parse_key(const unsigned char *buf, size_t n, unsigned char *key)
{
    if (n == KEYS_KEK_LEN) {
        memcpy(key, buf, KEYS_KEK_LEN);
        return true;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n != KEYS_KEK_LEN * 2)
        return false;
    for (size_t i = 0; i < KEYS_KEK_LEN; i++) {
        int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static tr_err read_key(const char *path, unsigned char *key,
                       struct tr_errbuf *eb)
{
    unsigned char buf[KEYS_KEK_LEN * 2 + 4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot read key file %s: %s", path,
                       strerror(errno));
    struct stat st;
    tr_err e = TR_OK;
    if (fstat(fd, &st) != 0) {
        e = tr_fail(eb, TR_ERR_IO, "cannot stat key file %s: %s", path,
                    strerror(errno));
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "key file %s must not be accessible by group or others "
                    "(chmod 600)",
                    path);
        goto out;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot read key file %s: %s", path,
                    strerror(errno));
    else if (!parse_key(buf, (size_t)n, key))
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "key file %s must hold 32 bytes or 64 hex digits", path);
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return e;
}

static void sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Creates path with a fresh key unless it exists (EEXIST is success). */
static tr_err create_key(const char *path, struct tr_errbuf *eb)
{
    char tmp[PATH_MAX];
    unsigned char key[KEYS_KEK_LEN];
    unsigned char rnd[6];
    util_random(rnd, sizeof(rnd));
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%02x%02x%02x%02x%02x%02x", path,
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
                 rnd[5]) >= (int)sizeof(tmp))
        return tr_fail(eb, TR_ERR_CONFIG, "key file path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create key file %s: %s", tmp,
                       strerror(errno));
    util_random(key, sizeof(key));
    bool ok =
        write(fd, key, sizeof(key)) == (ssize_t)sizeof(key) && fsync(fd) == 0;
    OPENSSL_cleanse(key, sizeof(key));
    close(fd);
    tr_err e = TR_OK;
    if (!ok)
        e = tr_fail(eb, TR_ERR_IO, "cannot write key file %s", tmp);
    else if (link(tmp, path) != 0 && errno != EEXIST)
        e = tr_fail(eb, TR_ERR_IO, "cannot create key file %s: %s", path,
                    strerror(errno));
    unlink(tmp);
    if (e == TR_OK)
        sync_dir_of(path);
    return e;
}

tr_err keys_open_file(const char *path, struct keyring **out,
                      struct tr_errbuf *eb)
{
    unsigned char key[KEYS_KEK_LEN];
    tr_err e = TR_OK;
    if (access(path, F_OK) != 0) {
        if (errno != ENOENT)
            return tr_fail(eb, TR_ERR_IO, "cannot read key file %s: %s", path,
                           strerror(errno));
        e = create_key(path, eb);
    }
    if (e == TR_OK)
        e = read_key(path, key, eb);
    if (e == TR_OK)
        e = keys_open_bytes(key, NULL, out, eb);
    OPENSSL_cleanse(key, sizeof(key));
    return e;
}

/* ---- derived keys ------------------------------------------------------ */

#define DERIVE_TAG "terrace-derive-v1\n"

tr_err keys_derive(const struct keyring *k, const char *purpose,
                   const void *salt, size_t saltlen,
                   unsigned char out[KEYS_DERIVED_LEN], struct tr_errbuf *eb)
{
    memset(out, 0, KEYS_DERIVED_LEN);
    size_t plen = purpose != NULL ? strlen(purpose) : 0;
    if (plen == 0 || plen > KEYS_PURPOSE_MAX ||
        memchr(purpose, '\n', plen) != NULL || salt == NULL || saltlen == 0 ||
        saltlen > KEYS_SALT_MAX)
        return tr_fail(eb, TR_ERR_INTERNAL, "bad key derivation input");
    unsigned char
        msg[sizeof(DERIVE_TAG) + KEYS_PURPOSE_MAX + 1 + KEYS_SALT_MAX];
    size_t n = sizeof(DERIVE_TAG) - 1;
    memcpy(msg, DERIVE_TAG, n);
    memcpy(msg + n, purpose, plen);
    n += plen;
    msg[n++] = '\n';
    memcpy(msg + n, salt, saltlen);
    n += saltlen;
    if (k->kind == KIND_VAULT)
        return keys_vault_hmac(k->vault, msg, n, out, eb);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    bool ok =
        HMAC(EVP_sha256(), k->kek, KEYS_KEK_LEN, msg, n, mac, &mlen) != NULL &&
        mlen == KEYS_DERIVED_LEN;
    if (ok)
        memcpy(out, mac, KEYS_DERIVED_LEN);
    OPENSSL_cleanse(mac, sizeof(mac));
    return ok ? TR_OK : tr_fail(eb, TR_ERR_CRYPTO, "key derivation failed");
}

/* ---- wrapping ---------------------------------------------------------- */

#define WRAP_AAD "terrace-kek:"
#define WRAP_MAX_DEK 64

tr_err keys_wrap(const struct keyring *k, struct arena *a,
                 const unsigned char *dek, size_t n, unsigned char **out,
                 size_t *outlen, struct tr_errbuf *eb)
{
    if (n == 0 || n > WRAP_MAX_DEK)
        return tr_fail(eb, TR_ERR_INTERNAL, "bad data key length");
    if (k->kind == KIND_VAULT)
        return keys_vault_wrap(k->vault, a, dek, n, out, outlen, eb);
    char aad[sizeof(WRAP_AAD) + KEYS_ID_MAX];
    int alen = snprintf(aad, sizeof(aad), WRAP_AAD "%s", k->id);
    unsigned char *w = arena_alloc(a, n + ENVELOPE_OVERHEAD);
    tr_err e = envelope_aead_seal(k->kek, aad, (size_t)alen, dek, n, w, eb);
    if (e != TR_OK)
        return e;
    *out = w;
    *outlen = n + ENVELOPE_OVERHEAD;
    return TR_OK;
}

tr_err keys_unwrap(const struct keyring *k, const char *kek_id,
                   const unsigned char *w, size_t wlen, unsigned char *dek,
                   size_t n, struct tr_errbuf *eb)
{
    memset(dek, 0, n);
    if (kek_id != NULL && strcmp(kek_id, k->id) != 0 && k->old != NULL)
        return keys_unwrap(k->old, kek_id, w, wlen, dek, n, eb);
    if (kek_id == NULL || strcmp(kek_id, k->id) != 0)
        return tr_fail(eb, TR_ERR_CRYPTO,
                       "value was encrypted under key %.64s, which this "
                       "node does not hold",
                       kek_id ? kek_id : "(none)");
    if (k->kind == KIND_VAULT)
        return keys_vault_unwrap(k->vault, w, wlen, dek, n, eb);
    if (wlen != n + ENVELOPE_OVERHEAD)
        return tr_fail(eb, TR_ERR_CRYPTO, "wrapped data key has a bad length");
    char aad[sizeof(WRAP_AAD) + KEYS_ID_MAX];
    int alen = snprintf(aad, sizeof(aad), WRAP_AAD "%s", k->id);
    tr_err e = envelope_aead_open(k->kek, aad, (size_t)alen, w, wlen, dek, eb);
    if (e != TR_OK)
        return tr_fail(eb, TR_ERR_CRYPTO,
                       "wrapped data key failed "
                       "authentication (wrong key?)");
    return TR_OK;
}
