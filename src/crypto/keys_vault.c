/*
 * keys_vault.c - the Vault transit key-encryption key provider: data keys
 * are wrapped by POST <mount>/encrypt/<key> and unwrapped by POST
 * <mount>/decrypt/<key>, so the KEK never leaves Vault; keys_derive() is
 * POST <mount>/hmac/<key>/sha2-256 with key_version 1.
 *
 * Authentication: a token (setting or VAULT_TOKEN), a token file (read
 * again whenever Vault refuses the token, as a Vault Agent sink is
 * rewritten), or AppRole (role id + secret id, POST auth/approle/login).
 * Renewal is done on use: a request made after two thirds of the token's
 * TTL first renews it (auth/token/renew-self); an AppRole keyring whose
 * token cannot be renewed for long enough logs in again.  A token with no
 * TTL (a root token) is never renewed.
 *
 * Requests: one libcurl handle per request (no shared handle to lock),
 * 5 s to connect, 15 s in all, three tries with backoff on a transport
 * failure, 429 or 5xx.  Plaintext data keys in request and response
 * bodies are wiped before the memory is freed.
 *
 * Cache: unwrapped data keys are kept for CACHE_TTL seconds in a table of
 * CACHE_SLOTS entries keyed by the SHA-256 of the wrapped key (least
 * recently used evicted first, wiped on eviction and close), so reading
 * the same object or value again does not cost a Vault round trip.
 *
 * Locking: mu guards the token, its expiry and the cache; no HTTP request
 * is made while it is held except to renew or replace the token.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include "core/curl_load.h"
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "crypto/digest.h"
#include "crypto/keys_int.h"

#define CACHE_SLOTS 512
#define CACHE_TTL 300           /* seconds */
#define MAX_RESPONSE (1u << 20) /* bytes */
#define TRIES 3
#define HMAC_VERSION 1 /* pinned: derived keys survive rotation */

struct cache_slot {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    unsigned char dek[64];
    size_t n;
    time_t added;
    uint64_t used; /* 0: empty */
};

struct keys_vault {
    char addr[512];
    char ns[256];
    char mount[128];
    char key[128];
    char ca_file[512];
    char token_file[512];
    char role_id[256];
    char secret_id[256];
    bool approle;
    pthread_mutex_t mu;
    char token[512];                      /* under mu */
    time_t renew_at;                      /* under mu; 0: never */
    time_t expires;                       /* under mu; 0: never */
    atomic_int latest;                    /* latest key version last read */
    struct cache_slot cache[CACHE_SLOTS]; /* under mu */
    uint64_t clock;                       /* under mu */
};

/* ---- HTTP ---------------------------------------------------------- */

struct body {
    char *p;
    size_t n, cap;
    bool over;
};

static size_t collect(char *p, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    if (b->over || b->n + n + 1 > MAX_RESPONSE) {
        b->over = true;
        return n;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *q = malloc(cap);
        if (q == NULL) {
            b->over = true;
            return n;
        }
        if (b->p != NULL) {
            memcpy(q, b->p, b->n);
            OPENSSL_cleanse(b->p, b->cap);
            free(b->p);
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static void body_free(struct body *b)
{
    if (b->p != NULL)
        OPENSSL_cleanse(b->p, b->cap);
    free(b->p);
    *b = (struct body){0};
}

/* Wipes and frees a request body made by json_dumps(). */
static void free_wiped(char *s)
{
    if (s != NULL)
        OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* The first of Vault's "errors", or a status line, into msg. */
static void vault_error(json_t *doc, long status, char *msg, size_t n)
{
    json_t *errs = json_object_get(doc, "errors");
    const char *first = json_string_value(json_array_get(errs, 0));
    if (first != NULL)
        snprintf(msg, n, "%.200s", first);
    else
        snprintf(msg, n, "status %ld", status);
    for (char *p = msg; *p != '\0'; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

/* One request, retried on a transport failure, 429 or 5xx.  *status: the
 * HTTP status (0: none came); *resp: the parsed body (NULL when there is
 * none).  TR_ERR_UNAVAILABLE when Vault could not be reached. */
static tr_err request(struct keys_vault *v, const char *method,
                      const char *path, const char *token, json_t *in,
                      long *status, json_t **resp, struct tr_errbuf *eb)
{
    char url[1024], hdr_tok[600], hdr_ns[300];
    *resp = NULL;
    *status = 0;
    snprintf(url, sizeof(url), "%s/v1/%s", v->addr, path);
    char *data = in != NULL ? json_dumps(in, JSON_COMPACT) : NULL;
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    if (token != NULL && token[0] != '\0') {
        snprintf(hdr_tok, sizeof(hdr_tok), "X-Vault-Token: %s", token);
        h = curl_slist_append(h, hdr_tok);
    }
    if (v->ns[0] != '\0') {
        snprintf(hdr_ns, sizeof(hdr_ns), "X-Vault-Namespace: %s", v->ns);
        h = curl_slist_append(h, hdr_ns);
    }
    CURLcode cc = CURLE_OK;
    struct body b = {0};
    for (int t = 0; t < TRIES; t++) {
        if (t > 0)
            usleep((useconds_t)(100000 << (2 * (t - 1))));
        body_free(&b);
        CURL *c = curl_easy_init();
        if (c == NULL) {
            cc = CURLE_OUT_OF_MEMORY;
            continue;
        }
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 15L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (v->ca_file[0] != '\0')
            curl_easy_setopt(c, CURLOPT_CAINFO, v->ca_file);
        if (data != NULL)
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
        cc = curl_easy_perform(c);
        *status = 0;
        if (cc == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        curl_easy_cleanup(c);
        if (cc == CURLE_OK && *status != 429 && *status < 500)
            break;
    }
    OPENSSL_cleanse(hdr_tok, sizeof(hdr_tok));
    curl_slist_free_all(h);
    free_wiped(data);
    tr_err e = TR_OK;
    if (cc != CURLE_OK) {
        e = tr_fail(eb, TR_ERR_UNAVAILABLE, "cannot reach vault at %s: %s",
                    v->addr, curl_easy_strerror(cc));
    } else if (b.over) {
        e = tr_fail(eb, TR_ERR_UNAVAILABLE, "vault sent too large a reply");
    } else if (b.n > 0) {
        *resp = json_loadb(b.p, b.n, 0, NULL);
    }
    body_free(&b);
    if (e == TR_OK && (*status == 429 || *status >= 500)) {
        char msg[256];
        vault_error(*resp, *status, msg, sizeof(msg));
        e = tr_fail(eb, TR_ERR_UNAVAILABLE, "vault at %s is unavailable: %s",
                    v->addr, msg);
    }
    if (e != TR_OK) {
        json_decref(*resp);
        *resp = NULL;
    }
    return e;
}

/* ---- tokens -------------------------------------------------------- */

static tr_err read_token_file(struct keys_vault *v, struct tr_errbuf *eb)
{
    FILE *f = fopen(v->token_file, "r");
    if (f == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "cannot read vault token file %s",
                       v->token_file);
    char buf[sizeof(v->token)];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    buf[n] = '\0';
    tr_err e = TR_OK;
    if (n == 0)
        e = tr_fail(eb, TR_ERR_CONFIG, "vault token file %s is empty",
                    v->token_file);
    else
        memcpy(v->token, buf, n + 1);
    OPENSSL_cleanse(buf, sizeof(buf));
    return e;
}

/* Sets renew_at and expires from a TTL in seconds (0: never). */
static void set_ttl(struct keys_vault *v, json_int_t ttl)
{
    time_t now = time(NULL);
    v->expires = ttl > 0 ? now + (time_t)ttl : 0;
    v->renew_at = ttl > 0 ? now + (time_t)(ttl * 2 / 3) : 0;
}

/* AppRole login; under mu. */
static tr_err login(struct keys_vault *v, struct tr_errbuf *eb)
{
    json_t *in =
        json_pack("{ssss}", "role_id", v->role_id, "secret_id", v->secret_id);
    json_t *resp = NULL;
    long status = 0;
    tr_err e =
        request(v, "POST", "auth/approle/login", NULL, in, &status, &resp, eb);
    json_t *auth = json_object_get(resp, "auth");
    const char *tok = json_string_value(json_object_get(auth, "client_token"));
    if (e == TR_ERR_UNAVAILABLE && status == 500) {
        /* Vault 1.14 answers an unknown secret id with a 500 */
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "vault approle login refused: invalid role id or "
                    "secret id (status 500)");
    } else if (e == TR_OK && (status != 200 || tok == NULL)) {
        char msg[256];
        vault_error(resp, status, msg, sizeof(msg));
        /* some answers quote the secret id */
        if (v->secret_id[0] != '\0' && strstr(msg, v->secret_id) != NULL)
            snprintf(msg, sizeof(msg), "invalid secret id");
        e = tr_fail(eb, TR_ERR_CONFIG, "vault approle login refused: %s", msg);
    } else if (e == TR_OK && strlen(tok) >= sizeof(v->token)) {
        e = tr_fail(eb, TR_ERR_CONFIG, "vault token too long");
    } else if (e == TR_OK) {
        snprintf(v->token, sizeof(v->token), "%s", tok);
        set_ttl(v, json_integer_value(json_object_get(auth, "lease_duration")));
    }
    if (tok != NULL)
        OPENSSL_cleanse((char *)tok, strlen(tok));
    json_t *sid = json_object_get(in, "secret_id");
    if (json_string_value(sid) != NULL)
        OPENSSL_cleanse((char *)json_string_value(sid),
                        strlen(json_string_value(sid)));
    json_decref(in);
    json_decref(resp);
    return e;
}

/* Reads the token's TTL (auth/token/lookup-self); under mu. */
static tr_err lookup_self(struct keys_vault *v, struct tr_errbuf *eb)
{
    json_t *resp = NULL;
    long status = 0;
    tr_err e = request(v, "GET", "auth/token/lookup-self", v->token, NULL,
                       &status, &resp, eb);
    if (e == TR_OK && status != 200) {
        char msg[256];
        vault_error(resp, status, msg, sizeof(msg));
        e = tr_fail(eb, TR_ERR_CONFIG, "vault refused the token: %s", msg);
    } else if (e == TR_OK) {
        json_t *d = json_object_get(resp, "data");
        set_ttl(v, json_integer_value(json_object_get(d, "ttl")));
    }
    json_decref(resp);
    return e;
}

/* Renews the token, or gets a new one; under mu. */
static tr_err renew(struct keys_vault *v, struct tr_errbuf *eb)
{
    json_t *in = json_object();
    json_t *resp = NULL;
    long status = 0;
    tr_err e = request(v, "POST", "auth/token/renew-self", v->token, in,
                       &status, &resp, eb);
    json_decref(in);
    json_t *auth = json_object_get(resp, "auth");
    json_int_t ttl =
        json_integer_value(json_object_get(auth, "lease_duration"));
    json_decref(resp);
    if (e != TR_OK)
        return e;
    /* renewed for at least a minute: keep the token */
    if (status == 200 && ttl >= 60) {
        set_ttl(v, ttl);
        return TR_OK;
    }
    if (v->approle)
        return login(v, eb);
    if (v->token_file[0] != '\0') {
        e = read_token_file(v, eb);
        return e == TR_OK ? lookup_self(v, eb) : e;
    }
    if (status == 200) {
        set_ttl(v, ttl);
        return TR_OK;
    }
    return tr_fail(eb, TR_ERR_CONFIG, "vault refused to renew the token");
}

/* Copies a usable token into tok, renewing it first when it is due, or
 * replacing it when forced (Vault refused it). */
static tr_err get_token(struct keys_vault *v, bool force, char *tok, size_t n,
                        struct tr_errbuf *eb)
{
    pthread_mutex_lock(&v->mu);
    tr_err e = TR_OK;
    time_t now = time(NULL);
    if (force && v->approle)
        e = login(v, eb);
    else if (force && v->token_file[0] != '\0')
        e = read_token_file(v, eb);
    else if (v->renew_at != 0 && now >= v->renew_at)
        e = renew(v, eb);
    snprintf(tok, n, "%s", v->token);
    pthread_mutex_unlock(&v->mu);
    return e;
}

/* A request with the token; once more with a new token when Vault
 * refuses this one and a new one can be had. */
static tr_err call(struct keys_vault *v, const char *method, const char *path,
                   json_t *in, long *status, json_t **resp,
                   struct tr_errbuf *eb)
{
    char tok[sizeof(v->token)];
    tr_err e = get_token(v, false, tok, sizeof(tok), eb);
    if (e == TR_OK)
        e = request(v, method, path, tok, in, status, resp, eb);
    if (e == TR_OK && *status == 403 &&
        (v->approle || v->token_file[0] != '\0')) {
        json_decref(*resp);
        *resp = NULL;
        e = get_token(v, true, tok, sizeof(tok), eb);
        if (e == TR_OK)
            e = request(v, method, path, tok, in, status, resp, eb);
    }
    OPENSSL_cleanse(tok, sizeof(tok));
    return e;
}

/* A failed answer as an error: 403 means the policy does not allow. */
static tr_err answer_error(json_t *resp, long status, const char *what,
                           struct tr_errbuf *eb)
{
    char msg[256];
    vault_error(resp, status, msg, sizeof(msg));
    return tr_fail(eb, status == 403 ? TR_ERR_CONFIG : TR_ERR_CRYPTO,
                   "vault transit %s failed: %s", what, msg);
}

/* ---- the key ------------------------------------------------------- */

tr_err keys_vault_refresh(struct keys_vault *v, struct tr_errbuf *eb)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/keys/%s", v->mount, v->key);
    json_t *resp = NULL;
    long status = 0;
    tr_err e = call(v, "GET", path, NULL, &status, &resp, eb);
    json_t *d = json_object_get(resp, "data");
    if (e == TR_OK && status == 404)
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "vault has no transit key %s at mount %s (create it: "
                    "vault write -f %s/keys/%s)",
                    v->key, v->mount, v->mount, v->key);
    else if (e == TR_OK && status != 200)
        e = answer_error(resp, status, "key read", eb);
    else if (e == TR_OK &&
             !json_is_true(json_object_get(d, "supports_encryption")))
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "vault transit key %s cannot encrypt (use aes256-gcm96)",
                    v->key);
    else if (e == TR_OK)
        atomic_store(&v->latest, (int)json_integer_value(
                                     json_object_get(d, "latest_version")));
    json_decref(resp);
    return e;
}

/* "vault-<key>-<8 hex of sha256(namespace mount key)>" */
static void make_id(const struct keys_vault *v, char *id)
{
    char name[40];
    size_t n = 0;
    for (const char *p = v->key; *p != '\0' && n < sizeof(name) - 1; p++)
        name[n++] =
            isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'
                ? *p
                : '_';
    name[n] = '\0';
    char msg[600];
    int m = snprintf(msg, sizeof(msg), "%s\n%s\n%s", v->ns, v->mount, v->key);
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)msg, (size_t)m, h);
    snprintf(id, KEYS_ID_MAX + 1, "vault-%s-%02x%02x%02x%02x", name, h[0], h[1],
             h[2], h[3]);
}

static tr_err copy_setting(char *dst, size_t n, const char *src,
                           const char *name, struct tr_errbuf *eb)
{
    if (src == NULL)
        src = "";
    if (strlen(src) >= n)
        return tr_fail(eb, TR_ERR_CONFIG, "%s is too long", name);
    memcpy(dst, src, strlen(src) + 1);
    return TR_OK;
}

static tr_err copy_cfg(struct keys_vault *v, const struct keys_vault_cfg *c,
                       struct tr_errbuf *eb)
{
    tr_err e =
        copy_setting(v->addr, sizeof(v->addr), c->addr, "vault-addr", eb);
    if (e == TR_OK)
        e = copy_setting(v->ns, sizeof(v->ns), c->vault_namespace,
                         "vault-namespace", eb);
    if (e == TR_OK)
        e = copy_setting(v->mount, sizeof(v->mount),
                         c->mount && *c->mount ? c->mount : "transit",
                         "vault-mount", eb);
    if (e == TR_OK)
        e = copy_setting(v->key, sizeof(v->key), c->key, "vault-key", eb);
    if (e == TR_OK)
        e = copy_setting(v->ca_file, sizeof(v->ca_file), c->ca_file,
                         "vault-ca-file", eb);
    if (e == TR_OK)
        e = copy_setting(v->token_file, sizeof(v->token_file), c->token_file,
                         "vault-token-file", eb);
    if (e == TR_OK)
        e = copy_setting(v->token, sizeof(v->token), c->token, "vault token",
                         eb);
    if (e == TR_OK)
        e = copy_setting(v->role_id, sizeof(v->role_id), c->role_id,
                         "vault-role-id", eb);
    if (e == TR_OK)
        e = copy_setting(v->secret_id, sizeof(v->secret_id), c->secret_id,
                         "vault secret id", eb);
    return e;
}

static tr_err check_cfg(struct keys_vault *v, struct tr_errbuf *eb)
{
    size_t n = strlen(v->addr);
    while (n > 0 && v->addr[n - 1] == '/')
        v->addr[--n] = '\0';
    while (v->mount[0] != '\0' && v->mount[strlen(v->mount) - 1] == '/')
        v->mount[strlen(v->mount) - 1] = '\0';
    if (strncmp(v->addr, "http://", 7) != 0 &&
        strncmp(v->addr, "https://", 8) != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "vault-addr must start with https:// or http://");
    if (v->key[0] == '\0' || strchr(v->key, '/') != NULL || v->mount[0] == '\0')
        return tr_fail(eb, TR_ERR_CONFIG,
                       "vault needs --vault-key, the transit key's name");
    v->approle = v->role_id[0] != '\0';
    if (v->approle && v->secret_id[0] == '\0')
        return tr_fail(eb, TR_ERR_CONFIG,
                       "vault approle needs a secret id as well as the role "
                       "id (--vault-secret-id-file)");
    if (!v->approle && v->token[0] == '\0' && v->token_file[0] == '\0')
        return tr_fail(eb, TR_ERR_CONFIG,
                       "vault needs a token (--vault-token-file or "
                       "VAULT_TOKEN) or approle (--vault-role-id and "
                       "--vault-secret-id-file)");
    return TR_OK;
}

tr_err keys_vault_open(const struct keys_vault_cfg *vc, struct keys_vault **out,
                       char id[KEYS_ID_MAX + 1], struct tr_errbuf *eb)
{
    struct keys_vault *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&v->mu, NULL);
    tr_err e = copy_cfg(v, vc, eb);
    if (e == TR_OK)
        e = check_cfg(v, eb);
    if (e == TR_OK && !v->approle && v->token[0] == '\0')
        e = read_token_file(v, eb);
    pthread_mutex_lock(&v->mu);
    if (e == TR_OK)
        e = v->approle ? login(v, eb) : lookup_self(v, eb);
    pthread_mutex_unlock(&v->mu);
    if (e == TR_OK)
        e = keys_vault_refresh(v, eb);
    if (e != TR_OK) {
        keys_vault_close(v);
        return e;
    }
    make_id(v, id);
    *out = v;
    return TR_OK;
}

void keys_vault_close(struct keys_vault *v)
{
    if (v == NULL)
        return;
    pthread_mutex_destroy(&v->mu);
    OPENSSL_cleanse(v, sizeof(*v));
    free(v);
}

/* ---- the cache ----------------------------------------------------- */

static bool cache_get(struct keys_vault *v, const unsigned char *hash,
                      unsigned char *dek, size_t n)
{
    bool hit = false;
    time_t now = time(NULL);
    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cache_slot *s = &v->cache[i];
        if (s->used == 0 || memcmp(s->hash, hash, sizeof(s->hash)) != 0)
            continue;
        if (now - s->added > CACHE_TTL || s->n != n) {
            OPENSSL_cleanse(s, sizeof(*s));
            break;
        }
        memcpy(dek, s->dek, n);
        s->used = ++v->clock;
        hit = true;
        break;
    }
    pthread_mutex_unlock(&v->mu);
    return hit;
}

static void cache_put(struct keys_vault *v, const unsigned char *hash,
                      const unsigned char *dek, size_t n)
{
    pthread_mutex_lock(&v->mu);
    struct cache_slot *victim = &v->cache[0];
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (v->cache[i].used < victim->used)
            victim = &v->cache[i];
        if (victim->used == 0)
            break;
    }
    OPENSSL_cleanse(victim, sizeof(*victim));
    memcpy(victim->hash, hash, sizeof(victim->hash));
    memcpy(victim->dek, dek, n);
    victim->n = n;
    victim->added = time(NULL);
    victim->used = ++v->clock;
    pthread_mutex_unlock(&v->mu);
}

/* ---- wrap, unwrap, hmac -------------------------------------------- */

static void wipe_json_string(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s != NULL)
        OPENSSL_cleanse((char *)s, strlen(s));
}

tr_err keys_vault_wrap(struct keys_vault *v, struct arena *a,
                       const unsigned char *dek, size_t n, unsigned char **out,
                       size_t *outlen, struct tr_errbuf *eb)
{
    char b64[128];
    EVP_EncodeBlock((unsigned char *)b64, dek, (int)n);
    char path[300];
    snprintf(path, sizeof(path), "%s/encrypt/%s", v->mount, v->key);
    json_t *in = json_pack("{ss}", "plaintext", b64);
    OPENSSL_cleanse(b64, sizeof(b64));
    json_t *resp = NULL;
    long status = 0;
    tr_err e = call(v, "POST", path, in, &status, &resp, eb);
    wipe_json_string(in, "plaintext");
    json_decref(in);
    const char *ct = json_string_value(
        json_object_get(json_object_get(resp, "data"), "ciphertext"));
    if (e == TR_OK && (status != 200 || ct == NULL))
        e = answer_error(resp, status, "encrypt", eb);
    else if (e == TR_OK &&
             (strncmp(ct, "vault:v", 7) != 0 || strlen(ct) > KEYS_WRAP_MAX))
        e = tr_fail(eb, TR_ERR_CRYPTO, "vault sent unusable ciphertext");
    if (e == TR_OK) {
        *outlen = strlen(ct);
        *out = arena_memdup(a, ct, *outlen);
    }
    json_decref(resp);
    return e;
}

tr_err keys_vault_unwrap(struct keys_vault *v, const unsigned char *w,
                         size_t wlen, unsigned char *dek, size_t n,
                         struct tr_errbuf *eb)
{
    if (wlen < 8 || wlen > KEYS_WRAP_MAX || memcmp(w, "vault:v", 7) != 0 ||
        memchr(w, '\0', wlen) != NULL || n > 64)
        return tr_fail(eb, TR_ERR_CRYPTO, "malformed vault-wrapped data key");
    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256(w, wlen, hash);
    if (cache_get(v, hash, dek, n))
        return TR_OK;
    char path[300];
    snprintf(path, sizeof(path), "%s/decrypt/%s", v->mount, v->key);
    json_t *in = json_pack("{ss%}", "ciphertext", (const char *)w, wlen);
    json_t *resp = NULL;
    long status = 0;
    tr_err e = call(v, "POST", path, in, &status, &resp, eb);
    json_decref(in);
    json_t *d = json_object_get(resp, "data");
    const char *pt = json_string_value(json_object_get(d, "plaintext"));
    if (e == TR_OK && (status != 200 || pt == NULL))
        e = answer_error(resp, status, "decrypt", eb);
    if (e == TR_OK) {
        struct arena *tmp = arena_new();
        unsigned char *raw = NULL;
        size_t rlen = 0;
        if (digest_b64_decode(tmp, pt, strlen(pt), &raw, &rlen) != TR_OK ||
            rlen != n) {
            e = tr_fail(eb, TR_ERR_CRYPTO,
                        "vault unwrapped a data key of the wrong length");
        } else {
            memcpy(dek, raw, n);
            cache_put(v, hash, dek, n);
        }
        if (raw != NULL)
            OPENSSL_cleanse(raw, rlen);
        arena_destroy(tmp);
    }
    wipe_json_string(d, "plaintext");
    json_decref(resp);
    if (e != TR_OK)
        memset(dek, 0, n);
    return e;
}

tr_err keys_vault_hmac(struct keys_vault *v, const void *msg, size_t n,
                       unsigned char out[KEYS_DERIVED_LEN],
                       struct tr_errbuf *eb)
{
    struct arena *tmp = arena_new();
    char path[300];
    snprintf(path, sizeof(path), "%s/hmac/%s/sha2-256", v->mount, v->key);
    json_t *in = json_pack("{sssi}", "input", digest_b64_encode(tmp, msg, n),
                           "key_version", HMAC_VERSION);
    json_t *resp = NULL;
    long status = 0;
    tr_err e = call(v, "POST", path, in, &status, &resp, eb);
    json_decref(in);
    const char *mac = json_string_value(
        json_object_get(json_object_get(resp, "data"), "hmac"));
    const char *prefix = "vault:v1:";
    unsigned char *raw = NULL;
    size_t rlen = 0;
    if (e == TR_OK && (status != 200 || mac == NULL))
        e = answer_error(resp, status, "hmac", eb);
    else if (e == TR_OK && (strncmp(mac, prefix, strlen(prefix)) != 0 ||
                            digest_b64_decode(tmp, mac + strlen(prefix),
                                              strlen(mac) - strlen(prefix),
                                              &raw, &rlen) != TR_OK ||
                            rlen != KEYS_DERIVED_LEN))
        e = tr_fail(eb, TR_ERR_CRYPTO, "vault sent an unusable hmac");
    if (e == TR_OK)
        memcpy(out, raw, KEYS_DERIVED_LEN);
    if (raw != NULL)
        OPENSSL_cleanse(raw, rlen);
    wipe_json_string(json_object_get(resp, "data"), "hmac");
    json_decref(resp);
    arena_destroy(tmp);
    return e;
}

bool keys_vault_is_latest(struct keys_vault *v, const unsigned char *w,
                          size_t wlen)
{
    char want[32];
    int m = snprintf(want, sizeof(want), "vault:v%d:", atomic_load(&v->latest));
    return wlen > (size_t)m && memcmp(w, want, (size_t)m) == 0;
}
