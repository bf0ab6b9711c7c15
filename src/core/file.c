/*
 * file.c - whole local files in and out of memory, exact fd reads and
 * writes; see file.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/file.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

tr_err file_read_all(struct arena *a, const char *path, size_t max, char **data,
                     size_t *len, struct tr_errbuf *eb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot open %s: %s", path,
                       strerror(errno));
    struct stat st;
    tr_err e = TR_OK;
    if (fstat(fd, &st) != 0)
        e = tr_fail(eb, TR_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    else if ((uint64_t)st.st_size > max)
        e = tr_fail(eb, TR_ERR_TOO_LARGE, "%s is larger than %zu bytes", path,
                    max);
    size_t cap = e == TR_OK ? (size_t)st.st_size : 0;
    char *buf = e == TR_OK ? arena_alloc(a, cap + 1) : NULL;
    size_t got = 0;
    while (e == TR_OK) { /* to the end, even if the file grew */
        if (got == cap) {
            char probe;
            ssize_t n = read(fd, &probe, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0)
                break;
            e = n < 0 ? tr_fail(eb, TR_ERR_IO, "cannot read %s: %s", path,
                                strerror(errno))
                      : tr_fail(eb, TR_ERR_IO, "%s changed while read", path);
            break;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            e = tr_fail(eb, TR_ERR_IO, "cannot read %s: %s", path,
                        strerror(errno));
        else if (n == 0)
            break; /* it shrank: what is there */
        else
            got += (size_t)n;
    }
    close(fd);
    if (e == TR_OK) {
        buf[got] = '\0';
        *data = buf;
        *len = got;
    }
    return e;
}

tr_err file_read_exact(int fd, void *p, size_t n, struct tr_errbuf *eb)
{
    unsigned char *b = p;
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return tr_fail(eb, TR_ERR_IO, "cannot read: %s", strerror(errno));
        if (r == 0)
            return tr_fail(eb, TR_ERR_IO, "unexpected end of file");
        b += r;
        n -= (size_t)r;
    }
    return TR_OK;
}

tr_err file_write_exact(int fd, const void *p, size_t n, struct tr_errbuf *eb)
{
    const unsigned char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return tr_fail(eb, TR_ERR_IO, "cannot write: %s", strerror(errno));
        b += w;
        n -= (size_t)w;
    }
    return TR_OK;
}

tr_err file_pread(int fd, void *p, size_t n, uint64_t off, size_t *got,
                  struct tr_errbuf *eb)
{
    unsigned char *b = p;
    *got = 0;
    while (*got < n) {
        ssize_t k = pread(fd, b + *got, n - *got, (off_t)(off + *got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return tr_fail(eb, TR_ERR_IO, "cannot read: %s", strerror(errno));
        if (k == 0)
            break;
        *got += (size_t)k;
    }
    return TR_OK;
}

tr_err file_read_secret(struct arena *a, const char *path, char **out,
                        struct tr_errbuf *eb)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return tr_fail(eb, TR_ERR_CONFIG, "%s: %s", path, strerror(errno));
    if ((st.st_mode & 077) != 0)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "%s is readable by group or others; chmod 600 it", path);
    char *data = NULL;
    size_t len = 0;
    tr_err e = file_read_all(a, path, 256, &data, &len, eb);
    if (e != TR_OK)
        return e == TR_ERR_TOO_LARGE
                   ? tr_fail(eb, TR_ERR_CONFIG, "%s is too long for a token",
                             path)
                   : e;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = '\0';
    bool ok = len >= 32 && len <= 200;
    for (size_t i = 0; ok && i < len; i++) {
        char c = data[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    }
    if (!ok)
        return tr_fail(eb, TR_ERR_CONFIG,
                       "%s must hold one token of 32 to 200 letters, digits, "
                       "'.', '_' or '-'",
                       path);
    *out = data;
    return TR_OK;
}
