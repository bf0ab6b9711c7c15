/*
 * blob_azure_xml.h - the little XML Azure Blob Storage answers with.
 *
 * Not a general XML parser: it reads the flat, known shapes of the List
 * Blobs answer and of error bodies (elements found by name, text with the
 * five predefined entities and numeric character references decoded).
 * Malformed input is refused with TR_ERR_IO, never read past its end.
 * Pure functions of their input: safe from any thread.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BLOB_AZURE_XML_H
#define TR_BLOB_AZURE_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* The decoded text of the first <tag> element in xml[0..len) into dst
 * (NUL-terminated).  False when there is none, it is malformed or it does
 * not fit cap. */
bool azx_text(const char *xml, size_t len, const char *tag, char *dst,
              size_t cap);

typedef tr_err (*azx_blob_fn)(void *ctx, const char *name, uint64_t size,
                              int64_t mtime, struct tr_errbuf *eb);

/* Calls fn for each <Blob> of a List Blobs answer (name decoded, size
 * from Content-Length, mtime from Last-Modified as Unix seconds), then
 * puts NextMarker's text in next (empty: the last page).  Stops at fn's
 * first error and returns it. */
tr_err azx_list(const char *xml, size_t len, azx_blob_fn fn, void *ctx,
                struct buf *next, struct tr_errbuf *eb);

/* Unix seconds of an RFC 1123 date ("Sat, 05 Dec 2026 17:15:43 GMT"),
 * or -1 when s is not one. */
int64_t azx_http_date(const char *s);

#endif
