/*
 * plan_file.h - the binary plan file a plan job saves for its apply,
 * sealed at rest.
 *
 * A saved plan holds the values of every input variable, sensitive ones
 * included, so it is stored envelope-encrypted (crypto/envelope.h, under
 * the node's keyring) like sensitive variables; the JSON plans beside it
 * are redacted instead (plan_redact.h).  A plan stored in the clear by an
 * earlier version (a zip file, never starting with the envelope prefix)
 * is still read as it is, so runs waiting for their apply survive an
 * upgrade.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_PLAN_FILE_H
#define TR_PLAN_FILE_H

#include "core/arena.h"
#include "core/err.h"
#include "core/server.h"
#include "crypto/envelope.h"

/* The largest plan file stored (the envelope's limit, 256 MiB). */
#define PLAN_FILE_MAX ENVELOPE_MAX_PLAIN

/* Seals the local file at path and stores it under key.  TR_ERR_TOO_LARGE
 * above PLAN_FILE_MAX. */
tr_err plan_file_store(struct terrace_server *srv, struct arena *a,
                       const char *key, const char *path,
                       struct tr_errbuf *eb);

/* Writes the plan stored under key, opened, to dest_path (created 0600,
 * replaced if present).  TR_ERR_CRYPTO when it cannot be opened (another
 * key, tampering). */
tr_err plan_file_fetch(struct terrace_server *srv, struct arena *a,
                       const char *key, const char *dest_path,
                       struct tr_errbuf *eb);

#endif
