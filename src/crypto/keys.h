/*
 * keys.h - the key-encryption key (KEK) provider behind envelope
 * encryption: wraps and unwraps per-object data keys.
 *
 * A struct keyring hides where the KEK lives.  Today there is one
 * provider, a local file of 32 random bytes (DATA/kek); Vault's transit
 * engine can be added behind the same functions later.  Every KEK has an
 * id, written beside each wrapped data key, so a value sealed under one
 * key is refused cleanly (TR_ERR_CRYPTO) by a keyring holding another.
 *
 * Wrapping is AES-256-GCM under the KEK with a fresh random nonce and the
 * key id as associated data; a wrapped key is nonce || ciphertext || tag.
 * The KEK itself never leaves this module and is wiped on keys_close().
 * A keyring is immutable after it is opened and safe to share between
 * threads.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_KEYS_H
#define TR_KEYS_H

#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"

#define KEYS_KEK_LEN 32     /* bytes of a local KEK */
#define KEYS_DEK_LEN 32     /* bytes of a data key (AES-256) */
#define KEYS_ID_MAX 64      /* longest key id, without the NUL */
#define KEYS_DERIVED_LEN 32 /* bytes of a key from keys_derive() */
#define KEYS_PURPOSE_MAX 64 /* longest purpose label */
#define KEYS_SALT_MAX 256   /* longest salt */

struct keyring;

/* Opens the local KEK file at path.  If it does not exist it is created:
 * 32 random bytes written to a temporary file (mode 0600), synced, then
 * linked into place so that of two nodes starting together exactly one
 * key wins and a crash never leaves a short key behind.  The file may
 * also hold 64 hex digits (an operator-supplied key).  TR_ERR_CONFIG when
 * the file is malformed or readable by group or others, TR_ERR_IO when it
 * cannot be read or written.  *out is freed with keys_close(). */
tr_err keys_open_file(const char *path, struct keyring **out,
                      struct tr_errbuf *eb);

/* A keyring holding the given key (tests and tools).  id NULL: derived
 * from the key, as for a file.  An explicit id is 1..KEYS_ID_MAX of
 * letters, digits, '.', '_' and '-'. */
tr_err keys_open_bytes(const unsigned char key[KEYS_KEK_LEN], const char *id,
                       struct keyring **out, struct tr_errbuf *eb);

/* Wipes the key and frees the keyring; NULL is ignored. */
void keys_close(struct keyring *k);

/* The id of the key new data keys are wrapped under ("local-<hex>"). */
const char *keys_id(const struct keyring *k);

/* Derives a key for one purpose from the KEK, so that a secret every node
 * needs (the URL-signing key) is never stored: HMAC-SHA256(KEK,
 * "terrace-derive-v1\n" purpose "\n" salt).  Every keyring holding the
 * same KEK derives the same key from the same purpose and salt; another
 * KEK, purpose or salt gives an unrelated key, and neither the salt nor
 * the derived key reveals the KEK.  A keyed hash is what Vault's transit
 * engine offers too, so a Vault provider can derive the same way.
 * purpose: 1..KEYS_PURPOSE_MAX characters, no newline; salt: 1..
 * KEYS_SALT_MAX bytes, not secret (kept in the database).  Anything else
 * is TR_ERR_INTERNAL; out is zeroed on failure. */
tr_err keys_derive(const struct keyring *k, const char *purpose,
                   const void *salt, size_t saltlen,
                   unsigned char out[KEYS_DERIVED_LEN], struct tr_errbuf *eb);

/* Wraps dek (n bytes, at most 64) under the active key.  *out (arena
 * memory) gets the wrapped bytes, *outlen their count. */
tr_err keys_wrap(const struct keyring *k, struct arena *a,
                 const unsigned char *dek, size_t n, unsigned char **out,
                 size_t *outlen, struct tr_errbuf *eb);

/* Unwraps w (wlen bytes) that was wrapped under key kek_id into dek,
 * which must hold n bytes; the unwrapped key must be exactly n bytes.
 * TR_ERR_CRYPTO for an unknown key id, a wrong length or any tampering;
 * dek is zeroed on failure. */
tr_err keys_unwrap(const struct keyring *k, const char *kek_id,
                   const unsigned char *w, size_t wlen, unsigned char *dek,
                   size_t n, struct tr_errbuf *eb);

#endif
