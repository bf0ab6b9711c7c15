/*
 * cluster_tools.c - one copy of the tool for every secondary the local
 * cluster launcher starts (see cluster_int.h).
 *
 * A secondary fetches the tool binary (tofu, ~126 MB) from the
 * primaries into DATA/tools/VERSION-SHA256/ and keeps a sidecar
 * (tofu.sha256) naming the checksum and the file as it was verified.
 * On one host, a hundred secondaries would fetch, hash and store a
 * hundred copies at once.  So the launcher lets the first secondary
 * fetch it, hard-links its verified entries into DIR/tools, and links
 * those into every secondary it starts afterwards: the others find the
 * tool cached (the sidecar still matches, since a link shares the
 * file) and fetch nothing.  A copy that changes no longer matches its
 * sidecar; the node that finds it so drops its own link and fetches.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cluster_int.h"

#define FIRST_TOOL_WAIT_MS 300000 /* a slow mirror or a loaded machine */

/* A tools/ entry name as a secondary makes it: VERSION-SHA256, with no
 * path separator and no leading dot. */
static bool entry_name(const char *n)
{
    return n[0] != '.' && strchr(n, '/') == NULL && strlen(n) > 65 &&
           strlen(n) < 200;
}

/* Links every complete entry (tofu and its sidecar) of from/ into to/;
 * the number linked or already there. */
static int link_entries(struct cl_ctx *c, const char *from, const char *to)
{
    DIR *d = opendir(from);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!entry_name(de->d_name))
            continue;
        const char *src = arena_printf(c->a, "%s/%s", from, de->d_name);
        const char *dst = arena_printf(c->a, "%s/%s", to, de->d_name);
        const char *bin = arena_printf(c->a, "%s/tofu", src);
        const char *side = arena_printf(c->a, "%s/tofu.sha256", src);
        if (access(bin, X_OK) != 0 || access(side, R_OK) != 0)
            continue;
        if ((mkdir(to, 0755) != 0 && errno != EEXIST) ||
            (mkdir(dst, 0755) != 0 && errno != EEXIST))
            continue;
        const char *dbin = arena_printf(c->a, "%s/tofu", dst);
        const char *dside = arena_printf(c->a, "%s/tofu.sha256", dst);
        bool ok = link(bin, dbin) == 0 || errno == EEXIST;
        /* the sidecar last: without it the binary is hashed, not trusted */
        ok = ok && (link(side, dside) == 0 || errno == EEXIST);
        n += ok;
    }
    closedir(d);
    return n;
}

void cl_tools_share(struct cl_ctx *c, const char *data)
{
    link_entries(c, cl_path(c, "%s", "tools"),
                 arena_printf(c->a, "%s/tools", data));
}

tr_err cl_tools_from_first(struct cl_ctx *c, const struct cl_node *n,
                           struct tr_errbuf *eb)
{
    const char *from = arena_printf(c->a, "%s/%s/tools", c->dir, n->name);
    struct timespec ts = {0, 100 * 1000 * 1000};
    for (int waited = 0; waited < FIRST_TOOL_WAIT_MS; waited += 100) {
        if (waitpid((pid_t)n->pid, NULL, WNOHANG) != 0)
            return tr_fail(eb, TR_ERR_IO, "%s exited; see %s/logs/%s.log",
                           n->name, c->dir, n->name);
        if (link_entries(c, from, cl_path(c, "%s", "tools")) > 0)
            return TR_OK;
        nanosleep(&ts, NULL);
    }
    return tr_fail(eb, TR_ERR_IO,
                   "%s has not fetched the tool after %d s; see "
                   "%s/logs/%s.log",
                   n->name, FIRST_TOOL_WAIT_MS / 1000, c->dir, n->name);
}
