/*
 * job_http.h - the HTTP implementation of struct job_api (job.h): a
 * secondary node's executor claims, heartbeats, logs and finishes jobs
 * through the primaries' internal API (/api/internal/v1/, docs in
 * node/secondary.h), with libcurl.
 *
 * Transient failures (no connection, a timeout, 429/502/503/504, and a
 * 500 up to three times) are retried with jittered exponential backoff,
 * or after the Retry-After a primary asks for: a primary may die, be
 * busy or the load balancer move a request while a job runs, and the
 * job must not end for it.  While a call for a job waits to be retried
 * the job is heartbeated, so the retries last as long as its lease; a
 * primary saying the job is gone (409) stops them.  A job heartbeat is
 * tried once (the executor calls it again soon; failing it never ends
 * the job); the job's lease is lost only when a primary says so (409).
 *
 * A claimed job is confirmed with a first heartbeat before anything else
 * (api/internal.c): if that is refused, or no primary answers it, the
 * job is not run (the primaries queue an unconfirmed claim again).
 *
 * The tool binary a job names is fetched once from GET /tools/:version,
 * checked against the job's tool_sha256 and the X-Terrace-Sha256 header,
 * and cached executable under DATA/tools/<version>-<sha256>/ with a
 * checksum sidecar (executor_int.h), trusted afterwards without hashing;
 * struct job's tool_path points at the cached copy and ca_file at the
 * node's CA.  The tool the primaries call latest is fetched before the
 * first claim, so a job rarely waits for its tool; the primaries bound
 * concurrent tool downloads (503 + Retry-After).
 *
 * Drain: after job_http_drain() claim() takes no job (it waits briefly
 * and answers TR_ERR_NOT_FOUND); the jobs in hand still heartbeat, log
 * and finish.  job_http_busy() says when the last has finished.
 *
 * Thread safety: every call is safe from any thread; each request uses
 * its own curl handle.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_JOB_HTTP_H
#define TR_JOB_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "executor/job.h"

struct job_http_opts {
    const char *base_url;   /* primaries (load balancer), no /api suffix */
    const char *credential; /* node credential (secret), or NULL: join */
    const char *ca_file;    /* PEM trusted for base_url and runs, or NULL */
    const char *data_dir;   /* tools are cached under DATA/tools */
    int claim_wait_ms;      /* long-poll asked of the primaries */
    int64_t retry_ms;       /* longest a call retries transient failures */
};

/* Defaults: 25 s claims, 10 min of retries. */
void job_http_defaults(struct job_http_opts *o);

struct job_http;

/* Copies o's strings.  No request is made. */
tr_err job_http_new(const struct job_http_opts *o, struct job_http **out,
                    struct tr_errbuf *eb);
void job_http_free(struct job_http *jh); /* NULL ignored */

/* The job API backed by jh (valid while jh lives). */
struct job_api *job_http_api(struct job_http *jh);

/* Claims no more jobs from now on. */
void job_http_drain(struct job_http *jh);
/* Jobs claimed and not yet finished, plus claims in flight. */
int job_http_busy(struct job_http *jh);
/* Jobs claimed and not yet finished. */
int job_http_running(struct job_http *jh);
/* False while the last call found no primary (no connection, 502-504). */
bool job_http_reachable(struct job_http *jh);

/* Hands over a claim reply ({"job":{...}}) that another process (the idle
 * secondary, node/idle.h) received: the next claim() returns its job,
 * confirmed and with its tool, as if this node had claimed it, even while
 * draining. */
tr_err job_http_inject(struct job_http *jh, const char *reply, size_t len,
                       struct tr_errbuf *eb);

/* Fetches the primaries' latest tool before the first claim (prefetch):
 * true once it is here or cannot be had for good; false while the
 * primaries cannot be reached or are busy (try again later). */
bool job_http_tool_ready(struct job_http *jh);

/* One call to the internal API: method path (under /api/internal/v1),
 * body (JSON text or NULL).  *status is the HTTP status (0: none came);
 * a JSON reply is parsed into *reply (NULL if none; the caller decrefs).
 * Statuses >= 400 return the code for them with the primaries' detail in
 * eb; transient failures are retried for up to retry_ms (0: tried once)
 * and then return TR_ERR_BUSY. */
tr_err job_http_call(struct job_http *jh, const char *method, const char *path,
                     const char *body, int64_t retry_ms, long *status,
                     json_t **reply, struct tr_errbuf *eb);

/* Replaces the credential (after a join).  Not while jobs run. */
void job_http_set_credential(struct job_http *jh, const char *credential);

/* Fills j from a claim reply's "job" object; strings in a.  TR_ERR_INVALID
 * naming the field when one is missing or of the wrong type.  tool_path
 * and ca_file are left NULL. */
tr_err job_http_parse_job(struct arena *a, json_t *obj, struct job *j,
                          struct tr_errbuf *eb);

/* The cached tool for version and sha256 under dir (DATA/tools): *path
 * in a if DIR/<version>-<sha256>/tofu exists and hashes to sha256 (a file
 * that does not is removed); TR_ERR_NOT_FOUND when there is none.
 * TR_ERR_INVALID for a version or checksum that could not name a
 * directory safely. */
tr_err job_http_tool_cached(struct arena *a, const char *dir,
                            const char *version, const char *sha256,
                            const char **path, struct tr_errbuf *eb);

/* Installs the file at tmp (in dir's filesystem) as the cached tool for
 * version and sha256 when it hashes to sha256, executable; *path in a.
 * tmp is removed on every path.  TR_ERR_CRYPTO when the checksum differs. */
tr_err job_http_tool_install(struct arena *a, const char *dir,
                             const char *version, const char *sha256,
                             const char *tmp, const char **path,
                             struct tr_errbuf *eb);

#endif
