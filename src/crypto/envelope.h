/*
 * envelope.h - envelope encryption of secrets at rest: small values in
 * database columns (sensitive variables); whole stored objects use the
 * chunked format of sealed.h, on the same AEAD primitive.
 *
 * Each value is encrypted with AES-256-GCM under its own fresh random
 * 256-bit data key (DEK); the DEK is wrapped by the keyring's key-
 * encryption key (keys.h).  The result is one self-describing text value
 * that can sit in a TEXT column:
 *
 *   tre1:<kek-id>:<b64 wrapped DEK>:<b64 nonce>:<b64 ciphertext+tag>
 *
 * The header "tre1:<kek-id>:<b64 wrapped DEK>" is the associated data of
 * the value's encryption, so changing any part of the text (or moving a
 * wrapped key to another value) makes envelope_open() fail with
 * TR_ERR_CRYPTO, as does a keyring without the right key.  Data keys are
 * wiped from memory once used.
 *
 * The AEAD primitive is exposed for keys.c and sealed.c: a sealed buffer
 * is nonce (12) || ciphertext || tag (16).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_ENVELOPE_H
#define TR_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/err.h"
#include "crypto/keys.h"

#define ENVELOPE_PREFIX "tre1:"
#define ENVELOPE_NONCE_LEN 12
#define ENVELOPE_TAG_LEN 16
#define ENVELOPE_OVERHEAD (ENVELOPE_NONCE_LEN + ENVELOPE_TAG_LEN)
#define ENVELOPE_MAX_PLAIN (256u * 1024 * 1024) /* longest value sealed */

/* Seals len bytes of plaintext (len may be 0) into *out, NUL-terminated
 * text in a.  TR_ERR_TOO_LARGE above ENVELOPE_MAX_PLAIN, TR_ERR_CRYPTO if
 * OpenSSL fails. */
tr_err envelope_seal(const struct keyring *keys, struct arena *a,
                     const void *plaintext, size_t len, char **out,
                     struct tr_errbuf *eb);

/* Opens text made by envelope_seal().  *out gets the plaintext in a, with
 * a NUL after it (not counted in *len; len may be NULL).  TR_ERR_CRYPTO
 * for malformed text, an unknown key, a wrong key or any tampering; the
 * message never includes the value. */
tr_err envelope_open(const struct keyring *keys, struct arena *a,
                     const char *text, char **out, size_t *len,
                     struct tr_errbuf *eb);

/* True when text looks like envelope_seal() output (prefix check only). */
bool envelope_is_sealed(const char *text);

/* AES-256-GCM with a fresh random nonce: out must hold n +
 * ENVELOPE_OVERHEAD bytes.  n at most ENVELOPE_MAX_PLAIN. */
tr_err envelope_aead_seal(const unsigned char key[32], const void *aad,
                          size_t aadlen, const void *in, size_t n,
                          unsigned char *out, struct tr_errbuf *eb);

/* Reverses envelope_aead_seal(): out must hold n - ENVELOPE_OVERHEAD
 * bytes.  TR_ERR_CRYPTO (and out zeroed) when authentication fails. */
tr_err envelope_aead_open(const unsigned char key[32], const void *aad,
                          size_t aadlen, const unsigned char *in, size_t n,
                          unsigned char *out, struct tr_errbuf *eb);

#endif
