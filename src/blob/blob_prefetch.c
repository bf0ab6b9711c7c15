/*
 * blob_prefetch.c - reading an object ahead of its consumer in a thread
 * (blob_prefetch.h).
 *
 * A ring of SLOTS blocks of BLOCK bytes: the thread fills them in turn
 * from offset 0 (blob_reader_pread(), so a sealed object is opened there
 * too), waiting while the next one is still full; the consumer empties
 * them in the same order.  Everything shared is under mu; the reader
 * itself is the thread's alone while the thread runs, and the
 * consumer's once it has been joined.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "blob/blob_prefetch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK (256u << 10)
#define SLOTS 8 /* PREFETCH_BYTES = SLOTS * BLOCK */

struct slot {
    unsigned char *data;
    size_t len;
    bool full;
};

struct blob_prefetch {
    struct blob_reader *r;
    uint64_t size;
    unsigned char *mem;
    struct slot slots[SLOTS];
    unsigned n_slots;
    pthread_t th;
    bool th_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* shared, under mu */
    unsigned w; /* the slot the thread fills next (mod n_slots) */
    bool stop;  /* the consumer wants the thread gone */
    bool ended; /* the thread is done: end of object or an error */
    tr_err err; /* its error, at the offset after the full slots */
    struct tr_errbuf err_eb;
    /* the consumer's */
    unsigned rd;   /* the slot it empties next (mod n_slots) */
    size_t rd_pos; /* bytes of that slot already taken */
    uint64_t pos;  /* the offset of its next byte */
    bool direct;   /* no thread (any more): reads go to the reader */
};

static void *run(void *arg)
{
    struct blob_prefetch *p = arg;
    uint64_t off = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && off < p->size) {
        struct slot *s = &p->slots[p->w % p->n_slots];
        while (!p->stop && s->full)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->mu);
        size_t want = p->size - off < BLOCK ? (size_t)(p->size - off) : BLOCK;
        size_t got = 0;
        struct tr_errbuf eb = {{0}};
        tr_err e = blob_reader_pread(p->r, s->data, want, off, &got, &eb);
        if (e == TR_OK && got == 0)
            e = tr_fail(&eb, TR_ERR_IO, "the object ended early");
        pthread_mutex_lock(&p->mu);
        if (e != TR_OK) {
            p->err = e;
            p->err_eb = eb;
            break;
        }
        s->len = got;
        s->full = true;
        p->w++;
        off += got;
        pthread_cond_broadcast(&p->cv);
    }
    p->ended = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void stop_thread(struct blob_prefetch *p)
{
    if (p->th_on) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->th, NULL);
        p->th_on = false;
    }
    p->direct = true;
}

tr_err blob_prefetch_start(struct blob_reader *r, uint64_t size,
                           struct blob_prefetch **out, struct tr_errbuf *eb)
{
    struct blob_prefetch *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        blob_reader_close(r);
        return tr_fail(eb, TR_ERR_NOMEM, "out of memory");
    }
    p->r = r;
    p->size = size;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (size <= BLOCK) { /* one read does it */
        p->direct = true;
        *out = p;
        return TR_OK;
    }
    uint64_t blocks = (size + BLOCK - 1) / BLOCK;
    p->n_slots = blocks < SLOTS ? (unsigned)blocks : SLOTS;
    p->mem = malloc((size_t)p->n_slots * BLOCK);
    for (unsigned i = 0; p->mem != NULL && i < p->n_slots; i++)
        p->slots[i].data = p->mem + (size_t)i * BLOCK;
    if (p->mem == NULL ||
        pthread_create(&p->th, NULL, run, p) != 0) { /* read directly */
        free(p->mem);
        p->mem = NULL;
        p->direct = true;
    } else {
        p->th_on = true;
    }
    *out = p;
    return TR_OK;
}

tr_err blob_prefetch_read(struct blob_prefetch *p, void *buf, size_t n,
                          uint64_t off, size_t *got, struct tr_errbuf *eb)
{
    *got = 0;
    if (!p->direct && off != p->pos)
        stop_thread(p); /* not in order: the thread's blocks are no use */
    if (p->direct)
        return blob_reader_pread(p->r, buf, n, off, got, eb);
    unsigned char *dst = buf;
    tr_err e = TR_OK;
    pthread_mutex_lock(&p->mu);
    while (*got < n && p->pos < p->size) {
        struct slot *s = &p->slots[p->rd % p->n_slots];
        if (!s->full && *got > 0)
            break; /* hand out what is ready */
        while (!s->full && !p->ended)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!s->full) { /* the thread stopped short of here */
            e = p->err != TR_OK
                    ? tr_fail(eb, p->err, "%s", p->err_eb.msg)
                    : tr_fail(eb, TR_ERR_IO, "the object ended early");
            break;
        }
        size_t take = s->len - p->rd_pos;
        if (take > n - *got)
            take = n - *got;
        memcpy(dst + *got, s->data + p->rd_pos, take);
        *got += take;
        p->pos += take;
        p->rd_pos += take;
        if (p->rd_pos == s->len) {
            s->full = false;
            p->rd++;
            p->rd_pos = 0;
            pthread_cond_broadcast(&p->cv);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return e;
}

void blob_prefetch_close(struct blob_prefetch *p)
{
    if (p == NULL)
        return;
    stop_thread(p);
    blob_reader_close(p->r);
    free(p->mem);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
