/*
 * http.h - the HTTP layer: requests, responses, routes, JSON:API helpers
 * and authentication, on top of libmicrohttpd.
 *
 * A request owns an arena created when its headers arrive and destroyed
 * when the response has been sent; everything a handler allocates for the
 * request (strings, json_t via http_json_own(), db results) lives in it.
 * Handlers run on libmicrohttpd worker threads and may block on the
 * database.  Only this module maps tr_err codes to HTTP statuses.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_HTTP_H
#define TR_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/jw.h"
#include "core/server.h"

/* Who is calling.  PRINC_NONE only for routes without auth. */
enum principal_kind {
    PRINC_NONE = 0,
    PRINC_USER,
    PRINC_ORG,
    PRINC_RUN,
    PRINC_TEAM, /* a team token */
    PRINC_NODE, /* a cluster node's credential (internal API only) */
};

struct principal {
    enum principal_kind kind;
    const char *token_id;
    const char *user_id; /* PRINC_USER */
    const char *username;
    bool is_admin;       /* site admin */
    const char *org;     /* PRINC_ORG, PRINC_TEAM: the organization */
    const char *team_id; /* PRINC_TEAM: the team */
    /* the caller's access flags (domain/access.h) for perm_of, computed
     * once per request by the API's access checks */
    const char *perm_of;
    uint64_t perms;
    const char *org_perm_of; /* the same for one organization's flags */
    uint64_t org_perms;
    /* the same for a page of a list: page_perms[i] for page_ids[i] */
    const char *const *page_ids;
    const uint64_t *page_perms;
    int npage;
    const char *run_id;  /* PRINC_RUN: the run a run-scoped token serves */
    const char *node_id; /* PRINC_NODE: the node (node-...) */
    const char *node_name;
    bool node_was_gone; /* PRINC_NODE: marked gone for silence, back now */
};

#define HTTP_MAX_PARAMS 6

struct http_req {
    struct terrace_server *srv;
    struct arena *arena;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *request_id;
    const struct route *route;
    int nparams;
    const char *pnames[HTTP_MAX_PARAMS];
    const char *pvalues[HTTP_MAX_PARAMS];
    struct principal who;
    /* body: in memory (JSON routes) or spooled to a file (upload routes)
     * or, for ROUTE_STREAM, written to the descriptor its handler chose
     * while called early (spool_path NULL then unless it spools) */
    struct buf body;
    int spool_fd;
    bool early;        /* ROUTE_STREAM: called before the body */
    void *handler_ctx; /* what the early call keeps for the last one */
    char *spool_path;
    /* body bytes for spool_fd not yet written: libmicrohttpd hands the
     * body over a TLS record (<= 16 KiB) at a time, written on in
     * HTTP_STAGE pieces (arena memory, made on first use) */
    char *stage;
    size_t stage_len;
    uint64_t body_len;
    bool body_too_large;
    bool discard_body; /* refused before the body: read it, then answer */
    /* response */
    int status;
    const char *content_type;
    const char *resp_body;
    size_t resp_len;
    struct blob_reader *resp_blob; /* set: send this instead of resp_body */
    uint64_t resp_blob_size;
    int resp_fd; /* >= 0: send this file instead (http_reply_file()) */
    uint64_t resp_fd_size;
    int nheaders;
    const char *hnames[8];
    const char *hvalues[8];
    /* long polls (http_suspend()) */
    void (*park)(struct http_req *r, void *arg);
    void *park_arg;
    bool suspended;
    long db_statements; /* debug builds: statements the handler ran */
    /* ROUTE_WS_READ: workspace :id as the token's lookup read it (NULL:
     * none such), and whether the handler took it (that statement then
     * counts in db_statements) */
    struct st_workspace *ws_read;
    bool ws_read_used;
};

typedef void (*http_handler)(struct http_req *req);

enum route_flags {
    ROUTE_AUTH = 1,      /* needs a valid token */
    ROUTE_SPOOL = 2,     /* body spooled to a file, limit cfg max_state */
    ROUTE_BIG_JSON = 4,  /* JSON body up to 2 * max_state (inline state) */
    ROUTE_SIGNED = 8,    /* signed URL, checked before the body is read */
    ROUTE_RUN = 16,      /* a run's token may call it (see auth.c); every
                            other route answers it 404 */
    ROUTE_NODE = 32,     /* needs a node credential (internal API); user,
                            organization and run tokens are refused */
    ROUTE_STREAM = 64,   /* the handler is also called before the body,
                            with early set: it answers (a refusal) or sets
                            spool_fd, where the body is written as it
                            arrives (with ROUTE_SPOOL's limit) */
    ROUTE_WS_READ = 128, /* a GET that first loads workspace :id (the
                            workspace, its runs, state versions, variables
                            ...): the token's lookup reads it too
                            (auth.c), one round trip fewer */
};

struct route {
    const char *method;
    const char *pattern; /* "/api/v2/workspaces/:id/actions/lock" */
    http_handler handler;
    int flags;
};

/* Route tables, one per API file, gathered by src/api/routes.c. */
const struct route *http_match(const char *method, const char *path,
                               struct arena *a, int *nparams,
                               const char **names, const char **values,
                               bool *path_exists);
void http_set_routes(const struct route *const *tables);
/* Routes numbered 0..count-1 across the tables in order (the numbering
 * /metrics indexes its counters by).  http_route_index() gives -1 for a
 * route in no table; it walks the tables once (a few dozen entries). */
int http_route_count(void);
const struct route *http_route_at(int i);
int http_route_index(const struct route *route);

/* Server lifecycle (server.c). */
tr_err http_start(struct terrace_server *srv, struct tr_errbuf *eb);
void http_stop(struct terrace_server *srv);
/* http_stop(), but the listening socket stays open and is the caller's
 * (connections queue in the kernel meanwhile); -1 when there was none. */
int http_stop_keep_listener(struct terrace_server *srv);

/* Request helpers. */
const char *http_param(const struct http_req *r, const char *name);
const char *http_query(const struct http_req *r, const char *key);
const char *http_header(const struct http_req *r, const char *name);
void http_add_header(struct http_req *r, const char *name, const char *val);

/* Responses.  The body is copied into nothing: arena memory is sent as is. */
void http_reply(struct http_req *r, int status, const char *ctype,
                const char *body, size_t len);
/* Serialises doc (then decrefs it) as application/vnd.api+json. */
void http_reply_json(struct http_req *r, int status, json_t *doc);
/* Streaming documents: http_jw_start() points w at a new buffer for the
 * request; http_reply_jw() sends what w wrote as application/vnd.api+json
 * (the buffer is freed with the request), or answers 500 when the writer
 * failed.  Lists write their items this way instead of building json_t
 * trees. */
void http_jw_start(struct http_req *r, struct jw *w);
void http_reply_jw(struct http_req *r, int status, struct jw *w);
/* Sends size bytes of an object (blob.h), which the request now owns: a
 * sealed one is decrypted chunk by chunk as it is sent. */
struct blob_reader;
void http_reply_blob(struct http_req *r, int status, const char *ctype,
                     struct blob_reader *rd, uint64_t size);
/* Sends size bytes of the open file fd, which the request now owns. */
void http_reply_file(struct http_req *r, int status, const char *ctype, int fd,
                     uint64_t size);
/* Long polls without holding a worker thread: a handler that cannot
 * answer yet calls http_suspend() and returns without a response.  The
 * server then suspends the connection and calls park(r, arg), which
 * hands r to another thread; that thread later writes the response
 * (http_reply() and the like) and calls http_resume(r) exactly once.
 * Nothing else touches r in between.  Every suspended request must be
 * resumed before http_stop(). */
void http_suspend(struct http_req *r, void (*park)(struct http_req *, void *),
                  void *arg);
void http_resume(struct http_req *r);
/* The caller's address as text ("" when unknown), in the request arena:
 * the peer of the connection, which is a proxy's behind one. */
const char *http_client_ip(struct http_req *r);

/* JSON:API error document with one error. */
void http_error(struct http_req *r, int status, const char *title,
                const char *detail);
/* Maps a tr_err code to a status; the message from eb is the detail. */
void http_fail(struct http_req *r, tr_err e, const struct tr_errbuf *eb);
int http_status_for(tr_err e);

/* json_t owned by the request arena (decref'd at its end). */
json_t *http_json_own(struct http_req *r, json_t *j);

/* JSON:API body: parses the request body, checks data.type equals type
 * (NULL: any), returns data (borrowed, owned by the request).  On error
 * the response is already written and NULL is returned. */
json_t *jsonapi_body(struct http_req *r, const char *type);
/* Attribute getters with type checks; on a wrong type they write a 422 and
 * return false.  A missing attribute leaves *out alone and returns true. */
bool jsonapi_attr_str(struct http_req *r, json_t *data, const char *name,
                      const char **out);
bool jsonapi_attr_bool(struct http_req *r, json_t *data, const char *name,
                       int *out); /* -1 untouched, 0, 1 */
bool jsonapi_attr_int(struct http_req *r, json_t *data, const char *name,
                      int64_t *out, bool *present);
/* relationships.<name>.data.id, optionally checking type. */
const char *jsonapi_rel_id(json_t *data, const char *name);
json_t *jsonapi_attrs(json_t *data);

/* Pagination: page[number] (>=1), page[size] (1..100, default 20). */
struct page {
    int number;
    int size;
};
bool jsonapi_page(struct http_req *r, struct page *p);
json_t *jsonapi_pagination(const struct page *p, int64_t total);
/* "meta": {"pagination": ...} as the next member of the object w is in. */
void jsonapi_write_meta(struct jw *w, const struct page *p, int64_t total);
/* {"data": [...], "meta": {"pagination": ...}} */
json_t *jsonapi_list_doc(json_t *items, const struct page *p, int64_t total);

/* Authentication (auth.c): resolves the Bearer token into r->who.  Returns
 * false after writing 401. */
bool http_authenticate(struct http_req *r);
/* The same for a node credential (ROUTE_NODE): r->who becomes PRINC_NODE
 * with the node's id and name.  401 with the registry's reason (unknown,
 * revoked, left). */
bool http_authenticate_node(struct http_req *r);

/* Signed capability URLs (signed.c): path?expires=T&sig=HMAC.  */
/* Sets srv->signing_key, derived from srv->keys and the installation's
 * salt in the database (made on first start); call once before serving.
 * Nothing secret is stored. */
tr_err http_signing_init(struct terrace_server *srv, struct tr_errbuf *eb);
/* The hex signature of path until expires under key, and whether sig is
 * it (constant-time compare; sig NULL is not). */
char *http_sign(struct arena *a, const char *key, const char *path,
                const char *expires);
bool http_sig_valid(struct arena *a, const char *key, const char *path,
                    const char *expires, const char *sig);
char *http_signed_url(struct http_req *r, const char *path, int64_t ttl);
bool http_check_signature(struct http_req *r);

#endif
