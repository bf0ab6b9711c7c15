/*
 * state_upload.c - the one-pass state upload behind state_upload.h.
 *
 * Three threads hand the bytes on, each holding a bounded piece:
 *   the caller (an HTTP worker) writes the body into pipe "in";
 *   the checker reads pipe "in" with the streaming state reader
 *     (state_parse_fd_with(), which reads to the end even when it
 *     refuses), takes each block's md5 and copies it on into the ring
 *     "out" (RING_BYTES in memory);
 *   the store thread runs blob_put_stream() on the ring, sealed on the
 *     way when the store has a keyring, and takes the sha256 of what it
 *     reads from the ring (the two digests on two threads: the checker
 *     was the pipeline's busiest step).
 * The ring holds as much as a remote backend's part, so the checker (and
 * so the client) goes on while the store thread waits on a part's round
 * trip.  When the ring ends, the store's source does not report the end
 * until the caller has decided (state_upload_finish()): accepted, the
 * source ends and the backend commits; refused, the source fails and the
 * backend aborts (put_stream's contract: nothing new is visible under
 * the key).  The store thread drains the ring whatever its backend did
 * and the checker drains pipe "in", so no writer ever blocks on a reader
 * that has gone.
 *
 * States: started (threads run) -> body done (in's write end closed,
 * state_upload_checked()) -> checked (checker joined, and the store
 * thread has read the ring to its end, so the sha256 is final) -> decided
 * (verdict posted, store joined, state_upload_finish()) -> freed.
 * state_upload_free() walks the remaining steps with a refusal.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/state_upload.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob/blob.h"
#include "core/arena.h"
#include "crypto/digest.h"

#define PIPE_BYTES (1u << 20) /* kernel buffer asked for pipe "in" */
#define RING_BYTES (8u << 20) /* ring "out": a remote backend's part */

enum verdict { V_PENDING, V_KEEP, V_REFUSE };

struct state_upload {
    struct blob *blob;
    char *key;
    uint64_t len;
    int in_r, in_w;
    struct arena *arena; /* the checker's results */
    struct digest_stream *dg;
    /* ring "out", guarded by mu: used bytes from head, closed by the
     * checker at its end */
    unsigned char *ring;
    size_t head, used;
    bool ring_closed;
    bool ring_done;         /* the store thread saw the end: u->sha is final */
    pthread_cond_t ring_cv; /* the ring changed */
    /* the checker's results, read after it is joined */
    tr_err check;
    struct tr_errbuf check_eb;
    struct state_info si;
    char *md5, *sha;
    pthread_t checker, store;
    bool checker_on, store_on;
    /* the caller's verdict, awaited by the store's source */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the verdict was posted */
    enum verdict verdict;
    /* the store's result, read after it is joined */
    tr_err put;
    struct tr_errbuf put_eb;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Copies len bytes into the ring, waiting for room. */
static void ring_put(struct state_upload *u, const unsigned char *p, size_t len)
{
    pthread_mutex_lock(&u->mu);
    while (len > 0) {
        while (u->used == RING_BYTES)
            pthread_cond_wait(&u->ring_cv, &u->mu);
        size_t tail = (u->head + u->used) % RING_BYTES;
        size_t n = RING_BYTES - u->used;
        if (n > RING_BYTES - tail)
            n = RING_BYTES - tail;
        if (n > len)
            n = len;
        memcpy(u->ring + tail, p, n);
        u->used += n;
        p += n;
        len -= n;
        pthread_cond_broadcast(&u->ring_cv);
    }
    pthread_mutex_unlock(&u->mu);
}

/* Up to n bytes out of the ring, waiting for some, their sha256 taken
 * (outside the lock); 0 once it is closed and empty, the sha256 then
 * final.  The store thread's alone. */
static size_t ring_get(struct state_upload *u, unsigned char *buf, size_t n)
{
    pthread_mutex_lock(&u->mu);
    while (u->used == 0 && !u->ring_closed)
        pthread_cond_wait(&u->ring_cv, &u->mu);
    size_t got = 0;
    while (got < n && u->used > 0) {
        size_t k = RING_BYTES - u->head;
        if (k > u->used)
            k = u->used;
        if (k > n - got)
            k = n - got;
        memcpy(buf + got, u->ring + u->head, k);
        u->head = (u->head + k) % RING_BYTES;
        u->used -= k;
        got += k;
    }
    bool end = got == 0 && !u->ring_done;
    pthread_cond_broadcast(&u->ring_cv);
    pthread_mutex_unlock(&u->mu);
    if (got > 0)
        digest_stream_sha256(u->dg, buf, got);
    if (end) {
        /* the checker closed the ring after its last use of u->arena */
        char *sha = digest_stream_sha256_final(u->dg, u->arena);
        pthread_mutex_lock(&u->mu);
        u->sha = sha;
        u->ring_done = true;
        pthread_cond_broadcast(&u->ring_cv);
        pthread_mutex_unlock(&u->mu);
    }
    return got;
}

static void ring_close(struct state_upload *u)
{
    pthread_mutex_lock(&u->mu);
    u->ring_closed = true;
    pthread_cond_broadcast(&u->ring_cv);
    pthread_mutex_unlock(&u->mu);
}

/* The checker's hook: each block it reads, digested and passed on. */
static void pass_on(void *arg, const void *data, size_t len)
{
    struct state_upload *u = arg;
    digest_stream_md5(u->dg, data, len);
    ring_put(u, data, len);
}

static void *check_main(void *arg)
{
    struct state_upload *u = arg;
    u->check = state_parse_fd_with(u->arena, u->in_r, pass_on, u, &u->si,
                                   &u->check_eb);
    u->md5 = digest_stream_md5_final(u->dg, u->arena);
    ring_close(u); /* the store's source sees the end */
    return NULL;
}

/* The store's blob_source: the ring, whose end waits for the verdict. */
static tr_err out_read(void *ctx, void *buf, size_t n, size_t *got,
                       struct tr_errbuf *eb)
{
    struct state_upload *u = ctx;
    *got = ring_get(u, buf, n);
    if (*got > 0)
        return TR_OK;
    pthread_mutex_lock(&u->mu);
    while (u->verdict == V_PENDING)
        pthread_cond_wait(&u->cv, &u->mu);
    enum verdict v = u->verdict;
    pthread_mutex_unlock(&u->mu);
    if (v != V_KEEP)
        return tr_fail(eb, TR_ERR_INVALID, "the upload was refused");
    return TR_OK;
}

static void *store_main(void *arg)
{
    struct state_upload *u = arg;
    u->put = blob_put_stream(u->blob, u->key, u->len, out_read, u, &u->put_eb);
    unsigned char sink[16384];
    while (ring_get(u, sink, sizeof(sink)) > 0)
        ; /* whatever the backend did, the checker must not block */
    return NULL;
}

static tr_err make_pipe(int *r, int *w, struct tr_errbuf *eb)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot make a pipe: %s",
                       strerror(errno));
    (void)fcntl(p[1], F_SETPIPE_SZ, (int)PIPE_BYTES); /* a hint */
    *r = p[0];
    *w = p[1];
    return TR_OK;
}

static void post(struct state_upload *u, enum verdict v)
{
    pthread_mutex_lock(&u->mu);
    if (u->verdict == V_PENDING)
        u->verdict = v;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

tr_err state_upload_start(struct blob *b, const char *key, uint64_t len,
                          struct state_upload **out, int *fd,
                          struct tr_errbuf *eb)
{
    struct state_upload *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    u->in_r = u->in_w = -1;
    u->blob = b;
    u->len = len;
    u->arena = arena_new();
    u->key = arena_strdup(u->arena, key);
    u->dg = digest_stream_new(u->arena);
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    pthread_cond_init(&u->ring_cv, NULL);
    u->ring = malloc(RING_BYTES);
    tr_err e = u->ring != NULL ? make_pipe(&u->in_r, &u->in_w, eb)
                               : tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    if (e == TR_OK && pthread_create(&u->store, NULL, store_main, u) == 0)
        u->store_on = true;
    else if (e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot start the upload's threads");
    if (e == TR_OK && pthread_create(&u->checker, NULL, check_main, u) == 0)
        u->checker_on = true;
    else if (e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot start the upload's threads");
    if (e != TR_OK) {
        ring_close(u); /* the store thread sees the end */
        state_upload_free(u);
        return e;
    }
    *fd = u->in_w;
    *out = u;
    return TR_OK;
}

tr_err state_upload_checked(struct state_upload *u, struct state_info *si,
                            char **md5, char **sha256, struct tr_errbuf *eb)
{
    close_fd(&u->in_w);
    if (u->checker_on) {
        pthread_join(u->checker, NULL);
        u->checker_on = false;
    }
    pthread_mutex_lock(&u->mu);
    while (u->store_on && !u->ring_done)
        pthread_cond_wait(&u->ring_cv, &u->mu);
    pthread_mutex_unlock(&u->mu);
    *si = u->si;
    *md5 = u->md5;
    *sha256 = u->sha;
    if (u->check != TR_OK && eb != NULL)
        *eb = u->check_eb;
    return u->check;
}

tr_err state_upload_finish(struct state_upload *u, bool keep,
                           struct tr_errbuf *eb)
{
    if (u->checker_on) { /* not checked: nothing to keep */
        char *m, *s;
        struct state_info si;
        (void)state_upload_checked(u, &si, &m, &s, NULL);
        keep = false;
    }
    post(u, keep ? V_KEEP : V_REFUSE);
    if (u->store_on) {
        pthread_join(u->store, NULL);
        u->store_on = false;
    }
    if (!keep)
        return TR_OK;
    if (u->put != TR_OK && eb != NULL)
        *eb = u->put_eb;
    return u->put;
}

void state_upload_free(struct state_upload *u)
{
    if (u == NULL)
        return;
    (void)state_upload_finish(u, false, NULL);
    close_fd(&u->in_r);
    close_fd(&u->in_w);
    free(u->ring);
    pthread_cond_destroy(&u->ring_cv);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    arena_destroy(u->arena);
    free(u);
}
