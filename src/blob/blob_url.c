/*
 * blob_url.c - opens the blob backend a --blob-url names.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <string.h>

#include "blob/blob.h"

tr_err blob_open_url(const char *url, const char *spool_dir, struct blob **out,
                     struct tr_errbuf *eb)
{
    static const char usage[] =
        "file:///absolute/dir, s3://BUCKET/PREFIX?region=R, "
        "gs://BUCKET/PREFIX or azblob://CONTAINER/PREFIX?account=A";
    if (strncmp(url, "file://", 7) == 0) {
        if (url[7] != '/' || strchr(url + 7, '?') != NULL)
            return tr_fail(eb, TR_ERR_CONFIG,
                           "blob-url must name an absolute directory: "
                           "file:///absolute/dir");
        return blob_open_fs(url + 7, out, eb);
    }
    if (strncmp(url, "s3://", 5) == 0)
        return blob_open_s3(url, spool_dir, out, eb);
    if (strncmp(url, "gs://", 5) == 0)
        return blob_open_gcs(url, spool_dir, out, eb);
    if (strncmp(url, "azblob://", 9) == 0)
        return blob_open_azure(url, spool_dir, out, eb);
    const char *colon = strstr(url, "://");
    if (colon == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "blob-url must be a URL: %s", usage);
    return tr_fail(eb, TR_ERR_CONFIG,
                   "blob-url scheme %.*s is not supported; use %s",
                   (int)(colon - url), url, usage);
}
