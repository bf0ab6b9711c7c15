/*
 * blob_batch.c - several objects stored at once (blob_put_all()).
 *
 * Each item but the first is stored by a thread of its own while the
 * caller's thread stores the first, so the items' waits (a file's and its
 * directory's fsync on the local store, a request's round trip on the
 * remote ones) overlap instead of adding up.  Every item is attempted
 * whatever the others do; each records its own outcome.  blob_put*()
 * are safe to call from several threads at once on one store.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <pthread.h>

#include "blob/blob.h"

struct put_arg {
    struct blob *b;
    struct blob_put_item *it;
};

static void put_one(struct blob *b, struct blob_put_item *it)
{
    it->eb.msg[0] = '\0';
    if (it->path != NULL)
        it->e = blob_put_copy(b, it->key, it->path, &it->eb);
    else
        it->e = blob_put(b, it->key, it->data, it->len, &it->eb);
}

static void *put_main(void *p)
{
    struct put_arg *pa = p;
    put_one(pa->b, pa->it);
    return NULL;
}

tr_err blob_put_all(struct blob *b, struct blob_put_item *items, int n,
                    struct tr_errbuf *eb)
{
    enum { MAX_THREADS = 8 };
    pthread_t th[MAX_THREADS];
    struct put_arg args[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    /* items past the threads' count are stored in order by the caller */
    for (int i = 1; i < n && i <= MAX_THREADS; i++) {
        args[i - 1] = (struct put_arg){b, &items[i]};
        started[i - 1] =
            pthread_create(&th[i - 1], NULL, put_main, &args[i - 1]) == 0;
    }
    if (n > 0)
        put_one(b, &items[0]);
    for (int i = 1; i < n; i++) {
        if (i <= MAX_THREADS && started[i - 1])
            pthread_join(th[i - 1], NULL);
        else
            put_one(b, &items[i]);
    }
    for (int i = 0; i < n; i++)
        if (items[i].e != TR_OK)
            return tr_fail(eb, items[i].e, "%s", items[i].eb.msg);
    return TR_OK;
}
