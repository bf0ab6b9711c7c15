/*
 * trim.c - gives the memory a burst of requests freed back to the
 * system once the server goes idle.
 *
 * glibc keeps freed memory in its heaps, and a heap shrinks only from
 * its top: after 64 clients listed 100 workspaces at once, request
 * arenas and response bodies freed in the middle of the heap kept the
 * demo at 60 MB instead of 18 (bench/rss_load.sh).  malloc_trim(0)
 * releases every free page, wherever it is, but walks every free chunk
 * with the arena locked (a few ms on a fragmented heap), so it does not
 * run on the request path.
 *
 * server.c reports what each completed request used (http_trim_note:
 * its arena and response body, a proxy for the JSON trees and buffers it
 * freed).  Once that adds up to TRIM_BYTES since the last trim, this
 * file's thread trims at the next moment nothing is in flight, or after
 * BUSY_MS without one (a primary always has something in flight while
 * secondaries long-poll it for jobs), and at most once per GAP_MS.  So a
 * sustained load is trimmed at most once a second, a burst's tail
 * smaller than TRIM_BYTES stays untrimmed, and a trickle of small
 * requests (health checks) trims rarely.
 *
 * Thread-safe: one mutex guards the flags.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/cond.h"
#include "core/util.h"
#include "http/http_int.h"

#define TRIM_BYTES (1u << 20) /* what requests used since the last trim */
#define GAP_MS 1000           /* at most one trim a second */
#define BUSY_MS 2000          /* how long a trim waits for an idle moment */
#define POLL_MS 100           /* how often it looks for one */

struct http_trim {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool stop;
    bool wanted;
    int64_t wanted_ms;  /* when wanted became true */
    atomic_size_t used; /* bytes noted since the last trim began */
    atomic_bool asked;  /* used reached TRIM_BYTES; the thread was told */
    const atomic_int *in_flight;
    atomic_ulong trims; /* done so far */
    pthread_t thread;
};

/* Waits on t->cv until ms (monotonic) or a signal; t->mu held. */
static void wait_until(struct http_trim *t, int64_t ms)
{
    struct timespec ts = cond_at(ms);
    pthread_cond_timedwait(&t->cv, &t->mu, &ts);
}

static void *loop(void *arg)
{
    struct http_trim *t = arg;
    int64_t last = 0;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        if (!t->wanted) {
            pthread_cond_wait(&t->cv, &t->mu);
            continue;
        }
        int64_t now = util_mono_ms();
        if (now - last < GAP_MS) {
            wait_until(t, last + GAP_MS);
            continue;
        }
        if (atomic_load(t->in_flight) != 0 && now - t->wanted_ms < BUSY_MS) {
            wait_until(t, now + POLL_MS);
            continue;
        }
        t->wanted = false;
        atomic_store(&t->used, 0);
        atomic_store(&t->asked, false);
        pthread_mutex_unlock(&t->mu);
        malloc_trim(0);
        atomic_fetch_add(&t->trims, 1);
        last = util_mono_ms();
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

tr_err http_trim_new(const atomic_int *in_flight, struct http_trim **out,
                     struct tr_errbuf *eb)
{
    struct http_trim *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    t->in_flight = in_flight;
    pthread_mutex_init(&t->mu, NULL);
    cond_init_mono(&t->cv);
    if (pthread_create(&t->thread, NULL, loop, t) != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        return tr_fail(eb, TR_ERR_INTERNAL,
                       "cannot start the memory trim thread");
    }
    *out = t;
    return TR_OK;
}

void http_trim_note(struct http_trim *t, size_t bytes)
{
    if (t == NULL)
        return;
    if (atomic_fetch_add(&t->used, bytes) + bytes < TRIM_BYTES ||
        atomic_exchange(&t->asked, true))
        return;
    pthread_mutex_lock(&t->mu);
    t->wanted = true;
    t->wanted_ms = util_mono_ms();
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

unsigned long http_trim_count(struct http_trim *t)
{
    return t != NULL ? atomic_load(&t->trims) : 0;
}

void http_trim_free(struct http_trim *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
