/*
 * server.h - struct terrace_server, the one process-wide object.
 *
 * Filled by src/main before threads start, then read-only except for the
 * fields marked atomic.  Modules receive a pointer to it, never an extern.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_SERVER_H
#define TR_SERVER_H

#include <stdatomic.h>

#include "core/config.h"

struct db;
struct blob;
struct keyring;
struct run_signal;
struct job_api;
struct job_service;
struct MHD_Daemon;
struct http_guard;
struct http_metrics;
struct secondary;
struct json_wait;

struct terrace_server {
    struct cfg cfg;
    struct db *db;
    struct blob *blob;
    struct keyring *keys;   /* KEK for envelope encryption */
    char signing_key[65];   /* hex HMAC key for signed URLs, derived
                               from the KEK (http_signing_init) */
    char external_url[512]; /* without trailing slash */
    struct MHD_Daemon *mhd;
    struct http_guard *guard;   /* connection limits (src/http/guard.c) */
    struct http_trim *trim;     /* gives memory back when idle (http/trim.c) */
    struct http_linger *linger; /* lingering close (src/http/linger.c) */
    struct run_signal *run_signal; /* wakes job claimers (domain/run.h) */
    struct job_api *jobs;  /* in-process executor interface (job_local) */
    atomic_ulong requests; /* requests served */
    atomic_int in_flight;  /* requests begun and not yet completed */
    atomic_int tool_sends; /* tool binaries being sent to secondaries
                              (api/internal.c, at most tool-downloads) */
    _Atomic int is_leader; /* 1 while this node runs the singleton loops
                              (src/node/leader.c; demo and SQLite: always) */
    char sandbox[512];     /* the run sandbox, a JSON object for the
                              full health check ("" without runs) */
    /* request counters and the readiness probe (src/http/metrics.c);
     * made by http_start(), freed by http_stop() */
    struct http_metrics *metrics;
    /* Readiness (GET /_health_check?ready=1, src/http/ready.c).  1: the
     * node is draining and answers not ready, reason "draining". */
    _Atomic int draining;
    /* Set by the cluster code before http_start(): why this node is not
     * ready ("leader not known", "not joined"), or NULL when nothing of
     * the cluster holds it back.  Called on an HTTP worker thread: it
     * must not block. */
    const char *(*not_ready)(struct terrace_server *srv);
    /* what workers need: behind jobs and the internal API */
    struct job_service *job_service;
    /* requests for a JSON plan on its way (api/json_wait.c), or NULL */
    struct json_wait *json_wait;
    /* blob garbage collection totals (domain/blob_gc.c, for /metrics) */
    struct {
        atomic_ulong passes, removed, removed_bytes, failed, errors;
    } gc;
    /* role secondary: its state, for its health route (node/secondary.c) */
    struct secondary *secondary;
};

#endif
