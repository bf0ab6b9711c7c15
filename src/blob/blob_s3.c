/*
 * blob_s3.c - the S3 blob backend (AWS S3 and S3-compatible servers).
 *
 * URL: s3://BUCKET/PREFIX?region=R&endpoint=URL&force-path-style=true
 *      &sse=aws:kms|AES256&sse-kms-key-id=ID&part-size=MiB
 *      &single-put-max=MiB&ca-file=PEM
 * Objects live at PREFIX/key in BUCKET.  Without endpoint the service is
 * https://s3.REGION.amazonaws.com, addressed virtual-hosted
 * (BUCKET.host) unless force-path-style=true (host/BUCKET).  The region
 * defaults to AWS_REGION, AWS_DEFAULT_REGION, then us-east-1.  ca-file
 * names the CAs trusted for an https endpoint instead of the system's.
 *
 * Writes: an object of at most one part (8 MiB unless part-size says)
 * is one PutObject from memory, retried as needed.  A larger one, up to
 * single-put-max (5 GiB, S3's limit, unless it says less), is one
 * PutObject streamed from its source as it comes (UNSIGNED-PAYLOAD: the
 * body's hash is not known before it is sent), so sending overlaps
 * receiving and nothing waits on a part's round trip; it is sent once
 * (no retry once its body has started; the caller's client retries the
 * upload) and its last bytes go out only once the source has ended
 * well, so a refused upload leaves S3 a short body and no object.  Beyond
 * single-put-max it is a multipart upload, one part in memory at a time,
 * aborted on any failure.  Either way a reader sees the old
 * object or the whole new one and nothing half-written.  Reads: HEAD at
 * open (size and ETag), then one ranged GET streamed from the offset
 * asked, continued by sequential reads, started again only on a seek or
 * a broken transfer; If-Match pins the version opened.  Every request
 * is signed (blob_s3_auth.c) and retried on 5xx, 429 and transport
 * failures (blob_http.c).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob.h"
#include "blob/blob_http.h"
#include "blob/blob_s3_int.h"
#include "core/buf.h"
#include "core/rfc3339.h"
#include "core/util.h"

#define PART_DEFAULT (8u << 20)
#define PARTS_MAX 10000
#define EMPTY_SHA                                                              \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct blob_s3 {
    struct blob base;
    char bucket[64];
    char prefix[512]; /* "" or ending in '/' */
    char region[64];
    char scheme[8];     /* "http" or "https" */
    char host[320];     /* the Host header: BUCKET.host or host */
    char base_path[80]; /* "" (virtual-hosted) or "/BUCKET" */
    char sse[16];       /* "", "AES256" or "aws:kms" */
    char kms_key[256];
    size_t part_size;
    uint64_t single_max; /* larger objects go in parts */
    struct blob_http *http;
    struct s3_cred_src creds;
};

struct blob_obj {
    struct blob_s3 *s;
    char path[1024];
    char etag[160];
    uint64_t size;
    uint64_t pos; /* where the open stream is */
    struct blob_http_stream *st;
};

/* ---- names ---- */

/* The canonical path of key: base_path/PREFIXkey, encoded. */
static tr_err key_path(const struct blob_s3 *s, const char *key, char *out,
                       size_t n, struct tr_errbuf *eb)
{
    struct buf b;
    buf_init(&b, n - 1);
    tr_err e = buf_printf(&b, "%s/", s->base_path);
    if (e == TR_OK)
        e = blob_http_escape(&b, s->prefix, true);
    if (e == TR_OK)
        e = blob_http_escape(&b, key, true);
    if (e == TR_OK)
        memcpy(out, b.data, b.len + 1);
    buf_free(&b);
    return e == TR_OK ? TR_OK : tr_fail(eb, TR_ERR_INVALID, "key too long");
}

/* ---- requests ---- */

struct req {
    struct blob_s3 *s;
    const char *method, *path, *query;
    const void *body;
    size_t body_len;
    bool sse;                /* send the server-side-encryption headers */
    const char *const *more; /* unsigned header lines, NULL-ended */
    blob_source src;         /* or a body of src_len bytes pulled from it */
    void *src_ctx;
    uint64_t src_len;
};

static tr_err prep(void *ctx, struct curl_slist **hdrs, struct tr_errbuf *eb)
{
    struct req *r = ctx;
    struct s3_creds c;
    tr_err e = s3_creds_get(&r->s->creds, &c, eb);
    if (e != TR_OK)
        return e;
    char sha[65] = EMPTY_SHA;
    if (r->src != NULL) /* not known before it is sent */
        snprintf(sha, sizeof(sha), "UNSIGNED-PAYLOAD");
    else if (r->body_len > 0)
        s3_sha256_hex(r->body, r->body_len, sha);
    char sse[64], kms[320];
    const char *extra[3] = {NULL, NULL, NULL};
    if (r->sse && r->s->sse[0] != '\0') {
        snprintf(sse, sizeof(sse), "x-amz-server-side-encryption:%s",
                 r->s->sse);
        extra[0] = sse;
        if (r->s->kms_key[0] != '\0') {
            snprintf(kms, sizeof(kms),
                     "x-amz-server-side-encryption-aws-kms-key-id:%s",
                     r->s->kms_key);
            extra[1] = kms;
        }
    }
    struct s3_sig_in in = {.method = r->method,
                           .host = r->s->host,
                           .path = r->path,
                           .query = r->query,
                           .payload_sha = sha,
                           .region = r->s->region,
                           .creds = &c,
                           .extra = extra,
                           .now = util_now_unix()};
    e = s3_sign(&in, hdrs, eb);
    for (size_t i = 0; e == TR_OK && r->more && r->more[i]; i++) {
        struct curl_slist *l = curl_slist_append(*hdrs, r->more[i]);
        if (l == NULL)
            e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
        else
            *hdrs = l;
    }
    memset(&c, 0, sizeof(c));
    return e;
}

static void url_of(const struct req *r, char *url, size_t n)
{
    snprintf(url, n, "%s://%s%s%s%s", r->s->scheme, r->s->host, r->path,
             r->query[0] ? "?" : "", r->query);
}

static tr_err run(struct req *r, struct blob_http_resp *resp,
                  struct tr_errbuf *eb)
{
    char url[2048];
    url_of(r, url, sizeof(url));
    struct blob_http_call c = {.method = r->method,
                               .url = url,
                               .body = r->body,
                               .body_len = r->body_len,
                               .src = r->src,
                               .src_ctx = r->src_ctx,
                               .src_len = r->src_len,
                               .prep = prep,
                               .prep_ctx = r};
    return blob_http_do(r->s->http, &c, resp, eb);
}

/* The text of the first <tag>...</tag> in xml after *from, XML entities
 * decoded, into out; false if absent or too long.  *from moves past it. */
static bool xml_text(const char *xml, size_t len, const char **from,
                     const char *tag, char *out, size_t n)
{
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *p = from != NULL ? *from : xml;
    const char *end = xml + len;
    const char *a =
        p != NULL ? memmem(p, (size_t)(end - p), open, strlen(open)) : NULL;
    if (a == NULL)
        return false;
    a += strlen(open);
    const char *z = memmem(a, (size_t)(end - a), close, strlen(close));
    if (z == NULL)
        return false;
    size_t o = 0;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'},  {"&lt;", '<'},    {"&gt;", '>'},
                {"&quot;", '"'}, {"&apos;", '\''}, {"&#34;", '"'},
                {"&#39;", '\''}};
    for (const char *q = a; q < z; o++) {
        if (o + 1 >= n)
            return false;
        size_t i = 0;
        for (; *q == '&' && i < sizeof(ents) / sizeof(ents[0]); i++) {
            size_t el = strlen(ents[i].ent);
            if ((size_t)(z - q) >= el && memcmp(q, ents[i].ent, el) == 0)
                break;
        }
        if (*q == '&' && i < sizeof(ents) / sizeof(ents[0])) {
            out[o] = ents[i].c;
            q += strlen(ents[i].ent);
        } else {
            out[o] = *q++;
        }
    }
    out[o] = '\0';
    if (from != NULL)
        *from = z + strlen(close);
    return true;
}

/* Maps an answer that is not a success to an error naming what failed. */
static tr_err fail_status(const struct blob_http_resp *r, const char *what,
                          const char *key, struct tr_errbuf *eb)
{
    char code[64] = "";
    if (r->body.len > 0)
        xml_text(r->body.data, r->body.len, NULL, "Code", code, sizeof(code));
    if (strcmp(code, "NoSuchBucket") == 0)
        return tr_fail(eb, TR_ERR_CONFIG, "s3 bucket does not exist");
    if (r->status == 404)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no such object %s", key);
    tr_err e =
        r->status >= 500 || r->status == 429 ? TR_ERR_UNAVAILABLE : TR_ERR_IO;
    const char *hint = r->status == 403 ? " (check the s3 credentials)" : "";
    return tr_fail(eb, e, "s3 %s %s failed: %ld %s%s", what, key, r->status,
                   code[0] ? code : "error", hint);
}

/* ---- writes ---- */

/* Pulls up to n bytes from src into buf, fewer only at its end. */
static tr_err fill(blob_source src, void *ctx, char *buf, size_t n, size_t *got,
                   struct tr_errbuf *eb)
{
    *got = 0;
    while (*got < n) {
        size_t k = 0;
        tr_err e = src(ctx, buf + *got, n - *got, &k, eb);
        if (e != TR_OK)
            return e;
        if (k == 0)
            break;
        *got += k;
    }
    return TR_OK;
}

/* One PutObject: len bytes from data or (src set) slen bytes pulled from
 * src while they are sent. */
static tr_err put_one(struct blob_s3 *s, const char *key, const char *path,
                      const void *data, size_t len, blob_source src, void *ctx,
                      uint64_t slen, struct tr_errbuf *eb)
{
    struct req r = {s, "PUT", path, "", data, len, true, NULL, src, ctx, slen};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    tr_err e = run(&r, &resp, eb);
    if (e == TR_OK && resp.status != 200)
        e = fail_status(&resp, "put", key, eb);
    blob_http_resp_free(&resp);
    return e;
}

static tr_err put_object(struct blob_s3 *s, const char *key, const char *path,
                         const void *data, size_t len, struct tr_errbuf *eb)
{
    return put_one(s, key, path, data, len, NULL, NULL, 0, eb);
}

static tr_err put_streamed(struct blob_s3 *s, const char *key, const char *path,
                           uint64_t len, blob_source src, void *ctx,
                           struct tr_errbuf *eb)
{
    return put_one(s, key, path, NULL, 0, src, ctx, len, eb);
}

struct upload {
    struct blob_s3 *s;
    const char *key, *path;
    char id[512];    /* the upload id, raw */
    struct buf qid;  /* "uploadId=" and it encoded */
    struct buf done; /* the CompleteMultipartUpload body */
};

static tr_err mp_create(struct upload *u, struct tr_errbuf *eb)
{
    struct req r = {u->s, "POST", u->path, "uploads=", NULL, 0,
                    true, NULL,   NULL,    NULL,       0};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    tr_err e = run(&r, &resp, eb);
    if (e == TR_OK && resp.status != 200)
        e = fail_status(&resp, "upload", u->key, eb);
    if (e == TR_OK && !xml_text(resp.body.data, resp.body.len, NULL, "UploadId",
                                u->id, sizeof(u->id)))
        e = tr_fail(eb, TR_ERR_IO, "s3 upload %s: no upload id", u->key);
    if (e == TR_OK) {
        tr_err b = buf_puts(&u->qid, "uploadId=");
        if (b == TR_OK)
            b = blob_http_escape(&u->qid, u->id, false);
        if (b == TR_OK)
            b = buf_puts(&u->done, "<CompleteMultipartUpload>");
        if (b != TR_OK)
            e = tr_fail(eb, b, "s3 upload %s: out of memory", u->key);
    }
    blob_http_resp_free(&resp);
    return e;
}

static tr_err mp_part(struct upload *u, int n, const char *data, size_t len,
                      struct tr_errbuf *eb)
{
    char query[700];
    snprintf(query, sizeof(query), "partNumber=%d&%s", n, u->qid.data);
    struct req r = {u->s,  "PUT", u->path, query, data, len,
                    false, NULL,  NULL,    NULL,  0};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    char etag[160];
    tr_err e = run(&r, &resp, eb);
    if (e == TR_OK && resp.status != 200)
        e = fail_status(&resp, "upload", u->key, eb);
    if (e == TR_OK && !blob_http_header(&resp.hdrs, "ETag", etag, sizeof(etag)))
        e = tr_fail(eb, TR_ERR_IO, "s3 upload %s: part without ETag", u->key);
    if (e == TR_OK && strpbrk(etag, "<&") != NULL)
        e = tr_fail(eb, TR_ERR_IO, "s3 upload %s: bad ETag", u->key);
    if (e == TR_OK &&
        buf_printf(&u->done,
                   "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n,
                   etag) != TR_OK)
        e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    blob_http_resp_free(&resp);
    return e;
}

static tr_err mp_complete(struct upload *u, struct tr_errbuf *eb)
{
    if (buf_puts(&u->done, "</CompleteMultipartUpload>") != TR_OK)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    struct req r = {u->s,         "POST",      u->path, u->qid.data,
                    u->done.data, u->done.len, false,   NULL,
                    NULL,         NULL,        0};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    tr_err e = run(&r, &resp, eb);
    /* a 200 may still carry an <Error> (the failure came late) */
    if (e == TR_OK &&
        (resp.status != 200 || resp.body.len == 0 ||
         memmem(resp.body.data, resp.body.len, "<Error>", 7) != NULL))
        e = fail_status(&resp, "upload", u->key, eb);
    blob_http_resp_free(&resp);
    return e;
}

static void mp_abort(struct upload *u)
{
    struct req r = {u->s,  "DELETE", u->path, u->qid.data, NULL, 0,
                    false, NULL,     NULL,    NULL,        0};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    struct tr_errbuf eb;
    (void)run(&r, &resp, &eb); /* best effort: a lifecycle rule mops up */
    blob_http_resp_free(&resp);
}

/* The part size for len bytes: the configured one, grown to keep the
 * number of parts under S3's limit. */
static size_t part_for(const struct blob_s3 *s, uint64_t len)
{
    uint64_t part = s->part_size;
    if (len / part >= PARTS_MAX)
        part = (len / (PARTS_MAX - 1) + (1u << 20)) & ~(uint64_t)0xfffff;
    return (size_t)part;
}

static tr_err s3_put_stream(struct blob *b, const char *key, uint64_t len,
                            blob_source src, void *ctx, struct tr_errbuf *eb)
{
    struct blob_s3 *s = (struct blob_s3 *)b;
    struct upload u = {.s = s, .key = key};
    char path[1024];
    tr_err e = key_path(s, key, path, sizeof(path), eb);
    if (e != TR_OK)
        return e;
    u.path = path;
    size_t part = part_for(s, len);
    if (len > part && len <= s->single_max)
        return put_streamed(s, key, path, len, src, ctx, eb);
    size_t first = len < part ? (size_t)len : part;
    char *data = malloc(first ? first : 1);
    if (data == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    buf_init(&u.qid, 0);
    buf_init(&u.done, 0);
    size_t got = 0;
    e = fill(src, ctx, data, first, &got, eb);
    if (e == TR_OK && got != first)
        e = tr_fail(eb, TR_ERR_IO, "object %s ended early", key);
    if (e != TR_OK || len <= part) {
        if (e == TR_OK) /* the source may still refuse at its end */
            e = blob_source_end(src, ctx, eb);
        if (e == TR_OK)
            e = put_object(s, key, path, data, got, eb);
        goto out;
    }
    e = mp_create(&u, eb);
    if (e != TR_OK)
        goto out;
    uint64_t sent = 0;
    for (int n = 1; e == TR_OK && sent < len; n++) {
        if (n > 1) {
            size_t want = len - sent < part ? (size_t)(len - sent) : part;
            e = fill(src, ctx, data, want, &got, eb);
            if (e == TR_OK && got != want)
                e = tr_fail(eb, TR_ERR_IO, "object %s ended early", key);
        }
        if (e == TR_OK)
            e = mp_part(&u, n, data, got, eb);
        sent += got;
    }
    if (e == TR_OK)
        e = blob_source_end(src, ctx, eb);
    if (e == TR_OK)
        e = mp_complete(&u, eb);
    if (e != TR_OK)
        mp_abort(&u);
out:
    free(data);
    buf_free(&u.qid);
    buf_free(&u.done);
    return e;
}

/* ---- reads ---- */

static tr_err s3_open(struct blob *b, const char *key, struct blob_obj **out,
                      uint64_t *size, struct tr_errbuf *eb)
{
    struct blob_s3 *s = (struct blob_s3 *)b;
    struct blob_obj *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    o->s = s;
    tr_err e = key_path(s, key, o->path, sizeof(o->path), eb);
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    struct req r = {s,     "HEAD", o->path, "",   NULL, 0,
                    false, NULL,   NULL,    NULL, 0};
    if (e == TR_OK)
        e = run(&r, &resp, eb);
    char len[32];
    if (e == TR_OK && resp.status != 200)
        e = fail_status(&resp, "read", key, eb);
    if (e == TR_OK &&
        (!blob_http_header(&resp.hdrs, "Content-Length", len, sizeof(len)) ||
         util_parse_i64(len, (int64_t *)&o->size) != TR_OK))
        e = tr_fail(eb, TR_ERR_IO, "s3 read %s: no size", key);
    if (e == TR_OK &&
        !blob_http_header(&resp.hdrs, "ETag", o->etag, sizeof(o->etag)))
        o->etag[0] = '\0';
    blob_http_resp_free(&resp);
    if (e != TR_OK) {
        free(o);
        return e;
    }
    *size = o->size;
    *out = o;
    return TR_OK;
}

/* Starts a GET of the object from off to its end, of the version
 * opened (If-Match: a rewrite meanwhile fails the read, never mixes). */
static tr_err start_at(struct blob_obj *o, uint64_t off, struct tr_errbuf *eb)
{
    blob_http_stream_close(o->st);
    o->st = NULL;
    char range[64], if_match[16 + sizeof(o->etag)], url[2048];
    snprintf(range, sizeof(range), "Range: bytes=%llu-",
             (unsigned long long)off);
    snprintf(if_match, sizeof(if_match), "If-Match: %s", o->etag);
    const char *more[] = {range, o->etag[0] ? if_match : NULL, NULL};
    struct req r = {o->s,  "GET", o->path, "",   NULL, 0,
                    false, more,  NULL,    NULL, 0};
    url_of(&r, url, sizeof(url));
    struct blob_http_call c = {
        .method = "GET", .url = url, .prep = prep, .prep_ctx = &r};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    tr_err e = blob_http_stream_open(o->s->http, &c, &o->st, &resp, eb);
    if (e == TR_OK && o->st == NULL) {
        if (resp.status == 412)
            e = tr_fail(eb, TR_ERR_IO, "object changed while being read");
        else
            e = fail_status(&resp, "read", o->path, eb);
    }
    blob_http_resp_free(&resp);
    if (e == TR_OK)
        o->pos = off;
    return e;
}

static tr_err s3_read(struct blob_obj *o, void *buf, size_t n, uint64_t off,
                      size_t *got, struct tr_errbuf *eb)
{
    *got = 0;
    if (off >= o->size || n == 0)
        return TR_OK;
    if (n > o->size - off)
        n = (size_t)(o->size - off);
    const struct blob_http_opts *ho = blob_http_opts(o->s->http);
    int broken = 0;
    tr_err e = TR_OK;
    while (*got < n) {
        uint64_t at = off + *got;
        if (o->st == NULL || o->pos != at) {
            e = start_at(o, at, eb);
            if (e != TR_OK)
                return e;
        }
        size_t k = 0;
        e = blob_http_stream_read(o->st, (char *)buf + *got, n - *got, &k, eb);
        *got += k;
        o->pos += k;
        if (e == TR_OK && *got == n)
            break;
        /* broken or cut short: start again where it stopped */
        blob_http_stream_close(o->st);
        o->st = NULL;
        if (++broken >= ho->attempts)
            return e != TR_OK ? e
                              : tr_fail(eb, TR_ERR_IO,
                                        "s3 read %s: object shorter than "
                                        "its size",
                                        o->path);
        blob_http_backoff(o->s->http, broken + 1, NULL);
    }
    return TR_OK;
}

static void s3_obj_close(struct blob_obj *o)
{
    if (o == NULL)
        return;
    blob_http_stream_close(o->st);
    free(o);
}

static int s3_fd(struct blob_obj *o)
{
    return -1;
}

/* ---- remove, list ---- */

static tr_err s3_remove(struct blob *b, const char *key, struct tr_errbuf *eb)
{
    struct blob_s3 *s = (struct blob_s3 *)b;
    char path[1024];
    tr_err e = key_path(s, key, path, sizeof(path), eb);
    if (e != TR_OK)
        return e;
    struct req r = {s, "DELETE", path, "", NULL, 0, false, NULL, NULL, NULL, 0};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    e = run(&r, &resp, eb);
    if (e == TR_OK && resp.status != 204 && resp.status != 200 &&
        resp.status != 404)
        e = fail_status(&resp, "remove", key, eb);
    blob_http_resp_free(&resp);
    return e;
}

/* Calls fn for each <Contents> of one ListObjectsV2 page. */
static tr_err list_page(struct blob_s3 *s, const struct buf *xml,
                        blob_list_fn fn, void *ctx, struct tr_errbuf *eb)
{
    const char *p = xml->data;
    const char *end = xml->data + xml->len;
    size_t plen = strlen(s->prefix);
    for (;;) {
        const char *c = memmem(p, (size_t)(end - p), "<Contents>", 10);
        if (c == NULL)
            return TR_OK;
        const char *ce = memmem(c, (size_t)(end - c), "</Contents>", 11);
        if (ce == NULL)
            return tr_fail(eb, TR_ERR_IO, "s3 list: malformed answer");
        size_t clen = (size_t)(ce - c);
        char key[1100], size[32], when[64];
        int64_t sz = 0, mtime = 0;
        if (!xml_text(c, clen, NULL, "Key", key, sizeof(key)) ||
            !xml_text(c, clen, NULL, "Size", size, sizeof(size)) ||
            util_parse_i64(size, &sz) != TR_OK || sz < 0)
            return tr_fail(eb, TR_ERR_IO, "s3 list: malformed entry");
        if (xml_text(c, clen, NULL, "LastModified", when, sizeof(when)))
            (void)rfc3339_parse(when, &mtime, NULL);
        if (strncmp(key, s->prefix, plen) == 0) {
            tr_err e = fn(ctx, key + plen, (uint64_t)sz, mtime, eb);
            if (e != TR_OK)
                return e;
        }
        p = ce + 11;
    }
}

static tr_err s3_list(struct blob *b, const char *prefix, blob_list_fn fn,
                      void *ctx, struct tr_errbuf *eb)
{
    struct blob_s3 *s = (struct blob_s3 *)b;
    char token[1024] = "", path[96];
    snprintf(path, sizeof(path), "%s", s->base_path[0] ? s->base_path : "/");
    struct buf q, full;
    buf_init(&q, 0);
    buf_init(&full, 0);
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    tr_err e = buf_printf(&full, "%s%s", s->prefix, prefix);
    for (bool more = true; e == TR_OK && more;) {
        buf_reset(&q);
        if (token[0] != '\0') {
            e = buf_puts(&q, "continuation-token=");
            if (e == TR_OK)
                e = blob_http_escape(&q, token, false);
            if (e == TR_OK)
                e = buf_puts(&q, "&");
        }
        if (e == TR_OK)
            e = buf_puts(&q, "list-type=2&prefix=");
        if (e == TR_OK)
            e = blob_http_escape(&q, full.data, false);
        if (e != TR_OK) {
            e = tr_fail(eb, e, "s3 list: prefix too long");
            break;
        }
        struct req r = {s,     "GET", path, q.data, NULL, 0,
                        false, NULL,  NULL, NULL,   0};
        e = run(&r, &resp, eb);
        if (e == TR_OK && resp.status != 200)
            e = fail_status(&resp, "list", prefix, eb);
        if (e == TR_OK)
            e = list_page(s, &resp.body, fn, ctx, eb);
        char trunc[16] = "";
        xml_text(resp.body.data, resp.body.len, NULL, "IsTruncated", trunc,
                 sizeof(trunc));
        more = strcmp(trunc, "true") == 0;
        if (e == TR_OK && more &&
            !xml_text(resp.body.data, resp.body.len, NULL,
                      "NextContinuationToken", token, sizeof(token)))
            e = tr_fail(eb, TR_ERR_IO, "s3 list: truncated without a token");
    }
    blob_http_resp_free(&resp);
    buf_free(&q);
    buf_free(&full);
    return e;
}

static void s3_close(struct blob *b)
{
    struct blob_s3 *s = (struct blob_s3 *)b;
    if (s == NULL)
        return;
    blob_http_free(s->http);
    s3_creds_fini(&s->creds);
    free(s);
}

static const struct blob_ops s3_ops = {
    .put_stream = s3_put_stream,
    .put_file = NULL,
    .open = s3_open,
    .read = s3_read,
    .fd = s3_fd,
    .obj_close = s3_obj_close,
    .remove = s3_remove,
    .list = s3_list,
    .close = s3_close,
};

/* ---- the URL ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out (size m); false if malformed/long. */
static bool pct_decode(const char *s, size_t n, char *out, size_t m)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++, o++) {
        if (o + 1 >= m)
            return false;
        if (s[i] == '%') {
            if (i + 2 >= n)
                return false;
            int h = hexval(s[i + 1]);
            int l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return false;
            out[o] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[o] = s[i];
        }
    }
    out[o] = '\0';
    return true;
}

struct s3_url {
    char bucket[64], prefix[512], region[64], endpoint[256];
    char sse[16], kms_key[256];
    char ca_file[512];
    bool path_style;
    long part_mib;
    long single_mib; /* -1: not given */
};

static tr_err url_option(struct s3_url *u, const char *k, size_t kn,
                         const char *v, struct tr_errbuf *eb)
{
    char key[32];
    snprintf(key, sizeof(key), "%.*s", (int)(kn < 31 ? kn : 31), k);
    char *dst = NULL;
    size_t cap = 0;
    if (strcmp(key, "region") == 0)
        dst = u->region, cap = sizeof(u->region);
    else if (strcmp(key, "endpoint") == 0)
        dst = u->endpoint, cap = sizeof(u->endpoint);
    else if (strcmp(key, "sse") == 0)
        dst = u->sse, cap = sizeof(u->sse);
    else if (strcmp(key, "sse-kms-key-id") == 0)
        dst = u->kms_key, cap = sizeof(u->kms_key);
    else if (strcmp(key, "ca-file") == 0)
        dst = u->ca_file, cap = sizeof(u->ca_file);
    if (dst != NULL) {
        if (strlen(v) >= cap)
            return tr_fail(eb, TR_ERR_CONFIG, "s3 url: %s is too long", key);
        memcpy(dst, v, strlen(v) + 1);
        return TR_OK;
    }
    if (strcmp(key, "force-path-style") == 0) {
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            return tr_fail(eb, TR_ERR_CONFIG,
                           "s3 url: force-path-style must be true or false");
        u->path_style = strcmp(v, "true") == 0;
        return TR_OK;
    }
    if (strcmp(key, "part-size") == 0) {
        int64_t mib = 0;
        if (util_parse_i64(v, &mib) != TR_OK || mib < 5 || mib > 1024)
            return tr_fail(eb, TR_ERR_CONFIG,
                           "s3 url: part-size must be 5 to 1024 (MiB)");
        u->part_mib = (long)mib;
        return TR_OK;
    }
    if (strcmp(key, "single-put-max") == 0) {
        int64_t mib = 0;
        if (util_parse_i64(v, &mib) != TR_OK || mib < 0 || mib > 5120)
            return tr_fail(eb, TR_ERR_CONFIG,
                           "s3 url: single-put-max must be 0 to 5120 (MiB)");
        u->single_mib = (long)mib;
        return TR_OK;
    }
    return tr_fail(eb, TR_ERR_CONFIG,
                   "s3 url: unknown option %s (region, endpoint, "
                   "force-path-style, sse, sse-kms-key-id, part-size, "
                   "single-put-max, ca-file)",
                   key);
}

static tr_err parse_url(const char *url, struct s3_url *u, struct tr_errbuf *eb)
{
    memset(u, 0, sizeof(*u));
    u->single_mib = -1;
    const char *p = url + 5; /* after "s3://" */
    size_t bn = strcspn(p, "/?");
    if (bn == 0 || bn >= sizeof(u->bucket))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "s3 url must name a bucket: "
                       "s3://BUCKET/PREFIX?region=R&endpoint=URL");
    for (size_t i = 0; i < bn; i++)
        if (!(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) ||
              p[i] == '-' || p[i] == '.'))
            return tr_fail(eb, TR_ERR_CONFIG,
                           "s3 bucket name may hold only a-z, 0-9, '-', '.'");
    memcpy(u->bucket, p, bn);
    p += bn;
    if (*p == '/') {
        p++;
        size_t pn = strcspn(p, "?");
        while (pn > 0 && p[pn - 1] == '/')
            pn--;
        if (pn + 2 > sizeof(u->prefix) ||
            !pct_decode(p, pn, u->prefix, sizeof(u->prefix) - 1))
            return tr_fail(eb, TR_ERR_CONFIG, "s3 url: bad prefix");
        if (u->prefix[0] != '\0')
            strcat(u->prefix, "/");
        p += strcspn(p, "?");
    }
    if (*p == '?')
        p++;
    while (*p != '\0') {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        char v[512];
        if (eq == NULL ||
            !pct_decode(eq + 1, n - (size_t)(eq + 1 - p), v, sizeof(v)))
            return tr_fail(eb, TR_ERR_CONFIG, "s3 url: options are name=value");
        tr_err e = url_option(u, p, (size_t)(eq - p), v, eb);
        if (e != TR_OK)
            return e;
        p += n;
        if (*p == '&')
            p++;
    }
    if (u->sse[0] != '\0' && strcmp(u->sse, "AES256") != 0 &&
        strcmp(u->sse, "aws:kms") != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "s3 url: sse must be AES256 or "
                       "aws:kms");
    if (u->kms_key[0] != '\0' && strcmp(u->sse, "aws:kms") != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "s3 url: sse-kms-key-id needs sse=aws:kms");
    return TR_OK;
}

/* Scheme, Host and base path from the endpoint and addressing style. */
static tr_err set_address(struct blob_s3 *s, const struct s3_url *u,
                          struct tr_errbuf *eb)
{
    char host[256];
    if (u->endpoint[0] == '\0') {
        snprintf(s->scheme, sizeof(s->scheme), "https");
        snprintf(host, sizeof(host), "s3.%s.amazonaws.com", s->region);
    } else {
        const char *h = strstr(u->endpoint, "://");
        size_t sn = h ? (size_t)(h - u->endpoint) : 0;
        if (h == NULL || !((sn == 4 && !strncmp(u->endpoint, "http", 4)) ||
                           (sn == 5 && !strncmp(u->endpoint, "https", 5))))
            return tr_fail(eb, TR_ERR_CONFIG,
                           "s3 url: endpoint must be http:// or https://");
        memcpy(s->scheme, u->endpoint, sn);
        s->scheme[sn] = '\0';
        h += 3;
        size_t hn = strcspn(h, "/?#");
        if (hn == 0 || hn >= sizeof(host) ||
            strspn(h + hn, "/") != strlen(h + hn))
            return tr_fail(eb, TR_ERR_CONFIG,
                           "s3 url: endpoint must be scheme://host[:port]");
        memcpy(host, h, hn);
        host[hn] = '\0';
    }
    if (u->path_style) {
        snprintf(s->host, sizeof(s->host), "%s", host);
        snprintf(s->base_path, sizeof(s->base_path), "/%s", s->bucket);
    } else {
        snprintf(s->host, sizeof(s->host), "%s.%s", s->bucket, host);
        s->base_path[0] = '\0';
    }
    return TR_OK;
}

tr_err blob_open_s3(const char *url, const char *spool_dir, struct blob **out,
                    struct tr_errbuf *eb)
{
    struct s3_url u;
    tr_err e = parse_url(url, &u, eb);
    if (e != TR_OK)
        return e;
    struct blob_s3 *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    s->base.ops = &s3_ops;
    snprintf(s->base.tmp_dir, sizeof(s->base.tmp_dir), "%s",
             spool_dir ? spool_dir : "");
    memcpy(s->bucket, u.bucket, sizeof(s->bucket));
    memcpy(s->prefix, u.prefix, sizeof(s->prefix));
    const char *region = u.region[0]            ? u.region
                         : getenv("AWS_REGION") ? getenv("AWS_REGION")
                         : getenv("AWS_DEFAULT_REGION")
                             ? getenv("AWS_DEFAULT_REGION")
                             : "us-east-1";
    snprintf(s->region, sizeof(s->region), "%s", region);
    memcpy(s->sse, u.sse, sizeof(s->sse));
    memcpy(s->kms_key, u.kms_key, sizeof(s->kms_key));
    s->part_size = u.part_mib ? (size_t)u.part_mib << 20 : PART_DEFAULT;
    s->single_max = (uint64_t)(u.single_mib >= 0 ? u.single_mib : 5120) << 20;
    struct blob_http_opts ho = {.name = "s3",
                                .ca_file = u.ca_file[0] ? u.ca_file : NULL};
    e = set_address(s, &u, eb);
    if (e == TR_OK)
        e = s3_creds_init(&s->creds, eb);
    else
        pthread_mutex_init(&s->creds.mu, NULL);
    if (e == TR_OK)
        e = blob_http_new(&ho, &s->http, eb);
    if (e != TR_OK) {
        s3_close(&s->base);
        return e;
    }
    *out = &s->base;
    return TR_OK;
}
