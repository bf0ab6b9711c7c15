/*
 * blob_gcs_auth.c - OAuth2 access tokens for the Google Cloud Storage
 * backend, from a service-account key file or the instance metadata
 * server.
 *
 * Key file (GOOGLE_APPLICATION_CREDENTIALS or the URL's credentials=):
 * the JWT bearer grant of RFC 7523.  A JWT {iss: client_email, scope:
 * devstorage.read_write, aud: token_uri, iat, exp: iat + 1 h} is signed
 * RS256 with the file's private key and POSTed to token_uri, which
 * answers {access_token, expires_in}.  Metadata server: GET
 * http://metadata.google.internal/computeMetadata/v1/instance/
 * service-accounts/default/token with "Metadata-Flavor: Google"
 * (GCE_METADATA_HOST names another host:port, as Google's libraries
 * allow).
 *
 * The token is cached until a minute before it expires (or half its
 * life, if shorter) under a mutex; threads that find it stale wait for
 * the one fetch.  Neither the token nor the key is ever logged; both
 * are wiped when freed.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob_gcs_int.h"
#include "core/util.h"

#define DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define SCOPE "https://www.googleapis.com/auth/devstorage.read_write"
#define METADATA_HOST "metadata.google.internal"
#define METADATA_PATH                                                          \
    "/computeMetadata/v1/instance/service-accounts/default/token"
#define JWT_LIFE_S 3600
#define REPLY_MAX (64 * 1024)
#define KEYFILE_MAX (64 * 1024)

struct blob_gcs_auth {
    enum blob_gcs_auth_kind kind;
    struct blob_gcs_http *h;
    char email[256];
    char key_id[128];
    char token_uri[512]; /* or the metadata URL */
    EVP_PKEY *key;
    pthread_mutex_t mu; /* guards everything below */
    char token[2048];
    int64_t refresh_at; /* Unix seconds; 0: no token */
    unsigned fetches;
};

static tr_err copy_field(json_t *j, const char *name, char *out, size_t n,
                         bool required, const char *path, struct tr_errbuf *eb)
{
    const char *v = json_string_value(json_object_get(j, name));
    if (v == NULL) {
        if (!required)
            return TR_OK;
        return tr_fail(eb, TR_ERR_CONFIG, "gcs: credentials file %s has no %s",
                       path, name);
    }
    if (strlen(v) >= n)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gcs: credentials file %s: %s is too long", path, name);
    memcpy(out, v, strlen(v) + 1);
    return TR_OK;
}

static tr_err load_key_file(struct blob_gcs_auth *a, const char *path,
                            struct tr_errbuf *eb)
{
    json_error_t je;
    tr_err e = TR_OK;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gcs: cannot read credentials file %s: %m", path);
    char *text = calloc(1, KEYFILE_MAX + 1);
    size_t n = text != NULL ? fread(text, 1, KEYFILE_MAX + 1, f) : 0;
    fclose(f);
    json_t *j = NULL;
    if (text == NULL) {
        e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (n > KEYFILE_MAX) {
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "gcs: credentials file %s is larger than 64 KiB", path);
        goto out;
    }
    j = json_loadb(text, n, 0, &je);
    if (!json_is_object(j)) {
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "gcs: credentials file %s is not JSON (line %d)", path,
                    je.line);
        goto out;
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type == NULL || strcmp(type, "service_account") != 0) {
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "gcs: credentials file %s is of type %s; use a "
                    "service-account key file",
                    path, type != NULL ? type : "(none)");
        goto out;
    }
    snprintf(a->token_uri, sizeof(a->token_uri), "%s", DEFAULT_TOKEN_URI);
    e = copy_field(j, "client_email", a->email, sizeof(a->email), true, path,
                   eb);
    if (e == TR_OK)
        e = copy_field(j, "private_key_id", a->key_id, sizeof(a->key_id), false,
                       path, eb);
    if (e == TR_OK)
        e = copy_field(j, "token_uri", a->token_uri, sizeof(a->token_uri),
                       false, path, eb);
    if (e != TR_OK)
        goto out;
    const char *pem = json_string_value(json_object_get(j, "private_key"));
    if (pem == NULL) {
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "gcs: credentials file %s has no private_key", path);
        goto out;
    }
    BIO *bio = BIO_new_mem_buf(pem, -1);
    a->key =
        bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (a->key == NULL || EVP_PKEY_base_id(a->key) != EVP_PKEY_RSA) {
        e = tr_fail(eb, TR_ERR_CONFIG,
                    "gcs: credentials file %s: private_key is not an RSA "
                    "key in PEM",
                    path);
        goto out;
    }
out:
    json_decref(j);
    if (text != NULL) {
        OPENSSL_cleanse(text, KEYFILE_MAX + 1);
        free(text);
    }
    return e;
}

tr_err blob_gcs_auth_new(enum blob_gcs_auth_kind kind, const char *path,
                         struct blob_gcs_http *h, struct blob_gcs_auth **out,
                         struct tr_errbuf *eb)
{
    struct blob_gcs_auth *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    a->kind = kind;
    a->h = h;
    pthread_mutex_init(&a->mu, NULL);
    if (kind == BLOB_GCS_AUTH_FILE) {
        tr_err e = load_key_file(a, path, eb);
        if (e != TR_OK) {
            blob_gcs_auth_free(a);
            return e;
        }
    } else {
        const char *host = getenv("GCE_METADATA_HOST");
        if (host == NULL || host[0] == '\0')
            host = METADATA_HOST;
        snprintf(a->token_uri, sizeof(a->token_uri), "http://%s%s", host,
                 METADATA_PATH);
    }
    *out = a;
    return TR_OK;
}

void blob_gcs_auth_free(struct blob_gcs_auth *a)
{
    if (a == NULL)
        return;
    EVP_PKEY_free(a->key);
    OPENSSL_cleanse(a->token, sizeof(a->token));
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* base64url without padding (RFC 7515 section 2) of p onto b. */
static tr_err b64url(struct buf *b, const void *p, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    unsigned char *tmp = malloc(cap);
    if (tmp == NULL)
        return TR_ERR_NOMEM;
    int len = EVP_EncodeBlock(tmp, p, (int)n);
    while (len > 0 && tmp[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++) {
        if (tmp[i] == '+')
            tmp[i] = '-';
        else if (tmp[i] == '/')
            tmp[i] = '_';
    }
    tr_err e = buf_append(b, tmp, (size_t)len);
    free(tmp);
    return e;
}

static tr_err b64url_json(struct buf *b, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s == NULL)
        return TR_ERR_NOMEM;
    tr_err e = b64url(b, s, strlen(s));
    free(s);
    return e;
}

/* The signed assertion "header.claims.signature" onto jwt. */
static tr_err make_jwt(struct blob_gcs_auth *a, int64_t now, struct buf *jwt,
                       struct tr_errbuf *eb)
{
    json_t *hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    if (hdr != NULL && a->key_id[0] != '\0')
        json_object_set_new(hdr, "kid", json_string(a->key_id));
    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", a->email, "scope", SCOPE,
                  "aud", a->token_uri, "iat", (json_int_t)now, "exp",
                  (json_int_t)(now + JWT_LIFE_S));
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = NULL;
    tr_err e = TR_ERR_NOMEM;
    size_t start = jwt->len; /* jwt may already hold a form's start */
    if (hdr == NULL || claims == NULL)
        goto out;
    e = b64url_json(jwt, hdr);
    if (e == TR_OK)
        e = buf_append(jwt, ".", 1);
    if (e == TR_OK)
        e = b64url_json(jwt, claims);
    if (e != TR_OK)
        goto out;
    size_t siglen = 0;
    md = EVP_MD_CTX_new();
    if (md == NULL ||
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (unsigned char *)jwt->data + start,
                       jwt->len - start) != 1 ||
        (sig = malloc(siglen)) == NULL ||
        EVP_DigestSign(md, sig, &siglen, (unsigned char *)jwt->data + start,
                       jwt->len - start) != 1) {
        e = tr_fail(eb, TR_ERR_CRYPTO, "gcs: cannot sign the token request");
        goto out;
    }
    e = buf_append(jwt, ".", 1);
    if (e == TR_OK)
        e = b64url(jwt, sig, siglen);
out:
    if (e == TR_ERR_NOMEM)
        tr_fail(eb, e, "out of memory");
    EVP_MD_CTX_free(md);
    free(sig);
    json_decref(hdr);
    json_decref(claims);
    return e;
}

/* Sends the token request; the reply body lands in reply. */
static tr_err request_token(struct blob_gcs_auth *a, int64_t now,
                            struct buf *reply, long *status,
                            struct tr_errbuf *eb)
{
    struct blob_gcs_req r = {
        .method = "GET", .url = a->token_uri, .out = reply, .no_auth = true};
    struct buf body;
    buf_init(&body, 16 * 1024);
    tr_err e = TR_OK;
    if (a->kind == BLOB_GCS_AUTH_FILE) {
        e = buf_puts(&body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                            "grant-type%3Ajwt-bearer&assertion=");
        if (e == TR_OK)
            e = make_jwt(a, now, &body, eb);
        if (e != TR_OK)
            goto out;
        r.method = "POST";
        r.body = body.data;
        r.body_len = body.len;
        r.headers = curl_slist_append(
            NULL, "Content-Type: application/x-www-form-urlencoded");
    } else {
        r.headers = curl_slist_append(NULL, "Metadata-Flavor: Google");
    }
    e = blob_gcs_http_do(a->h, &r, eb);
    *status = r.status;
out:
    curl_slist_free_all(r.headers);
    buf_free(&body);
    return e;
}

/* Fetches a token into a->token; a->mu held. */
static tr_err fetch(struct blob_gcs_auth *a, struct tr_errbuf *eb)
{
    int64_t now = util_now_unix();
    struct buf reply;
    buf_init(&reply, REPLY_MAX);
    long status = 0;
    json_t *j = NULL;
    const char *what =
        a->kind == BLOB_GCS_AUTH_FILE ? "token endpoint" : "metadata server";
    tr_err e = request_token(a, now, &reply, &status, eb);
    if (e == TR_ERR_UNAVAILABLE && a->kind == BLOB_GCS_AUTH_METADATA)
        e = tr_fail(eb, e,
                    "gcs: no credentials: the metadata server %.*s is not "
                    "reachable (off Google Cloud, set "
                    "GOOGLE_APPLICATION_CREDENTIALS or credentials=)",
                    (int)strcspn(a->token_uri + 7, "/"), a->token_uri + 7);
    if (e != TR_OK)
        goto out;
    if (status != 200) {
        char why[200];
        blob_gcs_http_reason(&reply, why, sizeof(why));
        e = tr_fail(eb, TR_ERR_UNAUTHORIZED,
                    "gcs: the %s refused a token (%ld%s%s)", what, status,
                    why[0] != '\0' ? ": " : "", why);
        goto out;
    }
    j = json_loadb(reply.data, reply.len, 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    json_int_t life = json_integer_value(json_object_get(j, "expires_in"));
    if (tok == NULL || tok[0] == '\0' || strlen(tok) >= sizeof(a->token) ||
        strpbrk(tok, "\r\n") != NULL || life <= 0) {
        e = tr_fail(eb, TR_ERR_UNAUTHORIZED,
                    "gcs: the %s answered no usable access token", what);
        goto out;
    }
    memcpy(a->token, tok, strlen(tok) + 1);
    int64_t early = life > 120 ? 60 : life / 2;
    a->refresh_at = now + life - early;
    a->fetches++;
out:
    json_decref(j);
    OPENSSL_cleanse(reply.data, reply.len);
    buf_free(&reply);
    return e;
}

tr_err blob_gcs_auth_token(struct blob_gcs_auth *a, char *out, size_t n,
                           struct tr_errbuf *eb)
{
    tr_err e = TR_OK;
    pthread_mutex_lock(&a->mu);
    if (a->refresh_at == 0 || util_now_unix() >= a->refresh_at)
        e = fetch(a, eb);
    if (e == TR_OK) {
        if (strlen(a->token) >= n)
            e = tr_fail(eb, TR_ERR_INTERNAL, "gcs: token too long");
        else
            memcpy(out, a->token, strlen(a->token) + 1);
    }
    pthread_mutex_unlock(&a->mu);
    return e;
}

void blob_gcs_auth_drop(struct blob_gcs_auth *a)
{
    pthread_mutex_lock(&a->mu);
    a->refresh_at = 0;
    OPENSSL_cleanse(a->token, sizeof(a->token));
    pthread_mutex_unlock(&a->mu);
}

unsigned blob_gcs_auth_fetches(struct blob_gcs_auth *a)
{
    pthread_mutex_lock(&a->mu);
    unsigned n = a->fetches;
    pthread_mutex_unlock(&a->mu);
    return n;
}
