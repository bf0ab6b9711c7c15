/*
 * state_upload.c - the one-pass state upload behind state_upload.h.
 *
 * Three threads hand the bytes on, none holding more than a block:
 *   the caller (an HTTP worker) writes the body into pipe "in";
 *   the checker reads pipe "in" with the streaming state reader
 *     (state_parse_fd_with(), which reads to the end even when it
 *     refuses), digests each block (md5, sha256) and writes it on into
 *     pipe "out";
 *   the store thread runs blob_put_stream() on pipe "out", sealed on the
 *     way when the store has a keyring.
 * When pipe "out" ends, the store's source does not report the end until
 * the caller has decided (state_upload_finish()): accepted, the source
 * ends and the backend commits; refused, the source fails and the backend
 * aborts (put_stream's contract: nothing new is visible under the key).
 * The store thread drains pipe "out" whatever its backend did and the
 * checker drains pipe "in", so no writer ever blocks on a reader that
 * has gone.
 *
 * States: started (threads run) -> body done (in's write end closed,
 * state_upload_checked()) -> checked (checker joined) -> decided
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

#define PIPE_BYTES (1u << 20) /* kernel buffer asked for each pipe */

enum verdict { V_PENDING, V_KEEP, V_REFUSE };

struct state_upload {
    struct blob *blob;
    char *key;
    uint64_t len;
    int in_r, in_w, out_r, out_w;
    struct arena *arena; /* the checker's results */
    struct digest_stream *dg;
    bool out_broken; /* pipe "out" refused a write */
    /* the checker's results, read after it is joined */
    tr_err check;
    struct tr_errbuf check_eb;
    struct state_info si;
    char *md5, *sha;
    pthread_t checker, store;
    bool checker_on, store_on;
    /* the caller's verdict, awaited by the store's source */
    pthread_mutex_t mu;
    pthread_cond_t cv;
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

static bool write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* The checker's hook: each block it reads, digested and passed on. */
static void pass_on(void *arg, const void *data, size_t len)
{
    struct state_upload *u = arg;
    digest_stream_update(u->dg, data, len);
    if (!u->out_broken && !write_all(u->out_w, data, len))
        u->out_broken = true; /* the store thread has failed: it drains */
}

static void *check_main(void *arg)
{
    struct state_upload *u = arg;
    u->check = state_parse_fd_with(u->arena, u->in_r, pass_on, u, &u->si,
                                   &u->check_eb);
    digest_stream_final(u->dg, u->arena, &u->md5, &u->sha);
    close_fd(&u->out_w); /* the store's source sees the end */
    return NULL;
}

/* The store's blob_source: pipe "out", whose end waits for the
 * verdict. */
static tr_err out_read(void *ctx, void *buf, size_t n, size_t *got,
                       struct tr_errbuf *eb)
{
    struct state_upload *u = ctx;
    ssize_t r;
    do
        r = read(u->out_r, buf, n);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot read the upload: %s",
                       strerror(errno));
    *got = (size_t)r;
    if (r > 0)
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
    char sink[16384];
    ssize_t r;
    do /* whatever the backend did, the checker must not block */
        r = read(u->out_r, sink, sizeof(sink));
    while (r > 0 || (r < 0 && errno == EINTR));
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
    u->in_r = u->in_w = u->out_r = u->out_w = -1;
    u->blob = b;
    u->len = len;
    u->arena = arena_new();
    u->key = arena_strdup(u->arena, key);
    u->dg = digest_stream_new(u->arena);
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    tr_err e = make_pipe(&u->in_r, &u->in_w, eb);
    if (e == TR_OK)
        e = make_pipe(&u->out_r, &u->out_w, eb);
    if (e == TR_OK && pthread_create(&u->store, NULL, store_main, u) == 0)
        u->store_on = true;
    else if (e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot start the upload's threads");
    if (e == TR_OK && pthread_create(&u->checker, NULL, check_main, u) == 0)
        u->checker_on = true;
    else if (e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "cannot start the upload's threads");
    if (e != TR_OK) {
        close_fd(&u->out_w); /* the store thread sees the end */
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
    close_fd(&u->out_r);
    close_fd(&u->out_w);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    arena_destroy(u->arena);
    free(u);
}
