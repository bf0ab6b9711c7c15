/*
 * monitor.c - a run's totals against its limits: memory, tasks, disk.
 *
 * rlimits bind per process (memory, CPU, open files, file size) or per
 * user (tasks, shared by every run on the node); a run's totals are
 * watched here, from the driver's loop (tofu.c), and a run over one of
 * them is killed by the caller with a message naming the limit.
 *
 * A run's processes are those in its pid namespace (under bubblewrap:
 * the namespace of bwrap's first child, found through
 * /proc/PID/task/PID/children), or without a sandbox those in its
 * process group.  Every MONITOR_PROC_MS the monitor reads
 * /proc/N/status of each: private resident memory (anonymous and shared
 * memory pages) summed over the processes, threads summed as tasks (what
 * RLIMIT_NPROC and pids.max count).  A process cannot hide
 * by leaving the group or turning non-dumpable: the namespace holds it
 * and the node reads /proc as root.
 *
 * Every MONITOR_DISK_MS it adds up the blocks under the working
 * directory (its /tmp and /dev/shm live there too) and what the run
 * added to its provider cache since the job began, without following
 * links; the walk stops at MONITOR_MAX_ENTRIES entries.
 *
 * Polling means a run may pass a limit for up to one interval before it
 * is stopped; the per-process rlimits bound what it can do meanwhile.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "executor/executor_int.h"

#define MONITOR_PROC_MS 250
#define MONITOR_DISK_MS 1000
#define MONITOR_MAX_ENTRIES 1000000
#define MONITOR_MAX_DEPTH 128

/* ---- disk -------------------------------------------------------------- */

struct walk {
    int64_t bytes;
    long entries;
};

static void walk_dir(int dfd, dev_t dev, int depth, struct walk *w)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && w->entries < MONITOR_MAX_ENTRIES) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        w->entries++;
        w->bytes += (int64_t)st.st_blocks * 512;
        if (!S_ISDIR(st.st_mode) || st.st_dev != dev ||
            depth >= MONITOR_MAX_DEPTH)
            continue;
        int sub = openat(dirfd(d), de->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            walk_dir(sub, dev, depth + 1, w);
    }
    closedir(d);
}

int64_t monitor_disk_usage(const char *path)
{
    struct walk w = {0, 0};
    struct stat st;
    if (path == NULL || lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    w.bytes = (int64_t)st.st_blocks * 512;
    walk_dir(fd, st.st_dev, 0, &w);
    return w.bytes;
}

/* ---- processes --------------------------------------------------------- */

/* The pid namespace of leader's first child ("pid:[N]"), or false. */
static bool find_ns(pid_t leader, char *ns, size_t size)
{
    char path[64], list[256];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)leader,
             (int)leader);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, list, sizeof(list) - 1);
    close(fd);
    if (n <= 0)
        return false;
    list[n] = '\0';
    int child = atoi(list);
    if (child <= 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", child);
    n = readlink(path, ns, size - 1);
    if (n <= 0)
        return false;
    ns[n] = '\0';
    return true;
}

/* The process group of /proc/<pid>/stat, or -1. */
static long read_pgrp(const char *pid)
{
    char path[300], text[1024];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    /* "pid (comm) state ppid pgrp ...": comm may hold anything */
    char *p = strrchr(text, ')');
    long ppid, pgrp;
    char state;
    if (p == NULL || sscanf(p + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3)
        return -1;
    return pgrp;
}

/* Threads and private resident memory (anonymous and shared-memory
 * pages, in bytes) of /proc/<pid>/status.  Pages of files and
 * libraries are left out: every process maps the same C library, and
 * counting it once per process would make a run of many small
 * processes look large. */
static bool read_status(const char *pid, int64_t *threads, int64_t *mem)
{
    char path[300], text[4096];
    snprintf(path, sizeof(path), "/proc/%s/status", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return false;
    text[n] = '\0';
    *threads = *mem = 0;
    static const char *const keys[] = {
        "\nThreads:", "\nRssAnon:", "\nRssShmem:"};
    for (int i = 0; i < 3; i++) {
        const char *k = strstr(text, keys[i]);
        long long v = k != NULL ? strtoll(k + strlen(keys[i]), NULL, 10) : 0;
        if (i == 0)
            *threads = v;
        else
            *mem += v * 1024;
    }
    return *threads > 0;
}

/* Sums the run's processes into *mem (bytes) and *tasks. */
static void scan(struct monitor *m, int64_t *mem, int64_t *tasks)
{
    *mem = *tasks = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        if (m->isolated) {
            char path[300], ns[64];
            snprintf(path, sizeof(path), "/proc/%s/ns/pid", de->d_name);
            ssize_t n = readlink(path, ns, sizeof(ns) - 1);
            if (n <= 0)
                continue;
            ns[n] = '\0';
            if (strcmp(ns, m->ns) != 0)
                continue;
        } else if (read_pgrp(de->d_name) != (long)m->leader) {
            continue;
        }
        int64_t threads, bytes;
        if (!read_status(de->d_name, &threads, &bytes))
            continue;
        *mem += bytes;
        *tasks += threads;
    }
    if (d != NULL)
        closedir(d);
}

/* ---- the checks -------------------------------------------------------- */

void monitor_begin(struct monitor *m, pid_t leader, bool isolated)
{
    m->leader = leader;
    m->isolated = isolated;
    m->ns[0] = '\0';
    m->next_proc_ms = 0;
}

enum monitor_hit monitor_final(struct monitor *m)
{
    m->next_proc_ms = INT64_MAX; /* nothing runs any more */
    m->next_disk_ms = 0;
    return monitor_check(m, util_now_ms());
}

enum monitor_hit monitor_check(struct monitor *m, int64_t now)
{
    if (m->leader > 0 && now >= m->next_proc_ms &&
        (m->mem_limit > 0 || m->task_limit > 0)) {
        m->next_proc_ms = now + MONITOR_PROC_MS;
        if (!m->isolated || m->ns[0] != '\0' ||
            find_ns(m->leader, m->ns, sizeof(m->ns))) {
            int64_t mem, tasks;
            scan(m, &mem, &tasks);
            if (mem > m->peak_mem)
                m->peak_mem = mem;
            if (tasks > m->peak_tasks)
                m->peak_tasks = tasks;
            if (m->task_limit > 0 && tasks > m->task_limit)
                return MONITOR_TASKS;
            if (m->mem_limit > 0 && mem > m->mem_limit)
                return MONITOR_MEMORY;
        }
    }
    if (m->disk_limit > 0 && now >= m->next_disk_ms) {
        m->next_disk_ms = now + MONITOR_DISK_MS;
        int64_t used = monitor_disk_usage(m->work);
        int64_t cache = monitor_disk_usage(m->cache) - m->cache_base;
        if (cache > 0)
            used += cache;
        if (used > m->peak_disk)
            m->peak_disk = used;
        if (used > m->disk_limit)
            return MONITOR_DISK;
    }
    return MONITOR_OK;
}
