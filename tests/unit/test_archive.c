/*
 * test_archive.c - unit tests for src/executor/archive.c: a good
 * configuration tarball (nested directories, safe relative symlinks, an
 * executable with set-id bits) is checked and extracted faithfully, and
 * every attack archive, built here with libarchive's writer, is refused
 * by archive_check() and archive_extract() with a clear message while
 * nothing at all is written, inside or outside the destination.  Bombs
 * (zeros, a gzip inside a gzip, a sparse hole, incompressible bytes past
 * the size limit, too many tiny files) stop at a limit, the ratio ones
 * just past ARCHIVE_RATIO_FLOOR, while ordinary and merely repetitive
 * configurations pass.
 *
 * Each test gets a fresh directory holding the archive, dest/ (where
 * extraction goes) and outside/ (a canary that must stay empty).
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "executor/archive.h"
#include "unit_util.h"

#define MB (1024 * 1024)

/* Limits with the default ratio (500), which archives below
 * ARCHIVE_RATIO_FLOOR never meet. */
#define LIM(max, maxe)                                                         \
    (&(const struct archive_limits){                                           \
        .max_unpacked = (max), .max_entries = (maxe), .max_ratio = 500})

struct fx {
    char dir[64];
    char tar[128];
    char dest[128];
    char outside[128];
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || !ut_mkdtemp(fx->dir, sizeof(fx->dir), "test_archive"))
        return -1;
    snprintf(fx->tar, sizeof(fx->tar), "%s/in.tar.gz", fx->dir);
    snprintf(fx->dest, sizeof(fx->dest), "%s/dest", fx->dir);
    snprintf(fx->outside, sizeof(fx->outside), "%s/outside", fx->dir);
    if (mkdir(fx->dest, 0755) != 0 || mkdir(fx->outside, 0755) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    int rc = ut_rmtree(fx->dir);
    free(fx);
    return rc;
}

/* ---- building archives --------------------------------------------------- */

/* One entry to write.  type 0 means a regular file; data NULL with size
 * > 0 writes that many zero bytes. */
struct ent {
    const char *name;
    mode_t type;
    const char *data;
    size_t size;
    int perm;
    const char *target; /* symlink */
    const char *hardlink;
};

/* The archive, gzip'ed gzips times (0: a plain tar). */
static void write_layers(const char *path, int gzips, const struct ent *e,
                         int n)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    for (int i = 0; i < gzips; i++)
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    static char zeros[65536];
    for (int i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        size_t size = e[i].data ? strlen(e[i].data) : e[i].size;
        mode_t type = e[i].type ? e[i].type : AE_IFREG;
        archive_entry_set_pathname(ae, e[i].name);
        archive_entry_set_filetype(ae, type);
        archive_entry_set_perm(ae, e[i].perm ? e[i].perm : 0644);
        if (type == AE_IFCHR)
            archive_entry_set_rdev(ae, makedev(1, 3));
        if (e[i].target)
            archive_entry_set_symlink(ae, e[i].target);
        if (e[i].hardlink)
            archive_entry_set_hardlink(ae, e[i].hardlink);
        if (type == AE_IFREG && !e[i].hardlink)
            archive_entry_set_size(ae, (la_int64_t)size);
        /* WARN: a name not in the locale's charset, written as bytes */
        assert_true(archive_write_header(a, ae) >= ARCHIVE_WARN);
        if (type == AE_IFREG && e[i].data)
            assert_int_equal(archive_write_data(a, e[i].data, size),
                             (la_ssize_t)size);
        for (size_t left = e[i].data ? 0 : size; left > 0;) {
            size_t k = left < sizeof(zeros) ? left : sizeof(zeros);
            assert_int_equal(archive_write_data(a, zeros, k), (la_ssize_t)k);
            left -= k;
        }
        archive_entry_free(ae);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static void write_archive(const char *path, bool gzip, const struct ent *e,
                          int n)
{
    write_layers(path, gzip ? 1 : 0, e, n);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int mode_of(const char *dir, const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    if (lstat(p, &st) != 0)
        return -1;
    return (int)(st.st_mode & 07777);
}

/* The archive is refused by both functions with e and a message holding
 * want; afterwards dest and outside are empty and the fixture directory
 * holds only what setup made. */
static void refused(struct fx *fx, uint64_t max, int maxe, tr_err e,
                    const char *want)
{
    struct tr_errbuf eb = {{0}};
    tr_err got = archive_check(fx->tar, LIM(max, maxe), &eb);
    if (got != e || strstr(eb.msg, want) == NULL)
        fail_msg("check: got %d \"%s\", want %d \"%s\"", got, eb.msg, e, want);
    memset(&eb, 0, sizeof(eb));
    got = archive_extract(fx->tar, fx->dest, LIM(max, maxe), &eb);
    if (got != e || strstr(eb.msg, want) == NULL)
        fail_msg("extract: got %d \"%s\", want %d \"%s\"", got, eb.msg, e,
                 want);
    for (const char *p = eb.msg; *p; p++)
        assert_true(*p >= 0x20 && *p <= 0x7e);
    assert_int_equal(ut_count_entries(fx->dest), 0);
    assert_int_equal(ut_count_entries(fx->outside), 0);
    /* in.tar.gz, dest, outside: no x, etc, ... beside them */
    assert_int_equal(ut_count_entries(fx->dir), 3);
}

#define ONE(...) ((const struct ent[]){__VA_ARGS__})
#define N(arr) ((int)(sizeof(arr) / sizeof((arr)[0])))

static void refuse_entries(struct fx *fx, const struct ent *e, int n,
                           const char *want)
{
    write_archive(fx->tar, true, e, n);
    refused(fx, 10 * MB, 1000, TR_ERR_INVALID, want);
}

/* ---- a good archive ------------------------------------------------------ */

static const struct ent good[] = {
    {.name = "./", .type = AE_IFDIR, .perm = 0755},
    {.name = "main.tf", .data = "resource \"null_resource\" \"a\" {}\n"},
    {.name = "modules/", .type = AE_IFDIR, .perm = 0700},
    {.name = "modules/net/", .type = AE_IFDIR, .perm = 0755},
    {.name = "modules/net/main.tf", .data = "variable \"x\" {}\n"},
    {.name = "deep/a/b/c/leaf.txt", .data = "leaf"}, /* implicit dirs */
    {.name = "run.sh", .data = "#!/bin/sh\n", .perm = 04775},
    {.name = "empty", .size = 0},
    {.name = "modules/net/link.tf", .type = AE_IFLNK, .target = "main.tf"},
    {.name = "modules/up", .type = AE_IFLNK, .target = "../main.tf"},
    {.name = "deep/a/b/c/top", .type = AE_IFLNK, .target = "../../../.."},
    {.name = "self", .type = AE_IFLNK, .target = "."},
    {.name = "./dot/./x.tf", .data = "x"},
};

static void check_good_tree(struct fx *fx)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/main.tf", fx->dest);
    assert_string_equal(read_text(p), "resource \"null_resource\" \"a\" {}\n");
    snprintf(p, sizeof(p), "%s/modules/net/main.tf", fx->dest);
    assert_string_equal(read_text(p), "variable \"x\" {}\n");
    snprintf(p, sizeof(p), "%s/deep/a/b/c/leaf.txt", fx->dest);
    assert_string_equal(read_text(p), "leaf");
    snprintf(p, sizeof(p), "%s/modules/up", fx->dest);
    assert_string_equal(read_text(p), "resource \"null_resource\" \"a\" {}\n");
    char t[64] = {0};
    assert_true(readlink(p, t, sizeof(t) - 1) > 0);
    assert_string_equal(t, "../main.tf");
    snprintf(p, sizeof(p), "%s/deep/a/b/c/top/main.tf", fx->dest);
    assert_non_null(read_text(p));
    snprintf(p, sizeof(p), "%s/dot/x.tf", fx->dest);
    assert_string_equal(read_text(p), "x");
    /* modes: masked to 0644 / 0755, set-id bits dropped */
    assert_int_equal(mode_of(fx->dest, "main.tf"), 0644);
    assert_int_equal(mode_of(fx->dest, "run.sh"), 0755);
    assert_int_equal(mode_of(fx->dest, "empty"), 0644);
    assert_int_equal(mode_of(fx->dest, "modules") & 0700, 0700);
    assert_int_equal(mode_of(fx->dest, "modules") & 07000, 0);
    /* 13 entries, "./" is the root, + deep deep/a deep/a/b deep/a/b/c dot */
    assert_int_equal(ut_count_entries(fx->dest), 12 + 5);
    assert_int_equal(ut_count_entries(fx->outside), 0);
}

static void test_good_gzip(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    write_archive(fx->tar, true, good, N(good));
    assert_int_equal(archive_check(fx->tar, LIM(MB, 100), &eb), TR_OK);
    assert_int_equal(ut_count_entries(fx->dest), 0); /* check writes none */
    assert_int_equal(archive_extract(fx->tar, fx->dest, LIM(MB, 100), &eb),
                     TR_OK);
    check_good_tree(fx);
}

static void test_good_plain_tar(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    write_archive(fx->tar, false, good, N(good));
    assert_int_equal(archive_extract(fx->tar, fx->dest, LIM(MB, 100), &eb),
                     TR_OK);
    check_good_tree(fx);
}

static void test_limits_exact(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    /* exactly max_unpacked bytes and exactly max_entries entries pass */
    write_archive(fx->tar, true,
                  ONE({.name = "a", .size = 1000}, {.name = "d/b", .size = 24}),
                  2);
    assert_int_equal(archive_check(fx->tar, LIM(1024, 3), &eb), TR_OK);
    assert_int_equal(archive_check(fx->tar, LIM(1023, 3), &eb),
                     TR_ERR_TOO_LARGE);
    assert_int_equal(archive_check(fx->tar, LIM(1024, 2), &eb),
                     TR_ERR_TOO_LARGE);
    /* an empty tar (end blocks only) is a valid, empty configuration */
    write_archive(fx->tar, true, NULL, 0);
    assert_int_equal(archive_extract(fx->tar, fx->dest, LIM(1024, 3), &eb),
                     TR_OK);
    assert_int_equal(ut_count_entries(fx->dest), 0);
}

/* ---- names --------------------------------------------------------------- */

static void test_dotdot(void **state)
{
    struct fx *fx = *state;
    refuse_entries(fx, ONE({.name = "../x", .data = "pwned"}), 1,
                   "entry ../x has a \"..\" component");
    refuse_entries(fx,
                   ONE({.name = "ok.tf", .data = "ok"},
                       {.name = "a/../../x", .data = "pwned"}),
                   2, "\"..\" component");
    refuse_entries(fx, ONE({.name = "a/..", .type = AE_IFDIR}), 1,
                   "\"..\" component");
}

static void test_absolute(void **state)
{
    struct fx *fx = *state;
    refuse_entries(fx, ONE({.name = "/etc/x", .data = "pwned"}), 1,
                   "entry /etc/x has an absolute path");
    char abs[256];
    snprintf(abs, sizeof(abs), "%s/x", fx->outside);
    refuse_entries(fx, ONE({.name = abs, .data = "pwned"}), 1, "absolute path");
}

static void test_long_names(void **state)
{
    struct fx *fx = *state;
    char *name = malloc(PATH_MAX + 10);
    assert_non_null(name);
    for (int i = 0; i < PATH_MAX + 8; i += 2)
        memcpy(name + i, "a/", 2);
    name[PATH_MAX + 8] = '\0';
    refuse_entries(fx, ONE({.name = name, .data = "x"}), 1,
                   "is longer than 4095 bytes");
    memset(name, 'x', NAME_MAX + 1);
    name[NAME_MAX + 1] = '\0';
    refuse_entries(fx, ONE({.name = name, .data = "x"}), 1,
                   "component longer than 255 bytes");
    /* deeper than ARCHIVE_MAX_DEPTH, within PATH_MAX */
    int k = 0;
    for (int i = 0; i <= ARCHIVE_MAX_DEPTH; i++)
        k += snprintf(name + k, 4, "d/");
    name[k - 1] = '\0';
    refuse_entries(fx, ONE({.name = name, .data = "x"}), 1,
                   "nested deeper than 256 levels");
    free(name);
}

static void test_duplicates_and_root(void **state)
{
    struct fx *fx = *state;
    refuse_entries(fx,
                   ONE({.name = "main.tf", .data = "a"},
                       {.name = "./main.tf", .data = "b"}),
                   2, "entry ./main.tf appears twice");
    refuse_entries(
        fx, ONE({.name = "d/f", .data = "a"}, {.name = "d", .data = "b"}), 2,
        "appears twice");
    refuse_entries(
        fx, ONE({.name = "f", .data = "a"}, {.name = "f/g", .data = "b"}), 2,
        "entry f/g passes through a file");
    refuse_entries(fx, ONE({.name = ".", .data = "a"}), 1,
                   "names the archive's root");
}

static void test_unprintable_name(void **state)
{
    struct fx *fx = *state;
    refuse_entries(fx, ONE({.name = "bad\001\n\xff/../x", .data = "a"}), 1,
                   "entry bad??"
                   "?/../x has"); /* no trigraph */
}

/* ---- types --------------------------------------------------------------- */

static void test_hardlink(void **state)
{
    struct fx *fx = *state;
    refuse_entries(fx,
                   ONE({.name = "main.tf", .data = "a"},
                       {.name = "h", .hardlink = "main.tf"}),
                   2, "entry h is a hard link");
    /* a hard link to a file outside */
    refuse_entries(fx, ONE({.name = "h", .hardlink = "/etc/passwd"}), 1,
                   "is a hard link");
}

static void test_special_files(void **state)
{
    struct fx *fx = *state;
    refuse_entries(fx, ONE({.name = "null", .type = AE_IFCHR}), 1,
                   "entry null is a device node");
    refuse_entries(fx, ONE({.name = "sda", .type = AE_IFBLK}), 1,
                   "entry sda is a device node");
    refuse_entries(fx, ONE({.name = "pipe", .type = AE_IFIFO}), 1,
                   "entry pipe is a fifo");
}

/* ---- symlinks ------------------------------------------------------------ */

static void test_symlink_absolute(void **state)
{
    struct fx *fx = *state;
    refuse_entries(fx, ONE({.name = "etc", .type = AE_IFLNK, .target = "/etc"}),
                   1, "symlink etc points to the absolute path /etc");
    /* the classic: a link to outside, then a file written through it */
    refuse_entries(fx,
                   ONE({.name = "l", .type = AE_IFLNK, .target = fx->outside},
                       {.name = "l/x", .data = "pwned"}),
                   2, "absolute path");
}

static void test_symlink_escape(void **state)
{
    struct fx *fx = *state;
    refuse_entries(
        fx, ONE({.name = "l", .type = AE_IFLNK, .target = "../../outside"}), 1,
        "symlink l points outside the archive");
    refuse_entries(fx, ONE({.name = "l", .type = AE_IFLNK, .target = ".."}), 1,
                   "points outside the archive");
    refuse_entries(fx,
                   ONE({.name = "a/b/l",
                        .type = AE_IFLNK,
                        .target = "../../../outside/x"}),
                   1, "symlink a/b/l points outside the archive");
    refuse_entries(
        fx, ONE({.name = "a/l", .type = AE_IFLNK, .target = "./x/../../.."}), 1,
        "points outside the archive");
    refuse_entries(fx, ONE({.name = "l", .type = AE_IFLNK, .target = ""}), 1,
                   "symlink l has no target");
}

static void test_symlink_nesting(void **state)
{
    struct fx *fx = *state;
    /* an entry under a symlink, even one pointing inside */
    refuse_entries(fx,
                   ONE({.name = "sub/", .type = AE_IFDIR},
                       {.name = "l", .type = AE_IFLNK, .target = "sub"},
                       {.name = "l/x", .data = "a"}),
                   3, "entry l/x passes through a symlink");
    refuse_entries(fx,
                   ONE({.name = "l", .type = AE_IFLNK, .target = "sub"},
                       {.name = "l/", .type = AE_IFDIR}),
                   2, "entry l/ appears twice");
    /* s resolves to the root; ".." after it leaves the root, though
     * lexically s/../.. from a/b/c stays inside; either order */
    const struct ent chain[] = {
        {.name = "a/b/c/s", .type = AE_IFLNK, .target = "../../.."},
        {.name = "a/b/c/t", .type = AE_IFLNK, .target = "s/../.."},
    };
    refuse_entries(fx, chain, 2,
                   "symlink a/b/c/t resolves through another symlink");
    const struct ent rev[] = {chain[1], chain[0]};
    refuse_entries(fx, rev, 2, "resolves through another symlink");
}

/* ---- sizes --------------------------------------------------------------- */

static void test_tar_bomb(void **state)
{
    struct fx *fx = *state;
    /* 2 MB of zeros, a few KB compressed, against a 1 MB limit */
    write_archive(fx->tar, true, ONE({.name = "zeros", .size = 2 * MB}), 1);
    struct stat st;
    assert_int_equal(stat(fx->tar, &st), 0);
    assert_true(st.st_size < 64 * 1024);
    refused(fx, MB, 1000, TR_ERR_TOO_LARGE,
            "the archive unpacks to more than 1048576 bytes");
    /* many files adding up */
    write_archive(fx->tar, true,
                  ONE({.name = "a", .size = 400 * 1024},
                      {.name = "b", .size = 400 * 1024},
                      {.name = "c", .size = 400 * 1024}),
                  3);
    refused(fx, MB, 1000, TR_ERR_TOO_LARGE, "unpacks to more than");
}

static void test_too_many_entries(void **state)
{
    struct fx *fx = *state;
    struct ent many[11];
    char names[11][8];
    for (int i = 0; i < 11; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        many[i] = (struct ent){.name = names[i], .data = "x"};
    }
    write_archive(fx->tar, true, many, 11);
    refused(fx, MB, 10, TR_ERR_TOO_LARGE,
            "the archive has more than 10 entries");
    /* implicit parent directories count */
    write_archive(fx->tar, true,
                  ONE({.name = "1/2/3/4/5/6/7/8/9/10/f", .data = "x"}), 1);
    refused(fx, MB, 10, TR_ERR_TOO_LARGE, "more than 10 entries");
    /* so does a directory named again and again */
    struct ent dirs[11];
    for (int i = 0; i < 11; i++)
        dirs[i] = (struct ent){.name = "d/", .type = AE_IFDIR};
    write_archive(fx->tar, true, dirs, 11);
    refused(fx, MB, 10, TR_ERR_TOO_LARGE, "more than 10 entries");
}

/* ---- bombs and the ratio ------------------------------------------------- */

/* The bytes unpacked when the ratio stopped the walk, from its message
 * "... (N bytes from M) ...". */
static uint64_t stopped_at(const char *msg)
{
    const char *p = strchr(msg, '(');
    unsigned long long n = 0;
    assert_non_null(p);
    assert_int_equal(sscanf(p, "(%llu bytes from", &n), 1);
    return n;
}

static uint64_t checked_at(struct fx *fx, uint64_t max, int ratio)
{
    struct tr_errbuf eb = {{0}};
    const struct archive_limits lim = {max, 1000, ratio};
    assert_int_equal(archive_check(fx->tar, &lim, &eb), TR_ERR_TOO_LARGE);
    assert_non_null(strstr(eb.msg, "like a decompression bomb"));
    return stopped_at(eb.msg);
}

/* n bytes of text (no NUL): 0 looks like HCL with varying values, 1 is a
 * CSV of near-identical rows (about 230:1 under gzip), 2 is printable
 * noise (about 1.3:1). */
static char *gen_text(size_t n, int kind)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    size_t k = 0;
    uint32_t x = 2463534242u;
    for (unsigned i = 0; k < n; i++) {
        char line[160];
        int m = 0;
        if (kind == 0)
            m = snprintf(line, sizeof(line),
                         "resource \"aws_instance\" \"web_%u\" {\n"
                         "  ami = \"ami-%08x\"\n  count = %u\n}\n",
                         i, i * 2654435761u, i % 7);
        else if (kind == 1)
            m = snprintf(line, sizeof(line),
                         "2024-01-01,us-east-1,t3.micro,running,%u\n", i % 10);
        else
            for (; m < 64; m++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                line[m] = (char)('0' + x % 64);
            }
        for (int j = 0; j < m && k < n; j++)
            s[k++] = line[j];
    }
    s[n] = '\0';
    return s;
}

static void test_ratio_bomb(void **state)
{
    struct fx *fx = *state;
    const uint64_t GB = 1ULL << 30;
    const uint64_t soon = ARCHIVE_RATIO_FLOOR + MB;
    /* 32 MiB of zeros gzip to about 32 KiB: refused right after the
     * floor, well before the size limit */
    write_archive(fx->tar, true, ONE({.name = "zeros", .size = 32 * MB}), 1);
    refused(fx, GB, 1000, TR_ERR_TOO_LARGE,
            "the archive unpacks to more than 500 times its compressed size");
    uint64_t at = checked_at(fx, GB, 500);
    assert_true(at > ARCHIVE_RATIO_FLOOR && at <= soon);
    /* a gzip inside a gzip (libarchive unwraps both): far beyond */
    write_layers(fx->tar, 2, ONE({.name = "zeros", .size = 32 * MB}), 1);
    struct stat st;
    assert_int_equal(stat(fx->tar, &st), 0);
    assert_true(st.st_size < 4096);
    refused(fx, GB, 1000, TR_ERR_TOO_LARGE, "times its compressed size");
    assert_true(checked_at(fx, GB, 500) <= soon);
    /* a plain tar with a sparse file: a 256 MiB hole in 3 KiB */
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, fx->tar), ARCHIVE_OK);
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, "holes");
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae, 256 * MB);
    archive_entry_sparse_add_entry(ae, 256 * MB - 512, 512);
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    char block[512];
    memset(block, 'x', sizeof(block));
    assert_int_equal(archive_write_data(a, block, 512), 512);
    archive_entry_free(ae);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    refused(fx, GB, 1000, TR_ERR_TOO_LARGE, "times its compressed size");
    assert_true(checked_at(fx, GB, 500) <= soon);
    /* with no ratio limit, the size limit is the bound */
    write_archive(fx->tar, true, ONE({.name = "zeros", .size = 32 * MB}), 1);
    struct tr_errbuf eb = {{0}};
    const struct archive_limits lim = {16 * MB, 1000, 0};
    assert_int_equal(archive_check(fx->tar, &lim, &eb), TR_ERR_TOO_LARGE);
    assert_string_equal(eb.msg,
                        "the archive unpacks to more than 16777216 bytes");
    /* and a ratio limit of 1 stops an ordinary archive past the floor */
    char *text = gen_text(10 * MB, 0);
    write_archive(fx->tar, true, ONE({.name = "main.tf", .data = text}), 1);
    free(text);
    assert_true(checked_at(fx, GB, 1) <= soon);
}

static void test_size_limit_bomb(void **state)
{
    struct fx *fx = *state;
    /* 12 MiB that compress only 1.3:1 pass the ratio, not 10 MiB */
    char *noise = gen_text(12 * MB, 2);
    write_archive(fx->tar, true, ONE({.name = "blob", .data = noise}), 1);
    refused(fx, 10 * MB, 1000, TR_ERR_TOO_LARGE,
            "the archive unpacks to more than 10485760 bytes");
    /* the same spread over files that each fit */
    write_archive(fx->tar, true,
                  ONE({.name = "a", .data = noise + 8 * MB},
                      {.name = "b", .data = noise + 8 * MB},
                      {.name = "c", .data = noise + 8 * MB}),
                  3);
    refused(fx, 10 * MB, 1000, TR_ERR_TOO_LARGE, "unpacks to more than");
    free(noise);
}

static void test_many_tiny_files(void **state)
{
    struct fx *fx = *state;
    enum { MANY = ARCHIVE_MAX_ENTRIES + 1 };
    struct ent *e = calloc(MANY, sizeof(*e));
    char(*names)[16] = calloc(MANY, 16);
    assert_true(e != NULL && names != NULL);
    for (int i = 0; i < MANY; i++) {
        snprintf(names[i], 16, "f%d", i);
        e[i] = (struct ent){.name = names[i], .data = "x"};
    }
    write_archive(fx->tar, true, e, MANY);
    refused(fx, 512 * MB, ARCHIVE_MAX_ENTRIES, TR_ERR_TOO_LARGE,
            "the archive has more than 100000 entries");
    /* 2000 of them under the default limits are a configuration */
    struct tr_errbuf eb = {{0}};
    const struct archive_limits lim = {512 * MB, ARCHIVE_MAX_ENTRIES, 500};
    write_archive(fx->tar, true, e, 2000);
    assert_int_equal(archive_extract(fx->tar, fx->dest, &lim, &eb), TR_OK);
    assert_int_equal(ut_count_entries(fx->dest), 2000);
    free(names);
    free(e);
}

static void test_normal_tarball(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    const struct archive_limits lim = {512 * MB, ARCHIVE_MAX_ENTRIES, 500};
    /* past the floor: HCL, a CSV that compresses 230:1, noise, links */
    char *hcl = gen_text(6 * MB, 0), *csv = gen_text(6 * MB, 1);
    char *noise = gen_text(MB, 2);
    write_archive(
        fx->tar, true,
        ONE({.name = "main.tf", .data = hcl},
            {.name = "data/rows.csv", .data = csv},
            {.name = "lambda/blob.b64", .data = noise},
            {.name = ".terraform.lock.hcl", .data = "# lock\n"},
            {.name = "link.tf", .type = AE_IFLNK, .target = "main.tf"}),
        5);
    assert_int_equal(archive_extract(fx->tar, fx->dest, &lim, &eb), TR_OK);
    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/data/rows.csv", fx->dest);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 6 * MB);
    snprintf(p, sizeof(p), "%s/link.tf", fx->dest);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 6 * MB);
    assert_int_equal(ut_count_entries(fx->dest), 7);
    /* the CSV alone: 12 MiB at well over 100:1 still passes */
    char *big = gen_text(12 * MB, 1);
    write_archive(fx->tar, true, ONE({.name = "rows.csv", .data = big}), 1);
    assert_int_equal(stat(fx->tar, &st), 0);
    assert_true(st.st_size * 100 < 12 * MB);
    assert_int_equal(archive_check(fx->tar, &lim, &eb), TR_OK);
    free(big);
    free(hcl);
    free(csv);
    free(noise);
}

/* ---- not archives -------------------------------------------------------- */

static void test_garbage(void **state)
{
    struct fx *fx = *state;
    write_bytes(fx->tar, "", 0);
    refused(fx, MB, 10, TR_ERR_INVALID, "the archive is empty");
    write_bytes(fx->tar, "hello, this is not a tarball\n", 29);
    refused(fx, MB, 10, TR_ERR_INVALID, "not a valid tar or gzip'ed tar");
    /* a gzip'ed tar cut short */
    write_archive(fx->tar, true, good, N(good));
    struct stat st;
    assert_int_equal(stat(fx->tar, &st), 0);
    assert_int_equal(truncate(fx->tar, st.st_size / 2), 0);
    refused(fx, MB, 100, TR_ERR_INVALID, "not a valid tar");
    /* random bytes inside a valid gzip header */
    unsigned char junk[4096] = {0x1f, 0x8b, 8, 0};
    for (size_t i = 10; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 7919u >> 3);
    write_bytes(fx->tar, junk, sizeof(junk));
    refused(fx, MB, 100, TR_ERR_INVALID, "not a valid tar");
    struct tr_errbuf eb = {{0}};
    unlink(fx->tar);
    assert_int_equal(archive_check(fx->tar, LIM(MB, 10), &eb), TR_ERR_IO);
}

/* ---- extraction never follows what is already there ---------------------- */

static void test_extract_existing_symlink(void **state)
{
    struct fx *fx = *state;
    struct tr_errbuf eb = {{0}};
    char p[512];
    snprintf(p, sizeof(p), "%s/modules", fx->dest);
    assert_int_equal(symlink(fx->outside, p), 0);
    write_archive(fx->tar, true, ONE({.name = "modules/x.tf", .data = "pwned"}),
                  1);
    assert_int_equal(archive_check(fx->tar, LIM(MB, 10), &eb), TR_OK);
    assert_int_equal(archive_extract(fx->tar, fx->dest, LIM(MB, 10), &eb),
                     TR_ERR_IO);
    assert_non_null(strstr(eb.msg, "modules/x.tf"));
    assert_int_equal(ut_count_entries(fx->outside), 0);
    /* an existing file is never replaced, nor written through a link */
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/x.tf", fx->dest);
    char o[512];
    snprintf(o, sizeof(o), "%s/victim", fx->outside);
    assert_true(ut_write_file(o, "safe"));
    assert_int_equal(symlink(o, p), 0);
    write_archive(fx->tar, true, ONE({.name = "x.tf", .data = "pwned"}), 1);
    assert_int_equal(archive_extract(fx->tar, fx->dest, LIM(MB, 10), &eb),
                     TR_ERR_IO);
    assert_string_equal(read_text(o), "safe");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_plain_tar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotdot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absolute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_and_root, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unprintable_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hardlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_absolute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratio_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_tiny_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normal_tarball, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_existing_symlink, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
