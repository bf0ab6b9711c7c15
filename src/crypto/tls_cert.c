/*
 * tls_cert.c - generates and persists the local CA and server certificate.
 *
 * Invariants:
 *  1. All crypto happens in memory first; files are touched only once every
 *     key and certificate has been built and signed.
 *  2. Each file is written to a random temp name in the same directory
 *     (created with its final mode: 0600 for keys, 0644 for certificates),
 *     fsynced, renamed over the target, and the directory fsynced.
 *  3. Writes go in this order: unlink server.pem, [unlink ca.pem, write
 *     ca-key.pem, write ca.pem,] write server-key.pem, write server.pem.  A
 *     crash anywhere leaves server.pem (or ca.pem) missing, so the next call
 *     regenerates rather than trusting a mismatched set.
 *  4. Generation holds an exclusive flock on the directory, and rechecks
 *     under it, so concurrent callers never interleave their writes.
 *
 * Nothing here is global; every OpenSSL object is freed on every path.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "crypto/tls_cert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CA_CERT "ca.pem"
#define CA_KEY "ca-key.pem"
#define SRV_CERT "server.pem"
#define SRV_KEY "server-key.pem"

#define CA_CN "Terrace local CA"
#define CA_DAYS 3650 /* 10 years */
#define SRV_DAYS 825 /* the CA/Browser Forum's old maximum */
#define CN_MAX 64    /* ub-common-name; longer first names use "localhost" */
#define DNS_MAX 253

/* Always in the SAN list, ahead of the caller's names. */
static const char *const default_names[] = {"localhost", "127.0.0.1", "::1"};
#define NDEFAULT (sizeof(default_names) / sizeof(default_names[0]))

struct certdir {
    const char *path; /* for messages */
    int fd;           /* O_DIRECTORY; holds the flock */
};

/* Turns the newest OpenSSL error into a message and clears the queue. */
static tr_err ossl_fail(struct tr_errbuf *eb, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return tr_fail(eb, TR_ERR_CRYPTO, "%s: %s", what,
                   why != NULL ? why : "unknown error");
}

/* ---- names ------------------------------------------------------------ */

/* Writes the address bytes of an IPv4 or IPv6 literal into ip and returns
 * 4 or 16, or returns 0 if name is not an IP literal. */
static int ip_literal(const char *name, unsigned char ip[16])
{
    if (inet_pton(AF_INET, name, ip) == 1)
        return 4;
    if (inet_pton(AF_INET6, name, ip) == 1)
        return 16;
    return 0;
}

/* Letters, digits, '-', '_' and non-empty dot-separated labels; a leading
 * "*." wildcard label is allowed. */
static bool dns_name_ok(const char *name)
{
    size_t len = strlen(name);
    const char *p = name;

    if (len == 0 || len > DNS_MAX)
        return false;
    if (p[0] == '*' && p[1] == '.')
        p += 2;
    if (*p == '\0' || *p == '.' || name[len - 1] == '.')
        return false;
    for (; *p != '\0'; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9');
        if (*p == '.' && p[1] == '.')
            return false;
        if (!alnum && *p != '-' && *p != '_' && *p != '.')
            return false;
    }
    return true;
}

static tr_err check_names(const char *const *names, size_t nnames,
                          struct tr_errbuf *eb)
{
    unsigned char ip[16];

    for (size_t i = 0; i < nnames; i++) {
        if (names[i] == NULL)
            return tr_fail(eb, TR_ERR_INVALID, "certificate name is null");
        if (ip_literal(names[i], ip) == 0 && !dns_name_ok(names[i]))
            return tr_fail(eb, TR_ERR_INVALID, "bad certificate name \"%.64s\"",
                           names[i]);
    }
    return TR_OK;
}

/* The i-th SAN candidate: the defaults, then the caller's names. */
static const char *name_at(const char *const *names, size_t i)
{
    return i < NDEFAULT ? default_names[i] : names[i - NDEFAULT];
}

/* Appends one DNS or IP general name to gens. */
static bool push_name(GENERAL_NAMES *gens, const char *name)
{
    unsigned char ip[16];
    int iplen = ip_literal(name, ip);
    ASN1_STRING *val =
        iplen > 0 ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    bool ok = false;

    if (val == NULL || gen == NULL)
        goto fail;
    if (iplen > 0)
        ok = ASN1_STRING_set(val, ip, iplen) == 1;
    else
        ok = ASN1_STRING_set(val, name, -1) == 1;
    if (!ok)
        goto fail;
    GENERAL_NAME_set0_value(gen, iplen > 0 ? GEN_IPADD : GEN_DNS, val);
    val = NULL;
    ok = sk_GENERAL_NAME_push(gens, gen) > 0;
    if (ok)
        gen = NULL;
fail:
    ASN1_STRING_free(val);
    GENERAL_NAME_free(gen);
    return ok;
}

/* Adds subjectAltName: the defaults and names, duplicates dropped.  Each
 * name becomes one typed entry; nothing is parsed as config syntax. */
static bool add_san(X509 *cert, const char *const *names, size_t nnames)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    bool ok = gens != NULL;

    for (size_t i = 0; ok && i < NDEFAULT + nnames; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcasecmp(name_at(names, i), name_at(names, j)) == 0;
        if (!dup)
            ok = push_name(gens, name_at(names, i));
    }
    if (ok)
        ok = X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0,
                               X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(gens);
    return ok;
}

/* ---- certificates ----------------------------------------------------- */

/* Adds one extension given in openssl.cnf syntax (fixed strings only). */
static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int rc;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return false;
    rc = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return rc == 1;
}

/* A fresh P-256 key and an unsigned v3 certificate for it: random 128-bit
 * serial, valid from now for days, subject CN=cn, no issuer yet.  On
 * success the caller owns *keyp and *certp. */
static tr_err new_cert(const char *cn, int days, EVP_PKEY **keyp, X509 **certp,
                       struct tr_errbuf *eb)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    X509_NAME *subj = cert != NULL ? X509_get_subject_name(cert) : NULL;
    tr_err rc = TR_OK;

    if (key == NULL || cert == NULL || serial == NULL ||
        BN_rand(serial, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
        BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL ||
        X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL) == NULL ||
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_set_pubkey(cert, key) != 1) {
        rc = ossl_fail(eb, "cannot generate key and certificate");
        goto fail;
    }
    *keyp = key;
    *certp = cert;
    key = NULL;
    cert = NULL;
fail:
    BN_free(serial);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* Generates the self-signed CA; the caller owns *keyp and *certp. */
static tr_err make_ca(EVP_PKEY **keyp, X509 **certp, struct tr_errbuf *eb)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    tr_err rc = new_cert(CA_CN, CA_DAYS, &key, &cert, eb);

    if (rc != TR_OK)
        goto fail;
    if (X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1 ||
        !add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !add_ext(cert, cert, NID_subject_key_identifier, "hash") ||
        X509_sign(cert, key, EVP_sha256()) <= 0) {
        rc = ossl_fail(eb, "cannot build ca certificate");
        goto fail;
    }
    *keyp = key;
    *certp = cert;
    key = NULL;
    cert = NULL;
fail:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* Issues a server key and certificate from ca; the caller owns the result.
 * notAfter is capped at the CA's so a reused CA never outlives its leaf. */
static tr_err make_server(X509 *ca, EVP_PKEY *cakey, const char *const *names,
                          size_t nnames, EVP_PKEY **keyp, X509 **certp,
                          struct tr_errbuf *eb)
{
    const char *cn =
        nnames > 0 && strlen(names[0]) <= CN_MAX ? names[0] : "localhost";
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    tr_err rc = new_cert(cn, SRV_DAYS, &key, &cert, eb);
    bool cap;

    if (rc != TR_OK)
        goto fail;
    cap =
        ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(ca)) > 0;
    if ((cap && X509_set1_notAfter(cert, X509_get0_notAfter(ca)) != 1) ||
        X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1 ||
        !add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, ca, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(cert, ca, NID_ext_key_usage, "serverAuth") ||
        !add_ext(cert, ca, NID_subject_key_identifier, "hash") ||
        !add_ext(cert, ca, NID_authority_key_identifier, "keyid:always") ||
        !add_san(cert, names, nnames) ||
        X509_sign(cert, cakey, EVP_sha256()) <= 0) {
        rc = ossl_fail(eb, "cannot build server certificate");
        goto fail;
    }
    *keyp = key;
    *certp = cert;
    key = NULL;
    cert = NULL;
fail:
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- files ------------------------------------------------------------ */

static bool file_exists(const struct certdir *cd, const char *name)
{
    struct stat st;

    return fstatat(cd->fd, name, &st, 0) == 0 && S_ISREG(st.st_mode);
}

static bool all_exist(const struct certdir *cd)
{
    return file_exists(cd, CA_CERT) && file_exists(cd, CA_KEY) &&
           file_exists(cd, SRV_CERT) && file_exists(cd, SRV_KEY);
}

static tr_err sync_dir(const struct certdir *cd, struct tr_errbuf *eb)
{
    if (fsync(cd->fd) != 0)
        return tr_fail(eb, TR_ERR_IO, "cannot sync %s: %s", cd->path,
                       strerror(errno));
    return TR_OK;
}

/* Removes name if it exists, durably. */
static tr_err remove_file(const struct certdir *cd, const char *name,
                          struct tr_errbuf *eb)
{
    if (unlinkat(cd->fd, name, 0) != 0) {
        if (errno == ENOENT)
            return TR_OK;
        return tr_fail(eb, TR_ERR_IO, "cannot remove %s/%s: %s", cd->path, name,
                       strerror(errno));
    }
    return sync_dir(cd, eb);
}

static tr_err write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            errno = EIO;
        if (n <= 0)
            return TR_ERR_IO;
        data += n;
        len -= (size_t)n;
    }
    return TR_OK;
}

/* Replaces name with data: temp file created with mode, fsync, rename,
 * directory fsync.  On failure the temp file is removed. */
static tr_err write_atomic(const struct certdir *cd, const char *name,
                           const char *data, size_t len, mode_t mode,
                           struct tr_errbuf *eb)
{
    char tmp[NAME_MAX + 1];
    uint64_t rnd;
    int fd;
    int err;

    if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
        return ossl_fail(eb, "cannot pick a temp file name");
    snprintf(tmp, sizeof(tmp), ".%s.%016" PRIx64 ".tmp", name, rnd);
    fd = openat(cd->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s/%s: %s", cd->path, tmp,
                       strerror(errno));
    if (write_all(fd, data, len) != TR_OK || fsync(fd) != 0)
        goto fail;
    err = close(fd);
    fd = -1;
    if (err != 0 || renameat(cd->fd, tmp, cd->fd, name) != 0)
        goto fail;
    return sync_dir(cd, eb);
fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(cd->fd, tmp, 0);
    return tr_fail(eb, TR_ERR_IO, "cannot write %s/%s: %s", cd->path, name,
                   strerror(err));
}

/* Writes key (if not NULL) or cert as PEM.  The buffer is wiped on free. */
static tr_err save_pem(const struct certdir *cd, const char *name,
                       EVP_PKEY *key, X509 *cert, struct tr_errbuf *eb)
{
    BIO *mem = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long len;
    int ok;
    tr_err rc;

    if (mem == NULL)
        return ossl_fail(eb, "cannot encode pem");
    if (key != NULL)
        ok = PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL);
    else
        ok = PEM_write_bio_X509(mem, cert);
    len = BIO_get_mem_data(mem, &data);
    if (ok != 1 || len <= 0)
        rc = ossl_fail(eb, "cannot encode pem");
    else
        rc = write_atomic(cd, name, data, (size_t)len,
                          key != NULL ? 0600 : 0644, eb);
    BIO_free(mem);
    return rc;
}

/* Never prompt on a terminal for an encrypted key: refuse it instead. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Loads ca.pem and ca-key.pem and checks they form a usable CA. */
static tr_err load_ca(const struct certdir *cd, X509 **certp, EVP_PKEY **keyp,
                      struct tr_errbuf *eb)
{
    int cfd = openat(cd->fd, CA_CERT, O_RDONLY | O_CLOEXEC);
    int kfd = openat(cd->fd, CA_KEY, O_RDONLY | O_CLOEXEC);
    BIO *cbio = cfd >= 0 ? BIO_new_fd(cfd, BIO_CLOSE) : NULL;
    BIO *kbio = kfd >= 0 ? BIO_new_fd(kfd, BIO_CLOSE) : NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    tr_err rc = TR_OK;

    if (cbio == NULL || kbio == NULL) {
        rc = tr_fail(eb, TR_ERR_IO, "cannot open the ca in %s", cd->path);
        goto fail;
    }
    cert = PEM_read_bio_X509(cbio, NULL, no_password, NULL);
    key = PEM_read_bio_PrivateKey(kbio, NULL, no_password, NULL);
    if (cert == NULL || key == NULL) {
        rc = ossl_fail(eb, "cannot read ca.pem or ca-key.pem");
        goto fail;
    }
    if (X509_check_private_key(cert, key) != 1 || X509_check_ca(cert) == 0) {
        ERR_clear_error();
        rc = tr_fail(eb, TR_ERR_CRYPTO,
                     "ca.pem is not a ca or does not match ca-key.pem");
        goto fail;
    }
    *certp = cert;
    *keyp = key;
    cert = NULL;
    key = NULL;
fail:
    if (cbio == NULL && cfd >= 0)
        close(cfd);
    if (kbio == NULL && kfd >= 0)
        close(kfd);
    BIO_free(cbio);
    BIO_free(kbio);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* Builds everything in memory, then writes in the order of invariant 3. */
static tr_err generate(const struct certdir *cd, const char *const *names,
                       size_t nnames, struct tr_errbuf *eb)
{
    bool reuse = file_exists(cd, CA_CERT) && file_exists(cd, CA_KEY);
    X509 *ca = NULL, *srv = NULL;
    EVP_PKEY *cakey = NULL, *srvkey = NULL;
    tr_err rc;

    if (reuse)
        rc = load_ca(cd, &ca, &cakey, eb);
    else
        rc = make_ca(&cakey, &ca, eb);
    if (rc != TR_OK)
        goto fail;
    rc = make_server(ca, cakey, names, nnames, &srvkey, &srv, eb);
    if (rc != TR_OK)
        goto fail;
    rc = remove_file(cd, SRV_CERT, eb);
    if (rc == TR_OK && !reuse)
        rc = remove_file(cd, CA_CERT, eb);
    if (rc == TR_OK && !reuse)
        rc = save_pem(cd, CA_KEY, cakey, NULL, eb);
    if (rc == TR_OK && !reuse)
        rc = save_pem(cd, CA_CERT, NULL, ca, eb);
    if (rc == TR_OK)
        rc = save_pem(cd, SRV_KEY, srvkey, NULL, eb);
    if (rc == TR_OK)
        rc = save_pem(cd, SRV_CERT, NULL, srv, eb);
fail:
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(srvkey);
    return rc;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static tr_err make_dirs(const char *dir, struct tr_errbuf *eb)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return tr_fail(eb, TR_ERR_INVALID, "bad certificate directory");
    memcpy(path, dir, len + 1);
    for (char *p = path + 1;; p++) {
        char c = *p;
        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", path,
                           strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    return TR_OK;
}

static tr_err open_dir(struct certdir *cd, struct tr_errbuf *eb)
{
    tr_err rc;

    cd->fd = open(cd->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cd->fd < 0 && errno == ENOENT) {
        rc = make_dirs(cd->path, eb);
        if (rc != TR_OK)
            return rc;
        cd->fd = open(cd->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (cd->fd < 0)
        return tr_fail(eb, TR_ERR_IO, "cannot open %s: %s", cd->path,
                       strerror(errno));
    return TR_OK;
}

tr_err tls_ensure_certs(const char *dir, const char *const *names,
                        size_t nnames, struct tr_errbuf *eb)
{
    struct certdir cd = {.path = dir, .fd = -1};
    tr_err rc;

    if (dir == NULL)
        return tr_fail(eb, TR_ERR_INVALID, "bad certificate directory");
    rc = check_names(names, nnames, eb);
    if (rc != TR_OK)
        return rc;
    rc = open_dir(&cd, eb);
    if (rc != TR_OK || all_exist(&cd))
        goto fail;
    while (flock(cd.fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            rc = tr_fail(eb, TR_ERR_IO, "cannot lock %s: %s", dir,
                         strerror(errno));
            goto fail;
        }
    }
    if (!all_exist(&cd))
        rc = generate(&cd, names, nnames, eb);
fail:
    if (cd.fd >= 0)
        close(cd.fd); /* releases the lock */
    return rc;
}
