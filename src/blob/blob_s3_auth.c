/*
 * blob_s3_auth.c - AWS Signature V4 for S3 requests, and the credential
 * sources: static keys (from the environment, or the shared credentials
 * file through blob_s3_profile.c), the ECS container endpoint, EC2
 * IMDSv2.
 *
 * Our own signer rather than CURLOPT_AWS_SIGV4: every request here is
 * built by blob_s3.c with a canonical path and query, the payload hash
 * is known (bodies are in memory), and the result must not depend on
 * the libcurl version (older ones do not sort query parameters).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "blob/blob_http.h"
#include "blob/blob_s3_int.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/rfc3339.h"
#include "core/util.h"

#define REFRESH_AHEAD_S 300
#define IMDS_TTL_S "21600"
#define SIGNED_MAX 16

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void s3_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(p, n, md);
    hex(md, sizeof(md), out);
}

static void hmac(const void *key, size_t klen, const char *msg,
                 unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg),
         out, &len);
}

struct hdr {
    const char *name;
    size_t name_len;
    const char *value;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static tr_err append_hdr(struct curl_slist **hdrs, const char *name,
                         size_t name_len, const char *value,
                         struct tr_errbuf *eb)
{
    char line[4096 + 64];
    int n =
        snprintf(line, sizeof(line), "%.*s: %s", (int)name_len, name, value);
    if (n < 0 || (size_t)n >= sizeof(line))
        return tr_fail(eb, TR_ERR_INTERNAL, "request header too long");
    struct curl_slist *l = curl_slist_append(*hdrs, line);
    if (l == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    *hdrs = l;
    return TR_OK;
}

tr_err s3_sign(const struct s3_sig_in *in, struct curl_slist **hdrs,
               struct tr_errbuf *eb)
{
    char amz_date[17], day[9];
    time_t t = (time_t)in->now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    memcpy(day, amz_date, 8);
    day[8] = '\0';

    struct hdr h[SIGNED_MAX];
    size_t nh = 0;
    h[nh++] = (struct hdr){"host", 4, in->host};
    h[nh++] = (struct hdr){"x-amz-content-sha256", 20, in->payload_sha};
    h[nh++] = (struct hdr){"x-amz-date", 10, amz_date};
    if (in->creds->token[0] != '\0')
        h[nh++] = (struct hdr){"x-amz-security-token", 20, in->creds->token};
    for (size_t i = 0; in->extra != NULL && in->extra[i] != NULL; i++) {
        const char *colon = strchr(in->extra[i], ':');
        if (colon == NULL || nh == SIGNED_MAX)
            return tr_fail(eb, TR_ERR_INTERNAL, "bad header to sign");
        h[nh++] = (struct hdr){in->extra[i], (size_t)(colon - in->extra[i]),
                               colon + 1};
    }
    qsort(h, nh, sizeof(h[0]), hdr_cmp);

    struct buf canon, names;
    buf_init(&canon, 0);
    buf_init(&names, 0);
    tr_err e =
        buf_printf(&canon, "%s\n%s\n%s\n", in->method, in->path, in->query);
    for (size_t i = 0; i < nh && e == TR_OK; i++) {
        e = buf_printf(&canon, "%.*s:%s\n", (int)h[i].name_len, h[i].name,
                       h[i].value);
        if (e == TR_OK)
            e = buf_printf(&names, "%s%.*s", i ? ";" : "", (int)h[i].name_len,
                           h[i].name);
    }
    if (e == TR_OK)
        e = buf_printf(&canon, "\n%s\n%s", names.data, in->payload_sha);
    if (e != TR_OK) {
        e = tr_fail(eb, e, "cannot sign a request");
        goto out;
    }

    char canon_sha[65];
    s3_sha256_hex(canon.data, canon.len, canon_sha);
    char scope[160], sts[400];
    snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", day, in->region);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope,
             canon_sha);

    char k0[sizeof(in->creds->secret) + 4];
    snprintf(k0, sizeof(k0), "AWS4%s", in->creds->secret);
    unsigned char k[32], mac[32];
    hmac(k0, strlen(k0), day, k);
    hmac(k, 32, in->region, k);
    hmac(k, 32, "s3", k);
    hmac(k, 32, "aws4_request", k);
    hmac(k, 32, sts, mac);
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(k, sizeof(k));
    char sig[65];
    hex(mac, 32, sig);

    for (size_t i = 0; i < nh && e == TR_OK; i++)
        e = append_hdr(hdrs, h[i].name, h[i].name_len, h[i].value, eb);
    char auth[1024];
    snprintf(auth, sizeof(auth),
             "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
             "Signature=%s",
             in->creds->access, scope, names.data, sig);
    if (e == TR_OK)
        e = append_hdr(hdrs, "Authorization", 13, auth, eb);
out:
    buf_free(&canon);
    buf_free(&names);
    return e;
}

/* ---- credential sources ---- */

static tr_err prep_lines(void *ctx, struct curl_slist **hdrs,
                         struct tr_errbuf *eb)
{
    const char *const *lines = ctx;
    for (size_t i = 0; lines[i] != NULL; i++) {
        struct curl_slist *l = curl_slist_append(*hdrs, lines[i]);
        if (l == NULL)
            return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
        *hdrs = l;
    }
    return TR_OK;
}

/* One small request to a credential endpoint; body into r. */
static tr_err fetch(const char *method, const char *url,
                    const char *const *lines, struct blob_http_resp *r,
                    struct tr_errbuf *eb)
{
    struct blob_http_opts o = {.attempts = 3,
                               .base_ms = 100,
                               .cap_ms = 1000,
                               .connect_timeout_ms = 2000,
                               .stall_s = 10,
                               .name = "credential endpoint"};
    struct blob_http *h = NULL;
    tr_err e = blob_http_new(&o, &h, eb);
    if (e != TR_OK)
        return e;
    struct blob_http_call c = {.method = method,
                               .url = url,
                               .prep = prep_lines,
                               .prep_ctx = (void *)lines,
                               .max_resp = 64 << 10};
    e = blob_http_do(h, &c, r, eb);
    blob_http_free(h);
    if (e == TR_OK && r->status != 200)
        e = tr_fail(eb, TR_ERR_UNAVAILABLE, "credential endpoint answered %ld",
                    r->status);
    return e;
}

static tr_err copy_field(json_t *doc, const char *name, char *out, size_t n,
                         bool required, struct tr_errbuf *eb)
{
    const char *v = json_string_value(json_object_get(doc, name));
    if (v == NULL && !required) {
        out[0] = '\0';
        return TR_OK;
    }
    if (v == NULL || strlen(v) >= n)
        return tr_fail(eb, TR_ERR_UNAVAILABLE,
                       "credential endpoint sent no usable %s", name);
    memcpy(out, v, strlen(v) + 1);
    return TR_OK;
}

/* {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} (ECS and
 * IMDS alike) into *c. */
static tr_err parse_creds(const struct buf *body, struct s3_creds *c,
                          struct tr_errbuf *eb)
{
    json_t *doc = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return tr_fail(eb, TR_ERR_UNAVAILABLE,
                       "credential endpoint sent no JSON object");
    }
    tr_err e =
        copy_field(doc, "AccessKeyId", c->access, sizeof(c->access), true, eb);
    if (e == TR_OK)
        e = copy_field(doc, "SecretAccessKey", c->secret, sizeof(c->secret),
                       true, eb);
    if (e == TR_OK)
        e = copy_field(doc, "Token", c->token, sizeof(c->token), false, eb);
    c->expires = 0;
    const char *exp = json_string_value(json_object_get(doc, "Expiration"));
    if (e == TR_OK && exp != NULL &&
        rfc3339_parse(exp, &c->expires, NULL) != TR_OK)
        e = tr_fail(eb, TR_ERR_UNAVAILABLE,
                    "credential endpoint sent a bad Expiration");
    json_decref(doc);
    return e;
}

static tr_err fetch_ecs(struct s3_cred_src *src, struct s3_creds *c,
                        struct tr_errbuf *eb)
{
    char auth[sizeof(src->auth) + 32] = "";
    const char *lines[2] = {NULL, NULL};
    char tok[sizeof(src->auth)];
    const char *value = src->auth;
    if (src->auth_file[0] != '\0') {
        FILE *f = fopen(src->auth_file, "r");
        size_t n = f ? fread(tok, 1, sizeof(tok) - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        if (f == NULL)
            return tr_fail(
                eb, TR_ERR_UNAVAILABLE,
                "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
            n--;
        tok[n] = '\0';
        value = tok;
    }
    if (value[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: %s", value);
        lines[0] = auth;
    }
    struct blob_http_resp r;
    blob_http_resp_init(&r);
    tr_err e = fetch("GET", src->url, lines, &r, eb);
    if (e == TR_OK)
        e = parse_creds(&r.body, c, eb);
    blob_http_resp_free(&r);
    OPENSSL_cleanse(tok, sizeof(tok));
    OPENSSL_cleanse(auth, sizeof(auth));
    return e;
}

static tr_err fetch_imds(struct s3_cred_src *src, struct s3_creds *c,
                         struct tr_errbuf *eb)
{
    char url[sizeof(src->url) + 256], tok_hdr[256], role[128];
    struct blob_http_resp r;
    blob_http_resp_init(&r);
    snprintf(url, sizeof(url), "%s/latest/api/token", src->url);
    const char *ttl[] = {"X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TTL_S,
                         NULL};
    tr_err e = fetch("PUT", url, ttl, &r, eb);
    if (e != TR_OK)
        goto out;
    snprintf(tok_hdr, sizeof(tok_hdr), "X-aws-ec2-metadata-token: %.*s",
             (int)(r.body.len < 200 ? r.body.len : 200), r.body.data);
    const char *lines[] = {tok_hdr, NULL};
    snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/",
             src->url);
    e = fetch("GET", url, lines, &r, eb);
    if (e != TR_OK)
        goto out;
    size_t n = strcspn(r.body.data ? r.body.data : "", "\r\n");
    if (n == 0 || n >= sizeof(role)) {
        e = tr_fail(eb, TR_ERR_UNAVAILABLE, "instance has no IAM role");
        goto out;
    }
    memcpy(role, r.body.data, n);
    role[n] = '\0';
    snprintf(url, sizeof(url),
             "%s/latest/meta-data/iam/security-credentials/%s", src->url, role);
    e = fetch("GET", url, lines, &r, eb);
    if (e == TR_OK)
        e = parse_creds(&r.body, c, eb);
out:
    OPENSSL_cleanse(tok_hdr, sizeof(tok_hdr));
    blob_http_resp_free(&r);
    return e;
}

static tr_err fetch_creds(struct s3_cred_src *src, struct s3_creds *c,
                          struct tr_errbuf *eb)
{
    return src->kind == S3_CRED_ECS ? fetch_ecs(src, c, eb)
                                    : fetch_imds(src, c, eb);
}

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

static tr_err copy_env(const char *name, char *out, size_t n,
                       struct tr_errbuf *eb)
{
    const char *v = getenv(name);
    if (v == NULL)
        v = "";
    if (strlen(v) >= n)
        return tr_fail(eb, TR_ERR_CONFIG, "%s is too long", name);
    memcpy(out, v, strlen(v) + 1);
    return TR_OK;
}

/* Where the ECS endpoint is: a relative URI on the ECS agent's address,
 * or a full one (http only to loopback or the ECS/EKS agents). */
static tr_err ecs_url(struct s3_cred_src *src, struct tr_errbuf *eb)
{
    if (env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
        int n = snprintf(src->url, sizeof(src->url), "http://169.254.170.2%s",
                         getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
        if (n < 0 || (size_t)n >= sizeof(src->url))
            return tr_fail(
                eb, TR_ERR_CONFIG,
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is too long");
        return TR_OK;
    }
    tr_err e = copy_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", src->url,
                        sizeof(src->url), eb);
    if (e != TR_OK)
        return e;
    if (strncmp(src->url, "https://", 8) == 0)
        return TR_OK;
    if (strncmp(src->url, "http://", 7) == 0) {
        const char *host = src->url + 7;
        size_t n =
            host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/");
        static const char *const ok[] = {"localhost", "[::1]", "169.254.170.2",
                                         "169.254.170.23"};
        if (strncmp(host, "127.", 4) == 0 && n > 4)
            return TR_OK;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
            if (strlen(ok[i]) == n && strncmp(host, ok[i], n) == 0)
                return TR_OK;
    }
    return tr_fail(eb, TR_ERR_CONFIG,
                   "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http "
                   "to loopback or the ECS agent");
}

tr_err s3_creds_init(struct s3_cred_src *src, struct tr_errbuf *eb)
{
    memset(src, 0, sizeof(*src));
    pthread_mutex_init(&src->mu, NULL);
    tr_err e = TR_OK;
    if (env_set("AWS_ACCESS_KEY_ID") || env_set("AWS_SECRET_ACCESS_KEY")) {
        src->kind = S3_CRED_STATIC;
        if (!env_set("AWS_ACCESS_KEY_ID") || !env_set("AWS_SECRET_ACCESS_KEY"))
            return tr_fail(eb, TR_ERR_CONFIG,
                           "set both AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY, or neither");
        e = copy_env("AWS_ACCESS_KEY_ID", src->cur.access,
                     sizeof(src->cur.access), eb);
        if (e == TR_OK)
            e = copy_env("AWS_SECRET_ACCESS_KEY", src->cur.secret,
                         sizeof(src->cur.secret), eb);
        if (e == TR_OK)
            e = copy_env("AWS_SESSION_TOKEN", src->cur.token,
                         sizeof(src->cur.token), eb);
        return e;
    }
    bool found = false;
    e = s3_profile_read(&src->cur, &found, eb);
    if (e != TR_OK || found) {
        src->kind = S3_CRED_STATIC;
        return e;
    }
    if (env_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") ||
        env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
        src->kind = S3_CRED_ECS;
        e = ecs_url(src, eb);
        if (e == TR_OK)
            e = copy_env("AWS_CONTAINER_AUTHORIZATION_TOKEN", src->auth,
                         sizeof(src->auth), eb);
        if (e == TR_OK)
            e = copy_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                         src->auth_file, sizeof(src->auth_file), eb);
    } else {
        const char *off = getenv("AWS_EC2_METADATA_DISABLED");
        if (off != NULL && strcmp(off, "true") == 0)
            return tr_fail(eb, TR_ERR_CONFIG,
                           "no s3 credentials: set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY, write ~/.aws/credentials, "
                           "or give the node a role");
        src->kind = S3_CRED_IMDS;
        const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        snprintf(src->url, sizeof(src->url), "%s",
                 ep != NULL && ep[0] ? ep : "http://169.254.169.254");
        size_t n = strlen(src->url);
        while (n > 0 && src->url[n - 1] == '/')
            src->url[--n] = '\0';
    }
    if (e != TR_OK)
        return e;
    struct tr_errbuf why = {{0}};
    e = fetch_creds(src, &src->cur, &why);
    if (e != TR_OK)
        return tr_fail(
            eb, TR_ERR_CONFIG,
            "no s3 credentials: %s (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, write ~/.aws/credentials, or give "
            "the node a role)",
            why.msg);
    return TR_OK;
}

tr_err s3_creds_get(struct s3_cred_src *src, struct s3_creds *out,
                    struct tr_errbuf *eb)
{
    pthread_mutex_lock(&src->mu);
    tr_err e = TR_OK;
    int64_t now = util_now_unix();
    if (src->kind != S3_CRED_STATIC && src->cur.expires != 0 &&
        src->cur.expires - now < REFRESH_AHEAD_S) {
        struct s3_creds fresh;
        struct tr_errbuf why = {{0}};
        e = fetch_creds(src, &fresh, &why);
        if (e == TR_OK) {
            src->cur = fresh;
        } else if (src->cur.expires > now) {
            log_warn("s3: cannot refresh credentials, using the current "
                     "ones: %s",
                     why.msg);
            e = TR_OK;
        } else {
            e = tr_fail(eb, TR_ERR_UNAVAILABLE,
                        "s3 credentials expired and cannot be renewed: %s",
                        why.msg);
        }
        OPENSSL_cleanse(&fresh, sizeof(fresh));
    }
    if (e == TR_OK)
        *out = src->cur;
    pthread_mutex_unlock(&src->mu);
    return e;
}

void s3_creds_fini(struct s3_cred_src *src)
{
    OPENSSL_cleanse(&src->cur, sizeof(src->cur));
    OPENSSL_cleanse(src->auth, sizeof(src->auth));
    pthread_mutex_destroy(&src->mu);
}
