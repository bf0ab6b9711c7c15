/*
 * keyring.c - the keyring a node's settings name (node.h): a key file, or
 * a Vault transit key with the key file kept to unwrap older data.
 *
 * Secrets read here (the Vault token and AppRole secret id) are wiped
 * from memory once the keyring holds its own copy.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/node.h"

#include "crypto/keys.h"

void node_kek_path(const struct cfg *c, char *out, size_t n)
{
    if (c->kek_file[0] != '\0')
        snprintf(out, n, "%s", c->kek_file);
    else
        snprintf(out, n, "%s/kek", c->data_dir);
}

tr_err node_keyring_file(const struct cfg *c, bool create, struct keyring **out,
                         struct tr_errbuf *eb)
{
    char path[PATH_MAX];
    node_kek_path(c, path, sizeof(path));
    if (!create && access(path, F_OK) != 0)
        return tr_fail(eb, TR_ERR_NOT_FOUND, "no key file %s", path);
    return keys_open_file(path, out, eb);
}

static tr_err read_secret(const char *path, char *out, size_t n,
                          struct tr_errbuf *eb)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tr_fail(eb, TR_ERR_CONFIG, "cannot read %s: %s", path,
                       strerror(errno));
    size_t got = fread(out, 1, n - 1, f);
    fclose(f);
    while (got > 0 && isspace((unsigned char)out[got - 1]))
        got--;
    out[got] = '\0';
    if (got == 0)
        return tr_fail(eb, TR_ERR_CONFIG, "%s is empty", path);
    return TR_OK;
}

tr_err node_keyring_vault(const struct cfg *c, struct keyring **out,
                          struct tr_errbuf *eb)
{
    char secret_id[256] = "";
    const char *env = getenv("VAULT_TOKEN");
    struct keys_vault_cfg vc = {
        .addr = c->vault_addr,
        .token_file = c->vault_token_file,
        .token = c->vault_token_file[0] == '\0' && env != NULL ? env : NULL,
        .role_id = c->vault_role_id,
        .secret_id = secret_id,
        .ca_file = c->vault_ca_file,
        .vault_namespace = c->vault_namespace,
        .mount = c->vault_mount,
        .key = c->vault_key,
    };
    tr_err e = TR_OK;
    if (c->vault_role_id[0] != '\0') {
        vc.token = NULL;
        vc.token_file = NULL;
        e = c->vault_secret_id_file[0] == '\0'
                ? tr_fail(eb, TR_ERR_CONFIG,
                          "vault-role-id needs vault-secret-id-file")
                : read_secret(c->vault_secret_id_file, secret_id,
                              sizeof(secret_id), eb);
    }
    if (e == TR_OK)
        e = keys_open_vault(&vc, out, eb);
    OPENSSL_cleanse(secret_id, sizeof(secret_id));
    return e;
}

tr_err node_keyring_open(const struct cfg *c, bool create_file,
                         struct keyring **out, struct tr_errbuf *eb)
{
    if (c->vault_addr[0] == '\0')
        return node_keyring_file(c, create_file, out, eb);
    struct keyring *k = NULL, *old = NULL;
    tr_err e = node_keyring_vault(c, &k, eb);
    if (e != TR_OK)
        return e;
    /* a key file given, or left in the data dir: data sealed under it
     * stays readable until `terrace admin rekey` has moved it */
    e = node_keyring_file(c, false, &old, eb);
    if (e == TR_OK)
        keys_add_old(k, old);
    else if (e != TR_ERR_NOT_FOUND || c->kek_file[0] != '\0') {
        keys_close(k);
        return e;
    }
    *out = k;
    return TR_OK;
}
