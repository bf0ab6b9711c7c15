/*
 * blob.h - blob store interface: configuration tarballs, state files, plan
 * files, logs.  Keys are relative paths of [A-Za-z0-9._/-] without "..".
 *
 * Writes are atomic: a reader sees the old object or the whole new one,
 * and blob_put*() returns only once the bytes are durable.  With a
 * keyring (blob_set_keys()) every object is encrypted at rest; backends
 * only ever see sealed bytes.  Backends (struct blob_ops) need no local
 * copy of an object: writes are streamed to them and reads are ranged.
 * The local filesystem (blob_fs.c), S3, Google Cloud Storage and Azure
 * Blob (blob_s3.c, blob_gcs.c, blob_azure.c).
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
struct keyring;

/* Pulls the bytes of a streamed write: up to n into buf, *got of them;
 * *got is 0 only at the end. */
typedef tr_err (*blob_source)(void *ctx, void *buf, size_t n, size_t *got,
                              struct tr_errbuf *eb);
/* A backend's object opened for reading (each backend defines it). */
struct blob_obj;
/* Called by list for each object: its key, stored size and the time of
 * its last write (seconds since the epoch). */
typedef tr_err (*blob_list_fn)(void *ctx, const char *key, uint64_t size,
                               int64_t mtime, struct tr_errbuf *eb);

/* Pulls exactly n bytes from src into buf (TR_ERR_IO when it ends
 * sooner), and checks that src has ended (TR_ERR_IO when it gives more):
 * for backends that cut a put_stream into parts of known sizes. */
tr_err blob_source_exact(blob_source src, void *ctx, void *buf, size_t n,
                         struct tr_errbuf *eb);
tr_err blob_source_end(blob_source src, void *ctx, struct tr_errbuf *eb);

/* What a backend implements.  Keys reaching it are already checked
 * (blob_valid_key()); it sees sealed bytes only when the store has a
 * keyring. */
struct blob_ops {
    /* Stores exactly len bytes pulled from src under key: atomic (a
     * reader sees the old object or the whole new one), durable on
     * return; on failure nothing new is visible under key.  A source can
     * be read only once: to retry, a backend keeps the part it is sending
     * in memory (one part, never the whole object). */
    tr_err (*put_stream)(struct blob *b, const char *key, uint64_t len,
                         blob_source src, void *ctx, struct tr_errbuf *eb);
    /* Optional (NULL: the file is streamed through put_stream): moves
     * the local file at path into the store, consuming it on success. */
    tr_err (*put_file)(struct blob *b, const char *key, const char *path,
                       struct tr_errbuf *eb);
    /* Opens key for ranged reads; *size gets the stored size.
     * TR_ERR_NOT_FOUND when there is no such object. */
    tr_err (*open)(struct blob *b, const char *key, struct blob_obj **o,
                   uint64_t *size, struct tr_errbuf *eb);
    /* Up to n bytes at off into buf, *got of them (fewer only at the
     * end).  Remote backends serve sequential reads from one stream and
     * start a new ranged request only on a seek. */
    tr_err (*read)(struct blob_obj *o, void *buf, size_t n, uint64_t off,
                   size_t *got, struct tr_errbuf *eb);
    /* The local file of an open object (for sendfile()), or -1.
     * Optional. */
    int (*fd)(struct blob_obj *o);
    void (*obj_close)(struct blob_obj *o);
    /* Removes key; a key that does not exist is TR_OK. */
    tr_err (*remove)(struct blob *b, const char *key, struct tr_errbuf *eb);
    /* Calls fn for every object whose key starts with prefix ("": all),
     * in any order; stops at fn's first error and returns it. */
    tr_err (*list)(struct blob *b, const char *prefix, blob_list_fn fn,
                   void *ctx, struct tr_errbuf *eb);
    void (*close)(struct blob *b);
};

struct blob {
    const struct blob_ops *ops;
    char tmp_dir[512];          /* local spool directory for uploads */
    const struct keyring *keys; /* set: objects are sealed at rest */
};

/* Opens the store a blob URL names: file:///abs/dir, s3://BUCKET/PREFIX?
 * region=R&endpoint=URL&force-path-style=true, gs://BUCKET/PREFIX?
 * endpoint=URL, azblob://CONTAINER/PREFIX?account=A&endpoint=URL; each
 * remote one also takes ca-file=PEM (the CAs trusted for https in place
 * of the system's).  spool_dir is a local directory for spool files (remote
 * backends). TR_ERR_CONFIG, with a message a person can act on, for a malformed
 * URL or missing credentials. */
tr_err blob_open_url(const char *url, const char *spool_dir, struct blob **out,
                     struct tr_errbuf *eb);
/* The backends blob_open_url() chooses from (blob_<name>.c). */
tr_err blob_open_s3(const char *url, const char *spool_dir, struct blob **out,
                    struct tr_errbuf *eb);
tr_err blob_open_gcs(const char *url, const char *spool_dir, struct blob **out,
                     struct tr_errbuf *eb);
tr_err blob_open_azure(const char *url, const char *spool_dir,
                       struct blob **out, struct tr_errbuf *eb);
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
/* One object of blob_put_all(): key, and either a local file to copy
 * (path) or len bytes at data.  e and eb get the item's outcome. */
struct blob_put_item {
    const char *key;
    const char *path; /* a file to copy (it stays), or NULL: data */
    const void *data;
    size_t len;
    tr_err e;
    struct tr_errbuf eb;
};
/* Stores the n items concurrently (a thread each), as blob_put_copy() or
 * blob_put() would one after the other; every item is attempted and
 * those stored are durable on return.  TR_OK when all were stored, else
 * the first failed item's error (with its message in eb). */
tr_err blob_put_all(struct blob *b, struct blob_put_item *items, int n,
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
/* Stores len bytes pulled from src under key (sealed on the way with a
 * keyring).  Durable on return. */
tr_err blob_put_stream(struct blob *b, const char *key, uint64_t len,
                       blob_source src, void *ctx, struct tr_errbuf *eb);
/* Calls fn for every object whose key starts with prefix (see
 * blob_ops.list); sizes are the stored (sealed) sizes. */
tr_err blob_list(struct blob *b, const char *prefix, blob_list_fn fn, void *ctx,
                 struct tr_errbuf *eb);

/* Raw access: an object's stored bytes as they are, sealed or not, no
 * keyring needed (copying one store to another).  SHA-256 of key's
 * stored bytes into sha, their count into *size; TR_ERR_NOT_FOUND when
 * there is no such object. */
tr_err blob_raw_sha256(struct blob *b, const char *key, uint64_t *size,
                       unsigned char sha[32], struct tr_errbuf *eb);
/* Stores key's stored bytes from src under the same key in dst, as they
 * are (a sealed object stays sealed under its wrapped data key), streamed;
 * sha gets the SHA-256 of the bytes read from src, *size their count.
 * Durable on return. */
tr_err blob_copy_raw(struct blob *src, struct blob *dst, const char *key,
                     uint64_t *size, unsigned char sha[32],
                     struct tr_errbuf *eb);

/* A new empty spool file in the store's tmp dir, opened read-write; the
 * arena removes the file (if still there) and closes fd on destroy. */
tr_err blob_spool(struct blob *b, struct arena *a, int *fd, char **path,
                  struct tr_errbuf *eb);

bool blob_valid_key(const char *key);

#endif
