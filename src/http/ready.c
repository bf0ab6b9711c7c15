/*
 * ready.c - readiness of a node (GET /_health_check?ready=1) and the
 * database probe behind it.
 *
 * A node is ready when, in this order: it is not draining; its database
 * answers (the probe reads the newest migration it records); that
 * migration is at least the newest this binary holds; and the cluster
 * code's not_ready hook (struct terrace_server) gives no reason.  A
 * node without a database (a secondary) skips the two database checks.
 *
 * The probe: one thread runs store_schema_version() whenever asked.  A
 * readiness request uses the last answer if it is younger than FRESH_MS,
 * else asks for a new one and waits at most WAIT_MS for it; however
 * many load balancers probe, the database sees at most about one query a
 * second.  A probe stuck on the database (or on a pool whose connections
 * are all taken) leaves requests answering "not ready" after WAIT_MS,
 * never hanging.  The failure's details go to the log once per change
 * (the answer is public, and a libpq message names hosts and users).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cond.h"
#include "core/log.h"
#include "core/util.h"
#include "http/http.h"
#include "http/http_int.h"
#include "http/metrics.h"
#include "store/store.h"

#define FRESH_MS 1000
#define WAIT_MS 2000

struct http_probe {
    struct db *db;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool stop;
    bool want;          /* a request asked for a new answer */
    unsigned long done; /* answers given so far */
    int64_t done_ms;    /* when the last one came */
    tr_err err;
    int version;
};

static void *probe_main(void *arg)
{
    struct http_probe *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && !p->want)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        p->want = false;
        pthread_mutex_unlock(&p->mu);
        struct tr_errbuf eb = {{0}};
        int version = 0;
        tr_err e = store_schema_version(p->db, &version, &eb);
        pthread_mutex_lock(&p->mu);
        if (e != TR_OK && p->err == TR_OK)
            log_warn("readiness: the database does not answer: %s",
                     tr_errbuf_msg(&eb, e));
        else if (e == TR_OK && p->err != TR_OK && p->done > 0)
            log_info("readiness: the database answers again");
        p->err = e;
        p->version = version;
        p->done++;
        p->done_ms = util_mono_ms();
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

tr_err http_probe_new(struct db *db, struct http_probe **out,
                      struct tr_errbuf *eb)
{
    struct http_probe *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    p->db = db;
    cond_init_mono(&p->cv);
    pthread_mutex_init(&p->mu, NULL);
    if (pthread_create(&p->thread, NULL, probe_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return tr_fail(eb, TR_ERR_INTERNAL, "cannot start a thread");
    }
    *out = p;
    return TR_OK;
}

void http_probe_free(struct http_probe *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* The probe's answer, fresh enough: TR_OK and the schema version, the
 * database's error, or TR_ERR_BUSY when none came within WAIT_MS. */
static tr_err probe_check(struct http_probe *p, int *version)
{
    pthread_mutex_lock(&p->mu);
    int64_t now = util_mono_ms();
    if (p->done == 0 || now - p->done_ms > FRESH_MS) {
        unsigned long seen = p->done;
        p->want = true;
        pthread_cond_broadcast(&p->cv);
        int64_t until = now + WAIT_MS;
        struct timespec ts = cond_at(until);
        while (p->done == seen && util_mono_ms() < until)
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        if (p->done == seen) {
            pthread_mutex_unlock(&p->mu);
            return TR_ERR_BUSY;
        }
    }
    tr_err e = p->err;
    *version = p->version;
    pthread_mutex_unlock(&p->mu);
    return e;
}

/* The database checks: NULL or the reason it holds the node back. */
static const char *check_db(struct terrace_server *srv, struct arena *a,
                            json_t *checks)
{
    int have = 0, want = store_schema_latest();
    struct http_probe *p = http_metrics_probe(srv->metrics);
    tr_err e;
    if (p != NULL) {
        e = probe_check(p, &have);
    } else {
        struct tr_errbuf eb = {{0}};
        e = store_schema_version(srv->db, &have, &eb);
    }
    if (e == TR_ERR_BUSY) {
        json_object_set_new(checks, "database", json_string("timeout"));
        return arena_printf(a, "the database did not answer within %d s",
                            WAIT_MS / 1000);
    }
    if (e != TR_OK) {
        json_object_set_new(checks, "database", json_string("unreachable"));
        return "the database is unreachable";
    }
    json_object_set_new(checks, "database", json_string("ok"));
    if (have < want) {
        json_object_set_new(checks, "migrations", json_string("pending"));
        return arena_printf(a,
                            "schema migrations pending: the database is at "
                            "%d, this node needs %d",
                            have, want);
    }
    json_object_set_new(checks, "migrations", json_string("ok"));
    return NULL;
}

const char *http_ready(struct terrace_server *srv, struct arena *a,
                       json_t **checks)
{
    json_t *c = json_object();
    const char *why = NULL;
    bool draining = atomic_load(&srv->draining) != 0;
    json_object_set_new(c, "draining", json_boolean(draining));
    if (draining)
        why = "draining";
    if (why == NULL && srv->db != NULL)
        why = check_db(srv, a, c);
    if (why == NULL && srv->not_ready != NULL) {
        why = srv->not_ready(srv);
        json_object_set_new(c, "cluster",
                            json_string(why ? "not ready" : "ok"));
    }
    json_object_set_new(c, "leader",
                        json_boolean(atomic_load(&srv->is_leader) != 0));
    if (checks != NULL)
        *checks = c;
    else
        json_decref(c);
    return why;
}
