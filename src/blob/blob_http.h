/*
 * blob_http.h - the libcurl client the remote blob backends share (S3,
 * GCS, Azure): one request with retries, and a streamed GET.
 *
 * This is the one request/retry/backoff loop of every remote backend;
 * what differs between services is policy, passed in:
 *   - which answers are worth another attempt (opts.retryable; the
 *     default is 429, 500, 502, 503 and 504);
 *   - how an attempt is signed (call.prep, run before every attempt, so
 *     a signature carrying the time is made afresh);
 *   - whether a 401 means "credentials expired" (call.reauth: dropped,
 *     signed again, tried once more without counting an attempt);
 *   - where an answer's body goes (call.sink, else resp.body).
 * An attempt that fails at the transport (connection refused or reset,
 * timeout) or answers a retryable status is tried again, up to
 * opts.attempts in all, after an exponential backoff with jitter
 * (Retry-After honoured, capped); each retry is logged as a warning
 * naming the host, never the path or query (an upload session URL is a
 * bearer capability).  Request bodies are in memory so any attempt can
 * resend them, or pulled from a source while they are sent (one large
 * object in one request, sent once).  Connections are kept alive and shared
 * between threads through one curl share handle per client.
 *
 * Thread safety: a client may be used from any number of threads at
 * once; a stream belongs to one thread at a time.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BLOB_HTTP_H
#define TR_BLOB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/curl_load.h"

#include "blob/blob.h"
#include "core/buf.h"
#include "core/err.h"

struct blob_http_opts {
    int attempts;            /* tries in all, >= 1 (default 5) */
    int64_t base_ms;         /* first backoff (default 200) */
    int64_t cap_ms;          /* largest backoff (default 8000) */
    long connect_timeout_ms; /* default 10000 */
    long stall_s;            /* no byte for this long fails (default 60) */
    const char *name;        /* for messages: "s3", "gcs", "azure" */
    /* A PEM file of the CAs trusted for https, in place of the system's
     * (a private CA, a test server's); NULL: the system's.  Copied; it
     * must be readable when the client is made. */
    const char *ca_file;
    /* Whether an answer with this status is worth another attempt
     * (NULL: blob_http_retryable). */
    bool (*retryable)(long status);
};

struct blob_http;

/* A client with opts (NULL: defaults).  TR_ERR_CONFIG when opts->ca_file
 * cannot be read. */
tr_err blob_http_new(const struct blob_http_opts *opts, struct blob_http **out,
                     struct tr_errbuf *eb);
void blob_http_free(struct blob_http *h);

/* Called before each attempt to add its headers to *hdrs (an S3
 * signature carries the attempt's time). */
typedef tr_err (*blob_http_prep)(void *ctx, struct curl_slist **hdrs,
                                 struct tr_errbuf *eb);

/* Where an answer's body goes when a call names a sink: called with
 * data NULL before each attempt (start over), then with the body's
 * bytes as they come and the answer's status.  Returning false fails the
 * request with TR_ERR_TOO_LARGE (no retry). */
typedef bool (*blob_http_sink)(void *ctx, long status, const char *data,
                               size_t n);

struct blob_http_call {
    const char *method; /* GET, HEAD, PUT, POST, DELETE */
    const char *url;
    const void *body; /* PUT/POST body, resent by every attempt */
    size_t body_len;
    /* Or a PUT/POST body of src_len bytes pulled from src while it is
     * sent (never whole in memory).  It can be sent once: an attempt
     * that has pulled any of it is the last (a transport failure is
     * TR_ERR_UNAVAILABLE, a retryable status is returned as it is); one
     * that failed before (refused connection, an answer before the body
     * with "Expect: 100-continue") is tried again.  Its last bytes go out
     * only once src has been seen to end, so a source that fails, ends
     * early or refuses at its end leaves the server a short body, which
     * stores nothing; the request then fails with src's error. */
    blob_source src;
    void *src_ctx;
    uint64_t src_len;
    blob_http_prep prep; /* may be NULL */
    void *prep_ctx;
    /* Called with prep_ctx the first time an attempt is answered 401:
     * forgets the cached credentials, so that the next attempt's prep
     * fetches new ones; that attempt is not counted.  NULL: a 401 is
     * an answer like any other. */
    void (*reauth)(void *prep_ctx);
    blob_http_sink sink; /* NULL: the body goes to resp.body (a
                            stream's body is read, never sunk) */
    void *sink_ctx;
    size_t max_resp; /* response body kept up to this (0: 1 MiB) */
};

struct blob_http_resp {
    long status;
    struct buf body; /* the response body (truncated at max_resp) */
    struct buf hdrs; /* the final response's header lines */
};

void blob_http_resp_init(struct blob_http_resp *r);
void blob_http_resp_free(struct blob_http_resp *r);

/* Runs call with retries.  TR_OK once a response arrives that is not to
 * be retried, or the last attempt's response (any status: the caller
 * maps it); TR_ERR_UNAVAILABLE when the last attempt failed at the
 * transport, with the reason in eb; TR_ERR_TOO_LARGE when the sink
 * refused the body; a prep's error as it is. */
tr_err blob_http_do(struct blob_http *h, const struct blob_http_call *call,
                    struct blob_http_resp *r, struct tr_errbuf *eb);

/* The value of header name (case-insensitive) in hdrs, trimmed, into
 * out (n bytes); false if absent or longer than n - 1. */
bool blob_http_header(const struct buf *hdrs, const char *name, char *out,
                      size_t n);

/* Percent-encodes s onto b (RFC 3986): every byte but [A-Za-z0-9._~-],
 * and '/' too unless keep_slash.  What SigV4 canonical URIs and query
 * values (S3) and GCS's path segments and query values want. */
tr_err blob_http_escape(struct buf *b, const char *s, bool keep_slash);

/* The default retry policy: 429, 500, 502, 503, 504. */
bool blob_http_retryable(long status);

/* Sleeps the backoff before attempt number next (2 for the first retry),
 * at least the Retry-After seconds hdrs carries (may be NULL), capped. */
void blob_http_backoff(const struct blob_http *h, int next,
                       const struct buf *hdrs);

/* The client's options (defaults filled in). */
const struct blob_http_opts *blob_http_opts(const struct blob_http *h);

/* A GET whose body is pulled a buffer at a time, never held whole. */
struct blob_http_stream;

/* Starts call (a GET) with retries until its headers arrive.  *out gets
 * the stream when the status is 2xx; otherwise *out is NULL and r gets
 * the status, headers and (small) body.  r->hdrs is filled either way.
 * TR_ERR_UNAVAILABLE as blob_http_do. */
tr_err blob_http_stream_open(struct blob_http *h,
                             const struct blob_http_call *call,
                             struct blob_http_stream **out,
                             struct blob_http_resp *r, struct tr_errbuf *eb);
/* Up to n bytes of the body, *got of them: fewer only at its end.
 * TR_ERR_IO when the transfer breaks (no retry here: the caller
 * reopens at its offset). */
tr_err blob_http_stream_read(struct blob_http_stream *s, void *buf, size_t n,
                             size_t *got, struct tr_errbuf *eb);
void blob_http_stream_close(struct blob_http_stream *s);

#endif
