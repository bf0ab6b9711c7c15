/*
 * arena.h - region allocator with cleanup callbacks.
 *
 * An arena owns every allocation made from it and frees them all at once
 * in arena_destroy().  Cleanup callbacks release what is not arena memory
 * (json_t, PGresult, sqlite3_stmt, file descriptors) and run in reverse
 * order of registration.  Arena allocation never returns NULL: running out
 * of memory logs and aborts.  An arena is not thread-safe; each request,
 * job or thread has its own.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_ARENA_H
#define TR_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

typedef void (*arena_cleanup_fn)(void *ptr);

struct arena *arena_new(void);
void arena_destroy(struct arena *a);

/* Zeroed memory, aligned for any type.  Never NULL. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s); /* NULL -> NULL */
char *arena_strndup(struct arena *a, const char *s, size_t n);
void *arena_memdup(struct arena *a, const void *p, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap);

/* Runs fn(ptr) when the arena is destroyed. */
void arena_on_destroy(struct arena *a, arena_cleanup_fn fn, void *ptr);

/* Bytes handed out so far (for tests and limits). */
size_t arena_used(const struct arena *a);

#endif
