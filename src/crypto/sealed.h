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
 * Streaming in both directions, and random access when reading: memory
 * use is two chunks whatever the object's size.
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

/* Seals len bytes, read from in_fd (from its current position) when it is
 * not -1, else taken from mem, and writes the object to out_fd.
 * TR_ERR_IO when reading or writing fails (or in_fd ends early),
 * TR_ERR_CRYPTO when OpenSSL does. */
tr_err sealed_seal(const struct keyring *k, int in_fd, const void *mem,
                   uint64_t len, int out_fd, struct tr_errbuf *eb);

/* A sealed object opened for reading at any offset (one chunk is
 * decrypted at a time and kept for the next read).  Takes ownership of fd
 * (the object, in_size bytes) on success; *plain_len gets the
 * plaintext's length.  TR_ERR_CRYPTO for a malformed header, a size that
 * does not match it, or a key the keyring does not hold. */
struct sealed_reader;
tr_err sealed_reader_open(const struct keyring *k, int fd, uint64_t in_size,
                          struct sealed_reader **out, uint64_t *plain_len,
                          struct tr_errbuf *eb);
/* Up to n plaintext bytes at off into buf, *got of them (fewer only at
 * the end).  TR_ERR_CRYPTO for a tampered chunk, TR_ERR_IO. */
tr_err sealed_reader_pread(struct sealed_reader *r, void *buf, size_t n,
                           uint64_t off, size_t *got, struct tr_errbuf *eb);
/* Closes the fd and wipes the key; NULL is ignored. */
void sealed_reader_close(struct sealed_reader *r);

#endif
