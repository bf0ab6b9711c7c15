/*
 * plan_file.c - saved plan files sealed at rest (see plan_file.h).
 *
 * Both directions hold the whole file in memory: plan files are small
 * next to state (a few MiB for large configurations) and the envelope
 * seals one buffer.  Plaintext copies are wiped before they are freed.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "domain/plan_file.h"

#include <string.h>

#include "blob/blob.h"
#include "core/file.h"
#include "crypto/envelope.h"

tr_err plan_file_store(struct terrace_server *srv, struct arena *a,
                       const char *key, const char *path,
                       struct tr_errbuf *eb)
{
    char *plain = NULL, *sealed = NULL;
    size_t len = 0;
    tr_err e = file_read_all(a, path, PLAN_FILE_MAX, &plain, &len, eb);
    if (e == TR_OK)
        e = envelope_seal(srv->keys, a, plain, len, &sealed, eb);
    if (plain != NULL)
        explicit_bzero(plain, len);
    if (e == TR_OK)
        e = blob_put(srv->blob, key, sealed, strlen(sealed), eb);
    return e;
}

tr_err plan_file_fetch(struct terrace_server *srv, struct arena *a,
                       const char *key, const char *dest_path,
                       struct tr_errbuf *eb)
{
    /* base64 of the largest plan, plus the envelope's header */
    size_t max = (size_t)PLAN_FILE_MAX / 3 * 4 + 4096;
    char *stored = NULL, *plain = NULL;
    size_t len = 0, plen = 0;
    tr_err e = blob_get(srv->blob, a, key, max, &stored, &len, eb);
    if (e != TR_OK)
        return e;
    if (!envelope_is_sealed(stored)) /* stored in the clear before */
        return file_write_all(dest_path, stored, len, eb);
    e = envelope_open(srv->keys, a, stored, &plain, &plen, eb);
    if (e == TR_OK) {
        e = file_write_all(dest_path, plain, plen, eb);
        explicit_bzero(plain, plen);
    }
    return e;
}
