/*
 * blob_gcs_int.h - what the Google Cloud Storage backend's files share:
 * HTTP requests with GCS's retry and token policy over the shared client
 * (blob_gcs_http.c on blob_http.c) and OAuth2 access tokens
 * (blob_gcs_auth.c).  Only src/blob/blob_gcs*.c include it.
 *
 * Both objects are shared by every thread that uses the store: the HTTP
 * client keeps one connection cache behind its mutexes, the token cache
 * its own mutex.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BLOB_GCS_INT_H
#define TR_BLOB_GCS_INT_H

#include "core/curl_load.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob/blob.h"
#include "core/buf.h"
#include "core/err.h"

struct blob_gcs_auth;
struct blob_http;

/* The client shared by every request of one store. */
struct blob_gcs_http {
    struct blob_http *client;   /* blob_http.c, with GCS's policy */
    struct blob_gcs_auth *auth; /* NULL: requests carry no token */
};

/* One request.  The caller fills the inputs; blob_gcs_http_do() fills
 * status, and location/range when the reply has those headers. */
struct blob_gcs_req {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    const char *url;
    struct curl_slist *headers; /* extra request headers; caller's */
    const void *body;           /* request body, or NULL for none */
    size_t body_len;
    blob_source src; /* or a body of src_len bytes pulled from src, sent
                        once (blob_http_call.src) */
    void *src_ctx;
    uint64_t src_len;
    struct buf *out;     /* reply body sink (bounded by out->max), or NULL */
    uint64_t skip;       /* reply bytes to drop before out (a 200 reply to
                            a ranged GET starts at 0, not at the range) */
    bool no_auth;        /* the token request itself */
    long status;         /* HTTP status of the last try */
    char location[1024]; /* Location header of the reply, or "" */
    char range[64];      /* Range header of the reply, or "" */
};

/* ca_file: the CAs trusted for https (NULL: the system's). */
tr_err blob_gcs_http_init(struct blob_gcs_http *h, const char *ca_file,
                          struct tr_errbuf *eb);
void blob_gcs_http_free(struct blob_gcs_http *h);

/* Sends r through blob_http_do(), retrying with backoff on connection
 * failures, timeouts and 5xx/408/429 replies (the body is re-sent from
 * memory, the sinks emptied).  A 401 drops the cached token and tries
 * once more.  TR_OK with r->status set for any other reply,
 * TR_ERR_UNAVAILABLE when no try got an answer, TR_ERR_TOO_LARGE when
 * the reply outgrew r->out. */
tr_err blob_gcs_http_do(struct blob_gcs_http *h, struct blob_gcs_req *r,
                        struct tr_errbuf *eb);

struct blob_http_stream;

/* Starts r (a GET) as a stream with blob_http_stream_open()'s retries
 * and the same token handling: *out gets the stream when the reply is
 * 2xx; otherwise *out is NULL, r->status is set and the reply body goes
 * to r->out (if set).  TR_ERR_UNAVAILABLE when no try got an answer. */
tr_err blob_gcs_http_stream(struct blob_gcs_http *h, struct blob_gcs_req *r,
                            struct blob_http_stream **out,
                            struct tr_errbuf *eb);

/* A short reason out of an error reply body ("" when none). */
void blob_gcs_http_reason(const struct buf *body, char *out, size_t n);

/* Tokens from a service-account key file (OAuth2 JWT bearer grant,
 * RS256) or the instance metadata server. */
enum blob_gcs_auth_kind { BLOB_GCS_AUTH_FILE, BLOB_GCS_AUTH_METADATA };

/* Reads the key file at path (kind FILE) or notes the metadata server
 * (kind METADATA; GCE_METADATA_HOST overrides its host:port).
 * TR_ERR_CONFIG with a message naming what is wrong with the file. */
tr_err blob_gcs_auth_new(enum blob_gcs_auth_kind kind, const char *path,
                         struct blob_gcs_http *h, struct blob_gcs_auth **out,
                         struct tr_errbuf *eb);
void blob_gcs_auth_free(struct blob_gcs_auth *a);

/* The current access token into out (n bytes), fetching a new one when
 * the cached one is missing or expires within a minute. */
tr_err blob_gcs_auth_token(struct blob_gcs_auth *a, char *out, size_t n,
                           struct tr_errbuf *eb);
/* Forgets the cached token (the service refused it). */
void blob_gcs_auth_drop(struct blob_gcs_auth *a);
/* Tokens fetched so far (for tests). */
unsigned blob_gcs_auth_fetches(struct blob_gcs_auth *a);

#endif
