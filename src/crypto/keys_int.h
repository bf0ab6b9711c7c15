/*
 * keys_int.h - what keys.c and the Vault provider (keys_vault.c) share.
 *
 * keys.c owns struct keyring and dispatches on its kind; keys_vault.c
 * owns struct keys_vault, the Vault client behind a "vault" keyring.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_KEYS_INT_H
#define TR_KEYS_INT_H

#include "crypto/keys.h"

struct keys_vault;

/* Connects, authenticates and checks the key (keys_open_vault()); id gets
 * the keyring's id. */
tr_err keys_vault_open(const struct keys_vault_cfg *vc, struct keys_vault **out,
                       char id[KEYS_ID_MAX + 1], struct tr_errbuf *eb);
void keys_vault_close(struct keys_vault *v);
tr_err keys_vault_wrap(struct keys_vault *v, struct arena *a,
                       const unsigned char *dek, size_t n, unsigned char **out,
                       size_t *outlen, struct tr_errbuf *eb);
tr_err keys_vault_unwrap(struct keys_vault *v, const unsigned char *w,
                         size_t wlen, unsigned char *dek, size_t n,
                         struct tr_errbuf *eb);
/* HMAC-SHA256 of msg under version 1 of the key. */
tr_err keys_vault_hmac(struct keys_vault *v, const void *msg, size_t n,
                       unsigned char out[KEYS_DERIVED_LEN],
                       struct tr_errbuf *eb);
/* True when w is transit ciphertext of the latest version last read. */
bool keys_vault_is_latest(struct keys_vault *v, const unsigned char *w,
                          size_t wlen);
tr_err keys_vault_refresh(struct keys_vault *v, struct tr_errbuf *eb);

#endif
