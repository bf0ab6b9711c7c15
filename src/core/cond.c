/*
 * cond.c - condition variables timed on the monotonic clock (cond.h).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/cond.h"

void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

struct timespec cond_at(int64_t mono_ms)
{
    return (struct timespec){.tv_sec = (time_t)(mono_ms / 1000),
                             .tv_nsec = (long)(mono_ms % 1000) * 1000000L};
}

struct timespec cond_after(int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}
