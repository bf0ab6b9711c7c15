/*
 * blob_gcs_http.c - HTTP requests for the Google Cloud Storage backend,
 * through the request/retry loop the remote backends share
 * (blob_http.c) with GCS's policy: retries on connection failures,
 * timeouts, 5xx, 408 and 429; a bearer token from blob_gcs_auth.c on
 * every request but the token request itself; a 401 drops the cached
 * token and tries once more.
 *
 * Request bodies are in memory (at most one upload part), so a retry
 * sends the same bytes again; reply sinks are emptied before each try.
 * Nothing here logs a URL's query (an upload session id is a bearer
 * capability) or a header.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "blob/blob_gcs_int.h"
#include "blob/blob_http.h"

static bool gcs_retryable(long s)
{
    return s >= 500 || s == 408 || s == 429;
}

tr_err blob_gcs_http_init(struct blob_gcs_http *h, const char *ca_file,
                          struct tr_errbuf *eb)
{
    memset(h, 0, sizeof(*h));
    struct blob_http_opts o = {.attempts = 5,
                               .base_ms = 200,
                               .cap_ms = 4000,
                               .connect_timeout_ms = 10000,
                               .stall_s = 30,
                               .name = "gcs",
                               .ca_file = ca_file,
                               .retryable = gcs_retryable};
    return blob_http_new(&o, &h->client, eb);
}

void blob_gcs_http_free(struct blob_gcs_http *h)
{
    blob_http_free(h->client);
    h->client = NULL;
}

/* One request's state for the shared loop's callbacks. */
struct attempt {
    struct blob_gcs_http *h;
    struct blob_gcs_req *r;
    uint64_t skipped;
};

/* Request headers: the caller's, then the bearer token. */
static tr_err prep(void *ctx, struct curl_slist **hdrs, struct tr_errbuf *eb)
{
    struct attempt *at = ctx;
    struct curl_slist *l = NULL;
    for (struct curl_slist *s = at->r->headers; s != NULL; s = s->next)
        if ((l = curl_slist_append(*hdrs, s->data)) != NULL)
            *hdrs = l;
    if (at->h->auth == NULL || at->r->no_auth)
        return TR_OK;
    char tok[2048];
    tr_err e = blob_gcs_auth_token(at->h->auth, tok, sizeof(tok), eb);
    if (e != TR_OK)
        return e;
    char line[2100];
    snprintf(line, sizeof(line), "Authorization: Bearer %s", tok);
    if ((l = curl_slist_append(*hdrs, line)) != NULL)
        *hdrs = l;
    memset(tok, 0, sizeof(tok));
    memset(line, 0, sizeof(line));
    return TR_OK;
}

static void reauth(void *ctx)
{
    struct attempt *at = ctx;
    blob_gcs_auth_drop(at->h->auth);
}

static bool sink(void *ctx, long status, const char *p, size_t n)
{
    (void)status;
    struct attempt *at = ctx;
    if (p == NULL) { /* a new attempt */
        at->skipped = 0;
        if (at->r->out != NULL)
            buf_reset(at->r->out);
        return true;
    }
    size_t off = 0;
    if (at->skipped < at->r->skip) {
        uint64_t left = at->r->skip - at->skipped;
        off = left < n ? (size_t)left : n;
        at->skipped += off;
    }
    return off == n || at->r->out == NULL ||
           buf_append(at->r->out, p + off, n - off) == TR_OK;
}

tr_err blob_gcs_http_do(struct blob_gcs_http *h, struct blob_gcs_req *r,
                        struct tr_errbuf *eb)
{
    struct attempt at = {.h = h, .r = r};
    bool auth = h->auth != NULL && !r->no_auth;
    struct blob_http_call c = {.method = r->method,
                               .url = r->url,
                               .body = r->body,
                               .body_len = r->body_len,
                               .src = r->src,
                               .src_ctx = r->src_ctx,
                               .src_len = r->src_len,
                               .prep = prep,
                               .prep_ctx = &at,
                               .reauth = auth ? reauth : NULL,
                               .sink = sink,
                               .sink_ctx = &at};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    tr_err e = blob_http_do(h->client, &c, &resp, eb);
    r->status = resp.status;
    if (!blob_http_header(&resp.hdrs, "Location", r->location,
                          sizeof(r->location)))
        r->location[0] = '\0';
    if (!blob_http_header(&resp.hdrs, "Range", r->range, sizeof(r->range)))
        r->range[0] = '\0';
    blob_http_resp_free(&resp);
    return e;
}

tr_err blob_gcs_http_stream(struct blob_gcs_http *h, struct blob_gcs_req *r,
                            struct blob_http_stream **out, struct tr_errbuf *eb)
{
    struct attempt at = {.h = h, .r = r};
    bool auth = h->auth != NULL && !r->no_auth;
    struct blob_http_call c = {.method = "GET",
                               .url = r->url,
                               .prep = prep,
                               .prep_ctx = &at,
                               .reauth = auth ? reauth : NULL,
                               .max_resp = r->out != NULL ? r->out->max : 0};
    struct blob_http_resp resp;
    blob_http_resp_init(&resp);
    tr_err e = blob_http_stream_open(h->client, &c, out, &resp, eb);
    r->status = resp.status;
    if (e == TR_OK && *out == NULL && r->out != NULL) {
        buf_reset(r->out);
        (void)buf_append(r->out, resp.body.data, resp.body.len);
    }
    blob_http_resp_free(&resp);
    return e;
}

void blob_gcs_http_reason(const struct buf *body, char *out, size_t n)
{
    out[0] = '\0';
    if (body == NULL || body->len == 0)
        return;
    json_t *j = json_loadb(body->data, body->len, 0, NULL);
    const char *msg = NULL;
    if (j != NULL) {
        json_t *err = json_object_get(j, "error");
        msg = json_string_value(json_object_get(j, "error_description"));
        if (msg == NULL && json_is_object(err))
            msg = json_string_value(json_object_get(err, "message"));
        else if (msg == NULL)
            msg = json_string_value(err);
    }
    const char *src = msg != NULL ? msg : body->data;
    size_t i = 0;
    for (; i + 1 < n && i < 160 && src[i] != '\0' && src[i] != '\n'; i++)
        out[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
    out[i] = '\0';
    json_decref(j);
}
