/*
 * keys.h - the key-encryption key (KEK) provider behind envelope
 * encryption: wraps and unwraps per-object data keys.
 *
 * A struct keyring hides where the KEK lives.  Two providers: a local
 * file of 32 random bytes (DATA/kek, keys.c) and a key in Vault's transit
 * engine (keys_vault.c), which never leaves Vault.  Every KEK has an id,
 * written beside each wrapped data key: "local-<hex>" for a file,
 * "vault-<name>-<hex>" for a transit key, so a value sealed under one key
 * is refused cleanly (TR_ERR_CRYPTO) by a keyring holding another.  A
 * keyring may also hold a second, older keyring used only to unwrap
 * (keys_add_old()): how data moves from one key to another (`terrace
 * admin rekey`) while the server keeps reading both.
 *
 * Local wrapping is AES-256-GCM under the KEK with a fresh random nonce
 * and the key id as associated data; a wrapped key is nonce || ciphertext
 * || tag.  A Vault-wrapped key is transit's ciphertext text
 * ("vault:v<N>:<b64>").  A local KEK never leaves this module and is
 * wiped on keys_close().  A keyring is immutable after it is opened
 * (keys_add_old() comes before it is shared) and safe to share between
 * threads.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_KEYS_H
#define TR_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"

#define KEYS_KEK_LEN 32     /* bytes of a local KEK */
#define KEYS_DEK_LEN 32     /* bytes of a data key (AES-256) */
#define KEYS_ID_MAX 64      /* longest key id, without the NUL */
#define KEYS_DERIVED_LEN 32 /* bytes of a key from keys_derive() */
#define KEYS_PURPOSE_MAX 64 /* longest purpose label */
#define KEYS_SALT_MAX 256   /* longest salt */
#define KEYS_WRAP_MAX 512   /* longest wrapped data key */

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

/* Vault transit settings (keys_open_vault()).  addr is http(s)://host:
 * port; either token, or role_id and secret_id (AppRole login) are set;
 * token_file, when set, is read again for a fresh token whenever Vault
 * refuses the current one (a Vault Agent sink rewrites it).  ca_file,
 * vault_namespace: "" or NULL for none; mount: the transit engine's path
 * ("transit"); key: the transit key's name. */
struct keys_vault_cfg {
    const char *addr;
    const char *token;
    const char *token_file;
    const char *role_id;
    const char *secret_id;
    const char *ca_file;
    const char *vault_namespace;
    const char *mount;
    const char *key;
};

/* A keyring whose KEK is a key of Vault's transit engine.  Logs in (when
 * AppRole), then reads the key to check that Vault answers, the token is
 * good and the key exists and can encrypt: TR_ERR_UNAVAILABLE when Vault
 * cannot be reached, TR_ERR_CONFIG for a bad setting, a refused login or
 * token or a missing key.  Tokens are renewed on use before they expire
 * (AppRole logs in again when renewal is no longer possible).  Unwrapped
 * data keys are cached for a short while (bounded, wiped on eviction).
 * *out is freed with keys_close(). */
tr_err keys_open_vault(const struct keys_vault_cfg *vc, struct keyring **out,
                       struct tr_errbuf *eb);

/* Gives k a second keyring, used only to unwrap data keys wrapped under
 * old's id (and old's own older keys); k owns it from then on.  Call
 * before k is shared between threads. */
void keys_add_old(struct keyring *k, struct keyring *old);

/* Wipes the key and frees the keyring (and its old one); NULL is
 * ignored. */
void keys_close(struct keyring *k);

/* The id of the key new data keys are wrapped under ("local-<hex>" or
 * "vault-<name>-<hex>"). */
const char *keys_id(const struct keyring *k);

/* True when k (or its old keyring) can unwrap keys wrapped under id. */
bool keys_holds(const struct keyring *k, const char *id);

/* True when w, wrapped under kek_id, is wrapped the way keys_wrap() would
 * wrap it now: under the active key and, for Vault, its latest version
 * (as last read: keys_refresh()).  What `terrace admin rekey` skips. */
bool keys_is_current(const struct keyring *k, const char *kek_id,
                     const unsigned char *w, size_t wlen);

/* Reads the active key's latest version again (Vault; a no-op for a
 * file).  TR_ERR_UNAVAILABLE when Vault cannot be reached. */
tr_err keys_refresh(struct keyring *k, struct tr_errbuf *eb);

/* Derives a key for one purpose from the KEK, so that a secret every node
 * needs (the URL-signing key) is never stored: HMAC-SHA256(KEK,
 * "terrace-derive-v1\n" purpose "\n" salt).  Every keyring holding the
 * same KEK derives the same key from the same purpose and salt; another
 * KEK, purpose or salt gives an unrelated key, and neither the salt nor
 * the derived key reveals the KEK.  With Vault the keyed hash is
 * transit's HMAC-SHA256 of the same message under version 1 of the key,
 * pinned so that rotating the key never changes a derived key.
 * purpose: 1..KEYS_PURPOSE_MAX characters, no newline; salt: 1..
 * KEYS_SALT_MAX bytes, not secret (kept in the database).  Anything else
 * is TR_ERR_INTERNAL; out is zeroed on failure. */
tr_err keys_derive(const struct keyring *k, const char *purpose,
                   const void *salt, size_t saltlen,
                   unsigned char out[KEYS_DERIVED_LEN], struct tr_errbuf *eb);

/* Wraps dek (n bytes, at most 64) under the active key.  *out (arena
 * memory) gets the wrapped bytes, *outlen their count (at most
 * KEYS_WRAP_MAX).  TR_ERR_UNAVAILABLE when Vault cannot be reached. */
tr_err keys_wrap(const struct keyring *k, struct arena *a,
                 const unsigned char *dek, size_t n, unsigned char **out,
                 size_t *outlen, struct tr_errbuf *eb);

/* Unwraps w (wlen bytes) that was wrapped under key kek_id into dek,
 * which must hold n bytes; the unwrapped key must be exactly n bytes.
 * TR_ERR_CRYPTO for an unknown key id, a wrong length or any tampering,
 * TR_ERR_UNAVAILABLE when Vault cannot be reached; dek is zeroed on
 * failure. */
tr_err keys_unwrap(const struct keyring *k, const char *kek_id,
                   const unsigned char *w, size_t wlen, unsigned char *dek,
                   size_t n, struct tr_errbuf *eb);

#endif
