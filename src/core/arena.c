/*
 * arena.c - region allocator: a list of blocks, bump allocation inside the
 * newest block, large requests get a block of their own.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE 8192
/* An arena's first block is smaller: many never need more (a lookup's,
 * a request parked for a long poll: under 1 kB for as long as it
 * waits), and a block is resident in full (calloc). */
#define FIRST_BLOCK 2048
#define ALIGN 16

struct block {
    struct block *next;
    size_t size;
    size_t used;
    _Alignas(ALIGN) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    arena_cleanup_fn fn;
    void *ptr;
};

struct arena {
    struct block *blocks;
    struct cleanup *cleanups;
    size_t total;
};

static void *xcalloc(size_t n)
{
    void *p = calloc(1, n);
    if (p == NULL) {
        fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

struct arena *arena_new(void)
{
    return xcalloc(sizeof(struct arena));
}

void arena_destroy(struct arena *a)
{
    if (a == NULL)
        return;
    struct cleanup *c = a->cleanups;
    while (c != NULL) {
        struct cleanup *next = c->next;
        c->fn(c->ptr);
        c = next;
    }
    struct block *b = a->blocks;
    while (b != NULL) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *arena_alloc(struct arena *a, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - ALIGN - sizeof(struct block)) {
        fprintf(stderr, "fatal: arena request of %zu bytes\n", size);
        abort();
    }
    size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct block *b = a->blocks;
    if (b == NULL || b->size - b->used < size) {
        size_t std = b == NULL ? FIRST_BLOCK : BLOCK_SIZE;
        size_t bsize = size > std / 2 ? size : std;
        struct block *nb = xcalloc(sizeof(struct block) + bsize);
        nb->size = bsize;
        if (size > std / 2 && b != NULL) {
            /* keep the current bump block in front */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->blocks = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += size;
    a->total += size;
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
    if (s == NULL)
        return NULL;
    return arena_strndup(a, s, strlen(s));
}

void *arena_memdup(struct arena *a, const void *p, size_t n)
{
    void *q = arena_alloc(a, n);
    if (n > 0)
        memcpy(q, p, n);
    return q;
}

/* One pass when the text fits the room left in the newest block: it is
 * printed there and the room taken; else (or with no block yet) the
 * length is known (or counted) and the text printed into its own
 * allocation, and the room it was tried in is zeroed again: memory from
 * arena_alloc() is zeroed, and callers rely on it. */
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
    va_list cp;
    int n;
    struct block *b = a->blocks;
    if (b != NULL && b->used < b->size) {
        size_t room = b->size - b->used; /* a multiple of ALIGN */
        char *p = (char *)b->data + b->used;
        va_copy(cp, ap);
        n = vsnprintf(p, room, fmt, cp);
        va_end(cp);
        if (n >= 0 && (size_t)n < room) {
            size_t size = ((size_t)n + ALIGN) & ~(size_t)(ALIGN - 1);
            b->used += size;
            a->total += size;
            return p;
        }
        memset(p, 0, room); /* the room stays zeroed, as arena_alloc() */
    } else {
        va_copy(cp, ap);
        n = vsnprintf(NULL, 0, fmt, cp);
        va_end(cp);
    }
    if (n < 0)
        return arena_strdup(a, "");
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void arena_on_destroy(struct arena *a, arena_cleanup_fn fn, void *ptr)
{
    struct cleanup *c = arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->ptr = ptr;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t arena_used(const struct arena *a)
{
    return a->total;
}
