/*
 * credential.h - the node credential a secondary or agent keeps in
 * DATA/node-credential (0600, created exclusively, one line).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_NODE_CREDENTIAL_H
#define TR_NODE_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define NODE_CREDENTIAL_FILE "node-credential"

/* Reads the credential at path into out (n bytes at most, the line
 * without its newline).  *found false, and TR_OK, when the file does not
 * exist; an empty file is TR_ERR_CONFIG. */
tr_err node_credential_read(const char *path, char *out, size_t n, bool *found,
                            struct tr_errbuf *eb);

/* Creates path (0600, exclusively) holding cred and a newline, synced;
 * nothing is left behind when it fails. */
tr_err node_credential_write(const char *path, const char *cred,
                             struct tr_errbuf *eb);

#endif
