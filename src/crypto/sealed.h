/*
 * sealed.h - whole objects encrypted at rest, in chunks: what the blob
 * store writes for every object when it has a keyring (blob.h).
 *
 * Each object gets a fresh random 256-bit data key, wrapped by the
 * keyring's key-encryption key (keys.h).  The plaintext is cut into
 * 64 KiB chunks (at least one, so an empty object is authenticated too),
 * each sealed with AES-256-GCM (envelope_aead_seal(): random nonce,
 * 16-byte tag).  Layout, integers big-endian:
 *
 *   "TRB1"  u8 id-len  kek-id  u16 wrap-len  wrapped-DEK  u64 plain-len
 *   then per chunk i: nonce(12) ciphertext tag(16)
 *
 * The associated data of chunk i is the whole header followed by u64 i,
 * so chunks cannot be reordered, moved between objects, dropped or
 * added, and a changed header (key id, length) fails every chunk.  The
 * object's size must be exactly what the header implies.
 *
 * Streaming in both directions (the sealer is pulled from, the reader
 * reads ranges through a callback, so neither needs a local file), and
 * random access when reading: memory use is two chunks whatever the
 * object's size, plus, for a reader read in order, a read-ahead window
 * of up to 8 sealed chunks (~512 KiB), fetched in one read of its
 * source.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_SEALED_H
#define TR_SEALED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "crypto/keys.h"

#define SEALED_MAGIC "TRB1"
#define SEALED_MAGIC_LEN 4
#define SEALED_CHUNK (64u * 1024)

/* True when the n bytes at p begin like a sealed object. */
bool sealed_is(const void *p, size_t n);

/* Where a sealer or a reader gets its bytes (the blob store's backends
 * and sources, blob.h).  A source fills up to n bytes into buf, *got of
 * them, 0 only at its end; a ranged reader fills up to n bytes at off,
 * fewer only at the end of the object. */
typedef tr_err (*sealed_source_fn)(void *ctx, void *buf, size_t n, size_t *got,
                                   struct tr_errbuf *eb);
typedef tr_err (*sealed_pread_fn)(void *ctx, void *buf, size_t n, uint64_t off,
                                  size_t *got, struct tr_errbuf *eb);

/* A sealer pulled from like a source: it reads len plaintext bytes from
 * src (which must give exactly that many) and hands out the sealed
 * object, *sealed_len bytes in all, a chunk at a time.  TR_ERR_CRYPTO
 * when the key cannot wrap; reads fail with TR_ERR_IO when src ends early
 * or gives more than len bytes. */
struct sealed_sealer;
tr_err sealed_sealer_open(const struct keyring *k, uint64_t len,
                          sealed_source_fn src, void *src_ctx,
                          struct sealed_sealer **out, uint64_t *sealed_len,
                          struct tr_errbuf *eb);
/* A sealed_source_fn: ctx is the sealer. */
tr_err sealed_sealer_read(void *sealer, void *buf, size_t n, size_t *got,
                          struct tr_errbuf *eb);
/* Wipes the key; NULL is ignored. */
void sealed_sealer_close(struct sealed_sealer *s);

/* A sealed object opened for reading at any offset (one chunk is
 * decrypted at a time and kept for the next read; chunks asked in order
 * are fetched several at once), its in_size stored
 * bytes read through rd(ctx, ...), which must stay usable until
 * sealed_reader_close(); *plain_len gets the plaintext's length.
 * TR_ERR_CRYPTO for a malformed header, a size that does not match it,
 * or a key the keyring does not hold. */
struct sealed_reader;
tr_err sealed_reader_open(const struct keyring *k, sealed_pread_fn rd,
                          void *ctx, uint64_t in_size,
                          struct sealed_reader **out, uint64_t *plain_len,
                          struct tr_errbuf *eb);
/* Up to n plaintext bytes at off into buf, *got of them (fewer only at
 * the end).  TR_ERR_CRYPTO for a tampered chunk, TR_ERR_IO. */
tr_err sealed_reader_pread(struct sealed_reader *r, void *buf, size_t n,
                           uint64_t off, size_t *got, struct tr_errbuf *eb);
/* Wipes the key and frees the reader (not its source); NULL is ignored. */
void sealed_reader_close(struct sealed_reader *r);

#endif
