/*
 * db_trace.c - the statement trace of debug builds, for the test that
 * checks the query plans of what the store really runs
 * (tests/api/test_query_plans.py).
 *
 * In a build with TR_DEBUG (the sanitizer build the tests use), setting
 * TERRACE_TEST_SQL_TRACE=FILE makes every distinct statement text append
 * one JSON line {"sql": TEXT, "n": PARAMS} to FILE.  Only the text is
 * written: values are always parameters, so no secret reaches the file.
 * It also counts the statements each thread runs (db_trace_count()).
 * Release builds compile none of this.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "store/db.h"

#ifdef TR_DEBUG

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SEEN_SLOTS 16384 /* distinct statements remembered */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seen[SEEN_SLOTS];

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}

/* True the first time h is seen (mu held); a full table says true. */
static bool first_sight(uint64_t h)
{
    for (size_t i = 0; i < SEEN_SLOTS; i++) {
        uint64_t *slot = &seen[(h + i) % SEEN_SLOTS];
        if (*slot == h)
            return false;
        if (*slot == 0) {
            *slot = h;
            return true;
        }
    }
    return true;
}

static _Thread_local long thread_count;

long db_trace_count(void)
{
    return thread_count;
}

void db_trace(const char *sql, int n)
{
    thread_count++;
    const char *path = getenv("TERRACE_TEST_SQL_TRACE");
    if (path == NULL || *path == '\0')
        return;
    uint64_t h = fnv1a(sql);
    pthread_mutex_lock(&mu);
    if (first_sight(h)) {
        json_t *j = json_pack("{s:s,s:i}", "sql", sql, "n", n);
        char *line = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        FILE *f = line != NULL ? fopen(path, "ae") : NULL;
        if (f != NULL) {
            fprintf(f, "%s\n", line);
            fclose(f);
        }
        free(line);
        json_decref(j);
    }
    pthread_mutex_unlock(&mu);
}

#endif
