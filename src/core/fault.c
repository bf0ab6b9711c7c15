/*
 * fault.c - fault injection counters; see fault.h.
 *
 * `armed` is the only thing read on the fast path.  Everything else is
 * read and written under `mu`.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/fault.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_bool armed;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char armed_site[64];
static int target;
static int calls;
static bool fired;
static bool kill_on_hit; /* "site:n:kill": the process dies instead */

bool fault_hit(const char *site)
{
    if (!atomic_load_explicit(&armed, memory_order_relaxed))
        return false;
    bool hit = false;
    pthread_mutex_lock(&mu);
    if (atomic_load_explicit(&armed, memory_order_relaxed) &&
        strcmp(site, armed_site) == 0) {
        calls++;
        if (calls == target) {
            hit = true;
            fired = true;
        }
    }
    bool die = hit && kill_on_hit;
    pthread_mutex_unlock(&mu);
    if (die) /* a crash at this very point, for crash tests */
        raise(SIGKILL);
    return hit;
}

void fault_arm(const char *site, int n)
{
    pthread_mutex_lock(&mu);
    snprintf(armed_site, sizeof(armed_site), "%s", site);
    target = n;
    calls = 0;
    fired = false;
    kill_on_hit = false;
    atomic_store_explicit(&armed, true, memory_order_relaxed);
    pthread_mutex_unlock(&mu);
}

bool fault_arm_spec(const char *spec)
{
    char buf[128];
    size_t len = strlen(spec);
    bool die = len > 5 && strcmp(spec + len - 5, ":kill") == 0;
    if (die) {
        if (len - 5 >= sizeof(buf))
            return false;
        snprintf(buf, sizeof(buf), "%.*s", (int)(len - 5), spec);
        spec = buf;
    }
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec ||
        (size_t)(colon - spec) >= sizeof(armed_site))
        return false;
    char *end = NULL;
    long n = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || n < 1 || n > 1000000)
        return false;
    char site[sizeof(armed_site)];
    snprintf(site, sizeof(site), "%.*s", (int)(colon - spec), spec);
    fault_arm(site, (int)n);
    pthread_mutex_lock(&mu);
    kill_on_hit = die;
    pthread_mutex_unlock(&mu);
    return true;
}

void fault_reset(void)
{
    pthread_mutex_lock(&mu);
    atomic_store_explicit(&armed, false, memory_order_relaxed);
    armed_site[0] = '\0';
    target = 0;
    calls = 0;
    fired = false;
    kill_on_hit = false;
    pthread_mutex_unlock(&mu);
}

int fault_calls(void)
{
    pthread_mutex_lock(&mu);
    int n = calls;
    pthread_mutex_unlock(&mu);
    return n;
}

bool fault_fired(void)
{
    pthread_mutex_lock(&mu);
    bool f = fired;
    pthread_mutex_unlock(&mu);
    return f;
}
