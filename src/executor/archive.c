/*
 * archive.c - safe checking and extraction of configuration tarballs
 * (the rules are listed in archive.h).
 *
 * One walk over the archive serves both: it checks each entry as it comes
 * and, when extracting, creates it.  The entries seen so far form a tree
 * of nodes (one per path component, implicit parent directories
 * included) held in a hash table keyed by (parent, name), which is how a
 * path through a symlink or a file, or a name given twice, is noticed.
 * Symlink targets are first checked alone (relative, not escaping the
 * root lexically); once the whole archive is known a second pass walks
 * each target through the tree and refuses one that passes through
 * another symlink, since ".." after a symlink is resolved by the kernel
 * from wherever that symlink points, not where lexical resolution
 * assumes.
 *
 * archive_extract() runs the full check first and only then the writing
 * walk, which repeats the per-entry checks and creates every name
 * relative to a directory descriptor opened with O_NOFOLLOW: a symlink is
 * never followed while extracting, and O_EXCL (mkdirat, symlinkat) never
 * replaces anything.
 *
 * Memory: one arena per call, holding the tree, the names and the data
 * buffer.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/file.h"
#include "executor/archive.h"

/* ---- libarchive, loaded on first use ------------------------------------ */

/* libarchive (and what it pulls in: libxml2, libicu, libstdc++, ...) is
 * only needed when a tarball is checked, so it is dlopen'ed then rather
 * than linked, keeping it out of an idle daemon.  The table holds exactly
 * the functions used below, typed from the real prototypes. */
#define LA_FUNCS(X)                                                            \
    X(archive_error_string)                                                    \
    X(archive_filter_bytes)                                                    \
    X(archive_read_new)                                                        \
    X(archive_read_support_filter_gzip)                                        \
    X(archive_read_support_format_tar)                                         \
    X(archive_read_support_format_zip)                                         \
    X(archive_read_open_fd)                                                    \
    X(archive_read_next_header)                                                \
    X(archive_read_data)                                                       \
    X(archive_read_free)                                                       \
    X(archive_entry_filetype)                                                  \
    X(archive_entry_hardlink)                                                  \
    X(archive_entry_hardlink_utf8)                                             \
    X(archive_entry_hardlink_w)                                                \
    X(archive_entry_pathname)                                                  \
    X(archive_entry_pathname_utf8)                                             \
    X(archive_entry_perm)                                                      \
    X(archive_entry_size)                                                      \
    X(archive_entry_size_is_set)                                               \
    X(archive_entry_symlink)                                                   \
    X(archive_entry_symlink_utf8)

#define LA_FIELD(f) __typeof__(f) *f;
static struct {
    LA_FUNCS(LA_FIELD)
} la;
#undef LA_FIELD

static pthread_once_t la_once = PTHREAD_ONCE_INIT;
static bool la_ok;
static char la_why[256]; /* why loading failed, when !la_ok */

static void la_load(void)
{
    void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *m = dlerror();
        snprintf(la_why, sizeof(la_why), "%s", m != NULL ? m : "dlopen failed");
        return;
    }
    /* memcpy: ISO C has no conversion from void * to a function pointer. */
#define LA_SYM(f)                                                              \
    {                                                                          \
        void *sym = dlsym(h, #f);                                              \
        if (sym == NULL) {                                                     \
            const char *m = dlerror();                                         \
            snprintf(la_why, sizeof(la_why), "%s",                             \
                     m != NULL ? m : "missing symbol " #f);                    \
            dlclose(h);                                                        \
            return;                                                            \
        }                                                                      \
        _Static_assert(sizeof(sym) == sizeof(la.f), "pointer sizes");          \
        memcpy(&la.f, &sym, sizeof(sym));                                      \
    }
    LA_FUNCS(LA_SYM)
#undef LA_SYM
    la_ok = true; /* h stays open for the life of the process */
}

/* Loads libarchive once; TR_ERR_INTERNAL if it cannot be. */
static tr_err la_need(struct tr_errbuf *eb)
{
    pthread_once(&la_once, la_load);
    if (!la_ok)
        return tr_fail(eb, TR_ERR_INTERNAL, "libarchive is not available: %s",
                       la_why);
    return TR_OK;
}

#define DATA_BUF (64 * 1024)
#define SHOWN_MAX 200 /* bytes of a name shown in a message */

enum kind { K_DIR = 1, K_FILE, K_LINK };

struct node {
    int parent; /* -1 for the root (node 0) */
    const char *name;
    enum kind kind;
};

struct link {
    int node;
    const char *target;
    const char *shown; /* the link's name, for messages */
};

struct walk {
    struct arena *a;
    struct tr_errbuf *eb;
    uint64_t max_unpacked;
    uint64_t unpacked;
    int max_entries;
    int max_ratio; /* 0: no ratio limit */
    int entries;
    int dest; /* directory fd to extract into; -1: check only */
    struct node *nodes;
    int nnodes, capnodes;
    int *slots;      /* hash table of node index + 1; 0 is empty */
    uint32_t nslots; /* a power of two, at least 2 * nnodes */
    struct link *links;
    int nlinks, caplinks;
    char *data; /* DATA_BUF bytes */
};

/* ---- messages ------------------------------------------------------------ */

/* name for a message: at most SHOWN_MAX bytes, printable ASCII only. */
static const char *shown(struct walk *w, const char *name)
{
    size_t n = strlen(name);
    bool cut = n > SHOWN_MAX;
    char *s = arena_strndup(w->a, name, cut ? SHOWN_MAX : n);
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    return cut ? arena_printf(w->a, "%s...", s) : s;
}

static tr_err bad(struct walk *w, tr_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tr_err bad(struct walk *w, tr_err e, const char *fmt, ...)
{
    if (w->eb != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->eb->msg, sizeof(w->eb->msg), fmt, ap);
        va_end(ap);
    }
    return e;
}

/* libarchive's messages may quote raw bytes; keep eb printable. */
static void clean_msg(struct tr_errbuf *eb)
{
    if (eb == NULL)
        return;
    for (char *p = eb->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

static tr_err damaged(struct walk *w, struct archive *ar)
{
    const char *m = la.archive_error_string(ar);
    return bad(w, TR_ERR_INVALID,
               "the archive is not a valid tar or gzip'ed "
               "tar: %s",
               m != NULL ? m : "unreadable data");
}

static tr_err too_many(struct walk *w)
{
    return bad(w, TR_ERR_TOO_LARGE,
               "the archive has more than %d entries (files, directories "
               "and links)",
               w->max_entries);
}

static tr_err too_big(struct walk *w)
{
    return bad(w, TR_ERR_TOO_LARGE,
               "the archive unpacks to more than %llu "
               "bytes",
               (unsigned long long)w->max_unpacked);
}

/* Once past ARCHIVE_RATIO_FLOOR, the bytes unpacked so far against the
 * compressed bytes libarchive has read so far (the outermost stream). */
static tr_err check_ratio(struct walk *w, struct archive *ar)
{
    if (w->max_ratio <= 0 || w->unpacked <= ARCHIVE_RATIO_FLOOR)
        return TR_OK;
    la_int64_t packed = la.archive_filter_bytes(ar, -1);
    uint64_t in = packed > 0 ? (uint64_t)packed : 1;
    if (w->unpacked / (uint64_t)w->max_ratio <= in)
        return TR_OK;
    return bad(w, TR_ERR_TOO_LARGE,
               "the archive unpacks to more than %d times its compressed "
               "size (%llu bytes from %llu), like a decompression bomb",
               w->max_ratio, (unsigned long long)w->unpacked,
               (unsigned long long)in);
}

/* ---- the tree of names --------------------------------------------------- */

static uint32_t hash(int parent, const char *name)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 4; i++) {
        h ^= (uint32_t)((unsigned)parent >> (i * 8)) & 0xff;
        h *= 16777619u;
    }
    for (const char *p = name; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 16777619u;
    }
    return h;
}

/* The node named name under parent, or -1. */
static int lookup(const struct walk *w, int parent, const char *name)
{
    if (parent < 0)
        return -1;
    uint32_t i = hash(parent, name) & (w->nslots - 1);
    while (w->slots[i] != 0) {
        const struct node *n = &w->nodes[w->slots[i] - 1];
        if (n->parent == parent && strcmp(n->name, name) == 0)
            return w->slots[i] - 1;
        i = (i + 1) & (w->nslots - 1);
    }
    return -1;
}

static void place(struct walk *w, int idx)
{
    const struct node *n = &w->nodes[idx];
    uint32_t i = hash(n->parent, n->name) & (w->nslots - 1);
    while (w->slots[i] != 0)
        i = (i + 1) & (w->nslots - 1);
    w->slots[i] = idx + 1;
}

/* Adds a node (name copied); *out gets its index.  The root does not
 * count against max_entries. */
static tr_err add(struct walk *w, int parent, const char *name, enum kind kind,
                  int *out)
{
    if (w->nnodes > w->max_entries)
        return too_many(w);
    if (w->nnodes == w->capnodes) {
        int cap = w->capnodes ? w->capnodes * 2 : 64;
        struct node *nn = arena_alloc(w->a, sizeof(*nn) * (size_t)cap);
        if (w->nnodes > 0)
            memcpy(nn, w->nodes, sizeof(*nn) * (size_t)w->nnodes);
        w->nodes = nn;
        w->capnodes = cap;
    }
    if ((uint32_t)(w->nnodes + 1) * 2 > w->nslots) {
        w->nslots = w->nslots ? w->nslots * 2 : 128;
        w->slots = arena_alloc(w->a, sizeof(int) * w->nslots);
        for (int i = 0; i < w->nnodes; i++)
            place(w, i);
    }
    int idx = w->nnodes++;
    w->nodes[idx] = (struct node){
        .parent = parent,
        .name = arena_strdup(w->a, name),
        .kind = kind,
    };
    place(w, idx);
    *out = idx;
    return TR_OK;
}

static void add_link(struct walk *w, int node, const char *target,
                     const char *name)
{
    if (w->nlinks == w->caplinks) {
        int cap = w->caplinks ? w->caplinks * 2 : 16;
        struct link *nl = arena_alloc(w->a, sizeof(*nl) * (size_t)cap);
        if (w->nlinks > 0)
            memcpy(nl, w->links, sizeof(*nl) * (size_t)w->nlinks);
        w->links = nl;
        w->caplinks = cap;
    }
    w->links[w->nlinks++] = (struct link){
        .node = node,
        .target = arena_strdup(w->a, target),
        .shown = name,
    };
}

/* ---- names --------------------------------------------------------------- */

struct path {
    char buf[PATH_MAX];
    char *comp[ARCHIVE_MAX_DEPTH];
    int n;
};

/* Splits name into components, dropping empty and "." ones; refuses
 * absolute names, "..", and overlong names or components. */
static tr_err split(struct walk *w, const char *name, struct path *p)
{
    size_t len = strlen(name);
    if (len >= sizeof(p->buf))
        return bad(w, TR_ERR_INVALID, "entry name %s is longer than %d bytes",
                   shown(w, name), PATH_MAX - 1);
    if (name[0] == '/')
        return bad(w, TR_ERR_INVALID, "entry %s has an absolute path",
                   shown(w, name));
    memcpy(p->buf, name, len + 1);
    p->n = 0;
    char *s = p->buf;
    while (*s != '\0') {
        char *c = s;
        while (*s != '\0' && *s != '/')
            s++;
        size_t cl = (size_t)(s - c);
        if (*s == '/')
            *s++ = '\0';
        if (cl == 0 || strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0)
            return bad(w, TR_ERR_INVALID, "entry %s has a \"..\" component",
                       shown(w, name));
        if (cl > NAME_MAX)
            return bad(w, TR_ERR_INVALID,
                       "entry %s has a component longer than %d bytes",
                       shown(w, name), NAME_MAX);
        if (p->n == ARCHIVE_MAX_DEPTH)
            return bad(w, TR_ERR_INVALID,
                       "entry %s is nested deeper than %d levels",
                       shown(w, name), ARCHIVE_MAX_DEPTH);
        p->comp[p->n++] = c;
    }
    return TR_OK;
}

/* A symlink target alone: relative, and not above the root when resolved
 * lexically from the link's directory (depth components deep). */
static tr_err check_target(struct walk *w, const char *name, const char *target,
                           int depth)
{
    if (target == NULL || *target == '\0')
        return bad(w, TR_ERR_INVALID, "symlink %s has no target",
                   shown(w, name));
    if (strlen(target) >= PATH_MAX)
        return bad(w, TR_ERR_INVALID,
                   "the target of symlink %s is longer than %d bytes",
                   shown(w, name), PATH_MAX - 1);
    if (target[0] == '/')
        return bad(w, TR_ERR_INVALID,
                   "symlink %s points to the absolute path %s", shown(w, name),
                   shown(w, target));
    const char *s = target;
    while (*s != '\0') {
        const char *c = s;
        while (*s != '\0' && *s != '/')
            s++;
        size_t cl = (size_t)(s - c);
        if (*s == '/')
            s++;
        if (cl == 0 || (cl == 1 && c[0] == '.'))
            continue;
        if (cl == 2 && c[0] == '.' && c[1] == '.') {
            if (depth == 0)
                return bad(w, TR_ERR_INVALID,
                           "symlink %s points outside the archive (%s)",
                           shown(w, name), shown(w, target));
            depth--;
        } else {
            depth++;
        }
    }
    return TR_OK;
}

/* Second pass: each target walked through the finished tree must not
 * continue past a node that is a symlink. */
static tr_err check_links(struct walk *w)
{
    int cap = ARCHIVE_MAX_DEPTH + PATH_MAX / 2 + 2;
    int *stack = arena_alloc(w->a, sizeof(int) * (size_t)cap);
    int *up = arena_alloc(w->a, sizeof(int) * (ARCHIVE_MAX_DEPTH + 1));
    for (int l = 0; l < w->nlinks; l++) {
        const struct link *lk = &w->links[l];
        int d = 0, nu = 0;
        for (int p = w->nodes[lk->node].parent; p > 0; p = w->nodes[p].parent)
            up[nu++] = p;
        while (nu > 0)
            stack[d++] = up[--nu];
        char *t = arena_strdup(w->a, lk->target), *save = NULL;
        for (char *c = strtok_r(t, "/", &save); c != NULL;
             c = strtok_r(NULL, "/", &save)) {
            if (strcmp(c, ".") == 0)
                continue;
            int top = d > 0 ? stack[d - 1] : 0;
            if (top > 0 && w->nodes[top].kind == K_LINK)
                return bad(w, TR_ERR_INVALID,
                           "symlink %s resolves through another symlink "
                           "(%s)",
                           lk->shown, shown(w, lk->target));
            if (strcmp(c, "..") == 0) {
                if (d == 0)
                    return bad(w, TR_ERR_INVALID,
                               "symlink %s points outside the archive",
                               lk->shown);
                d--;
            } else if (d < cap) {
                stack[d++] = lookup(w, top, c);
            }
        }
    }
    return TR_OK;
}

/* ---- writing ------------------------------------------------------------- */

/* Opens (creating as needed) the directory holding p's last component,
 * never following a symlink.  *out is w->dest or a new fd. */
static tr_err open_parent(struct walk *w, const struct path *p,
                          const char *name, int *out)
{
    int cur = w->dest;
    for (int i = 0; i < p->n - 1; i++) {
        int fd = openat(cur, p->comp[i],
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT &&
            (mkdirat(cur, p->comp[i], 0755) == 0 || errno == EEXIST))
            fd = openat(cur, p->comp[i],
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        if (cur != w->dest)
            close(cur);
        if (fd < 0)
            return bad(w, TR_ERR_IO,
                       "cannot make the directory of entry %s: %s",
                       shown(w, name), strerror(err));
        cur = fd;
    }
    *out = cur;
    return TR_OK;
}

static tr_err write_all(struct walk *w, int fd, const char *data, size_t n,
                        const char *name)
{
    while (n > 0) {
        ssize_t k = write(fd, data, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return bad(w, TR_ERR_IO, "cannot write %s: %s", shown(w, name),
                       strerror(errno));
        data += k;
        n -= (size_t)k;
    }
    return TR_OK;
}

/* Reads the current entry's data, counting it against max_unpacked and
 * max_ratio and, if fd >= 0, writing it there. */
static tr_err copy_data(struct walk *w, struct archive *ar, int fd,
                        const char *name)
{
    for (;;) {
        la_ssize_t k = la.archive_read_data(ar, w->data, DATA_BUF);
        if (k == 0)
            return TR_OK;
        if (k < 0)
            return damaged(w, ar);
        if ((uint64_t)k > w->max_unpacked - w->unpacked)
            return too_big(w);
        w->unpacked += (uint64_t)k;
        tr_err e = check_ratio(w, ar);
        if (e != TR_OK)
            return e;
        if (fd >= 0) {
            e = write_all(w, fd, w->data, (size_t)k, name);
            if (e != TR_OK)
                return e;
        }
    }
}

/* Creates the entry (already checked) under parent directory pfd. */
static tr_err create(struct walk *w, struct archive *ar,
                     struct archive_entry *ent, enum kind kind, int pfd,
                     const char *last, const char *target, const char *name)
{
    tr_err e = TR_OK;
    if (kind == K_DIR) {
        struct stat st;
        if (mkdirat(pfd, last, 0755) == 0)
            return TR_OK;
        int err = errno;
        /* made implicitly by an earlier entry, or named twice */
        if (err == EEXIST &&
            fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode))
            return TR_OK;
        return bad(w, TR_ERR_IO, "cannot make directory %s: %s", shown(w, name),
                   strerror(err));
    }
    if (kind == K_LINK) {
        if (symlinkat(target, pfd, last) != 0)
            e = bad(w, TR_ERR_IO, "cannot make symlink %s: %s", shown(w, name),
                    strerror(errno));
        return e;
    }
    mode_t mode = (la.archive_entry_perm(ent) & 0111) ? 0755 : 0644;
    int fd = openat(pfd, last,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return bad(w, TR_ERR_IO, "cannot create %s: %s", shown(w, name),
                   strerror(errno));
    if (fchmod(fd, mode) != 0) /* the umask may have taken bits */
        e = bad(w, TR_ERR_IO, "cannot set the mode of %s: %s", shown(w, name),
                strerror(errno));
    if (e == TR_OK)
        e = copy_data(w, ar, fd, name);
    if (close(fd) != 0 && e == TR_OK)
        e = bad(w, TR_ERR_IO, "cannot write %s: %s", shown(w, name),
                strerror(errno));
    return e;
}

/* ---- the walk ------------------------------------------------------------ */

static tr_err entry_kind(struct walk *w, struct archive_entry *ent,
                         const char *name, enum kind *kind)
{
    if (la.archive_entry_hardlink(ent) != NULL ||
        la.archive_entry_hardlink_utf8(ent) != NULL ||
        la.archive_entry_hardlink_w(ent) != NULL)
        return bad(w, TR_ERR_INVALID, "entry %s is a hard link",
                   shown(w, name));
    switch (la.archive_entry_filetype(ent)) {
    case AE_IFREG:
        *kind = K_FILE;
        return TR_OK;
    case AE_IFDIR:
        *kind = K_DIR;
        return TR_OK;
    case AE_IFLNK:
        *kind = K_LINK;
        return TR_OK;
    case AE_IFCHR:
    case AE_IFBLK:
        return bad(w, TR_ERR_INVALID, "entry %s is a device node",
                   shown(w, name));
    case AE_IFIFO:
        return bad(w, TR_ERR_INVALID, "entry %s is a fifo", shown(w, name));
    case AE_IFSOCK:
        return bad(w, TR_ERR_INVALID, "entry %s is a socket", shown(w, name));
    default:
        return bad(w, TR_ERR_INVALID, "entry %s has an unsupported type",
                   shown(w, name));
    }
}

/* Places p in the tree: its parents must be directories (made implicitly
 * when new), and only a directory may be named twice. */
static tr_err place_entry(struct walk *w, const struct path *p, enum kind kind,
                          const char *name, int *node)
{
    int parent = 0, c = -1;
    tr_err e = TR_OK;
    for (int i = 0; i < p->n - 1 && e == TR_OK; i++) {
        c = lookup(w, parent, p->comp[i]);
        if (c < 0)
            e = add(w, parent, p->comp[i], K_DIR, &c);
        else if (w->nodes[c].kind == K_LINK)
            e = bad(w, TR_ERR_INVALID, "entry %s passes through a symlink",
                    shown(w, name));
        else if (w->nodes[c].kind == K_FILE)
            e = bad(w, TR_ERR_INVALID, "entry %s passes through a file",
                    shown(w, name));
        parent = c;
    }
    if (e != TR_OK)
        return e;
    c = lookup(w, parent, p->comp[p->n - 1]);
    if (c >= 0 && !(kind == K_DIR && w->nodes[c].kind == K_DIR))
        return bad(w, TR_ERR_INVALID, "entry %s appears twice in the archive",
                   shown(w, name));
    if (c < 0)
        e = add(w, parent, p->comp[p->n - 1], kind, &c);
    *node = c;
    return e;
}

static tr_err entry(struct walk *w, struct archive *ar,
                    struct archive_entry *ent, struct path *p)
{
    enum kind kind = K_DIR; /* set by entry_kind() on success */
    const char *name = la.archive_entry_pathname_utf8(ent);
    if (name == NULL)
        name = la.archive_entry_pathname(ent);
    if (++w->entries > w->max_entries)
        return too_many(w);
    if (name == NULL || *name == '\0')
        return bad(w, TR_ERR_INVALID, "an entry of the archive has no name");
    tr_err e = split(w, name, p);
    if (e == TR_OK)
        e = entry_kind(w, ent, name, &kind);
    if (e != TR_OK)
        return e;
    if (p->n == 0) /* the root itself, as "./" */
        return kind == K_DIR
                   ? TR_OK
                   : bad(w, TR_ERR_INVALID, "entry %s names the archive's root",
                         shown(w, name));
    const char *target = NULL;
    if (kind == K_LINK) {
        target = la.archive_entry_symlink_utf8(ent);
        if (target == NULL)
            target = la.archive_entry_symlink(ent);
        e = check_target(w, name, target, p->n - 1);
    }
    if (kind == K_FILE && la.archive_entry_size_is_set(ent) &&
        (la.archive_entry_size(ent) < 0 ||
         (uint64_t)la.archive_entry_size(ent) > w->max_unpacked - w->unpacked))
        e = too_big(w);
    int node = -1;
    if (e == TR_OK)
        e = place_entry(w, p, kind, name, &node);
    if (e == TR_OK && kind == K_LINK)
        add_link(w, node, target, shown(w, name));
    if (e != TR_OK)
        return e;
    if (w->dest < 0) /* checking: read (and count) the data only */
        return kind == K_FILE ? copy_data(w, ar, -1, name) : TR_OK;
    int pfd = -1;
    e = open_parent(w, p, name, &pfd);
    if (e == TR_OK)
        e = create(w, ar, ent, kind, pfd, p->comp[p->n - 1], target, name);
    if (pfd >= 0 && pfd != w->dest)
        close(pfd);
    return e;
}

static tr_err walk_archive(struct walk *w, const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bad(w, TR_ERR_IO, "cannot open the archive: %s",
                   strerror(errno));
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
        close(fd);
        return bad(w, TR_ERR_INVALID, "the archive is empty");
    }
    struct archive *ar = la.archive_read_new();
    if (ar == NULL) {
        close(fd);
        return bad(w, TR_ERR_NOMEM, "out of memory");
    }
    la.archive_read_support_filter_gzip(ar);
    la.archive_read_support_format_tar(ar);
    struct path *p = arena_alloc(w->a, sizeof(*p));
    tr_err e = TR_OK;
    if (la.archive_read_open_fd(ar, fd, DATA_BUF) != ARCHIVE_OK)
        e = damaged(w, ar);
    while (e == TR_OK) {
        struct archive_entry *ent = NULL;
        int rc = la.archive_read_next_header(ar, &ent);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
            e = damaged(w, ar);
        else
            e = entry(w, ar, ent, p);
    }
    la.archive_read_free(ar);
    close(fd);
    return e;
}

static tr_err run(const char *path, int dest, const struct archive_limits *lim,
                  struct tr_errbuf *eb)
{
    tr_err le = la_need(eb);
    if (le != TR_OK)
        return le;
    struct walk w = {
        .a = arena_new(),
        .eb = eb,
        .max_unpacked = lim->max_unpacked,
        .max_entries = lim->max_entries,
        .max_ratio = lim->max_ratio,
        .dest = dest,
    };
    w.data = arena_alloc(w.a, DATA_BUF);
    int root = 0;
    tr_err e = add(&w, -1, "", K_DIR, &root);
    if (e == TR_OK)
        e = walk_archive(&w, path);
    if (e == TR_OK && dest < 0)
        e = check_links(&w);
    arena_destroy(w.a);
    clean_msg(eb);
    return e;
}

tr_err archive_check(const char *path, const struct archive_limits *lim,
                     struct tr_errbuf *eb)
{
    return run(path, -1, lim, eb);
}

tr_err archive_extract(const char *path, const char *dest_dir,
                       const struct archive_limits *lim, struct tr_errbuf *eb)
{
    tr_err e = archive_check(path, lim, eb);
    if (e != TR_OK)
        return e;
    int dfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return tr_fail(eb, TR_ERR_IO,
                       "cannot open the directory to "
                       "extract into: %s",
                       strerror(errno));
    e = run(path, dfd, lim, eb);
    close(dfd);
    return e;
}

tr_err archive_zip_entry(int zip_fd, const char *name, int out_fd, uint64_t max,
                         struct tr_errbuf *eb)
{
    tr_err e = la_need(eb);
    if (e != TR_OK)
        return e;
    struct archive *ar = la.archive_read_new();
    la.archive_read_support_format_zip(ar);
    if (lseek(zip_fd, 0, SEEK_SET) != 0 ||
        la.archive_read_open_fd(ar, zip_fd, DATA_BUF) != ARCHIVE_OK) {
        e = tr_fail(eb, TR_ERR_IO, "cannot read the zip: %s",
                    la.archive_error_string(ar));
        goto out;
    }
    struct archive_entry *ent = NULL;
    for (;;) {
        int rc = la.archive_read_next_header(ar, &ent);
        if (rc == ARCHIVE_EOF) {
            e = tr_fail(eb, TR_ERR_INVALID, "the zip holds no file %s", name);
            goto out;
        }
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            e = tr_fail(eb, TR_ERR_INVALID, "cannot read the zip: %s",
                        la.archive_error_string(ar));
            goto out;
        }
        const char *p = la.archive_entry_pathname(ent);
        if (p != NULL && strncmp(p, "./", 2) == 0)
            p += 2;
        if (p != NULL && strcmp(p, name) == 0 &&
            la.archive_entry_filetype(ent) == AE_IFREG)
            break;
    }
    char chunk[DATA_BUF];
    uint64_t total = 0;
    for (;;) {
        la_ssize_t n = la.archive_read_data(ar, chunk, sizeof(chunk));
        if (n == 0)
            break;
        if (n < 0) {
            e = tr_fail(eb, TR_ERR_INVALID, "cannot unpack %s: %s", name,
                        la.archive_error_string(ar));
            break;
        }
        total += (uint64_t)n;
        if (total > max) {
            e = tr_fail(eb, TR_ERR_TOO_LARGE,
                        "%s in the zip is larger than %llu bytes", name,
                        (unsigned long long)max);
            break;
        }
        e = file_write_exact(out_fd, chunk, (size_t)n, eb);
        if (e != TR_OK)
            break;
    }
out:
    la.archive_read_free(ar);
    return e;
}
