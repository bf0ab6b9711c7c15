/*
 * blob_gcs.c - Google Cloud Storage blob backend over the native JSON
 * API, for --blob-url gs://BUCKET/PREFIX?endpoint=URL&credentials=FILE
 * (&ca-file=PEM: the CAs trusted for https instead of the system's, for
 * every request, the token's too).
 *
 * Object names are PREFIX/key.  Calls:
 *   put (<= one part)   POST upload/storage/v1/b/B/o?uploadType=media,
 *                       from memory, retried as needed
 *   put (<= 5 GiB, or single-put-max=MiB)
 *                       the same, its body streamed from the source as it
 *                       comes: sent once, the last bytes only once the
 *                       source has ended well (a refused upload leaves
 *                       GCS a short body and no object)
 *   put (larger)        POST ...?uploadType=resumable, then PUT parts of
 *                       PART_SIZE with Content-Range to the session URI;
 *                       the object appears only when the last part lands
 *   open                GET storage/v1/b/B/o/NAME (size, generation)
 *   read                GET ...?alt=media&generation=G with Range
 *   list                GET storage/v1/b/B/o?prefix=..., pageToken
 *   remove              DELETE storage/v1/b/B/o/NAME (404 is fine)
 *
 * Writes are atomic and durable because GCS makes an object visible
 * whole, once stored, in one step; a resumable upload that fails is
 * cancelled and leaves nothing.  At most one part (8 MiB) of a write
 * is in memory, kept so that a retry can send it again; a streamed one
 * holds only curl's send buffer.  Reads go
 * through a read-ahead window that doubles while reads are sequential
 * (from 256 KiB) and restarts small on a seek; once sequential reads
 * would take a window of STREAM_FROM they go on from one GET of the
 * rest of the object, streamed (blob_http.h: the backend sends while the
 * server sends on, and a 100 MB read is 4 requests instead of 18),
 * until a seek; a stream that cannot start or breaks hands the read
 * back to windows, which retry and report.  Reads are pinned to the
 * generation seen at open: an object replaced meanwhile fails the read
 * rather than mixing two versions.
 *
 * Authentication (blob_gcs_auth.c): credentials= or
 * GOOGLE_APPLICATION_CREDENTIALS name a service-account key file;
 * otherwise with endpoint= (an emulator) requests carry no token, and
 * without it the instance metadata server gives one.  auth=none or
 * auth=metadata choose explicitly.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob/blob.h"
#include "blob/blob_gcs_int.h"
#include "blob/blob_http.h"
#include "core/rfc3339.h"
#include "core/util.h"

#define DEFAULT_ENDPOINT "https://storage.googleapis.com"
#define PART_SIZE (8u << 20)    /* a multiple of 256 KiB, as GCS requires */
#define SINGLE_MAX (5ull << 30) /* one streamed media upload up to this */
#define WINDOW_MIN (256u << 10)
#define WINDOW_MAX (8u << 20)
#define STREAM_FROM (1u << 20) /* sequential reads stream from here on */
#define META_MAX (64 * 1024)
#define LIST_MAX (32u << 20)
#define RESEND_MAX 8 /* partial part acknowledgements in a row */

struct blob_gcs {
    struct blob base;
    struct blob_gcs_http http;
    struct blob_gcs_auth *auth;
    char endpoint[256]; /* scheme://host[:port], no trailing slash */
    char bucket[224];
    char prefix[448]; /* "" or "dir/" */
    size_t part;
    uint64_t single_max; /* larger objects go in resumable parts */
};

struct blob_obj {
    struct blob_gcs *g;
    char *url; /* media URL pinned to the generation */
    char key[448];
    uint64_t size;
    struct buf win; /* read-ahead window: bytes at win_off */
    uint64_t win_off;
    size_t want;                 /* size of the next sequential fetch */
    struct blob_http_stream *st; /* set: the rest of the object, from */
    uint64_t st_pos;             /* this offset on */
    bool st_failed;              /* a stream would not start: windows */
};

/* ---- URL ---------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+n) into out. */
static bool unescape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

static bool valid_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 222 || !isalnum((unsigned char)b[0]) ||
        !isalnum((unsigned char)b[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)b[i]) && !isdigit((unsigned char)b[i]) &&
            strchr("._-", b[i]) == NULL)
            return false;
    return true;
}

static bool valid_prefix(const char *p)
{
    if (p[0] == '\0')
        return true;
    if (p[0] == '/' || strstr(p, "//") != NULL || strstr(p, "..") != NULL)
        return false;
    for (const char *c = p; *c; c++)
        if (!isalnum((unsigned char)*c) && strchr("._/-", *c) == NULL)
            return false;
    return true;
}

struct url_opts {
    char endpoint[256];
    char credentials[512];
    char auth[16];
    char single_max[16]; /* MiB, "" for the default */
    char ca_file[512];
};

static tr_err parse_option(const char *kv, size_t n, struct url_opts *o,
                           struct tr_errbuf *eb)
{
    const char *eq = memchr(kv, '=', n);
    size_t klen = eq != NULL ? (size_t)(eq - kv) : n;
    const char *v = eq != NULL ? eq + 1 : kv + n;
    size_t vlen = (size_t)(kv + n - v);
    char *dst = NULL;
    size_t cap = 0;
    if (klen == 8 && strncmp(kv, "endpoint", 8) == 0) {
        dst = o->endpoint;
        cap = sizeof(o->endpoint);
    } else if (klen == 11 && strncmp(kv, "credentials", 11) == 0) {
        dst = o->credentials;
        cap = sizeof(o->credentials);
    } else if (klen == 4 && strncmp(kv, "auth", 4) == 0) {
        dst = o->auth;
        cap = sizeof(o->auth);
    } else if (klen == 14 && strncmp(kv, "single-put-max", 14) == 0) {
        dst = o->single_max;
        cap = sizeof(o->single_max);
    } else if (klen == 7 && strncmp(kv, "ca-file", 7) == 0) {
        dst = o->ca_file;
        cap = sizeof(o->ca_file);
    } else {
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gs:// url: unknown option '%.*s' (known: endpoint, "
                       "credentials, auth, single-put-max, ca-file)",
                       (int)(klen > 40 ? 40 : klen), kv);
    }
    if (vlen == 0 || !unescape(v, vlen, dst, cap))
        return tr_fail(eb, TR_ERR_CONFIG, "gs:// url: bad value for %.*s",
                       (int)klen, kv);
    return TR_OK;
}

static tr_err parse_url(struct blob_gcs *g, const char *url, struct url_opts *o,
                        struct tr_errbuf *eb)
{
    if (strncmp(url, "gs://", 5) != 0)
        return tr_fail(eb, TR_ERR_CONFIG, "not a gs:// url");
    const char *p = url + 5;
    size_t blen = strcspn(p, "/?");
    if (blen == 0 || blen >= sizeof(g->bucket))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gs:// url: bucket name missing or too long");
    memcpy(g->bucket, p, blen);
    g->bucket[blen] = '\0';
    if (!valid_bucket(g->bucket))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gs:// url: '%s' is not a bucket name (3-222 of "
                       "a-z 0-9 . _ -)",
                       g->bucket);
    p += blen;
    char prefix[sizeof(g->prefix)] = "";
    if (*p == '/') {
        p++;
        size_t plen = strcspn(p, "?");
        while (plen > 0 && p[plen - 1] == '/')
            plen--;
        if (plen + 2 > sizeof(prefix))
            return tr_fail(eb, TR_ERR_CONFIG, "gs:// url: prefix too long");
        memcpy(prefix, p, plen);
        prefix[plen] = '\0';
        p += strcspn(p, "?");
    }
    if (!valid_prefix(prefix))
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gs:// url: prefix '%s' may hold only A-Z a-z 0-9 . _ "
                       "- and single slashes, no '..'",
                       prefix);
    snprintf(g->prefix, sizeof(g->prefix), "%s%s", prefix,
             prefix[0] != '\0' ? "/" : "");
    if (*p == '?') {
        p++;
        while (*p != '\0') {
            size_t n = strcspn(p, "&");
            if (n > 0) {
                tr_err e = parse_option(p, n, o, eb);
                if (e != TR_OK)
                    return e;
            }
            p += n;
            if (*p == '&')
                p++;
        }
    }
    return TR_OK;
}

static tr_err set_endpoint(struct blob_gcs *g, const char *ep,
                           struct tr_errbuf *eb)
{
    if (ep[0] == '\0')
        ep = DEFAULT_ENDPOINT;
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gs:// url: endpoint must start with http:// or "
                       "https://");
    size_t n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/')
        n--;
    if (n >= sizeof(g->endpoint) || memchr(ep, '?', n) != NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "gs:// url: bad endpoint");
    memcpy(g->endpoint, ep, n);
    g->endpoint[n] = '\0';
    return TR_OK;
}

static tr_err set_auth(struct blob_gcs *g, const struct url_opts *o,
                       struct tr_errbuf *eb)
{
    const char *file = o->credentials;
    const char *env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
    if (file[0] == '\0' && env != NULL)
        file = env;
    const char *mode = o->auth;
    if (mode[0] == '\0')
        mode = file[0] != '\0'          ? "file"
               : o->endpoint[0] != '\0' ? "none"
                                        : "metadata";
    if (strcmp(mode, "none") == 0)
        return TR_OK;
    if (strcmp(mode, "metadata") == 0)
        return blob_gcs_auth_new(BLOB_GCS_AUTH_METADATA, NULL, &g->http,
                                 &g->auth, eb);
    if (strcmp(mode, "file") != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gs:// url: auth must be none, file or metadata");
    if (file[0] == '\0')
        return tr_fail(eb, TR_ERR_CONFIG,
                       "gs:// url: auth=file needs credentials= or "
                       "GOOGLE_APPLICATION_CREDENTIALS");
    return blob_gcs_auth_new(BLOB_GCS_AUTH_FILE, file, &g->http, &g->auth, eb);
}

/* ---- helpers ------------------------------------------------------------ */

/* endpoint + "/" + path + escaped object name (if key) + query. */
static tr_err object_url(struct blob_gcs *g, struct buf *u, const char *path,
                         const char *key, const char *query)
{
    tr_err e = buf_printf(u, "%s/%s/b/%s/o", g->endpoint, path, g->bucket);
    if (e == TR_OK && key != NULL) {
        e = buf_puts(u, "/");
        if (e == TR_OK)
            e = blob_http_escape(u, g->prefix, false);
        if (e == TR_OK)
            e = blob_http_escape(u, key, false);
    }
    if (e == TR_OK && query != NULL)
        e = buf_puts(u, query);
    return e;
}

/* The error for an unexpected reply to operation what on key. */
static tr_err reply_error(struct tr_errbuf *eb, const char *what,
                          const char *key, const struct blob_gcs_req *r)
{
    char why[200];
    blob_gcs_http_reason(r->out, why, sizeof(why));
    tr_err e = TR_ERR_IO;
    if (r->status >= 500 || r->status == 429 || r->status == 408)
        e = TR_ERR_UNAVAILABLE;
    return tr_fail(eb, e, "gcs: %s %s: http %ld%s%s", what, key, r->status,
                   why[0] != '\0' ? ": " : "", why);
}

/* ---- writes ------------------------------------------------------------- */

/* One media upload: len bytes from data, or (data NULL) pulled from src
 * while they are sent. */
static tr_err put_media(struct blob_gcs *g, const char *key, const char *data,
                        uint64_t len, blob_source src, void *ctx,
                        struct tr_errbuf *eb)
{
    struct buf url, reply;
    buf_init(&url, 4096);
    buf_init(&reply, META_MAX);
    struct blob_gcs_req r = {.method = "POST",
                             .body = data ? data : "",
                             .body_len = data ? (size_t)len : 0,
                             .src = data ? NULL : src,
                             .src_ctx = ctx,
                             .src_len = len,
                             .out = &reply};
    r.headers = curl_slist_append(NULL, "Content-Type: application/"
                                        "octet-stream");
    tr_err e = buf_printf(&url,
                          "%s/upload/storage/v1/b/%s/o?uploadType=media"
                          "&name=",
                          g->endpoint, g->bucket);
    if (e == TR_OK)
        e = blob_http_escape(&url, g->prefix, false);
    if (e == TR_OK)
        e = blob_http_escape(&url, key, false);
    if (e != TR_OK)
        goto out;
    r.url = url.data;
    e = blob_gcs_http_do(&g->http, &r, eb);
    if (e == TR_OK && r.status != 200 && r.status != 201)
        e = reply_error(eb, "put", key, &r);
out:
    curl_slist_free_all(r.headers);
    buf_free(&url);
    buf_free(&reply);
    return e;
}

/* Starts a resumable upload; its session URL goes into session. */
static tr_err session_start(struct blob_gcs *g, const char *key, uint64_t len,
                            struct buf *session, struct tr_errbuf *eb)
{
    struct buf url, reply;
    buf_init(&url, 4096);
    buf_init(&reply, META_MAX);
    char hlen[64];
    snprintf(hlen, sizeof(hlen), "X-Upload-Content-Length: %llu",
             (unsigned long long)len);
    struct blob_gcs_req r = {.method = "POST", .body = "", .out = &reply};
    r.headers = curl_slist_append(NULL, hlen);
    r.headers = curl_slist_append(r.headers, "X-Upload-Content-Type: "
                                             "application/octet-stream");
    r.headers = curl_slist_append(r.headers, "Content-Type: application/json");
    tr_err e = buf_printf(&url,
                          "%s/upload/storage/v1/b/%s/o?uploadType="
                          "resumable&name=",
                          g->endpoint, g->bucket);
    if (e == TR_OK)
        e = blob_http_escape(&url, g->prefix, false);
    if (e == TR_OK)
        e = blob_http_escape(&url, key, false);
    if (e != TR_OK)
        goto out;
    r.url = url.data;
    e = blob_gcs_http_do(&g->http, &r, eb);
    if (e != TR_OK)
        goto out;
    if (r.status != 200 && r.status != 201) {
        e = reply_error(eb, "put", key, &r);
        goto out;
    }
    /* The session lives on the endpoint we talk to: keep the path and
     * query of the Location and put our endpoint before it (an emulator
     * names its own address, which a proxy in front of it hides). */
    const char *loc = strstr(r.location, "://");
    const char *path = loc != NULL ? strchr(loc + 3, '/') : NULL;
    if (path == NULL) {
        e = tr_fail(eb, TR_ERR_IO, "gcs: put %s: no upload session", key);
        goto out;
    }
    e = buf_printf(session, "%s%s", g->endpoint, path);
out:
    curl_slist_free_all(r.headers);
    buf_free(&url);
    buf_free(&reply);
    return e;
}

static void session_cancel(struct blob_gcs *g, const char *session)
{
    struct blob_gcs_req r = {.method = "DELETE", .url = session};
    struct tr_errbuf ignored;
    blob_gcs_http_do(&g->http, &r, &ignored);
}

/* Bytes the service holds after a 308 reply ("Range: bytes=0-N"). */
static uint64_t persisted(const struct blob_gcs_req *r)
{
    const char *dash = strchr(r->range, '-');
    if (strncmp(r->range, "bytes=0-", 8) != 0 || dash == NULL)
        return 0;
    return strtoull(dash + 1, NULL, 10) + 1;
}

/* Sends part [off, off+n) of a total-byte upload, again from where the
 * service stopped if it kept only some of it. */
static tr_err send_part(struct blob_gcs *g, const char *session,
                        const char *key, const char *data, uint64_t off,
                        size_t n, uint64_t total, struct tr_errbuf *eb)
{
    struct buf reply;
    buf_init(&reply, META_MAX);
    tr_err e = TR_OK;
    uint64_t at = off;
    for (int round = 0; round < RESEND_MAX; round++) {
        char range[96];
        snprintf(range, sizeof(range), "Content-Range: bytes %llu-%llu/%llu",
                 (unsigned long long)at, (unsigned long long)(off + n - 1),
                 (unsigned long long)total);
        struct blob_gcs_req r = {.method = "PUT",
                                 .url = session,
                                 .body = data + (at - off),
                                 .body_len = (size_t)(off + n - at),
                                 .out = &reply};
        r.headers = curl_slist_append(NULL, range);
        e = blob_gcs_http_do(&g->http, &r, eb);
        curl_slist_free_all(r.headers);
        if (e != TR_OK)
            goto out;
        bool last = off + n == total;
        if (last && (r.status == 200 || r.status == 201))
            goto out;
        if (r.status != 308) {
            e = reply_error(eb, "put", key, &r);
            goto out;
        }
        uint64_t kept = persisted(&r);
        if (kept == off + n && !last)
            goto out;
        if (kept < off || kept > off + n) {
            e = tr_fail(eb, TR_ERR_IO,
                        "gcs: put %s: the upload session lost data", key);
            goto out;
        }
        at = kept;
    }
    e = tr_fail(eb, TR_ERR_IO,
                "gcs: put %s: the service keeps refusing a "
                "part",
                key);
out:
    buf_free(&reply);
    return e;
}

static tr_err put_resumable(struct blob_gcs *g, const char *key, uint64_t len,
                            blob_source src, void *ctx, struct tr_errbuf *eb)
{
    struct buf session;
    buf_init(&session, 4096);
    char *part = malloc(g->part);
    if (part == NULL) {
        buf_free(&session);
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    tr_err e = session_start(g, key, len, &session, eb);
    if (e != TR_OK)
        goto out;
    for (uint64_t off = 0; off < len;) {
        size_t n = len - off < g->part ? (size_t)(len - off) : g->part;
        e = blob_source_exact(src, ctx, part, n, eb);
        if (e == TR_OK && off + n == len)
            e = blob_source_end(src, ctx, eb);
        if (e == TR_OK)
            e = send_part(g, session.data, key, part, off, n, len, eb);
        if (e != TR_OK) {
            session_cancel(g, session.data);
            goto out;
        }
        off += n;
    }
out:
    free(part);
    buf_free(&session);
    return e;
}

static tr_err gcs_put_stream(struct blob *b, const char *key, uint64_t len,
                             blob_source src, void *ctx, struct tr_errbuf *eb)
{
    struct blob_gcs *g = (struct blob_gcs *)b;
    if (len > g->part && len <= g->single_max)
        return put_media(g, key, NULL, len, src, ctx, eb);
    if (len > g->part)
        return put_resumable(g, key, len, src, ctx, eb);
    char *data = len > 0 ? malloc((size_t)len) : NULL;
    if (len > 0 && data == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    tr_err e = blob_source_exact(src, ctx, data, (size_t)len, eb);
    if (e == TR_OK)
        e = blob_source_end(src, ctx, eb);
    if (e == TR_OK)
        e = put_media(g, key, data ? data : "", len, NULL, NULL, eb);
    free(data);
    return e;
}

/* ---- reads -------------------------------------------------------------- */

static tr_err gcs_open(struct blob *b, const char *key, struct blob_obj **out,
                       uint64_t *size, struct tr_errbuf *eb)
{
    struct blob_gcs *g = (struct blob_gcs *)b;
    struct buf url, reply;
    buf_init(&url, 4096);
    buf_init(&reply, META_MAX);
    json_t *j = NULL;
    struct blob_obj *o = NULL;
    struct blob_gcs_req r = {.method = "GET", .out = &reply};
    tr_err e =
        object_url(g, &url, "storage/v1", key, "?fields=size,generation");
    if (e != TR_OK)
        goto out;
    r.url = url.data;
    e = blob_gcs_http_do(&g->http, &r, eb);
    if (e != TR_OK)
        goto out;
    if (r.status == 404) {
        e = tr_fail(eb, TR_ERR_NOT_FOUND, "gcs: no object %s", key);
        goto out;
    }
    if (r.status != 200) {
        e = reply_error(eb, "open", key, &r);
        goto out;
    }
    j = json_loadb(reply.data, reply.len, 0, NULL);
    const char *sz = json_string_value(json_object_get(j, "size"));
    const char *gen = json_string_value(json_object_get(j, "generation"));
    char *end = NULL;
    unsigned long long n = sz != NULL ? strtoull(sz, &end, 10) : 0;
    if (sz == NULL || gen == NULL || *end != '\0' ||
        strspn(gen, "0123456789") != strlen(gen)) {
        e = tr_fail(eb, TR_ERR_IO, "gcs: open %s: malformed metadata", key);
        goto out;
    }
    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
        goto out;
    }
    o->g = g;
    o->size = n;
    o->want = WINDOW_MIN;
    snprintf(o->key, sizeof(o->key), "%s", key);
    buf_init(&o->win, WINDOW_MAX);
    buf_reset(&url);
    char q[64];
    snprintf(q, sizeof(q), "?alt=media&generation=%s", gen);
    e = object_url(g, &url, "storage/v1", key, q);
    if (e != TR_OK)
        goto out;
    o->url = buf_steal(&url, NULL);
    *out = o;
    *size = n;
    o = NULL;
out:
    if (o != NULL) {
        buf_free(&o->win);
        free(o);
    }
    json_decref(j);
    buf_free(&url);
    buf_free(&reply);
    return e;
}

/* Fills the window with up to n bytes at off. */
static tr_err fetch_window(struct blob_obj *o, uint64_t off, size_t n,
                           struct tr_errbuf *eb)
{
    char range[80];
    snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
             (unsigned long long)off, (unsigned long long)(off + n - 1));
    o->win.max = n + 1;
    struct blob_gcs_req r = {.method = "GET", .url = o->url, .out = &o->win};
    r.headers = curl_slist_append(NULL, range);
    tr_err e = blob_gcs_http_do(&o->g->http, &r, eb);
    curl_slist_free_all(r.headers);
    o->win_off = off;
    if (e != TR_OK) {
        buf_reset(&o->win);
        return e;
    }
    if (r.status == 416) {
        buf_reset(&o->win);
        return TR_OK;
    }
    if (r.status == 404) {
        buf_reset(&o->win);
        return tr_fail(eb, TR_ERR_NOT_FOUND,
                       "gcs: %s was replaced or removed while read", o->key);
    }
    if (r.status == 200 && off == 0 && o->win.len <= n)
        return TR_OK; /* the whole object, range ignored */
    if (r.status != 206 || o->win.len > n) {
        tr_err re = reply_error(eb, "read", o->key, &r);
        buf_reset(&o->win);
        return re;
    }
    return TR_OK;
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
        char range[48];
        snprintf(range, sizeof(range), "Range: bytes=%llu-",
                 (unsigned long long)off);
        struct blob_gcs_req r = {.method = "GET", .url = o->url};
        r.headers = curl_slist_append(NULL, range);
        tr_err e = r.headers != NULL
                       ? blob_gcs_http_stream(&o->g->http, &r, &o->st, &eb)
                       : TR_ERR_NOMEM;
        curl_slist_free_all(r.headers);
        if (e != TR_OK || o->st == NULL ||
            !(r.status == 206 || (r.status == 200 && off == 0))) {
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

static tr_err gcs_read(struct blob_obj *o, void *buf, size_t n, uint64_t off,
                       size_t *got, struct tr_errbuf *eb)
{
    char *dst = buf;
    size_t have = 0;
    while (have < n && off < o->size) {
        uint64_t end = o->win_off + o->win.len;
        if (off >= o->win_off && off < end) {
            size_t k =
                (size_t)(end - off) < n - have ? (size_t)(end - off) : n - have;
            memcpy(dst + have, o->win.data + (off - o->win_off), k);
            have += k;
            off += k;
            continue;
        }
        bool streaming = o->st != NULL && off == o->st_pos;
        if (streaming || (off == end && o->win.len > 0 && !o->st_failed &&
                          o->want * 2 >= STREAM_FROM)) {
            size_t k = 0;
            stream_take(o, dst + have, n - have, off, &k);
            if (k > 0) {
                buf_reset(&o->win);
                have += k;
                off += k;
                continue;
            }
            o->st_failed = !streaming; /* it would not even start */
            o->want = WINDOW_MIN;      /* windows again, from small */
        }
        stream_drop(o); /* a seek */
        if (off == end && o->win.len > 0)
            o->want = o->want * 2 > WINDOW_MAX ? WINDOW_MAX : o->want * 2;
        else
            o->want = WINDOW_MIN;
        size_t len = n - have > o->want ? n - have : o->want;
        if (len > WINDOW_MAX)
            len = WINDOW_MAX;
        if (len > o->size - off)
            len = (size_t)(o->size - off);
        tr_err e = fetch_window(o, off, len, eb);
        if (e != TR_OK)
            return e;
        if (o->win.len == 0)
            break;
    }
    *got = have;
    return TR_OK;
}

static int gcs_fd(struct blob_obj *o)
{
    return -1;
}

static void gcs_obj_close(struct blob_obj *o)
{
    if (o == NULL)
        return;
    stream_drop(o);
    buf_free(&o->win);
    free(o->url);
    free(o);
}

/* ---- remove, list ------------------------------------------------------- */

static tr_err gcs_remove(struct blob *b, const char *key, struct tr_errbuf *eb)
{
    struct blob_gcs *g = (struct blob_gcs *)b;
    struct buf url, reply;
    buf_init(&url, 4096);
    buf_init(&reply, META_MAX);
    struct blob_gcs_req r = {.method = "DELETE", .out = &reply};
    tr_err e = object_url(g, &url, "storage/v1", key, NULL);
    if (e == TR_OK) {
        r.url = url.data;
        e = blob_gcs_http_do(&g->http, &r, eb);
    }
    if (e == TR_OK && r.status != 204 && r.status != 200 && r.status != 404)
        e = reply_error(eb, "remove", key, &r);
    buf_free(&url);
    buf_free(&reply);
    return e;
}

/* Calls fn for each item of one page; the next page's token into next. */
static tr_err list_page(struct blob_gcs *g, json_t *page, blob_list_fn fn,
                        void *ctx, struct buf *next, struct tr_errbuf *eb)
{
    size_t plen = strlen(g->prefix);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(page, "items"), i, it)
    {
        const char *name = json_string_value(json_object_get(it, "name"));
        const char *sz = json_string_value(json_object_get(it, "size"));
        const char *upd = json_string_value(json_object_get(it, "updated"));
        if (name == NULL || strncmp(name, g->prefix, plen) != 0 ||
            name[plen] == '\0')
            continue;
        int64_t mtime = 0;
        if (upd != NULL)
            rfc3339_parse(upd, &mtime, NULL);
        uint64_t size = sz != NULL ? strtoull(sz, NULL, 10) : 0;
        tr_err e = fn(ctx, name + plen, size, mtime, eb);
        if (e != TR_OK)
            return e;
    }
    const char *tok = json_string_value(json_object_get(page, "nextPageToken"));
    buf_reset(next);
    return tok != NULL ? blob_http_escape(next, tok, false) : TR_OK;
}

static tr_err gcs_list(struct blob *b, const char *prefix, blob_list_fn fn,
                       void *ctx, struct tr_errbuf *eb)
{
    struct blob_gcs *g = (struct blob_gcs *)b;
    struct buf url, reply, next;
    buf_init(&url, 8192);
    buf_init(&reply, LIST_MAX);
    buf_init(&next, 4096);
    tr_err e = TR_OK;
    do {
        json_t *page = NULL;
        buf_reset(&url);
        e = buf_printf(&url,
                       "%s/storage/v1/b/%s/o?maxResults=1000&fields="
                       "items(name,size,updated),nextPageToken"
                       "&prefix=",
                       g->endpoint, g->bucket);
        if (e == TR_OK)
            e = blob_http_escape(&url, g->prefix, false);
        if (e == TR_OK)
            e = blob_http_escape(&url, prefix, false);
        if (e == TR_OK && next.len > 0)
            e = buf_printf(&url, "&pageToken=%s", next.data);
        struct blob_gcs_req r = {
            .method = "GET", .url = url.data, .out = &reply};
        if (e == TR_OK)
            e = blob_gcs_http_do(&g->http, &r, eb);
        if (e == TR_OK && r.status != 200)
            e = reply_error(eb, "list", prefix[0] ? prefix : "/", &r);
        if (e == TR_OK) {
            page = json_loadb(reply.data, reply.len, 0, NULL);
            if (!json_is_object(page))
                e = tr_fail(eb, TR_ERR_IO, "gcs: list: malformed reply");
        }
        if (e == TR_OK)
            e = list_page(g, page, fn, ctx, &next, eb);
        json_decref(page);
    } while (e == TR_OK && next.len > 0);
    buf_free(&url);
    buf_free(&reply);
    buf_free(&next);
    return e;
}

/* ---- open, close -------------------------------------------------------- */

static void gcs_close(struct blob *b)
{
    struct blob_gcs *g = (struct blob_gcs *)b;
    if (g == NULL)
        return;
    blob_gcs_auth_free(g->auth);
    blob_gcs_http_free(&g->http);
    free(g);
}

static const struct blob_ops gcs_ops = {
    .put_stream = gcs_put_stream,
    .put_file = NULL,
    .open = gcs_open,
    .read = gcs_read,
    .fd = gcs_fd,
    .obj_close = gcs_obj_close,
    .remove = gcs_remove,
    .list = gcs_list,
    .close = gcs_close,
};

tr_err blob_open_gcs(const char *url, const char *spool_dir, struct blob **out,
                     struct tr_errbuf *eb)
{
    struct blob_gcs *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    g->base.ops = &gcs_ops;
    g->part = PART_SIZE;
    g->single_max = SINGLE_MAX;
    snprintf(g->base.tmp_dir, sizeof(g->base.tmp_dir), "%s",
             spool_dir != NULL ? spool_dir : "");
    struct url_opts o = {0};
    tr_err e = parse_url(g, url, &o, eb);
    if (e == TR_OK)
        e = set_endpoint(g, o.endpoint, eb);
    if (e == TR_OK && o.single_max[0] != '\0') {
        int64_t mib = 0;
        if (util_parse_i64(o.single_max, &mib) != TR_OK || mib < 0 ||
            mib > (int64_t)(SINGLE_MAX >> 20))
            e = tr_fail(eb, TR_ERR_CONFIG,
                        "gs:// url: single-put-max must be 0 to %llu (MiB)",
                        (unsigned long long)(SINGLE_MAX >> 20));
        g->single_max = (uint64_t)mib << 20;
    }
    if (e == TR_OK)
        e = blob_gcs_http_init(&g->http, o.ca_file[0] ? o.ca_file : NULL, eb);
    if (e == TR_OK)
        e = set_auth(g, &o, eb);
    if (e != TR_OK) {
        gcs_close(&g->base);
        return e;
    }
    g->http.auth = g->auth;
    *out = &g->base;
    return TR_OK;
}
