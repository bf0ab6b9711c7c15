/*
 * state_attrs_memo.c - a state version's "resources", "modules" and
 * "providers" attributes as JSON text, remembered by the text of its
 * resources column.
 *
 * A page of 100 state versions parsed each one's resources list, counted
 * it into modules and providers and dumped the three trees: a third of
 * the page's time.  The attributes depend on the column's text alone, and
 * versions of one workspace mostly share it, so the texts are kept in a
 * small direct-mapped table keyed by that text (compared in full, so a
 * hash collision only costs a recomputation).  Bounded: MEMO_SLOTS
 * entries of columns up to MEMO_MAX_IN bytes; longer ones are computed
 * every time.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/state_check.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEMO_SLOTS 64
#define MEMO_MAX_IN (16u << 10)

struct memo_entry {
    char *key;     /* the resources column's text */
    char *text[3]; /* resources, modules, providers */
    size_t len[3];
};

static struct memo_entry memo[MEMO_SLOTS];
static pthread_mutex_t memo_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned slot_of(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h % MEMO_SLOTS;
}

static void entry_clear(struct memo_entry *e)
{
    free(e->key);
    for (int k = 0; k < 3; k++)
        free(e->text[k]);
    memset(e, 0, sizeof(*e));
}

/* Copies of the three texts into e under key (nothing kept when memory
 * runs out). */
static void entry_set(struct memo_entry *e, const char *key, size_t n,
                      char *const text[3], const size_t len[3])
{
    entry_clear(e);
    e->key = malloc(n + 1);
    bool ok = e->key != NULL;
    for (int k = 0; ok && k < 3; k++) {
        e->text[k] = malloc(len[k] + 1);
        ok = e->text[k] != NULL;
        if (ok) {
            memcpy(e->text[k], text[k], len[k] + 1);
            e->len[k] = len[k];
        }
    }
    if (!ok) {
        entry_clear(e);
        return;
    }
    memcpy(e->key, key, n + 1);
}

void state_attrs_text(struct arena *a, const char *resources_json,
                      char *text[3], size_t len[3])
{
    const char *key = resources_json != NULL ? resources_json : "";
    size_t n = strlen(key);
    unsigned slot = n <= MEMO_MAX_IN ? slot_of(key, n) : MEMO_SLOTS;
    if (slot < MEMO_SLOTS) {
        pthread_mutex_lock(&memo_mu);
        struct memo_entry *e = &memo[slot];
        bool hit = e->key != NULL && strcmp(e->key, key) == 0;
        for (int k = 0; hit && k < 3; k++) {
            text[k] = arena_memdup(a, e->text[k], e->len[k] + 1);
            len[k] = e->len[k];
        }
        pthread_mutex_unlock(&memo_mu);
        if (hit)
            return;
    }
    json_t *tree[3];
    state_resource_attrs(resources_json, &tree[0], &tree[1], &tree[2]);
    for (int k = 0; k < 3; k++) {
        text[k] = state_json_dump(a, tree[k], &len[k]);
        json_decref(tree[k]);
    }
    if (slot < MEMO_SLOTS) {
        pthread_mutex_lock(&memo_mu);
        entry_set(&memo[slot], key, n, text, len);
        pthread_mutex_unlock(&memo_mu);
    }
}
