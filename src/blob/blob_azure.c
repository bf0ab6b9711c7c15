/*
 * blob_azure.c - the Azure Blob blob backend (not built yet: opening it says
 * so).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "blob/blob.h"

tr_err blob_open_azure(const char *url, const char *spool_dir,
                       struct blob **out, struct tr_errbuf *eb)
{
    (void)url;
    (void)spool_dir;
    (void)out;
    return tr_fail(eb, TR_ERR_CONFIG,
                   "this build of terraced has no Azure Blob blob backend");
}
