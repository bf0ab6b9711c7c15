/*
 * credential.c - a node's credential file (credential.h), read by
 * terraced's secondary and agent roles and by terraced-idle.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "node/credential.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

tr_err node_credential_read(const char *path, char *out, size_t n, bool *found,
                            struct tr_errbuf *eb)
{
    *found = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return TR_OK;
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot read %s: %s", path,
                       strerror(errno));
    ssize_t got = read(fd, out, n - 1);
    close(fd);
    if (got < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot read %s", path);
    out[got] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0')
        return tr_fail(eb, TR_ERR_CONFIG,
                       "%s is empty: remove it to join as a new node", path);
    *found = true;
    return TR_OK;
}

tr_err node_credential_write(const char *path, const char *cred,
                             struct tr_errbuf *eb)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", path,
                       strerror(errno));
    size_t len = strlen(cred);
    bool ok = write(fd, cred, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok)
        unlink(path);
    return ok ? TR_OK : tr_fail(eb, TR_ERR_IO, "cannot write %s", path);
}
