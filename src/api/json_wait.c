/*
 * json_wait.c - requests for a JSON plan that is on its way, parked
 * until it is stored.
 *
 * An auto-apply plan is stored without its JSON plans; the executor
 * stores them a moment after the run is applied (plans_applies.c).  A
 * request for them in that moment is parked here (http_suspend) instead
 * of holding an HTTP worker thread, whose other connections would wait
 * with it.  One thread looks every JSON_POLL_MS at the plans the parked
 * requests wait for and answers each (api_json_answer) once its JSON plan
 * is stored, or at its deadline, after which it can no longer come.  A stop
 * answers them all as they stand, before the HTTP server stops.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "api/runs_int.h"
#include "core/cond.h"
#include "core/log.h"
#include "core/util.h"

#define JSON_POLL_MS 20

struct parked {
    struct http_req *r;
    struct api_json_want *want; /* in r's arena */
    struct parked *next;
};

struct json_wait {
    struct terrace_server *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool started, stopping;
    pthread_t thread;
    struct parked *head;
};

/* Answers p if its JSON plan is stored or its time is up (after which it
 * can no longer come; or the server stops); true if it did. */
static bool settle(struct parked *p, bool stopping)
{
    struct api_json_want *w = p->want;
    struct tr_errbuf eb = {{0}};
    struct st_phase ph;
    tr_err e =
        store_phase_get(p->r->srv->db, p->r->arena, w->plan.id, &ph, &eb);
    if (e == TR_OK)
        w->plan = ph;
    if (e == TR_OK && !stopping && util_now_ms() < w->deadline_ms &&
        w->plan.json_blob_key == NULL)
        return false;
    /* past its deadline the apply has ended without it (a wait is only
     * for an apply that has ended) */
    api_json_answer(p->r, &w->plan, w->redacted, !stopping);
    http_resume(p->r);
    return true;
}

static void *loop(void *arg)
{
    struct json_wait *jw = arg;
    pthread_mutex_lock(&jw->mu);
    for (;;) {
        bool stopping = jw->stopping;
        if (jw->head == NULL) {
            if (stopping)
                break;
            pthread_cond_wait(&jw->cv, &jw->mu);
            continue;
        }
        /* the list is taken out while the database is asked; parks of
         * the meantime go to the new list */
        struct parked *todo = jw->head;
        jw->head = NULL;
        pthread_mutex_unlock(&jw->mu);
        struct parked *keep = NULL;
        while (todo != NULL) {
            struct parked *p = todo;
            todo = p->next;
            if (!settle(p, stopping)) {
                p->next = keep;
                keep = p;
            }
        }
        pthread_mutex_lock(&jw->mu);
        while (keep != NULL) {
            struct parked *p = keep;
            keep = p->next;
            p->next = jw->head;
            jw->head = p;
        }
        if (jw->head != NULL && !jw->stopping) {
            struct timespec ts = cond_after(JSON_POLL_MS);
            pthread_cond_timedwait(&jw->cv, &jw->mu, &ts);
        }
    }
    pthread_mutex_unlock(&jw->mu);
    return NULL;
}

struct json_wait *api_json_wait_new(struct terrace_server *srv)
{
    struct json_wait *jw = calloc(1, sizeof(*jw));
    if (jw == NULL)
        return NULL;
    jw->srv = srv;
    pthread_mutex_init(&jw->mu, NULL);
    cond_init_mono(&jw->cv);
    return jw;
}

void api_json_wait_park(struct http_req *r, void *arg)
{
    struct json_wait *jw = r->srv->json_wait;
    struct parked *p = arena_alloc(r->arena, sizeof(*p));
    *p = (struct parked){.r = r, .want = arg};
    pthread_mutex_lock(&jw->mu);
    bool ok = !jw->stopping;
    if (ok && !jw->started) {
        ok = pthread_create(&jw->thread, NULL, loop, jw) == 0;
        jw->started = ok;
        if (!ok)
            log_warn("cannot start the JSON plan waiter thread");
    }
    if (ok) {
        p->next = jw->head;
        jw->head = p;
        pthread_cond_signal(&jw->cv);
    }
    pthread_mutex_unlock(&jw->mu);
    if (!ok) {
        api_json_answer(r, &p->want->plan, p->want->redacted, false);
        http_resume(r);
    }
}

void api_json_wait_stop(struct json_wait *jw)
{
    if (jw == NULL)
        return;
    pthread_mutex_lock(&jw->mu);
    bool join = jw->started && !jw->stopping;
    jw->stopping = true;
    pthread_cond_broadcast(&jw->cv);
    pthread_mutex_unlock(&jw->mu);
    if (join)
        pthread_join(jw->thread, NULL);
}

void api_json_wait_free(struct json_wait *jw)
{
    if (jw == NULL)
        return;
    api_json_wait_stop(jw);
    pthread_cond_destroy(&jw->cv);
    pthread_mutex_destroy(&jw->mu);
    free(jw);
}
