/*
 * cond.h - condition variables timed on the monotonic clock, so that a
 * change of the wall clock neither stretches nor cuts a timed wait.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_CORE_COND_H
#define TR_CORE_COND_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* pthread_cond_init() of cv with CLOCK_MONOTONIC for its timed waits. */
void cond_init_mono(pthread_cond_t *cv);
/* The deadline for pthread_cond_timedwait() on such a cv when the
 * monotonic clock reads mono_ms (util_mono_ms()). */
struct timespec cond_at(int64_t mono_ms);
/* ... ms milliseconds from now. */
struct timespec cond_after(int64_t ms);

#endif
