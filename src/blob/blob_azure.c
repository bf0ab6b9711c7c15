/*
 * blob_azure.c - Azure Blob Storage backend (block blobs).
 *
 * URL: azblob://CONTAINER/PREFIX?account=A&endpoint=URL&ca-file=PEM.  An
 * object lives at PREFIX/key in CONTAINER.  The endpoint defaults to
 * https://A.blob.core.windows.net; Azurite's path-style endpoint is
 * http://127.0.0.1:P/A; ca-file names the CAs trusted for https instead
 * of the system's.  Credentials come from the environment:
 * AZURE_STORAGE_ACCOUNT (when the URL names no account), then
 * AZURE_STORAGE_KEY (Shared Key: every request signed with HMAC-SHA256
 * over its canonical string) or else AZURE_STORAGE_SAS_TOKEN (appended to
 * every request).  Neither the key nor the token is ever put in a message.
 *
 * Writes: an object of at most one part (AZ_PART) is one Put Blob from
 * memory, retried as needed.  A larger one up to Put Blob's limit
 * (AZ_SINGLE_MAX) is one Put Blob streamed from its source as it comes:
 * sent once, its last bytes only once the source has ended well, so a
 * refused upload leaves the service a short body, which stores nothing.
 * Beyond that it goes up as blocks (Put Block), one part in memory at a
 * time, and becomes visible at once with Put Block List.  Uncommitted blocks
 * are never visible, so a failed upload leaves the old object (or none); the
 * service drops them after a week.  Block ids carry a random nonce, so
 * two uploads of one key cannot mix their blocks.
 *
 * Reads: open takes the size and ETag (HEAD); reads are served from a
 * read-ahead window filled by ranged GETs (x-ms-range) carrying If-Match,
 * so an object replaced while it is read fails the read instead of mixing
 * versions.  The window starts at the read's size (at least AZ_WIN_MIN)
 * and doubles while reads stay sequential: random log reads stay small.
 * Once sequential reads would take a window of AZ_STREAM_FROM they go on
 * from one GET of the rest of the object (x-ms-range open-ended,
 * If-Match), streamed (blob_http.h), until a seek: the service sends
 * while the server sends on, and a 100 MB read is 6 requests instead of
 * 20.  A stream that cannot start or breaks hands the read back to
 * windows, which retry and report.
 *
 * Requests go through the loop the remote backends share (blob_http.c)
 * with Azure's policy: each attempt signed afresh (x-ms-date), retries
 * with exponential backoff and jitter on connection failures, timeouts,
 * 408, 429 and 5xx, AZ_TRIES times in all.
 *
 * Thread safety: after blob_open_azure() the backend is read-only; its
 * HTTP client shares connections between threads itself.  An object
 * opened for reading is one thread's.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/curl_load.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "blob/blob.h"
#include "blob/blob_azure_int.h"
#include "blob/blob_azure_xml.h"
#include "blob/blob_http.h"
#include "core/buf.h"
#include "core/check.h"
#include "core/util.h"

#define AZ_PART (8u << 20)            /* bytes in memory per upload part */
#define AZ_SINGLE_MAX (5000ull << 20) /* Put Blob's limit (2019-12-12 on) */
#define AZ_WIN_MIN (64u << 10)        /* smallest read-ahead window */
#define AZ_STREAM_FROM (1u << 20)     /* sequential reads stream from here */
#define AZ_TRIES 5                    /* attempts per request */
#define AZ_BACKOFF_MS 100             /* first retry delay, doubled each time */
#define AZ_BACKOFF_MAX_MS 2000        /* longest delay between attempts */
#define AZ_LIST_PAGE 1000             /* blobs per List Blobs page */
#define AZ_BODY_MAX (16u << 20)       /* list and error bodies */
#define AZ_VERSION "2021-08-06"       /* x-ms-version spoken */
#define AZ_MAX_HDRS 8
#define AZ_MAX_PARAMS 6

struct blob_obj {
    struct blob_azure *az;
    char path[1024]; /* PREFIX/key */
    char etag[128];
    uint64_t size;
    char *win;      /* read-ahead window of AZ_PART, made on first use
                       (pages touched only as filled) */
    size_t win_len; /* bytes in it, from win_off on */
    uint64_t win_off;
    size_t win_next;             /* size of the next window */
    struct blob_http_stream *st; /* set: the rest of the object, from */
    uint64_t st_pos;             /* this offset on */
    bool st_failed;              /* a stream would not start: windows */
};

/* One request.  params are query parameters in sorted name order, values
 * not yet escaped; hdrs are extra x-ms-* headers, lower-case names, in
 * sorted order ("name:value"). */
struct az_req {
    const char *method;
    const char *op;   /* what is done, for messages: "put", "get", ... */
    const char *path; /* object path, or NULL for the container */
    const char *params[AZ_MAX_PARAMS][2];
    int n_params;
    const char *hdrs[AZ_MAX_HDRS];
    int n_hdrs;
    const char *if_match;
    const void *body; /* PUT: body_len bytes (may be 0) */
    size_t body_len;
    blob_source src; /* or src_len bytes pulled from src, sent once */
    void *src_ctx;
    uint64_t src_len;
    struct buf *out; /* 2xx body goes here (NULL: discarded) */
    char *dst;       /* or here, up to dst_cap bytes */
    size_t dst_cap;
};

struct az_resp {
    long status;
    int64_t content_length; /* -1: none */
    char etag[128];
    char err_code[64]; /* x-ms-error-code */
    struct buf err;    /* body of an error answer (bounded) */
    struct buf *out;
    char *dst;
    size_t dst_cap, dst_len;
};

static bool az_retryable(long status)
{
    return status == 408 || status == 429 || status / 100 == 5;
}

/* ---- signing ---------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The Shared Key Authorization header for rq (version 2015-02-21 and
 * later: a zero Content-Length is signed as the empty string). */
static tr_err sign_request(struct blob_azure *az, const struct az_req *rq,
                           const char **hdrs, int n_hdrs, struct buf *auth,
                           struct tr_errbuf *eb)
{
    struct buf s;
    buf_init(&s, 64 << 10);
    char clen[32] = "";
    if (rq->src != NULL)
        snprintf(clen, sizeof(clen), "%llu", (unsigned long long)rq->src_len);
    else if (rq->body != NULL && rq->body_len > 0)
        snprintf(clen, sizeof(clen), "%zu", rq->body_len);
    tr_err e = buf_printf(&s, "%s\n\n\n%s\n\n\n\n\n%s\n\n\n\n", rq->method,
                          clen, rq->if_match != NULL ? rq->if_match : "");
    for (int i = 0; e == TR_OK && i < n_hdrs; i++)
        e = buf_printf(&s, "%s\n", hdrs[i]);
    if (e == TR_OK)
        e = buf_printf(&s, "/%s%s/%s%s%s", az->account, az->base_path,
                       az->container, rq->path != NULL ? "/" : "",
                       rq->path != NULL ? rq->path : "");
    for (int i = 0; e == TR_OK && i < rq->n_params; i++)
        e = buf_printf(&s, "\n%s:%s", rq->params[i][0], rq->params[i][1]);
    if (e != TR_OK) {
        buf_free(&s);
        return tr_fail(eb, TR_ERR_INTERNAL, "azure blob: request too long");
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), az->key, (int)az->key_len, (const unsigned char *)s.data,
         s.len, mac, &mac_len);
    buf_free(&s);
    char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)b64, mac, (int)mac_len);
    buf_reset(auth);
    if (buf_printf(auth, "Authorization: SharedKey %s:%s", az->account, b64) !=
        TR_OK)
        return tr_fail(eb, TR_ERR_INTERNAL, "azure blob: request too long");
    return TR_OK;
}

/* ---- one request ------------------------------------------------------ */

/* Where a 2xx answer's body goes (rq->out or rq->dst); any other
 * answer's body is kept, bounded, for its error code.  A body over its
 * limit fails the request (blob_http: TR_ERR_TOO_LARGE). */
static bool on_body(void *ud, long status, const char *p, size_t len)
{
    struct az_resp *rs = ud;
    if (p == NULL) { /* a new attempt */
        rs->dst_len = 0;
        buf_reset(&rs->err);
        if (rs->out != NULL)
            buf_reset(rs->out);
        return true;
    }
    if (status / 100 == 2 && rs->dst != NULL) {
        if (len > rs->dst_cap - rs->dst_len)
            return false;
        memcpy(rs->dst + rs->dst_len, p, len);
        rs->dst_len += len;
        return true;
    }
    if (status / 100 != 2) {
        if (rs->err.len + len <= rs->err.max)
            (void)buf_append(&rs->err, p, len); /* keep a long one's start */
        return true;
    }
    return rs->out == NULL || buf_append(rs->out, p, len) == TR_OK;
}

/* The request's URL: endpoint, container, path, escaped query, SAS. */
static tr_err build_url(struct blob_azure *az, const struct az_req *rq,
                        struct buf *url)
{
    tr_err e = buf_printf(url, "%s/%s%s%s", az->base_url, az->container,
                          rq->path != NULL ? "/" : "",
                          rq->path != NULL ? rq->path : "");
    for (int i = 0; e == TR_OK && i < rq->n_params; i++) {
        e = buf_printf(url, "%c%s=", i == 0 ? '?' : '&', rq->params[i][0]);
        if (e == TR_OK)
            e = blob_http_escape(url, rq->params[i][1], false);
    }
    if (e == TR_OK && az->sas != NULL)
        e = buf_printf(url, "%c%s", rq->n_params == 0 ? '?' : '&', az->sas);
    return e;
}

struct az_prep {
    struct blob_azure *az;
    const struct az_req *rq;
};

/* An attempt's headers: x-ms-date (now), x-ms-version, the request's
 * x-ms-* headers, If-Match and, with a Shared Key, the signature over
 * them. */
static tr_err prep(void *ctx, struct curl_slist **hl, struct tr_errbuf *eb)
{
    struct az_prep *ap = ctx;
    const struct az_req *rq = ap->rq;
    char date[80], version[64], ifm[160];
    const char *hdrs[AZ_MAX_HDRS + 2];
    int n_hdrs = 0;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "x-ms-date:%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(version, sizeof(version), "x-ms-version:%s", AZ_VERSION);
    hdrs[n_hdrs++] = date;
    hdrs[n_hdrs++] = version;
    for (int i = 0; i < rq->n_hdrs && i < AZ_MAX_HDRS; i++)
        hdrs[n_hdrs++] = rq->hdrs[i];
    qsort(hdrs, (size_t)n_hdrs, sizeof(hdrs[0]), cmp_str);
    struct buf auth;
    buf_init(&auth, 1024);
    tr_err e = TR_OK;
    if (ap->az->key_len > 0)
        e = sign_request(ap->az, rq, hdrs, n_hdrs, &auth, eb);
    struct curl_slist *l = NULL;
    for (int i = 0; e == TR_OK && i < n_hdrs + 2; i++) {
        const char *h = i < n_hdrs ? hdrs[i] : NULL;
        if (i == n_hdrs && auth.len > 0)
            h = auth.data;
        if (i == n_hdrs + 1 && rq->if_match != NULL) {
            snprintf(ifm, sizeof(ifm), "If-Match: %s", rq->if_match);
            h = ifm;
        }
        if (h != NULL && (l = curl_slist_append(*hl, h)) == NULL)
            e = tr_fail(eb, TR_ERR_NOMEM, "azure blob: out of memory");
        else if (h != NULL)
            *hl = l;
    }
    buf_free(&auth);
    return e;
}

/* The message for an answer that is not 2xx: status, the service's error
 * code and what it means for the operator. */
static tr_err answer_error(struct blob_azure *az, const struct az_req *rq,
                           struct az_resp *rs, struct tr_errbuf *eb)
{
    char code[64];
    snprintf(code, sizeof(code), "%s", rs->err_code);
    if (code[0] == '\0' && rs->err.len > 0)
        azx_text(rs->err.data, rs->err.len, "Code", code, sizeof(code));
    const char *what = rq->path != NULL ? rq->path : az->container;
    if (strcmp(code, "ContainerNotFound") == 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "azure blob: container %s does not exist at %s",
                       az->container, az->host);
    if (rs->status == 403 || rs->status == 401)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "azure blob: %s %s: access denied (%ld %s): check "
                       "the account and AZURE_STORAGE_KEY or the SAS token",
                       rq->op, what, rs->status, code);
    if (rs->status == 404)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "azure blob: %s %s: not found",
                       rq->op, what);
    if (rs->status == 412)
        return tr_fail(eb, TR_ERR_IO,
                       "azure blob: %s %s: object changed while being read",
                       rq->op, what);
    return tr_fail(
        eb, az_retryable(rs->status) ? TR_ERR_UNAVAILABLE : TR_ERR_IO,
        "azure blob: %s %s: HTTP %ld %s", rq->op, what, rs->status, code);
}

/* The headers of an answer that az_do() keeps. */
static void answer_headers(const struct blob_http_resp *r, struct az_resp *rs)
{
    char num[32];
    int64_t cl;
    rs->status = r->status;
    if (!blob_http_header(&r->hdrs, "ETag", rs->etag, sizeof(rs->etag)))
        rs->etag[0] = '\0';
    if (!blob_http_header(&r->hdrs, "x-ms-error-code", rs->err_code,
                          sizeof(rs->err_code)))
        rs->err_code[0] = '\0';
    rs->content_length =
        blob_http_header(&r->hdrs, "Content-Length", num, sizeof(num)) &&
                util_parse_i64(num, &cl) == TR_OK
            ? cl
            : -1;
}

/* Sends rq through the shared loop; TR_OK only for a 2xx answer, whose
 * headers are left in rs (body in rq->out or rq->dst). */
static tr_err az_do(struct blob_azure *az, const struct az_req *rq,
                    struct az_resp *rs, struct tr_errbuf *eb)
{
    struct buf url;
    buf_init(&url, 64 << 10);
    buf_init(&rs->err, 64 << 10);
    rs->out = rq->out;
    rs->dst = rq->dst;
    rs->dst_cap = rq->dst_cap;
    struct az_prep ap = {az, rq};
    struct blob_http_call c = {.method = rq->method,
                               .body = rq->body,
                               .body_len = rq->body_len,
                               .src = rq->src,
                               .src_ctx = rq->src_ctx,
                               .src_len = rq->src_len,
                               .prep = prep,
                               .prep_ctx = &ap,
                               .sink = on_body,
                               .sink_ctx = rs};
    struct blob_http_resp r;
    blob_http_resp_init(&r);
    const char *what = rq->path != NULL ? rq->path : az->container;
    tr_err e = build_url(az, rq, &url);
    if (e != TR_OK) {
        e = tr_fail(eb, TR_ERR_INTERNAL, "azure blob: url too long");
        goto out;
    }
    c.url = url.data;
    e = blob_http_do(az->http, &c, &r, eb);
    if (e == TR_ERR_TOO_LARGE)
        e = tr_fail(eb, TR_ERR_IO, "azure blob: %s %s: answer too large",
                    rq->op, what);
    else if (e != TR_OK && eb != NULL) {
        struct tr_errbuf tmp = *eb;
        e = tr_fail(eb, e, "azure blob: %s %s: %s", rq->op, what, tmp.msg);
    }
    if (e != TR_OK)
        goto out;
    answer_headers(&r, rs);
    if (rs->status / 100 != 2)
        e = answer_error(az, rq, rs, eb);
out:
    blob_http_resp_free(&r);
    buf_free(&rs->err);
    buf_free(&url);
    return e;
}

static void obj_path(struct blob_azure *az, const char *key, char *dst,
                     size_t cap)
{
    snprintf(dst, cap, "%s%s", az->prefix, key);
}

/* ---- writes ----------------------------------------------------------- */

static tr_err put_single(struct blob_azure *az, const char *path,
                         const char *data, size_t len, struct tr_errbuf *eb)
{
    struct az_req rq = {.method = "PUT",
                        .op = "put",
                        .path = path,
                        .hdrs = {"x-ms-blob-type:BlockBlob"},
                        .n_hdrs = 1,
                        .body = data,
                        .body_len = len};
    struct az_resp rs = {0};
    return az_do(az, &rq, &rs, eb);
}

/* One Put Blob of len bytes pulled from src while they are sent. */
static tr_err put_streamed(struct blob_azure *az, const char *path,
                           uint64_t len, blob_source src, void *ctx,
                           struct tr_errbuf *eb)
{
    struct az_req rq = {.method = "PUT",
                        .op = "put",
                        .path = path,
                        .hdrs = {"x-ms-blob-type:BlockBlob"},
                        .n_hdrs = 1,
                        .src = src,
                        .src_ctx = ctx,
                        .src_len = len};
    struct az_resp rs = {0};
    return az_do(az, &rq, &rs, eb);
}

static void block_id(const char *nonce, unsigned idx, char *dst, size_t cap)
{
    char raw[32];
    int n = snprintf(raw, sizeof(raw), "tr%s%06u", nonce, idx);
    TR_ASSERT(n == 24 && cap >= 33);
    EVP_EncodeBlock((unsigned char *)dst, (const unsigned char *)raw, n);
}

static tr_err put_blocks(struct blob_azure *az, const char *path, uint64_t len,
                         blob_source src, void *ctx, char *part,
                         struct tr_errbuf *eb)
{
    unsigned char rnd[8];
    char nonce[17];
    util_random(rnd, sizeof(rnd));
    for (int i = 0; i < 8; i++)
        snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
    uint64_t n_blocks = (len + AZ_PART - 1) / AZ_PART;
    if (n_blocks > 50000)
        return tr_fail(eb, TR_ERR_TOO_LARGE, "azure blob: object too large");
    struct buf list;
    buf_init(&list, 0);
    tr_err e = buf_puts(&list, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                               "<BlockList>");
    for (unsigned i = 0; e == TR_OK && i < n_blocks; i++) {
        uint64_t left = len - (uint64_t)i * AZ_PART;
        size_t n = left < AZ_PART ? (size_t)left : AZ_PART;
        e = blob_source_exact(src, ctx, part, n, eb);
        if (e != TR_OK)
            break;
        char id[40];
        block_id(nonce, i, id, sizeof(id));
        struct az_req rq = {.method = "PUT",
                            .op = "put block",
                            .path = path,
                            .params = {{"blockid", id}, {"comp", "block"}},
                            .n_params = 2,
                            .body = part,
                            .body_len = n};
        struct az_resp rs = {0};
        e = az_do(az, &rq, &rs, eb);
        if (e == TR_OK)
            e = buf_printf(&list, "<Latest>%s</Latest>", id);
    }
    if (e == TR_OK) /* the source may still refuse at its end */
        e = blob_source_end(src, ctx, eb);
    if (e == TR_OK)
        e = buf_puts(&list, "</BlockList>");
    if (e == TR_OK) {
        struct az_req rq = {.method = "PUT",
                            .op = "put block list",
                            .path = path,
                            .params = {{"comp", "blocklist"}},
                            .n_params = 1,
                            .body = list.data,
                            .body_len = list.len};
        struct az_resp rs = {0};
        e = az_do(az, &rq, &rs, eb);
    }
    buf_free(&list);
    return e;
}

static tr_err az_put_stream(struct blob *b, const char *key, uint64_t len,
                            blob_source src, void *ctx, struct tr_errbuf *eb)
{
    struct blob_azure *az = (struct blob_azure *)b;
    char path[1024];
    obj_path(az, key, path, sizeof(path));
    if (len > AZ_PART && len <= AZ_SINGLE_MAX)
        return put_streamed(az, path, len, src, ctx, eb);
    size_t cap = len < AZ_PART ? (size_t)len : AZ_PART;
    char *part = malloc(cap > 0 ? cap : 1);
    if (part == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "azure blob: out of memory");
    tr_err e;
    if (len <= AZ_PART) {
        e = blob_source_exact(src, ctx, part, (size_t)len, eb);
        if (e == TR_OK)
            e = blob_source_end(src, ctx, eb);
        if (e == TR_OK)
            e = put_single(az, path, part, (size_t)len, eb);
    } else {
        e = put_blocks(az, path, len, src, ctx, part, eb);
    }
    free(part);
    return e;
}

static tr_err az_remove(struct blob *b, const char *key, struct tr_errbuf *eb)
{
    struct blob_azure *az = (struct blob_azure *)b;
    char path[1024];
    obj_path(az, key, path, sizeof(path));
    struct az_req rq = {.method = "DELETE", .op = "remove", .path = path};
    struct az_resp rs = {0};
    struct tr_errbuf mine;
    tr_err e = az_do(az, &rq, &rs, &mine);
    if (e == TR_ERR_NOT_FOUND)
        return TR_OK;
    if (e != TR_OK && eb != NULL)
        *eb = mine;
    return e;
}

/* ---- reads ------------------------------------------------------------ */

static tr_err az_open(struct blob *b, const char *key, struct blob_obj **o,
                      uint64_t *size, struct tr_errbuf *eb)
{
    struct blob_azure *az = (struct blob_azure *)b;
    struct blob_obj *ob = calloc(1, sizeof(*ob));
    if (ob == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "azure blob: out of memory");
    ob->az = az;
    obj_path(az, key, ob->path, sizeof(ob->path));
    struct az_req rq = {.method = "HEAD", .op = "open", .path = ob->path};
    struct az_resp rs = {0};
    tr_err e = az_do(az, &rq, &rs, eb);
    if (e == TR_OK && rs.content_length < 0)
        e = tr_fail(eb, TR_ERR_IO, "azure blob: open %s: no size in answer",
                    ob->path);
    if (e != TR_OK) {
        free(ob);
        return e;
    }
    snprintf(ob->etag, sizeof(ob->etag), "%s", rs.etag);
    ob->size = (uint64_t)rs.content_length;
    ob->win_next = AZ_WIN_MIN;
    *o = ob;
    *size = ob->size;
    return TR_OK;
}

/* Refills the window with bytes from off on (off < size). */
static tr_err fill(struct blob_obj *o, uint64_t off, size_t want,
                   struct tr_errbuf *eb)
{
    bool sequential = o->win_len > 0 && off == o->win_off + o->win_len;
    size_t n = sequential ? o->win_next * 2 : AZ_WIN_MIN;
    if (n < want)
        n = want;
    if (n > AZ_PART)
        n = AZ_PART;
    if (n > o->size - off)
        n = (size_t)(o->size - off);
    o->win_next = n;
    if (o->win == NULL) {
        o->win = malloc(AZ_PART);
        if (o->win == NULL)
            return tr_fail(eb, TR_ERR_NOMEM, "azure blob: out of memory");
    }
    char range[96];
    snprintf(range, sizeof(range), "x-ms-range:bytes=%llu-%llu",
             (unsigned long long)off, (unsigned long long)(off + n - 1));
    struct az_req rq = {.method = "GET",
                        .op = "read",
                        .path = o->path,
                        .hdrs = {range},
                        .n_hdrs = 1,
                        .if_match = o->etag[0] != '\0' ? o->etag : NULL,
                        .dst = o->win,
                        .dst_cap = n};
    struct az_resp rs = {0};
    o->win_off = off;
    tr_err e = az_do(o->az, &rq, &rs, eb);
    o->win_len = e == TR_OK ? rs.dst_len : 0;
    if (e == TR_OK && o->win_len != n)
        e = tr_fail(eb, TR_ERR_IO, "azure blob: read %s: short answer",
                    o->path);
    if (e != TR_OK)
        o->win_len = 0;
    return e;
}

static void stream_drop(struct blob_obj *o)
{
    blob_http_stream_close(o->st);
    o->st = NULL;
}

/* Up to n bytes at off from the stream, started there if it is not
 * there already; *got 0 when it cannot start or broke at once (the
 * caller reads through windows then, whose errors are the ones to
 * report). */
static void stream_take(struct blob_obj *o, char *dst, size_t n, uint64_t off,
                        size_t *got)
{
    struct tr_errbuf eb = {{0}};
    *got = 0;
    if (o->st == NULL || o->st_pos != off) {
        stream_drop(o);
        char range[64];
        snprintf(range, sizeof(range), "x-ms-range:bytes=%llu-",
                 (unsigned long long)off);
        struct az_req rq = {.method = "GET",
                            .op = "read",
                            .path = o->path,
                            .hdrs = {range},
                            .n_hdrs = 1,
                            .if_match = o->etag[0] != '\0' ? o->etag : NULL};
        struct az_prep ap = {o->az, &rq};
        struct buf url;
        buf_init(&url, 64 << 10);
        struct blob_http_call c = {
            .method = "GET", .prep = prep, .prep_ctx = &ap};
        struct blob_http_resp r;
        blob_http_resp_init(&r);
        tr_err e = build_url(o->az, &rq, &url);
        c.url = url.data;
        if (e == TR_OK)
            e = blob_http_stream_open(o->az->http, &c, &o->st, &r, &eb);
        long status = r.status;
        blob_http_resp_free(&r);
        buf_free(&url);
        if (e != TR_OK || o->st == NULL || status != 206) {
            stream_drop(o);
            return;
        }
        o->st_pos = off;
    }
    tr_err e = blob_http_stream_read(o->st, dst, n, got, &eb);
    o->st_pos += *got;
    if (e != TR_OK || (*got < n && o->st_pos < o->size))
        stream_drop(o); /* broken or cut short: the next read starts over */
}

static tr_err az_read(struct blob_obj *o, void *buf, size_t n, uint64_t off,
                      size_t *got, struct tr_errbuf *eb)
{
    *got = 0;
    while (n > 0 && off < o->size) {
        bool in_win = off >= o->win_off && off < o->win_off + o->win_len;
        bool streaming = o->st != NULL && off == o->st_pos;
        if (!in_win && (streaming || (o->win_len > 0 && !o->st_failed &&
                                      off == o->win_off + o->win_len &&
                                      o->win_next * 2 >= AZ_STREAM_FROM))) {
            size_t k = 0;
            stream_take(o, (char *)buf + *got, n, off, &k);
            if (k > 0) {
                *got += k;
                off += k;
                n -= k;
                continue;
            }
            o->st_failed = !streaming; /* it would not even start */
        }
        if (!in_win) {
            stream_drop(o); /* a seek, or windows again */
            tr_err e = fill(o, off, n, eb);
            if (e != TR_OK)
                return e;
        }
        size_t at = (size_t)(off - o->win_off);
        size_t take = o->win_len - at;
        if (take > n)
            take = n;
        memcpy((char *)buf + *got, o->win + at, take);
        *got += take;
        off += take;
        n -= take;
    }
    return TR_OK;
}

static int az_fd(struct blob_obj *o)
{
    return -1;
}

static void az_obj_close(struct blob_obj *o)
{
    if (o == NULL)
        return;
    stream_drop(o);
    free(o->win);
    free(o);
}

/* ---- list ------------------------------------------------------------- */

struct list_ctx {
    struct blob_azure *az;
    blob_list_fn fn;
    void *ctx;
};

static tr_err on_listed(void *ud, const char *name, uint64_t size,
                        int64_t mtime, struct tr_errbuf *eb)
{
    struct list_ctx *lc = ud;
    size_t plen = strlen(lc->az->prefix);
    if (strncmp(name, lc->az->prefix, plen) != 0)
        return TR_OK;
    return lc->fn(lc->ctx, name + plen, size, mtime, eb);
}

static tr_err az_list(struct blob *b, const char *prefix, blob_list_fn fn,
                      void *ctx, struct tr_errbuf *eb)
{
    struct blob_azure *az = (struct blob_azure *)b;
    char want[1024], page[16];
    snprintf(want, sizeof(want), "%s%s", az->prefix, prefix);
    snprintf(page, sizeof(page), "%d", az->list_page);
    struct buf body, marker;
    buf_init(&body, AZ_BODY_MAX);
    buf_init(&marker, 64 << 10);
    buf_puts(&marker, "");
    struct list_ctx lc = {az, fn, ctx};
    tr_err e = TR_OK;
    do {
        struct az_req rq = {.method = "GET", .op = "list", .out = &body};
        int n = 0;
        rq.params[n][0] = "comp";
        rq.params[n++][1] = "list";
        if (marker.len > 0) {
            rq.params[n][0] = "marker";
            rq.params[n++][1] = marker.data;
        }
        rq.params[n][0] = "maxresults";
        rq.params[n++][1] = page;
        if (want[0] != '\0') {
            rq.params[n][0] = "prefix";
            rq.params[n++][1] = want;
        }
        rq.params[n][0] = "restype";
        rq.params[n++][1] = "container";
        rq.n_params = n;
        struct az_resp rs = {0};
        e = az_do(az, &rq, &rs, eb);
        if (e != TR_OK)
            break;
        e = azx_list(body.data, body.len, on_listed, &lc, &marker, eb);
    } while (e == TR_OK && marker.len > 0);
    buf_free(&body);
    buf_free(&marker);
    return e;
}

/* ---- opening ---------------------------------------------------------- */

static void az_close(struct blob *b)
{
    struct blob_azure *az = (struct blob_azure *)b;
    if (az == NULL)
        return;
    blob_http_free(az->http);
    if (az->sas != NULL) {
        memset(az->sas, 0, strlen(az->sas));
        free(az->sas);
    }
    memset(az->key, 0, sizeof(az->key));
    free(az);
}

static const struct blob_ops azure_ops = {
    .put_stream = az_put_stream,
    .put_file = NULL,
    .open = az_open,
    .read = az_read,
    .fd = az_fd,
    .obj_close = az_obj_close,
    .remove = az_remove,
    .list = az_list,
    .close = az_close,
};

tr_err blob_open_azure(const char *url, const char *spool_dir,
                       struct blob **out, struct tr_errbuf *eb)
{
    struct blob_azure *az = calloc(1, sizeof(*az));
    if (az == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "azure blob: out of memory");
    az->base.ops = &azure_ops;
    az->list_page = AZ_LIST_PAGE;
    /* tests shrink pages so that paging with markers is exercised */
    const char *page = getenv("TERRACE_TEST_AZURE_LIST_PAGE");
    int64_t pn;
    if (page != NULL && util_parse_i64(page, &pn) == TR_OK && pn > 0 &&
        pn <= 5000)
        az->list_page = (int)pn;
    struct blob_http_opts ho = {.attempts = AZ_TRIES,
                                .base_ms = AZ_BACKOFF_MS,
                                .cap_ms = AZ_BACKOFF_MAX_MS,
                                .connect_timeout_ms = 5000,
                                .stall_s = 30,
                                .name = "azure",
                                .retryable = az_retryable};
    tr_err e = azure_config(az, url, eb);
    ho.ca_file = az->ca_file[0] != '\0' ? az->ca_file : NULL;
    if (e == TR_OK)
        e = blob_http_new(&ho, &az->http, eb);
    if (e == TR_OK && snprintf(az->base.tmp_dir, sizeof(az->base.tmp_dir), "%s",
                               spool_dir != NULL ? spool_dir : "") >=
                          (int)sizeof(az->base.tmp_dir))
        e = tr_fail(eb, TR_ERR_CONFIG, "spool directory path too long");
    if (e != TR_OK) {
        az_close(&az->base);
        return e;
    }
    *out = &az->base;
    return TR_OK;
}
