/*
 * blob_azure_int.h - what the Azure Blob backend's files share: the
 * backend's struct and the reading of its URL and credentials.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BLOB_AZURE_INT_H
#define TR_BLOB_AZURE_INT_H

#include <stddef.h>

#include "blob/blob.h"

struct blob_http;

struct blob_azure {
    struct blob base;
    char container[64];
    char prefix[512];    /* "" or "some/prefix/" */
    char base_url[512];  /* scheme://host[:port][/path], no trailing '/' */
    char base_path[256]; /* the endpoint's path: "" or "/devstoreaccount1" */
    char host[256];      /* scheme://host[:port], for messages */
    char account[256];
    char ca_file[512];      /* ca-file=: the CAs trusted for https, or "" */
    unsigned char key[128]; /* Shared Key, decoded; key_len 0: SAS */
    size_t key_len;
    char *sas; /* without a leading '?', or NULL */
    int list_page;
    struct blob_http *http; /* blob_http.c, with Azure's policy */
};

/* Fills the container, prefix, endpoint, account and ca-file of az from an
 * azblob:// URL (and AZURE_STORAGE_ACCOUNT), and its credentials from
 * AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN.  TR_ERR_CONFIG with a
 * message naming what to fix (never the key or token); az->sas may be
 * set (malloc'd) even then. */
tr_err azure_config(struct blob_azure *az, const char *url,
                    struct tr_errbuf *eb);

#endif
