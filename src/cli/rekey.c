/*
 * rekey.c - `terrace admin rekey --to vault|file [SETTINGS]`: moves every
 * data key of an installation under a new key-encryption key: the key
 * file to a Vault transit key, a transit key's older versions to its
 * latest, or Vault back to a key file.
 *
 * It runs beside the nodes, with their settings (the same --config file,
 * TERRACE_* variables or flags: database, data dir, blob URL, key file,
 * vault-*), and works on the database and the blob store directly:
 *
 *   - every text column of every table is searched for sealed values
 *     ("tre1:" envelope text).  A value whose data key is not under the
 *     new key is opened and sealed again, and written back only if the
 *     column still holds the old text (UPDATE ... WHERE col = old), so a
 *     node writing the same row meanwhile wins;
 *   - every object of the blob store, whatever its backend (file, S3,
 *     GCS, Azure: walked with blob_list()), whose header names another
 *     key is decrypted and sealed again as it is read, and streamed back
 *     under the same key through the backend's put_stream: the plaintext
 *     never touches the disk and memory stays a chunk of the sealer plus
 *     one upload part of the backend.  Before the last sealed byte goes
 *     to the backend (so before it commits the object) the stored
 *     object's size and header are read again; if a node wrote it
 *     meanwhile (every seal wraps a fresh data key, so its header
 *     differs) or removed it, the put is failed and leaves nothing new.
 *     What remains is the short span of the backend's commit itself
 *     (a rename, a last part, a block list): the backends have no
 *     conditional put, so a node writing the same key in that span may
 *     be overwritten by the old contents under the new key.
 *
 * The envelope and object formats bind the wrapped data key into the
 * associated data of the payload's encryption, so "rewrapping" a data key
 * means sealing the payload again under a fresh data key: a full
 * streaming copy of each object (read once, written once, over the
 * network for a remote store).
 *
 * Each item is skipped when it is already under the new key (its latest
 * version, for Vault), so an interrupted run is resumed by running it
 * again.  When nothing is left under another key, the database's record
 * of the installation's key ("kek-id") is set to the new key, and nodes
 * no longer need the old one.
 *
 * --to vault is safe while the nodes run, once they run with the vault
 * settings and still hold the key file (they then write under Vault and
 * read both).  --to file is for stopped nodes: running ones would keep
 * writing under Vault.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/curl_load.h"
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob/blob.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/fault.h"
#include "core/log.h"
#include "crypto/digest.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "crypto/sealed.h"
#include "node/node.h"
#include "store/db.h"
#include "store/store.h"

#define PAGE "200"

struct counts {
    long done;    /* sealed again under the new key */
    long current; /* already under it */
    long raced;   /* changed meanwhile by a node: left to it */
    long failed;
};

struct rekey {
    struct keyring *keys; /* the new key, holding the old one */
    struct db *db;
    struct blob *blob;
    struct counts db_n, blob_n;
};

/* ---- database values -------------------------------------------------- */

/* Splits "tre1:<id>:<b64 wrapped>:..." into the id and wrapped key (in a). */
static bool parse_envelope(struct arena *a, const char *text, char **id,
                           unsigned char **w, size_t *wlen)
{
    const char *p = text + strlen(ENVELOPE_PREFIX);
    const char *c1 = strchr(p, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c1 == NULL || c2 == NULL || c1 == p)
        return false;
    *id = arena_strndup(a, p, (size_t)(c1 - p));
    return digest_b64_decode(a, c1 + 1, (size_t)(c2 - c1 - 1), w, wlen) ==
           TR_OK;
}

static bool safe_ident(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* One value: sealed again and written back if unchanged. */
static void rekey_value(struct rekey *r, struct db_conn *c, const char *table,
                        const char *col, const char *text)
{
    struct arena *a = arena_new();
    char *id = NULL, *plain = NULL, *fresh = NULL;
    unsigned char *w = NULL;
    size_t wlen = 0, plen = 0;
    struct tr_errbuf eb = {{0}};
    int64_t affected = 0;
    tr_err e = TR_OK;
    if (!parse_envelope(a, text, &id, &w, &wlen)) {
        e = tr_fail(&eb, TR_ERR_CRYPTO, "malformed encrypted value");
    } else if (keys_is_current(r->keys, id, w, wlen)) {
        r->db_n.current++;
        goto out;
    }
    if (e == TR_OK)
        e = envelope_open(r->keys, a, text, &plain, &plen, &eb);
    if (e == TR_OK)
        e = envelope_seal(r->keys, a, plain, plen, &fresh, &eb);
    if (e == TR_OK) {
        char *sql = arena_printf(a,
                                 "UPDATE \"%s\" SET \"%s\" = $1 WHERE "
                                 "\"%s\" = $2",
                                 table, col, col);
        e = db_x(c, a, &affected, &eb, sql, fresh, text);
    }
    if (e != TR_OK) {
        log_error("rekey: %s.%s: %s", table, col, eb.msg);
        r->db_n.failed++;
    } else if (affected == 0) {
        r->db_n.raced++;
    } else {
        r->db_n.done++;
    }
out:
    arena_destroy(a);
}

/* Every sealed value of one column, a page at a time in text order. */
static tr_err rekey_column(struct rekey *r, struct db_conn *c,
                           const char *table, const char *col,
                           struct tr_errbuf *eb)
{
    struct arena *a = arena_new();
    char *sql = arena_printf(a,
                             "SELECT \"%s\" AS v FROM \"%s\" WHERE \"%s\" "
                             "LIKE 'tre1:%%' AND \"%s\" > $1 ORDER BY \"%s\" "
                             "LIMIT " PAGE,
                             col, table, col, col, col);
    char *last = arena_strdup(a, "");
    tr_err e = TR_OK;
    for (;;) {
        struct arena *page = arena_new();
        struct db_rows *rows = NULL;
        e = db_q(c, page, &rows, eb, sql, last);
        if (e == TR_OK) {
            for (int i = 0; i < rows->nrows; i++)
                rekey_value(r, c, table, col, db_cell(rows, i, 0));
            if (rows->nrows > 0)
                last = arena_strdup(a, db_cell(rows, rows->nrows - 1, 0));
        }
        bool more = e == TR_OK && rows->nrows > 0;
        arena_destroy(page);
        if (!more)
            break;
    }
    arena_destroy(a);
    return e;
}

static tr_err rekey_db(struct rekey *r, struct tr_errbuf *eb)
{
    struct db_conn *c = db_acquire(r->db);
    struct arena *a = arena_new();
    struct db_rows *cols = NULL;
    tr_err e = db_conn_kind(c) == DB_PG
                   ? db_q(c, a, &cols, eb,
                          "SELECT table_name AS t, column_name AS c FROM "
                          "information_schema.columns WHERE table_schema = "
                          "current_schema() AND data_type IN ('text', "
                          "'character varying') AND $1 = $1 ORDER BY 1, 2",
                          "x")
                   : db_q(c, a, &cols, eb,
                          "SELECT m.name AS t, p.name AS c FROM sqlite_master "
                          "m, pragma_table_info(m.name) p WHERE m.type = "
                          "'table' AND m.name NOT LIKE 'sqlite_%' AND $1 = $1 "
                          "ORDER BY 1, 2",
                          "x");
    for (int i = 0; e == TR_OK && i < cols->nrows; i++) {
        const char *t = db_cell(cols, i, 0), *col = db_cell(cols, i, 1);
        if (safe_ident(t) && safe_ident(col))
            e = rekey_column(r, c, t, col, eb);
    }
    arena_destroy(a);
    db_release(c);
    return e;
}

/* ---- blob objects ----------------------------------------------------- */

/* What identifies one write of a stored object: its stored size and, when
 * sealed, the key id and wrapped data key of its header.  Every seal
 * wraps a fresh random data key, so an object written again by a node
 * meanwhile has another header even at the same size. */
struct obj_head {
    bool sealed;
    uint64_t size;
    char id[KEYS_ID_MAX + 1];
    unsigned char w[KEYS_WRAP_MAX];
    size_t wlen;
};

#define HEAD_MAX (SEALED_MAGIC_LEN + 1 + KEYS_ID_MAX + 2 + KEYS_WRAP_MAX)

/* Parses the first n stored bytes of an object into h (sealed false when
 * it is in the clear or the header is short). */
static void parse_head(const unsigned char *p, size_t n, struct obj_head *h)
{
    h->sealed = false;
    if (n < SEALED_MAGIC_LEN + 1 || !sealed_is(p, n))
        return;
    size_t idlen = p[SEALED_MAGIC_LEN], off = SEALED_MAGIC_LEN + 1;
    if (idlen == 0 || idlen > KEYS_ID_MAX || n < off + idlen + 2)
        return;
    memcpy(h->id, p + off, idlen);
    h->id[idlen] = '\0';
    off += idlen;
    h->wlen = (size_t)p[off] << 8 | p[off + 1];
    off += 2;
    if (h->wlen == 0 || h->wlen > KEYS_WRAP_MAX || n < off + h->wlen)
        return;
    memcpy(h->w, p + off, h->wlen);
    h->sealed = true;
}

/* The stored size and header of key, read raw through the backend (one
 * small ranged read on a remote store). */
static tr_err read_head(struct blob *b, const char *key, struct obj_head *h,
                        struct tr_errbuf *eb)
{
    struct blob_obj *o = NULL;
    unsigned char p[HEAD_MAX];
    size_t got = 0;
    tr_err e = b->ops->open(b, key, &o, &h->size, eb);
    if (e != TR_OK)
        return e;
    size_t want = h->size < sizeof(p) ? (size_t)h->size : sizeof(p);
    e = b->ops->read(o, p, want, 0, &got, eb);
    b->ops->obj_close(o);
    if (e == TR_OK)
        parse_head(p, got, h);
    return e;
}

static bool same_head(const struct obj_head *a, const struct obj_head *b)
{
    return a->sealed == b->sealed && a->size == b->size &&
           (!a->sealed || (strcmp(a->id, b->id) == 0 && a->wlen == b->wlen &&
                           memcmp(a->w, b->w, a->wlen) == 0));
}

/* The object's plaintext, read in order: the source the sealer pulls. */
struct plain_src {
    struct blob_reader *rd;
    uint64_t off;
};

static tr_err plain_read(void *ctx, void *buf, size_t n, size_t *got,
                         struct tr_errbuf *eb)
{
    struct plain_src *ps = ctx;
    tr_err e = blob_reader_pread(ps->rd, buf, n, ps->off, got, eb);
    if (e == TR_OK)
        ps->off += *got;
    return e;
}

/* The sealed bytes the backend's put_stream pulls.  Before the last of
 * them is handed over (so before the backend can commit the object) the
 * stored object's header is read again: if a node wrote it meanwhile,
 * the put is failed and nothing new becomes visible. */
struct reseal_src {
    struct blob *b;
    const char *key;
    const struct obj_head *was;
    struct sealed_sealer *s;
    uint64_t left; /* sealed bytes not yet handed over */
    bool raced;
};

static tr_err reseal_read(void *ctx, void *buf, size_t n, size_t *got,
                          struct tr_errbuf *eb)
{
    struct reseal_src *rs = ctx;
    tr_err e = sealed_sealer_read(rs->s, buf, n, got, eb);
    if (e != TR_OK || *got == 0 || *got > rs->left)
        return e;
    rs->left -= *got;
    if (rs->left > 0)
        return TR_OK;
    if (fault_hit("rekey.check"))
        return tr_fail(eb, TR_ERR_IO, "injected fault");
    struct obj_head now = {0};
    e = read_head(rs->b, rs->key, &now, eb);
    if (e == TR_ERR_NOT_FOUND || (e == TR_OK && !same_head(rs->was, &now))) {
        rs->raced = true;
        e = tr_fail(eb, TR_ERR_CONFLICT, "changed meanwhile");
    }
    return e;
}

/* Seals the object at key again under the new key and streams it back
 * through the backend's put_stream: the plaintext passes through memory
 * a chunk at a time, never the disk, and the backend holds one part.
 * *raced is set when a node wrote or removed the object meanwhile. */
static tr_err reseal(struct rekey *r, const char *key,
                     const struct obj_head *was, bool *raced,
                     struct tr_errbuf *eb)
{
    struct plain_src ps = {0};
    struct reseal_src rs = {.b = r->blob, .key = key, .was = was};
    uint64_t size = 0;
    tr_err e = blob_reader_open(r->blob, key, &ps.rd, &size, eb);
    if (e == TR_OK)
        e = sealed_sealer_open(r->keys, size, plain_read, &ps, &rs.s, &rs.left,
                               eb);
    if (e == TR_OK)
        e = r->blob->ops->put_stream(r->blob, key, rs.left, reseal_read, &rs,
                                     eb);
    sealed_sealer_close(rs.s);
    blob_reader_close(ps.rd);
    *raced = rs.raced;
    if (e != TR_OK && !rs.raced) {
        /* a read that failed because the object was replaced under it
         * (remote backends read one version only) is a race too */
        struct obj_head now = {0};
        struct tr_errbuf ignored;
        tr_err h = read_head(r->blob, key, &now, &ignored);
        *raced = h == TR_ERR_NOT_FOUND || (h == TR_OK && !same_head(was, &now));
    }
    return e;
}

/* blob_list callback: one object, sealed again unless already under the
 * new key.  Failures are counted, not returned: the others still go. */
static tr_err rekey_object(void *ctx, const char *key, uint64_t size,
                           int64_t mtime, struct tr_errbuf *eb)
{
    (void)size;
    (void)mtime;
    (void)eb;
    struct rekey *r = ctx;
    struct obj_head was = {0};
    struct tr_errbuf mine = {{0}};
    bool raced = false;
    tr_err e = read_head(r->blob, key, &was, &mine);
    if (e == TR_ERR_NOT_FOUND) {
        r->blob_n.raced++; /* removed since it was listed */
        return TR_OK;
    }
    if (e == TR_OK &&
        (!was.sealed || keys_is_current(r->keys, was.id, was.w, was.wlen))) {
        r->blob_n.current++; /* in the clear, or already done */
        return TR_OK;
    }
    if (e == TR_OK)
        e = reseal(r, key, &was, &raced, &mine);
    if (e == TR_OK) {
        r->blob_n.done++;
    } else if (raced) {
        r->blob_n.raced++; /* its new copy is the node's, under its key */
    } else {
        log_error("rekey: object %s: %s", key, tr_errbuf_msg(&mine, e));
        r->blob_n.failed++;
    }
    return TR_OK;
}

/* ---- the command ------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: terrace admin rekey --to vault|file [--config FILE] "
            "[--SETTING VALUE ...]\n\n"
            "Seals every stored value and object again under the new "
            "key-encryption key:\n"
            "  --to vault   the key file (or older versions of the transit "
            "key) -> the\n"
            "               transit key of the vault-* settings; safe while "
            "nodes run\n"
            "               with the vault settings and the key file\n"
            "  --to file    Vault -> the key file (--kek-file or DATA/kek, "
            "made if\n"
            "               missing); only with every node stopped\n"
            "The settings are the nodes' own (see terraced --help).  "
            "Interrupted: run it\nagain; what is done already is skipped.\n");
}

static tr_err open_all(struct rekey *r, const struct cfg *c, bool to_vault,
                       struct tr_errbuf *eb)
{
    char path[PATH_MAX];
    tr_err e =
        strcmp(c->role, "demo") == 0
            ? (snprintf(path, sizeof(path), "%s/terrace.db", c->data_dir),
               db_open(DB_SQLITE, path, 2, &r->db, eb))
            : db_open(DB_PG, c->database_url, 2, &r->db, eb);
    if (e != TR_OK)
        return e;
    struct keyring *old = NULL;
    if (to_vault) {
        e = node_keyring_vault(c, &r->keys, eb);
        if (e == TR_OK && node_keyring_file(c, false, &old, NULL) == TR_OK)
            keys_add_old(r->keys, old);
    } else {
        if (c->vault_addr[0] == '\0')
            return tr_fail(eb, TR_ERR_CONFIG,
                           "--to file needs the vault settings too, to read "
                           "what is sealed under vault");
        e = node_keyring_file(c, true, &r->keys, eb);
        if (e == TR_OK)
            e = node_keyring_vault(c, &old, eb);
        if (e == TR_OK)
            keys_add_old(r->keys, old);
    }
    if (e != TR_OK)
        return e;
    /* the nodes' store, as they open it (node.c): --blob-url, else
     * DATA/blobs */
    char spool[PATH_MAX];
    snprintf(spool, sizeof(spool), "%s/spool", c->data_dir);
    if (mkdir(spool, 0700) != 0 && errno != EEXIST)
        return tr_fail(eb, TR_ERR_IO, "cannot create %s: %s", spool,
                       strerror(errno));
    if (c->blob_url[0] != '\0') {
        e = blob_open_url(c->blob_url, spool, &r->blob, eb);
    } else {
        snprintf(path, sizeof(path), "%s/blobs", c->data_dir);
        e = blob_open_fs(path, &r->blob, eb);
    }
    if (e == TR_OK)
        blob_set_keys(r->blob, r->keys);
    return e;
}

static void print_counts(const char *what, const struct counts *n)
{
    printf("%s: %ld sealed again, %ld already under the new key, %ld "
           "changed meanwhile by a node, %ld failed\n",
           what, n->done, n->current, n->raced, n->failed);
}

int cli_rekey(int argc, char **argv)
{
    const char *to = NULL;
    char **args = calloc((size_t)argc + 1, sizeof(char *));
    int n = 0;
    args[n++] = "terrace admin rekey";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else if (strncmp(argv[i], "--to=", 5) == 0)
            to = argv[i] + 5;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            to = "help";
        else
            args[n++] = argv[i];
    }
    if (to == NULL || (strcmp(to, "vault") != 0 && strcmp(to, "file") != 0)) {
        usage();
        free(args);
        return to != NULL && strcmp(to, "help") == 0 ? 0 : 2;
    }
    bool to_vault = strcmp(to, "vault") == 0;
    struct cfg c;
    struct tr_errbuf eb = {{0}};
    struct rekey r = {0};
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tr_err e = cfg_load(&c, n, args, &eb);
    const char *fault = getenv("TERRACE_FAULT"); /* tests only: fault.h */
    if (e == TR_OK && fault != NULL && fault[0] != '\0') {
        if (fault_arm_spec(fault))
            log_warn("fault injection armed: %s", fault);
        else
            e = tr_fail(&eb, TR_ERR_CONFIG, "TERRACE_FAULT must be site:n");
    }
    free(args);
    if (e == TR_OK && to_vault && c.vault_addr[0] == '\0')
        e = tr_fail(&eb, TR_ERR_CONFIG,
                    "--to vault needs --vault-addr, --vault-key and a vault "
                    "token or approle");
    if (e == TR_OK)
        e = open_all(&r, &c, to_vault, &eb);
    if (e == TR_OK)
        e = rekey_db(&r, &eb);
    if (e == TR_OK) {
        tr_err le = blob_list(r.blob, "", rekey_object, &r, &eb);
        print_counts("database values", &r.db_n);
        print_counts("blob objects", &r.blob_n);
        if (le != TR_OK) {
            char why[sizeof(eb.msg)];
            snprintf(why, sizeof(why), "%s", tr_errbuf_msg(&eb, le));
            e = tr_fail(&eb, le,
                        "cannot list the blob store: %s; nothing was lost: "
                        "run it again once fixed",
                        why);
        } else if (r.db_n.failed + r.blob_n.failed > 0) {
            e = tr_fail(&eb, TR_ERR_CRYPTO,
                        "%ld items could not be sealed again (see above); "
                        "nothing was lost: run it again once fixed",
                        r.db_n.failed + r.blob_n.failed);
        }
    }
    if (e == TR_OK) {
        struct arena *a = arena_new();
        e = store_site_put(r.db, a, "kek-id", keys_id(r.keys), &eb);
        arena_destroy(a);
        if (e == TR_OK)
            printf("installation key is now %s\n", keys_id(r.keys));
    }
    if (e != TR_OK)
        fprintf(stderr, "terrace admin rekey: %s\n", tr_errbuf_msg(&eb, e));
    blob_close(r.blob);
    keys_close(r.keys);
    if (r.db != NULL)
        db_close(r.db);
    curl_global_cleanup();
    return e == TR_OK ? 0 : 1;
}
