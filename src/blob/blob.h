/*
 * blob.h - blob store interface: configuration tarballs, state files, plan
 * files, logs.  Keys are relative paths of [A-Za-z0-9._/-] without "..".
 *
 * Writes are atomic: a reader sees the old object or the whole new one,
 * and blob_put*() returns only once the bytes are durable.  With a
 * keyring (blob_set_keys()) every object is encrypted at rest; backends
 * only ever see sealed bytes.  Backends: the
 * local filesystem (blob_fs.c); S3 and Azure later behind the same ops.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_BLOB_H
#define TR_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/arena.h"
#include "core/err.h"

struct blob;

struct blob_ops {
    tr_err (*put_file)(struct blob *b, const char *key, const char *path,
                       struct tr_errbuf *eb);
    tr_err (*put)(struct blob *b, const char *key, const void *data, size_t len,
                  struct tr_errbuf *eb);
    tr_err (*open_read)(struct blob *b, const char *key, int *fd,
                        uint64_t *size, struct tr_errbuf *eb);
    tr_err (*remove)(struct blob *b, const char *key, struct tr_errbuf *eb);
    void (*close)(struct blob *b);
};

struct keyring;

struct blob {
    const struct blob_ops *ops;
    char tmp_dir[512];          /* local spool directory for uploads */
    const struct keyring *keys; /* set: objects are sealed at rest */
};

tr_err blob_open_fs(const char *dir, struct blob **out, struct tr_errbuf *eb);
void blob_close(struct blob *b);

/* From now on every object written is sealed under keys (crypto/sealed.h)
 * and sealed objects read are opened with them; objects stored in the
 * clear before are still read as they are.  keys must outlive b. */
void blob_set_keys(struct blob *b, const struct keyring *keys);

/* Moves the local file at path into the store under key (path is consumed:
 * renamed or deleted).  Durable on return. */
tr_err blob_put_file(struct blob *b, const char *key, const char *path,
                     struct tr_errbuf *eb);
tr_err blob_put(struct blob *b, const char *key, const void *data, size_t len,
                struct tr_errbuf *eb);
/* Stores a copy of the local file at path under key (path stays),
 * streaming it (sealed on the way with a keyring).  Durable on return. */
tr_err blob_put_copy(struct blob *b, const char *key, const char *path,
                     struct tr_errbuf *eb);
/* An object opened for reading at any offset; *size gets the
 * plaintext's size.  A sealed object is decrypted a chunk at a time as it
 * is read, so its plaintext never touches the disk and memory stays
 * small whatever its size.  TR_ERR_NOT_FOUND if the key does not exist,
 * TR_ERR_CRYPTO if a sealed object cannot be opened (malformed, or sealed
 * under a key the keyring lacks); a tampered chunk fails its read. */
struct blob_reader;
tr_err blob_reader_open(struct blob *b, const char *key,
                        struct blob_reader **out, uint64_t *size,
                        struct tr_errbuf *eb);
/* Up to n bytes at off into buf, *got of them (fewer only at the end).
 * TR_ERR_CRYPTO for a tampered chunk of a sealed object, TR_ERR_IO. */
tr_err blob_reader_pread(struct blob_reader *r, void *buf, size_t n,
                         uint64_t off, size_t *got, struct tr_errbuf *eb);
/* The file of an object stored in the clear (sendfile() may serve it),
 * else -1; it stays the reader's. */
int blob_reader_fd(const struct blob_reader *r);
void blob_reader_close(struct blob_reader *r);
/* Whole object into arena memory, refusing objects over max bytes. */
tr_err blob_get(struct blob *b, struct arena *a, const char *key, size_t max,
                char **data, size_t *len, struct tr_errbuf *eb);
tr_err blob_remove(struct blob *b, const char *key, struct tr_errbuf *eb);

/* A new empty spool file in the store's tmp dir, opened read-write; the
 * arena removes the file (if still there) and closes fd on destroy. */
tr_err blob_spool(struct blob *b, struct arena *a, int *fd, char **path,
                  struct tr_errbuf *eb);

bool blob_valid_key(const char *key);

#endif
