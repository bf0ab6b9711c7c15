/*
 * blob_s3_int.h - what blob_s3.c shares with blob_s3_auth.c: AWS
 * Signature V4 and the credential sources.
 *
 * Credentials come from, in this order: AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN); the shared credentials
 * file's static keys (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
 * profile AWS_PROFILE or "default"); the ECS container
 * endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN or _TOKEN_FILE); the EC2 instance
 * metadata service, IMDSv2 (unless AWS_EC2_METADATA_DISABLED=true;
 * AWS_EC2_METADATA_SERVICE_ENDPOINT moves it).  Temporary credentials are
 * fetched again five minutes before they expire; a failed refresh keeps
 * the old ones while they last.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BLOB_S3_INT_H
#define TR_BLOB_S3_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/curl_load.h"

#include "core/err.h"

struct s3_creds {
    char access[128];
    char secret[128];
    char token[4096]; /* "" without a session token */
    int64_t expires;  /* Unix seconds; 0: never */
};

enum s3_cred_kind { S3_CRED_STATIC, S3_CRED_ECS, S3_CRED_IMDS };

struct s3_cred_src {
    enum s3_cred_kind kind;
    char url[1024];      /* ECS: the endpoint; IMDS: the service base */
    char auth[2048];     /* ECS: Authorization value ("" for none) */
    char auth_file[512]; /* ECS: file holding it, read at each fetch */
    pthread_mutex_t mu;
    struct s3_creds cur;
};

/* Picks the credential source from the environment and fetches the
 * first credentials.  TR_ERR_CONFIG when there are none, saying what
 * to set. */
tr_err s3_creds_init(struct s3_cred_src *src, struct tr_errbuf *eb);
/* The shared credentials file's profile into *out (blob_s3_profile.c).
 * *found false, TR_OK, when there is no file or the default profile is
 * not in it; TR_ERR_CONFIG for a file or profile named by the
 * environment that cannot be used, or a malformed file. */
tr_err s3_profile_read(struct s3_creds *out, bool *found, struct tr_errbuf *eb);
/* Current credentials into *out, refreshed first when they expire
 * within five minutes.  Thread-safe. */
tr_err s3_creds_get(struct s3_cred_src *src, struct s3_creds *out,
                    struct tr_errbuf *eb);
void s3_creds_fini(struct s3_cred_src *src);

/* A request to sign.  path and query are canonical: path URI-encoded,
 * query parameters sorted by name and encoded ("" for none); they are
 * sent as they are. */
struct s3_sig_in {
    const char *method;
    const char *host; /* the Host header's value */
    const char *path;
    const char *query;
    const char *payload_sha; /* lower-case hex of the body's SHA-256 */
    const char *region;
    const struct s3_creds *creds;
    /* further headers to sign, "name:value", names lower-case, sorted
     * by name, NULL-terminated (may be NULL) */
    const char *const *extra;
    int64_t now; /* Unix seconds */
};

/* Appends Host, X-Amz-Date, X-Amz-Content-Sha256, X-Amz-Security-Token
 * (with a session token), the extra headers and Authorization to
 * *hdrs. */
tr_err s3_sign(const struct s3_sig_in *in, struct curl_slist **hdrs,
               struct tr_errbuf *eb);

/* Lower-case hex SHA-256 of p[0..n) into out[65]. */
void s3_sha256_hex(const void *p, size_t n, char out[65]);

#endif
