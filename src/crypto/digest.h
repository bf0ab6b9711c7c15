/*
 * digest.h - hashes, HMAC, base64 and constant-time compare (libcrypto).
 *
 * Hex outputs are lower-case and NUL-terminated in the caller's arena.
 * Streaming hashers let uploads be hashed while they are written to disk.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_DIGEST_H
#define TR_DIGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"

char *digest_sha256_hex(struct arena *a, const void *p, size_t n);
char *digest_md5_hex(struct arena *a, const void *p, size_t n);
char *digest_hmac_sha256_hex(struct arena *a, const void *key, size_t klen,
                             const void *msg, size_t n);
char *digest_hmac_sha512_hex(struct arena *a, const void *key, size_t klen,
                             const void *msg, size_t n);

/* Streaming md5+sha256 over the same bytes. */
struct digest_stream;
struct digest_stream *digest_stream_new(struct arena *a);
void digest_stream_update(struct digest_stream *d, const void *p, size_t n);
/* Each digest alone, for two threads that see the same bytes in the
 * same order (each touches only its own digest's state). */
void digest_stream_md5(struct digest_stream *d, const void *p, size_t n);
void digest_stream_sha256(struct digest_stream *d, const void *p, size_t n);
char *digest_stream_md5_final(struct digest_stream *d, struct arena *a);
char *digest_stream_sha256_final(struct digest_stream *d, struct arena *a);
/* Finishes both; hex strings live in a. */
void digest_stream_final(struct digest_stream *d, struct arena *a,
                         char **md5_hex, char **sha256_hex);

/* Base64 (standard alphabet, padded).  Decoding rejects bad input with
 * TR_ERR_INVALID; out is arena memory with a trailing NUL not counted. */
char *digest_b64_encode(struct arena *a, const void *p, size_t n);
tr_err digest_b64_decode(struct arena *a, const char *s, size_t slen,
                         unsigned char **out, size_t *outlen);

bool digest_equal(const char *a, const char *b); /* constant time */

#endif
