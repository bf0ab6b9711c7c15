/*
 * blob_xfer.c - benchmark helper: one upload or download through a blob
 * backend, timed, with the process's peak RSS.
 *
 *   blob_xfer put URL KEY FILE   streams FILE into the store (blob_put_copy)
 *   blob_xfer get URL KEY        reads KEY through a blob_reader in 1 MiB
 *                                sequential reads, dropping the bytes
 *
 * Prints "seconds=S bytes=N maxrss_kb=K" on success.  Built by the bench
 * scripts against a Release libterrace_core.a; objects are stored in the
 * clear (sealing costs the same CPU whatever the backend).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "blob/blob.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static tr_err get(struct blob *b, const char *key, uint64_t *total,
                  struct tr_errbuf *eb)
{
    static char buf[1 << 20];
    struct blob_reader *r = NULL;
    uint64_t size = 0;
    tr_err e = blob_reader_open(b, key, &r, &size, eb);
    if (e != TR_OK)
        return e;
    uint64_t off = 0;
    while (off < size) {
        size_t got = 0;
        e = blob_reader_pread(r, buf, sizeof(buf), off, &got, eb);
        if (e != TR_OK || got == 0)
            break;
        off += got;
    }
    blob_reader_close(r);
    *total = off;
    if (e == TR_OK && off != size)
        e = tr_fail(eb, TR_ERR_IO, "short read: %llu of %llu",
                    (unsigned long long)off, (unsigned long long)size);
    return e;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "put") == 0 && argc != 5)) {
        fprintf(stderr, "usage: blob_xfer put URL KEY FILE | get URL KEY\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct tr_errbuf eb = {{0}};
    struct blob *b = NULL;
    tr_err e = blob_open_url(argv[2], "/tmp", &b, &eb);
    uint64_t bytes = 0;
    double t0 = now_s();
    if (e == TR_OK && strcmp(argv[1], "put") == 0) {
        struct stat st;
        e = blob_put_copy(b, argv[3], argv[4], &eb);
        if (e == TR_OK && stat(argv[4], &st) == 0)
            bytes = (uint64_t)st.st_size;
    } else if (e == TR_OK) {
        e = get(b, argv[3], &bytes, &eb);
    }
    double secs = now_s() - t0;
    if (b != NULL)
        blob_close(b);
    curl_global_cleanup();
    if (e != TR_OK) {
        fprintf(stderr, "blob_xfer: %s\n", tr_errbuf_msg(&eb, e));
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("seconds=%.3f bytes=%llu maxrss_kb=%ld\n", secs,
           (unsigned long long)bytes, ru.ru_maxrss);
    return 0;
}
