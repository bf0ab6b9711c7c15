/*
 * tls_cert.h - a local CA and a server certificate for the TLS listener.
 *
 * A certificate directory holds four PEM files: ca.pem, ca-key.pem,
 * server.pem and server-key.pem.  Keys are mode 0600 from creation, every
 * file is replaced atomically, and server.pem is always written last, so
 * after a crash the set is either complete and consistent or incomplete
 * and regenerated on the next call.  An operator may supply their own CA
 * (ca.pem + ca-key.pem); it is reused, never overwritten.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_TLS_CERT_H
#define TR_TLS_CERT_H

#include <stddef.h>

#include "core/err.h"

/* Makes sure dir/ca.pem, dir/ca-key.pem, dir/server.pem and
 * dir/server-key.pem exist.  If all four do, nothing is touched.  Otherwise
 * dir is created (mode 0700, parents too), the CA is loaded if ca.pem and
 * ca-key.pem both exist or else generated (EC P-256, 10 years, CN "Terrace
 * local CA"), and a new server key and certificate are issued by it (EC
 * P-256, 825 days capped at the CA's expiry, CN = names[0] or "localhost",
 * SANs localhost, 127.0.0.1, ::1 and each of names, which may be DNS names
 * or IP literals).
 *
 * Returns TR_ERR_INVALID for a malformed name (before touching the disk),
 * TR_ERR_IO for file errors, TR_ERR_CRYPTO if OpenSSL fails or an existing
 * CA is unusable (key does not match, not a CA).  Safe to call from several
 * threads or processes at once: generation is serialised by flock on dir. */
tr_err tls_ensure_certs(const char *dir, const char *const *names,
                        size_t nnames, struct tr_errbuf *eb);

#endif
