/*
 * test_executor.c - unit tests for the executor (src/executor/executor.c,
 * tofu.c, workdir.c, sandbox.c) against a fake job API and a fake tofu.
 *
 * The fake job API (in this file) hands out one job, records the log
 * chunks, answers heartbeats with a cancel request when told to, serves
 * a configuration tarball and a plan file, and records the result.  The
 * fake tofu is a shell script whose behaviour the job's FAKE_MODE
 * environment variable picks: a good run that writes plan files where
 * tofu would, a crash (SIGSEGV), a hang, a hang that ignores SIGINT, one
 * that stops gracefully on SIGINT, output holding secrets, a disk filler.
 *
 * After every job the tests check that no process of the job is left
 * (every process it starts carries TFE_RUN_ID=<the test's run id> in its
 * environment, which /proc shows) and that the work directory is empty.
 *
 * Most tests run with the sandbox the machine offers (bubblewrap when it
 * works); a few run again without it.  The full-disk test needs a private
 * mount namespace with a 1 MiB tmpfs, made at start-up when possible
 * (root), and is skipped with a message otherwise.
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "executor/executor.h"
#include "executor/executor_int.h"
#include "unit_util.h"

/* ---- the fake tofu ----------------------------------------------------- */

static const char fake_tofu[] =
    "#!/bin/sh\n"
    "# fake tofu for test_executor\n"
    "mode=\"${FAKE_MODE:-ok}\"\n"
    "# as tofu: a plan reads the CLI config (opened to see it is there,\n"
    "# then read) before -chdir= takes it to its working directory\n"
    "case \"$1\" in plan|-chdir=*) exec 3<\"$TF_CLI_CONFIG_FILE\";"
    " exec 3<&-; cat \"$TF_CLI_CONFIG_FILE\" >/dev/null;; esac\n"
    "case \"$1\" in -chdir=*) cd \"${1#-chdir=}\" || exit 1; shift;; esac\n"
    "cmd=\"$1\"; shift\n"
    "case \"$cmd\" in\n"
    "version) echo '{\"terraform_version\":\"1.2.3\"}'; exit 0;;\n"
    "init)\n"
    "  echo 'init output'\n"
    "  [ \"$mode\" = initfail ] && { echo 'init exploded' >&2; exit 1; }\n"
    "  case \"$mode\" in memo*)\n"
    "    mkdir -p .terraform/modules\n"
    "    od -An -N8 -tx8 /dev/urandom | tr -d ' ' > .terraform/made\n"
    "    cp zzz_terrace.auto.tfvars .terraform/tag\n"
    "    m='{\"Key\":\"\",\"Source\":\"\",\"Dir\":\".\"}'\n"
    "    case \"$mode\" in\n"
    "    memolock) [ -e .terraform.lock.hcl ] ||"
    " echo '# chosen' > .terraform.lock.hcl;;\n"
    "    memoremote) m=\"$m\"',{\"Key\":\"m\",\"Source\":\"git::x\","
    "\"Dir\":\".terraform/modules/m\"}';;\n"
    "    memoregistry) m=\"$m\"',{\"Key\":\"m\",\"Source\":\"r/m/x\","
    "\"Version\":\"1.0.0\",\"Dir\":\"sub\"}';;\n"
    "    memolink) ln -s /etc .terraform/evil;;\n"
    "    memocache) mkdir -p \"$TF_PLUGIN_CACHE_DIR/p/1.0\" &&"
    " ln -s \"$TF_PLUGIN_CACHE_DIR/p/1.0\" .terraform/prov;;\n"
    "    esac\n"
    "    echo '{\"Modules\":['\"$m\"']}' > .terraform/modules/modules.json;;\n"
    "  esac\n"
    "  exit 0;;\n"
    "plan)\n"
    "  out=''\n"
    "  for a in \"$@\"; do case \"$a\" in -out=*) out=\"${a#-out=}\";; esac;"
    " done\n"
    "  echo \"plan args: $*\"\n"
    "  case \"$mode\" in\n"
    "  crash) echo 'about to crash'; kill -SEGV $$;;\n"
    "  memostale) cmp -s .terraform/tag zzz_terrace.auto.tfvars || {"
    " echo 'Error: Module source has changed'; echo 'Run \"tofu init\".';"
    " exit 1; }; echo \"made: $(cat .terraform/made)\";;\n"
    "  memo*) echo \"made: $(cat .terraform/made)\";;\n"
    "  fail) echo 'Error: bad config'; exit 1;;\n"
    "  hang) echo 'hanging'; sleep 600; echo 'woke';;\n"
    "  ignoreint) trap '' INT; echo 'ignoring'; sleep 600;;\n"
    "  graceful) trap 'echo Interrupt received; echo stopping; exit 1' INT;"
    " echo 'hanging'; sleep 600 & wait;;\n"
    "  secret)\n"
    "    printf 'env secret: %s\\n' \"$SECRET_ENV\"\n"
    "    printf 'split: hunter2-sec'; sleep 0.4; printf 'ret-value end\\n'\n"
    "    cat zzz_terrace.auto.tfvars; cat \"$TF_CLI_CONFIG_FILE\";;\n"
    "  env) env | sort; cat zzz_terrace_override.tf;;\n"
    "  roots) echo \"file=$SSL_CERT_FILE\"; echo \"dir=${SSL_CERT_DIR-unset}\";"
    " head -n 1 \"$SSL_CERT_FILE\" | sed 's/^/first: /';"
    " grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\" | sed 's/^/certs: /';"
    " [ -e \"${SSL_CERT_DIR:-/}\" ] || echo 'dir: absent';;\n"
    "  pwd) echo \"cwd=$(pwd)\";;\n"
    "  escape) echo x > /var/tmp/terrace-executor-escape && echo WROTE;"
    " echo x > \"$HOME/home-ok\" && echo HOME-WRITABLE;"
    " echo x > /tmp/tmp-ok && echo TMP-WRITABLE;"
    " echo \"uid=$(id -u)\"; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):'"
    " /proc/self/status;"
    " ls \"$FAKE_DATA\" >/dev/null 2>&1 && echo DATA-VISIBLE;"
    " cat \"$FAKE_DATA/secret\" 2>/dev/null;"
    " unshare -U true 2>/dev/null && echo UNSHARED;"
    " mount -t tmpfs none /tmp 2>/dev/null && echo MOUNTED;"
    " echo x > /usr/escape 2>/dev/null && echo USR-WRITABLE;"
    " for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null"
    " | tr '\\0' ' '; echo; done | grep -c 'test_[e]xecutor'"
    " | sed 's/^/host-processes=/';;\n"
    "  cachewrite) echo poison > \"$TF_PLUGIN_CACHE_DIR/marker\" &&"
    " echo CACHE-WRITTEN;;\n"
    "  cacheread) ls -a \"$TF_PLUGIN_CACHE_DIR\" | sed 's/^/cache: /';;\n"
    "  memhog) head -c 1073741824 /dev/zero | tail || exit 1;;\n"
    "  forkbomb) i=0; while [ $i -lt 400 ]; do sleep 30 & i=$((i+1));"
    " done; wait;;\n"
    "  diskfill) for i in 1 2 3 4 5 6 7 8; do head -c 16777216 /dev/zero"
    " > big$i; done; echo 'filled';;\n"
    "  fill) head -c 4194304 /dev/zero > \"$out\" || { echo 'disk full';"
    " exit 1; };;\n"
    "  esac\n"
    "  echo 'binary plan' > \"$out\"\n"
    "  [ \"$mode\" = nosummary ] ||"
    " echo 'Plan: 1 to add, 0 to change, 0 to destroy.'\n"
    "  case \" $* \" in *' -detailed-exitcode '*) exit 2;; esac\n"
    "  exit 0;;\n"
    "providers)\n"
    "  echo \"providers args: $*\" >&2\n"
    "  echo '{\"format_version\":\"1.0\",\"provider_schemas\":{}}'\n"
    "  exit 0;;\n"
    "show)\n"
    "  [ \"$mode\" = showfail ] && { echo 'show exploded' >&2; exit 1; }\n"
    "  echo '{\"format_version\":\"1.2\",\"resource_changes\":['\n"
    "  echo '{\"address\":\"a\",\"change\":{\"actions\":[\"create\"]}},'\n"
    "  echo '{\"address\":\"b\",\"change\":{\"actions\":[\"delete\","
    "\"create\"]}},'\n"
    "  echo '{\"address\":\"c\",\"change\":{\"actions\":[\"update\"]}},'\n"
    "  echo '{\"address\":\"d\",\"change\":{\"actions\":[\"no-op\"],"
    "\"importing\":{\"id\":\"x\"}}}]}'\n"
    "  exit 0;;\n"
    "apply)\n"
    "  for a in \"$@\"; do last=\"$a\"; done\n"
    "  case \"$mode:$last\" in warmdie:/terrace/warm/*) exit 3;; esac\n"
    "  # as tofu: the CLI config first, opened to see it is there, then read\n"
    "  exec 3<\"$TF_CLI_CONFIG_FILE\"; exec 3<&-\n"
    "  cfg=$(cat \"$TF_CLI_CONFIG_FILE\")\n"
    "  echo \"applying $*\"\n"
    "  echo \"plan: $(cat \"$last\")\"\n"
    "  case \"$(cat \"$last\")\" in 'saved plan'|'binary plan') ;;\n"
    "  *) echo 'wrong plan'; exit 1;; esac\n"
    "  case \"$cfg\" in *run-token-SECRET*)"
    " echo 'config has the plan token';; esac\n"
    "  case \"$cfg\" in *apply-token-OTHER*)"
    " echo 'config has the apply token';; esac\n"
    "  printf '\\033[0m\\033[1m\\033[32mApply complete! Resources: 2 added, "
    "1 changed, 1 destroyed.\\033[0m\\n'\n"
    "  exit 0;;\n"
    "esac\n"
    "echo \"unknown command $cmd\" >&2; exit 2\n";

/* ---- the fake job API -------------------------------------------------- */

struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job job;
    bool handed, finished;
    struct job_result res;
    char error[512];
    struct buf log;
    int appends;
    int heartbeats;
    const char *cancel_when; /* log text that triggers a cancel */
    int cancel_level;
    bool escalate; /* then force-cancel 700 ms later */
    int64_t cancel_at;
    const char *lose_when; /* log text after which heartbeats say the
                              lease is gone (TR_ERR_NOT_FOUND) */
    int outage;            /* this many heartbeats, appends and finishes
                              fail as with the database out of reach */
    int outage_hits;
    bool ack_lost;       /* an append in the outage is stored, its reply lost */
    int log_gaps;        /* appends that started past the log's end */
    char log_job[64];    /* the job whose appends F.log takes now */
    size_t log_base;     /* where that job's bytes start in F.log */
    const char *tarball; /* served by fetch_config */
    char tarball2[256];  /* served to job 2 instead, when set */
    size_t fill_bytes;   /* fetch_config writes this many instead */
    char plan_seen[64];  /* res.plan_file's content at finish */
    char json_seen[1024];
    char schemas_seen[256];
    char attached_seen[1024]; /* the file attach_json() was given */
    int attaches;
    int finishes_at_attach; /* F.finishes when it came */
    bool plan_exists;
    /* a second job, handed out once the first finished */
    struct job job2;
    int njobs, finishes;
    bool handed2;
    int fetch_configs, fetch_plans;
    bool tamper;        /* overwrite kept plan files before job 2 */
    char drop_dir[256]; /* removed before job 2, when set */
    bool run_ended;     /* run_final() answers true */
    char work_dir[256]; /* DATA/work */
};

static struct fake F;
static char tmp_root[64];
static char tool_path[128];
static char tool_sha[65];
static char small_fs[128]; /* 1 MiB tmpfs, or "" */

/* True when runs here go into bubblewrap. */
static bool sandboxed(void)
{
    struct sandbox *sb = NULL;
    struct tr_errbuf eb = {{0}};
    struct sandbox_opts o = {.run_uid = 1000000000, .run_gid = 1000000000};
    if (sandbox_new(&o, &sb, &eb) != TR_OK)
        return false;
    bool isolated = sandbox_isolated(sb);
    sandbox_free(sb);
    return isolated;
}

/* Overwrites every plan file kept under DATA/work. */
static void tamper_plans(void)
{
    DIR *d = opendir(F.work_dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof(p), "%s/%s/plan.tfplan", F.work_dir, de->d_name);
        if (access(p, F_OK) == 0)
            assert_true(ut_write_file(p, "evil plan\n"));
    }
    if (d != NULL)
        closedir(d);
}

static tr_err f_claim(void *ctx, struct arena *a, const char *node, int wait_ms,
                      struct job *out, struct tr_errbuf *eb)
{
    (void)ctx;
    (void)a;
    (void)node;
    pthread_mutex_lock(&F.mu);
    bool give = !F.handed, second = false;
    F.handed = true;
    if (give) {
        *out = F.job;
    } else if (F.njobs > 1 && F.finishes == 1 && !F.handed2) {
        give = second = F.handed2 = true;
        *out = F.job2;
    }
    pthread_mutex_unlock(&F.mu);
    if (second && F.tamper)
        tamper_plans();
    if (second && F.drop_dir[0] != '\0')
        ut_rmtree(F.drop_dir);
    if (give)
        return TR_OK;
    usleep((useconds_t)(wait_ms > 50 ? 50 : wait_ms) * 1000);
    return tr_fail(eb, TR_ERR_NOT_FOUND, "no job");
}

static tr_err f_heartbeat(void *ctx, const char *job_id, int *cancel,
                          struct tr_errbuf *eb)
{
    (void)ctx;
    (void)job_id;
    (void)eb;
    pthread_mutex_lock(&F.mu);
    F.heartbeats++;
    *cancel = 0;
    if (F.outage_hits < F.outage) {
        F.outage_hits++;
        pthread_mutex_unlock(&F.mu);
        return tr_fail(eb, TR_ERR_UNAVAILABLE, "database unreachable");
    }
    if (F.lose_when != NULL && F.log.data != NULL &&
        strstr(F.log.data, F.lose_when) != NULL) {
        pthread_mutex_unlock(&F.mu);
        return tr_fail(eb, TR_ERR_NOT_FOUND, "job is no longer running");
    }
    if (F.cancel_when != NULL && F.log.data != NULL &&
        strstr(F.log.data, F.cancel_when) != NULL) {
        if (F.cancel_at == 0)
            F.cancel_at = util_now_ms();
        *cancel = F.cancel_level;
        if (F.escalate && util_now_ms() - F.cancel_at > 700)
            *cancel = 2;
    }
    pthread_mutex_unlock(&F.mu);
    return TR_OK;
}

/* Stores as the server does (store_log_append): bytes before F.log's end
 * are not stored again.  An outage either refuses the append or, with
 * F.ack_lost, stores it and loses the acknowledgement. */
static tr_err f_append(void *ctx, const char *job_id, const char *data,
                       size_t len, uint64_t offset, struct tr_errbuf *eb)
{
    (void)ctx;
    pthread_mutex_lock(&F.mu);
    if (strcmp(F.log_job, job_id) != 0) {
        snprintf(F.log_job, sizeof(F.log_job), "%s", job_id);
        F.log_base = F.log.len;
    }
    bool down = F.outage_hits < F.outage;
    if (down && !F.ack_lost) {
        F.outage_hits++;
        pthread_mutex_unlock(&F.mu);
        return tr_fail(eb, TR_ERR_UNAVAILABLE, "database unreachable");
    }
    size_t have = F.log.len - F.log_base;
    if (offset > have)
        F.log_gaps++;
    size_t skip = offset < have ? have - (size_t)offset : 0;
    if (skip < len)
        buf_append(&F.log, data + skip, len - skip);
    if (down) {
        F.outage_hits++;
        pthread_mutex_unlock(&F.mu);
        return tr_fail(eb, TR_ERR_UNAVAILABLE, "reply lost");
    }
    F.appends++;
    pthread_mutex_unlock(&F.mu);
    return TR_OK;
}

static tr_err copy_file(const char *from, const char *to, struct tr_errbuf *eb)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    tr_err e = TR_OK;
    if (in == NULL || out == NULL)
        e = tr_fail(eb, TR_ERR_IO, "cannot copy %s", from);
    char chunk[4096];
    size_t n;
    while (e == TR_OK && (n = fread(chunk, 1, sizeof(chunk), in)) > 0)
        if (fwrite(chunk, 1, n, out) != n)
            e = tr_fail(eb, TR_ERR_IO, "write: %s", strerror(errno));
    if (in != NULL)
        fclose(in);
    if (out != NULL && fclose(out) != 0 && e == TR_OK)
        e = tr_fail(eb, TR_ERR_IO, "write: %s", strerror(errno));
    return e;
}

static tr_err f_fetch_config(void *ctx, const char *job_id, const char *dest,
                             struct tr_errbuf *eb)
{
    (void)ctx;
    (void)job_id;
    pthread_mutex_lock(&F.mu);
    F.fetch_configs++;
    pthread_mutex_unlock(&F.mu);
    if (F.fill_bytes > 0) {
        FILE *f = fopen(dest, "wb");
        if (f == NULL)
            return tr_fail(eb, TR_ERR_IO, "open: %s", strerror(errno));
        char zero[4096] = {0};
        tr_err e = TR_OK;
        for (size_t n = 0; e == TR_OK && n < F.fill_bytes; n += sizeof(zero))
            if (fwrite(zero, 1, sizeof(zero), f) != sizeof(zero))
                e = tr_fail(eb, TR_ERR_IO, "write: %s", strerror(errno));
        if (fclose(f) != 0 && e == TR_OK)
            e = tr_fail(eb, TR_ERR_IO, "write: %s", strerror(errno));
        return e;
    }
    pthread_mutex_lock(&F.mu);
    const char *from =
        F.handed2 && F.tarball2[0] != '\0' ? F.tarball2 : F.tarball;
    pthread_mutex_unlock(&F.mu);
    return copy_file(from, dest, eb);
}

static tr_err f_fetch_plan(void *ctx, const char *job_id, const char *dest,
                           struct tr_errbuf *eb)
{
    (void)ctx;
    (void)job_id;
    pthread_mutex_lock(&F.mu);
    F.fetch_plans++;
    pthread_mutex_unlock(&F.mu);
    return ut_write_file(dest, "saved plan\n")
               ? TR_OK
               : tr_fail(eb, TR_ERR_IO, "cannot write the plan");
}

static void slurp(const char *path, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f == NULL)
        return;
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
    fclose(f);
}

static tr_err f_finish(void *ctx, const char *job_id,
                       const struct job_result *res, struct tr_errbuf *eb)
{
    (void)ctx;
    (void)job_id;
    pthread_mutex_lock(&F.mu);
    if (F.outage_hits < F.outage) {
        F.outage_hits++;
        pthread_mutex_unlock(&F.mu);
        return tr_fail(eb, TR_ERR_UNAVAILABLE, "database unreachable");
    }
    F.res = *res;
    snprintf(F.error, sizeof(F.error), "%s", res->error ? res->error : "");
    F.res.error = F.error;
    F.plan_exists = res->plan_file && access(res->plan_file, R_OK) == 0;
    slurp(res->plan_file, F.plan_seen, sizeof(F.plan_seen));
    slurp(res->json_plan_file, F.json_seen, sizeof(F.json_seen));
    slurp(res->schemas_file, F.schemas_seen, sizeof(F.schemas_seen));
    F.finishes++;
    F.finished = F.finishes >= F.njobs;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
    return TR_OK;
}

static tr_err f_run_final(void *ctx, const char *run_id, bool *final,
                          struct tr_errbuf *eb)
{
    (void)ctx;
    (void)run_id;
    (void)eb;
    pthread_mutex_lock(&F.mu);
    *final = F.run_ended;
    pthread_mutex_unlock(&F.mu);
    return TR_OK;
}

static tr_err f_attach_json(void *ctx, const char *job_id, const char *path,
                            struct tr_errbuf *eb)
{
    (void)ctx;
    (void)job_id;
    (void)eb;
    pthread_mutex_lock(&F.mu);
    F.attaches++;
    F.finishes_at_attach = F.finishes;
    slurp(path, F.attached_seen, sizeof(F.attached_seen));
    pthread_mutex_unlock(&F.mu);
    return TR_OK;
}

static const struct job_api fake_api = {
    .claim = f_claim,
    .heartbeat = f_heartbeat,
    .append_log = f_append,
    .fetch_config = f_fetch_config,
    .fetch_plan = f_fetch_plan,
    .finish = f_finish,
    .run_final = f_run_final,
};

/* ---- configuration tarballs -------------------------------------------- */

struct entry {
    const char *name;
    const char *text; /* NULL: a directory */
};

static void make_tarball_at(const char *path, const struct entry *ents, int n,
                            time_t mtime)
{
    struct archive *a = archive_write_new();
    assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_mtime(e, mtime, 0);
        if (ents[i].text == NULL) {
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)strlen(ents[i].text));
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (ents[i].text != NULL)
            assert_int_equal(
                archive_write_data(a, ents[i].text, strlen(ents[i].text)),
                (la_ssize_t)strlen(ents[i].text));
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static void make_tarball(const char *path, const struct entry *ents, int n)
{
    make_tarball_at(path, ents, n, 0);
}

/* ---- fixture ----------------------------------------------------------- */

struct fx {
    char dir[128];  /* this test's directory */
    char data[192]; /* DATA */
    char tarball[192];
    char run_id[64];
    struct job_var vars[8];
    const char *targets[2];
    const char *replaces[1];
    const char *bwrap;              /* executor options */
    bool unsandboxed;               /* allow-unsandboxed-runs */
    int64_t mem_mb, tasks, disk_mb; /* run limits, 0: the defaults */
    bool no_gogc;                   /* run-gogc 0 */
    const char *mirror;
    int grace_ms;
    int keep_ms;     /* -1: the default */
    bool wait_empty; /* run_job(): the work dir empties before the stop */
    bool attach;     /* the fake API has attach_json() */
    struct job_var vars2[3];
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/t.XXXXXX", tmp_root);
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->data, sizeof(fx->data), "%s/data", fx->dir);
    snprintf(fx->tarball, sizeof(fx->tarball), "%s/config.tar.gz", fx->dir);
    mkdir(fx->data, 0700);
    unsigned char rnd[6];
    util_random(rnd, sizeof(rnd));
    snprintf(fx->run_id, sizeof(fx->run_id), "run-test%02x%02x%02x%02x%02x%02x",
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    struct entry ents[] = {
        {"main.tf", "# empty\n"}, {"sub", NULL}, {"sub/main.tf", "# sub\n"}};
    make_tarball(fx->tarball, ents, 3);
    fx->grace_ms = 500;
    fx->keep_ms = -1;
    pthread_mutex_lock(&F.mu);
    memset(&F.job2, 0, sizeof(F.job2));
    F.njobs = 1;
    F.finishes = F.fetch_configs = F.fetch_plans = 0;
    F.tamper = F.handed2 = F.run_ended = false;
    F.drop_dir[0] = F.tarball2[0] = '\0';
    snprintf(F.work_dir, sizeof(F.work_dir), "%s/work", fx->data);
    buf_free(&F.log);
    memset(&F.job, 0, sizeof(F.job));
    F.handed = F.finished = false;
    memset(&F.res, 0, sizeof(F.res));
    buf_init(&F.log, 0);
    F.appends = F.heartbeats = 0;
    F.cancel_when = NULL;
    F.cancel_level = 0;
    F.escalate = false;
    F.cancel_at = 0;
    F.lose_when = NULL;
    F.outage = F.outage_hits = 0;
    F.ack_lost = false;
    F.log_job[0] = '\0';
    F.log_base = 0;
    F.log_gaps = 0;
    F.tarball = fx->tarball;
    F.fill_bytes = 0;
    F.plan_seen[0] = F.json_seen[0] = F.schemas_seen[0] = '\0';
    F.attached_seen[0] = '\0';
    F.attaches = F.finishes_at_attach = 0;
    F.plan_exists = false;
    struct job *j = &F.job;
    j->id = "job-test1";
    j->phase = JOB_PLAN;
    j->run_id = fx->run_id;
    j->phase_id = "plan-test1";
    j->org = "acme";
    j->workspace = "web";
    j->workspace_id = "ws-test1";
    j->cv_id = "cv-test1";
    j->working_directory = "";
    j->tool_version = "1.2.3";
    j->tool_path = tool_path;
    j->tool_sha256 = tool_sha;
    j->token = "run-token-SECRET.atlasv1.abcdef";
    j->api_url = "https://127.0.0.1:8443";
    j->refresh = true;
    j->timeout_s = 60;
    j->vars = fx->vars;
    pthread_mutex_unlock(&F.mu);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    ut_rmtree(fx->dir);
    free(fx);
    return 0;
}

static void set_mode(struct fx *fx, const char *mode)
{
    int n = F.job.nvars;
    fx->vars[n] =
        (struct job_var){.key = "FAKE_MODE", .value = mode, .env = true};
    F.job.nvars = n + 1;
}

/* Processes whose environment holds TFE_RUN_ID=<run id>. */
static int job_processes(const char *run_id)
{
    char want[96];
    int wl = snprintf(want, sizeof(want), "TFE_RUN_ID=%s", run_id);
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], env[65536];
        snprintf(path, sizeof(path), "/proc/%s/environ", de->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, env, sizeof(env) - 1);
        close(fd);
        for (ssize_t i = 0; len > 0 && i + wl <= len; i++)
            if (memcmp(env + i, want, (size_t)wl) == 0 &&
                (i + wl == len || env[i + wl] == '\0')) {
                n++;
                break;
            }
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* Waits for the fake API's finish; false after 60 s. */
static bool wait_finished(void)
{
    pthread_mutex_lock(&F.mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    while (!F.finished &&
           pthread_cond_timedwait(&F.cv, &F.mu, &until) != ETIMEDOUT)
        ;
    bool done = F.finished;
    pthread_mutex_unlock(&F.mu);
    return done;
}

/* Runs F.job through an executor with one worker; returns the seconds it
 * took.  Checks that nothing of the job is left behind. */
/* An executor with one worker and fx's options, on the fake API. */
static struct executor *start_executor(struct fx *fx)
{
    struct executor_opts o;
    executor_defaults(&o);
    o.workers = 1;
    o.node = "test-node";
    o.data_dir = fx->data;
    o.bwrap = fx->bwrap;
    o.allow_unsandboxed = fx->unsandboxed;
    if (fx->mem_mb > 0)
        o.run_memory_mb = fx->mem_mb;
    if (fx->tasks > 0)
        o.run_tasks = fx->tasks;
    if (fx->disk_mb > 0)
        o.run_disk_mb = fx->disk_mb;
    if (fx->no_gogc)
        o.run_gogc = 0;
    o.provider_mirror = fx->mirror;
    o.grace_ms = fx->grace_ms;
    o.heartbeat_ms = 100;
    o.flush_ms = 50;
    o.claim_wait_ms = 50;
    if (fx->keep_ms >= 0)
        o.keep_ms = fx->keep_ms;
    struct executor *x = NULL;
    struct tr_errbuf eb = {{0}};
    struct job_api api = fake_api; /* copied by executor_start() */
    if (fx->attach)                /* as job_local.c and job_http.c have it */
        api.attach_json = f_attach_json;
    tr_err e = executor_start(&o, &api, &x, &eb);
    if (e != TR_OK)
        fail_msg("executor_start: %s", eb.msg);
    return x;
}

static double run_job(struct fx *fx)
{
    int64_t t0 = util_now_ms();
    struct executor *x = start_executor(fx);
    bool done = wait_finished();
    char work[256];
    snprintf(work, sizeof(work), "%s/work", fx->data);
    for (int64_t until = util_now_ms() + 5000; done && fx->wait_empty &&
                                               ut_count_entries(work) > 0 &&
                                               util_now_ms() < until;)
        usleep(10000);
    bool emptied = ut_count_entries(work) == 0;
    executor_stop(x);
    double secs = (double)(util_now_ms() - t0) / 1000.0;
    if (getenv("TEST_EXECUTOR_VERBOSE") != NULL)
        fprintf(stderr, "--- %.2f s, %d appends, outcome %d (%s); log:\n%s\n",
                secs, F.appends, F.res.outcome, F.error, F.log.data);
    if (!done)
        fail_msg("the job did not finish; log:\n%s", F.log.data);
    if (fx->wait_empty && !emptied)
        fail_msg("the kept directory was not removed in time");
    assert_int_equal(ut_count_entries(work), 0);
    assert_int_equal(job_processes(fx->run_id), 0);
    return secs;
}

static bool log_has(const char *s)
{
    return F.log.data != NULL && strstr(F.log.data, s) != NULL;
}

#define assert_log_has(s)                                                      \
    do {                                                                       \
        if (!log_has(s))                                                       \
            fail_msg("log lacks \"%s\"; log:\n%s", (s), F.log.data);           \
    } while (0)
#define assert_log_lacks(s)                                                    \
    do {                                                                       \
        if (log_has(s))                                                        \
            fail_msg("log has \"%s\"; log:\n%s", (s), F.log.data);             \
    } while (0)

/* ---- tests ------------------------------------------------------------- */

static void test_plan_ok(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    fx->targets[0] = "null_resource.a";
    fx->targets[1] = "module.m";
    fx->replaces[0] = "null_resource.b";
    F.job.targets = fx->targets;
    F.job.ntargets = 2;
    F.job.replaces = fx->replaces;
    F.job.nreplaces = 1;
    F.job.is_destroy = true;
    F.job.refresh = false;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_true(F.res.has_changes);
    assert_int_equal(F.res.additions, 2);
    assert_int_equal(F.res.changes, 1);
    assert_int_equal(F.res.destructions, 1);
    assert_int_equal(F.res.imports, 1);
    assert_true(F.plan_exists);
    assert_string_equal(F.plan_seen, "binary plan\n");
    assert_null(F.res.schemas_file);
    assert_string_equal(F.schemas_seen, "");
    assert_non_null(strstr(F.json_seen, "\"resource_changes\""));
    /* the banner the CLI expects, then plan output; init kept back */
    assert_int_equal(strncmp(F.log.data, "OpenTofu v1.2.3\non linux_", 25), 0);
    assert_log_has("Initializing plugins and modules...\n");
    assert_log_has("plan args: -input=false -lock=false -out=");
    assert_log_has("/plan.tfplan -destroy -refresh=false "
                   "-target=null_resource.a -target=module.m "
                   "-replace=null_resource.b\n");
    assert_log_has("Plan: 1 to add");
    assert_log_lacks("init output");
}

/* A plan rendered from its JSON also reports the provider schemas;
 * others skip that tofu process. */
static void test_plan_schemas(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    F.job.want_schemas = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_non_null(F.res.schemas_file);
    assert_string_equal(
        F.schemas_seen,
        "{\"format_version\":\"1.0\",\"provider_schemas\":{}}\n");
}

static void test_apply_ok(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    F.job.phase = JOB_APPLY;
    F.job.phase_id = "apply-test1";
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.res.additions, 2);
    assert_int_equal(F.res.changes, 1);
    assert_int_equal(F.res.destructions, 1);
    assert_null(F.res.plan_file);
    assert_log_has("applying -input=false -lock=false -auto-approve /");
    assert_log_has("Apply complete!");
    assert_log_lacks("wrong plan");
    /* the CLI skips the first three lines of an apply log */
    const char *p = F.log.data;
    for (int i = 0; i < 3 && p != NULL; i++)
        p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL;
    assert_non_null(p);
    assert_int_equal(strncmp(p, "applying", 8), 0);
}

/* The counts of tofu's plan summary line, coloured or not; anything that
 * does not read as one is refused. */
static void test_plan_summary(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    static const struct {
        const char *out;
        bool ok;
        int imp, add, chg, del;
    } cases[] = {
        {"x\nPlan: 20 to add, 0 to change, 20 to destroy.\n", true, 0, 20, 0,
         20},
        {"\033[0m\033[1mPlan:\033[0m 1 to import, 2 to add, 3 to change, 4 "
         "to destroy.\n",
         true, 1, 2, 3, 4},
        {"Plan: 0 to add, 0 to change, 1 to destroy, 2 to forget.\n", true, 0,
         0, 0, 1},
        {"Plan: 9 to add, 9 to change, 9 to destroy.\nmore\nPlan: 1 to add, "
         "2 to change, 3 to destroy.\nChanges to Outputs:\n",
         true, 0, 1, 2, 3},
        {"output: Plan: 5 to add, 0 to change, 0 to destroy.\n", false, 0, 0, 0,
         0},
        {"Plan: *** to add, 0 to change, 0 to destroy.\n", false, 0, 0, 0, 0},
        {"Plan: 1 to add, 0 to change.\n", false, 0, 0, 0, 0},
        {"Plan: 1 to add, 0 to change, 0 to destroy\n", false, 0, 0, 0, 0},
        {"Plan: 1 to eat, 0 to change, 0 to destroy.\n", false, 0, 0, 0, 0},
        {"No changes. Your infrastructure matches the configuration.\n", false,
         0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct job_result r = {.additions = -1};
        bool ok = tofu_plan_summary(a, cases[i].out, strlen(cases[i].out), &r);
        if (ok != cases[i].ok)
            fail_msg("case %zu: %s", i, ok ? "read" : "refused");
        if (!ok) {
            assert_int_equal(r.additions, -1);
            continue;
        }
        assert_true(r.has_changes);
        assert_int_equal(r.imports, cases[i].imp);
        assert_int_equal(r.additions, cases[i].add);
        assert_int_equal(r.changes, cases[i].chg);
        assert_int_equal(r.destructions, cases[i].del);
    }
    arena_destroy(a);
}

/* A plan whose run applies at once (defer_json) takes its counts from
 * tofu's summary and leaves `show -json` to the apply; without a summary
 * it makes the JSON itself as before. */
static void test_plan_deferred_json(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    F.job.defer_json = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_true(F.res.has_changes);
    assert_int_equal(F.res.additions, 1);
    assert_int_equal(F.res.changes, 0);
    assert_int_equal(F.res.destructions, 0);
    assert_null(F.res.json_plan_file);
    assert_string_equal(F.json_seen, "");
    assert_string_equal(F.plan_seen, "binary plan\n");
    assert_log_has(" -detailed-exitcode\n");
    teardown(state);
    setup(state);
    fx = *state;
    set_mode(fx, "nosummary");
    F.job.defer_json = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.res.additions, 2); /* from the JSON */
    assert_non_null(F.res.json_plan_file);
    assert_non_null(strstr(F.json_seen, "\"resource_changes\""));
}

/* An apply of a plan stored without its JSON (make_json) makes it beside
 * the apply and reports it; a failure of `show -json` is in the log and
 * leaves the apply finished. */
static void test_apply_makes_json(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    F.job.phase = JOB_APPLY;
    F.job.phase_id = "apply-test1";
    F.job.make_json = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.res.additions, 2);
    assert_non_null(F.res.json_plan_file);
    assert_non_null(strstr(F.json_seen, "\"resource_changes\""));
    assert_log_lacks("JSON plan could not");
    teardown(state);
    setup(state);
    fx = *state;
    set_mode(fx, "showfail");
    F.job.phase = JOB_APPLY;
    F.job.phase_id = "apply-test1";
    F.job.make_json = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_null(F.res.json_plan_file);
    assert_log_has("terrace: the JSON plan could not be made: tofu show "
                   "exited with status 1\n");
    assert_log_has("show exploded");
    assert_log_has("Apply complete!");
}

/* With attach_json() in the API, the apply finishes without its JSON
 * plan and `show -json` runs after the apply, its JSON sent after the
 * finish; a failure of `show -json` then sends nothing and leaves the
 * apply finished. */
static void test_apply_json_after_finish(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    fx->attach = true;
    F.job.phase = JOB_APPLY;
    F.job.phase_id = "apply-test1";
    F.job.make_json = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.res.additions, 2);
    assert_null(F.res.json_plan_file);
    assert_int_equal(F.attaches, 1);
    assert_int_equal(F.finishes_at_attach, 1);
    assert_non_null(strstr(F.attached_seen, "\"resource_changes\""));
    assert_log_has("Apply complete!");
    teardown(state);
    setup(state);
    fx = *state;
    set_mode(fx, "showfail");
    fx->attach = true;
    F.job.phase = JOB_APPLY;
    F.job.phase_id = "apply-test1";
    F.job.make_json = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.attaches, 0);
    assert_log_has("Apply complete!");
}

/* Queues the apply of F.job's run as the second job, with its own token
 * and FAKE_MODE. */
static void queue_apply(struct fx *fx, const char *mode)
{
    F.job2 = F.job;
    F.job2.id = "job-test2";
    F.job2.phase = JOB_APPLY;
    F.job2.phase_id = "apply-test1";
    F.job2.token = "apply-token-OTHER.atlasv1.fedcba";
    fx->vars2[0] =
        (struct job_var){.key = "FAKE_MODE", .value = mode, .env = true};
    F.job2.vars = fx->vars2;
    F.job2.nvars = 1;
    F.njobs = 2;
}

/* Structured run output: plan and apply write JSON logs. */
static void test_structured_logs(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    F.job.structured = true;
    queue_apply(fx, "ok");
    F.job2.structured = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("plan args: -input=false -lock=false -json -out=");
    assert_log_has("applying -input=false -lock=false -auto-approve -json /");
}

/* ---- tofu init remembered per workspace (init_memo.c) ------------------ */

/* Two plans of the same workspace, one after the other in one executor,
 * in FAKE_MODE mode, the terraform variable "which" set to which1 and
 * which2 (NULL: unset); true if the second plan's .terraform is the one
 * the first plan's init made (the fake init writes a random "made"). */
static struct job_var memo_env; /* an environment variable of both plans */

static bool init_reused(struct fx *fx, const char *mode, const char *which1,
                        const char *which2)
{
    set_mode(fx, mode);
    if (memo_env.key != NULL)
        fx->vars[F.job.nvars++] = memo_env;
    if (which1 != NULL)
        fx->vars[F.job.nvars++] =
            (struct job_var){.key = "which", .value = which1};
    F.job.speculative = true;
    F.job2 = F.job;
    F.job2.id = "job-test2";
    F.job2.phase_id = "plan-test2";
    int n = 0;
    fx->vars2[n++] =
        (struct job_var){.key = "FAKE_MODE", .value = mode, .env = true};
    if (which2 != NULL)
        fx->vars2[n++] = (struct job_var){.key = "which", .value = which2};
    if (memo_env.key != NULL)
        fx->vars2[n++] = memo_env;
    F.job2.vars = fx->vars2;
    F.job2.nvars = n;
    F.njobs = 2;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    const char *p = F.log.data != NULL ? strstr(F.log.data, "made: ") : NULL;
    const char *q = p != NULL ? strstr(p + 6, "made: ") : NULL;
    if (p == NULL || q == NULL)
        fail_msg("two plans did not both run; log:\n%s", F.log.data);
    size_t len = strcspn(p + 6, "\n");
    assert_true(len > 0);
    return strncmp(p + 6, q + 6, len) == 0 && q[6 + len] == '\n';
}

/* The same configuration and variables: the second plan skips init and
 * takes the first one's directory (its local module included). */
static void test_init_memo_reused(void **state)
{
    assert_true(init_reused(*state, "memo", NULL, NULL));
}

/* What init chose or fetched itself is never remembered: a lock file it
 * wrote, a remote module, a registry module, a link out of the provider
 * cache. */
static void test_init_memo_lock_written(void **state)
{
    assert_false(init_reused(*state, "memolock", NULL, NULL));
}

static void test_init_memo_remote_module(void **state)
{
    assert_false(init_reused(*state, "memoremote", NULL, NULL));
}

static void test_init_memo_registry_module(void **state)
{
    assert_false(init_reused(*state, "memoregistry", NULL, NULL));
}

static void test_init_memo_foreign_link(void **state)
{
    assert_false(init_reused(*state, "memolink", NULL, NULL));
}

/* TF_CLI_ARGS_init (say -upgrade) asks init to choose afresh: never
 * remembered. */
static void test_init_memo_cli_args(void **state)
{
    memo_env = (struct job_var){
        .key = "TF_CLI_ARGS_init", .value = "-upgrade", .env = true};
    bool reused = init_reused(*state, "memo", NULL, NULL);
    memo_env = (struct job_var){0};
    assert_false(reused);
}

/* A lock file that comes with the configuration pins the providers: an
 * init that leaves it as it was is remembered. */
static void test_init_memo_config_lock(void **state)
{
    struct fx *fx = *state;
    struct entry ents[] = {{"main.tf", "# empty\n"},
                           {".terraform.lock.hcl", "# pinned\n"},
                           {"empty", NULL}};
    make_tarball(fx->tarball, ents, 3);
    assert_true(init_reused(fx, "memolock", NULL, NULL));
}

/* The second plan gets the setup's files, sub/main.tf holding sub,
 * packed with the given timestamps. */
static void second_config(struct fx *fx, const char *sub, time_t mtime)
{
    struct entry ents[] = {
        {"main.tf", "# empty\n"}, {"sub", NULL}, {"sub/main.tf", sub}};
    snprintf(F.tarball2, sizeof(F.tarball2), "%s/config2.tar.gz", fx->dir);
    make_tarball_at(F.tarball2, ents, 3, mtime);
}

/* The key is the configuration's content, not its tarball's bytes: the
 * same files packed again with other timestamps hit, a changed file
 * misses. */
static void test_init_memo_repacked(void **state)
{
    second_config(*state, "# sub\n", 1700000000);
    assert_true(init_reused(*state, "memo", NULL, NULL));
}

static void test_init_memo_config_changed(void **state)
{
    second_config(*state, "# Sub\n", 0);
    assert_false(init_reused(*state, "memo", NULL, NULL));
}

/* Provider links are taken only while their target is in the cache. */
static void test_init_memo_cache_link(void **state)
{
    assert_true(init_reused(*state, "memocache", NULL, NULL));
}

static void test_init_memo_cache_gone(void **state)
{
    struct fx *fx = *state;
    snprintf(F.drop_dir, sizeof(F.drop_dir), "%s/provider-cache/acme/p",
             fx->data);
    assert_false(init_reused(fx, "memocache", NULL, NULL));
}

/* Terraform variables are part of the key only when a line names a
 * module source or version beside one; then another value misses. */
static void var_source_config(struct fx *fx)
{
    struct entry ents[] = {
        {"main.tf", "module \"m\" {\n  source = \"./m/${var.which}\"\n}\n"}};
    make_tarball(fx->tarball, ents, 1);
}

static void test_init_memo_vars(void **state)
{
    var_source_config(*state);
    assert_false(init_reused(*state, "memo", "a", "b"));
}

static void test_init_memo_vars_same(void **state)
{
    var_source_config(*state);
    assert_true(init_reused(*state, "memo", "a", "a"));
}

static void test_init_memo_vars_unused(void **state)
{
    assert_true(init_reused(*state, "memo", "a", "b"));
}

/* A remembered directory that does not fit (the fake plan fails naming
 * init when its init saw other variables): the plan says so, runs init
 * and plans again, and succeeds. */
static void test_init_memo_stale(void **state)
{
    struct fx *fx = *state;
    assert_false(init_reused(fx, "memostale", "a", "b"));
    assert_log_has("Error: Module source has changed");
    assert_log_has("terrace: the initialization reused from an earlier plan "
                   "does not fit this one; running tofu init and planning "
                   "again");
}

/* The apply on the node that planned runs in the plan's directory: no
 * plan fetch, no second configuration, no init (the apply's FAKE_MODE
 * makes init fail), and the CLI config carries the apply's token. */
static void test_apply_reuses_plan_dir(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    queue_apply(fx, "initfail");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.fetch_configs, 1);
    assert_int_equal(F.fetch_plans, 0);
    assert_log_has("plan: binary plan\n");
    assert_log_has("Apply complete!");
    assert_log_lacks("config has the plan token");
}

/* A kept plan file that changed is not applied: the apply starts afresh
 * with the stored plan. */
static void test_apply_kept_plan_changed(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    queue_apply(fx, "ok");
    F.tamper = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.fetch_configs, 2);
    assert_int_equal(F.fetch_plans, 1);
    assert_log_has("plan: saved plan\n");
    assert_log_lacks("evil");
}

/* ---- the apply started beside its plan (warm.c) ----------------------- */

#define WARM_APPLY                                                             \
    "applying -input=false -lock=false -auto-approve "                         \
    "/terrace/warm/plan.tfplan\n"
#define COLD_APPLY                                                             \
    "applying -input=false -lock=false -auto-approve "                         \
    "/terrace/job/plan.tfplan\n"

/* A run that applies at once: its apply's process starts during the plan
 * and, when the apply job comes, goes on with the verified plan and the
 * apply's own CLI config (its token, not the plan's). */
static void test_apply_warm(void **state)
{
    struct fx *fx = *state;
    if (!sandboxed())
        skip();
    set_mode(fx, "ok");
    F.job.defer_json = true;
    queue_apply(fx, "ok");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.fetch_plans, 0);
    assert_log_has(WARM_APPLY);
    assert_log_has("plan: binary plan\n");
    assert_log_has("config has the apply token");
    assert_log_lacks("config has the plan token");
    assert_log_has("Apply complete!");
}

/* The apply job would start another command (its environment changed):
 * the early process is killed and the apply starts as usual. */
static void test_apply_warm_other_env(void **state)
{
    struct fx *fx = *state;
    if (!sandboxed())
        skip();
    set_mode(fx, "ok");
    F.job.defer_json = true;
    queue_apply(fx, "ok2");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has(COLD_APPLY);
    assert_log_lacks(WARM_APPLY);
    assert_log_has("config has the apply token");
}

/* The early process died before it read its configuration: the apply
 * starts as usual. */
static void test_apply_warm_gone(void **state)
{
    struct fx *fx = *state;
    if (!sandboxed())
        skip();
    set_mode(fx, "warmdie");
    F.job.defer_json = true;
    queue_apply(fx, "warmdie");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has(COLD_APPLY);
    assert_log_has("Apply complete!");
}

/* No early apply for a run that waits for confirmation, and none left
 * behind by a plan that fails or whose apply never comes (run_job checks
 * that the work directory empties and no process of the run is left). */
static void test_apply_warm_not_left(void **state)
{
    struct fx *fx = *state;
    if (!sandboxed())
        skip();
    set_mode(fx, "ok");
    queue_apply(fx, "ok");
    run_job(fx);
    assert_log_has(COLD_APPLY);
    teardown(state);
    setup(state);
    fx = *state;
    set_mode(fx, "fail");
    F.job.defer_json = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    teardown(state);
    setup(state);
    fx = *state;
    set_mode(fx, "ok");
    F.job.defer_json = true;
    fx->keep_ms = 200;
    fx->wait_empty = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
}

/* Speculative plans are never kept; nor is anything when keeping is
 * off. */
static void test_plan_dir_not_kept(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    F.job.speculative = true;
    queue_apply(fx, "ok");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.fetch_plans, 1);
    assert_log_has("plan: saved plan\n");
}

static void test_plan_dir_keep_off(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    fx->keep_ms = 0;
    queue_apply(fx, "ok");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.fetch_plans, 1);
}

/* A kept directory goes as soon as its run ends without the apply
 * (discarded, say), long before keep_ms. */
static void test_plan_dir_run_ended(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    F.run_ended = true;
    fx->wait_empty = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
}

/* A kept directory whose apply never comes is removed after keep_ms by
 * the workers' sweep, while the executor runs. */
static void test_plan_dir_expires(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    fx->keep_ms = 200;
    fx->wait_empty = true;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
}

static void test_env_clean(void **state)
{
    struct fx *fx = *state;
    setenv("TERRACE_LEAK_CHECK", "leaked", 1);
    fx->vars[0] = (struct job_var){.key = "FOO", .value = "bar", .env = true};
    fx->vars[1] = (struct job_var){
        .key = "TF_FORCE_LOCAL_BACKEND", .value = "0", .env = true};
    fx->vars[2] =
        (struct job_var){.key = "bad name", .value = "x", .env = true};
    fx->vars[3] = (struct job_var){.key = "TF_LOG", .value = "", .env = true};
    F.job.nvars = 4;
    set_mode(fx, "env");
    run_job(fx);
    unsetenv("TERRACE_LEAK_CHECK");
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_lacks("TERRACE_LEAK_CHECK");
    assert_log_has("\nFOO=bar\n");
    assert_log_has("\nTF_FORCE_LOCAL_BACKEND=1\n");
    assert_log_has("ignoring environment variable TF_FORCE_LOCAL_BACKEND");
    assert_log_has("ignoring environment variable \"bad name\"");
    assert_log_has("\nTF_IN_AUTOMATION=1\n");
    assert_log_has("\nTF_INPUT=0\n");
    assert_log_has("\nTFE_RUN_ID=run-test");
    assert_log_has("\nTF_CLI_CONFIG_FILE=/");
    assert_log_has("\nTF_PLUGIN_CACHE_DIR=/");
    assert_log_has("\nTF_LOG=\n");
    assert_log_has("/.home\n");
    /* the override names Terrace, the organization and the workspace */
    assert_log_has("hostname     = \"127.0.0.1:8443\"");
    assert_log_has("organization = \"acme\"");
    assert_log_has("name = \"web\"");
}

/* ca.pem holds Terrace's CA and the host's bundle, and the run reads no
 * certificate directory (Go would parse every file of /etc/ssl/certs in
 * each tofu process), unless the workspace names one. */
static void test_roots(void **state)
{
    struct fx *fx = *state;
    const char *bundle = "/etc/ssl/certs/ca-certificates.crt";
    if (access(bundle, R_OK) != 0)
        skip();
    char ca[256];
    snprintf(ca, sizeof(ca), "%s/ca.pem", fx->dir);
    assert_true(ut_write_file(ca, "TEST CA\n"));
    F.job.ca_file = ca;
    set_mode(fx, "roots");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("first: TEST CA\n");
    assert_log_lacks("certs: 0\n");
    assert_log_has("/.no-cert-dir\n");
    assert_log_has("dir: absent\n");
    assert_log_has(sandboxed() ? "file=/terrace/job/ca.pem\n" : "/ca.pem\n");
}

/* The workspace's own certificate directory is kept. */
static void test_roots_own_dir(void **state)
{
    struct fx *fx = *state;
    fx->vars[0] = (struct job_var){
        .key = "SSL_CERT_DIR", .value = "/etc/ssl/certs", .env = true};
    F.job.nvars = 1;
    set_mode(fx, "roots");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("dir=/etc/ssl/certs\n");
    assert_log_lacks("ignoring environment variable SSL_CERT_DIR");
}

/* A run's Go processes get GOGC=800 and a memory limit of an eighth of
 * the run's memory each. */
static void test_go_gc(void **state)
{
    struct fx *fx = *state;
    fx->mem_mb = 2000;
    set_mode(fx, "env");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("\nGOGC=800\n");
    assert_log_has("\nGOMEMLIMIT=250MiB\n");
}

/* A workspace that sets GOGC keeps its own, and Terrace sets no
 * GOMEMLIMIT beside it (that limit with GOGC=100 would only slow large
 * processes). */
static void test_go_gc_own(void **state)
{
    struct fx *fx = *state;
    fx->vars[0] = (struct job_var){.key = "GOGC", .value = "150", .env = true};
    F.job.nvars = 1;
    set_mode(fx, "env");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("\nGOGC=150\n");
    assert_log_lacks("GOMEMLIMIT=");
    assert_log_lacks("ignoring environment variable GOGC");
}

/* run-gogc 0 leaves both to Go. */
static void test_go_gc_off(void **state)
{
    struct fx *fx = *state;
    fx->no_gogc = true;
    set_mode(fx, "env");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_lacks("GOGC=");
    assert_log_lacks("GOMEMLIMIT=");
}

static void test_secret_scrub(void **state)
{
    struct fx *fx = *state;
    fx->vars[0] = (struct job_var){
        .key = "password", .value = "hunter2-secret-value", .sensitive = true};
    fx->vars[1] = (struct job_var){.key = "SECRET_ENV",
                                   .value = "env-secret-xyz",
                                   .env = true,
                                   .sensitive = true};
    fx->vars[2] =
        (struct job_var){.key = "tmpl", .value = "${x} and %{y} \"q\" \\ \n"};
    fx->vars[3] =
        (struct job_var){.key = "list", .value = "[1, 2]", .hcl = true};
    fx->vars[4] = (struct job_var){
        .key = "quoted", .value = "a\"b-secret", .sensitive = true};
    F.job.nvars = 5;
    set_mode(fx, "secret");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_lacks("hunter2");
    assert_log_lacks("env-secret-xyz");
    assert_log_lacks("b-secret");
    assert_log_lacks("SECRET.atlasv1");
    assert_log_has("env secret: ***\n");
    assert_log_has("split: *** end\n");
    assert_log_has("password = \"***\"\n");
    assert_log_has("quoted = \"***\"\n");
    assert_log_has("tmpl = \"$${x} and %%{y} \\\"q\\\" \\\\ \\n\"\n");
    assert_log_has("list = [1, 2]\n");
    assert_log_has("credentials \"127.0.0.1:8443\" {\n  token = \"***\"\n}");
    assert_log_has("plugin_cache_dir = \"/");
}

/* Plain-http Terrace (TLS at a load balancer) and a provider mirror. */
static void test_cli_config_variants(void **state)
{
    struct fx *fx = *state;
    /* a mirror holding one provider: it is excluded from direct
     * installation, so an offline node never asks the registry for it */
    char mirror[256], prov[512];
    snprintf(mirror, sizeof(mirror), "%s/mirror", fx->dir);
    snprintf(prov, sizeof(prov), "%s/registry.opentofu.org/hashicorp/null",
             mirror);
    char cmd[640];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", prov);
    assert_int_equal(system(cmd), 0);
    fx->mirror = mirror;
    F.job.api_url = "http://terrace.internal:8080";
    char ca[256];
    snprintf(ca, sizeof(ca), "%s/ca.pem", fx->dir);
    assert_true(ut_write_file(ca, "not really a CA\n"));
    F.job.ca_file = ca;
    set_mode(fx, "secret");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("credentials \"terrace.internal:8080\" {");
    assert_log_has("host \"terrace.internal:8080\" {\n  services = {\n"
                   "    \"tfe.v2\" = \"http://terrace.internal:8080/api/v2/\"");
    char want[512];
    snprintf(want, sizeof(want),
             "provider_installation {\n  filesystem_mirror {\n"
             "    path = \"%s\"\n  }\n  direct {\n    exclude = "
             "[\"registry.opentofu.org/hashicorp/null\"]\n  }\n}",
             sandboxed() ? "/terrace/mirror" : mirror);
    assert_log_has(want);
}

/* The CLI config names Terrace's services as its discovery document
 * does, so tofu makes no discovery request (and no TLS handshake for it)
 * in each process. */
static void test_cli_config_names_services(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "secret");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("host \"127.0.0.1:8443\" {\n  services = {\n"
                   "    \"tfe.v2\" = \"https://127.0.0.1:8443/api/v2/\"\n"
                   "    \"tfe.v2.1\" = \"https://127.0.0.1:8443/api/v2/\"\n"
                   "    \"tfe.v2.2\" = \"https://127.0.0.1:8443/api/v2/\"\n"
                   "    \"state.v2\" = \"https://127.0.0.1:8443/api/v2/\"\n"
                   "  }\n}");
}

static void test_crash(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "crash");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_non_null(strstr(F.res.error, "killed by signal 11"));
    assert_log_has("about to crash");
    assert_log_has("signal 11 (SIGSEGV)");
}

static void test_plan_fails(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "fail");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_string_equal(F.res.error, "tofu plan exited with status 1");
    assert_log_has("Error: bad config");
    assert_log_has("exited with status 1");
    assert_false(F.plan_exists);
}

static void test_init_fails(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "initfail");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_string_equal(F.res.error, "tofu init exited with status 1");
    /* init output is shown when init fails */
    assert_log_has("init output");
    assert_log_has("init exploded");
    assert_log_lacks("plan args");
}

static void test_timeout(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "hang");
    F.job.timeout_s = 1;
    double secs = run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_string_equal(F.res.error, "plan timed out after 1 s");
    assert_log_has("hanging");
    assert_log_has("timed out after 1 s");
    assert_log_lacks("woke");
    assert_true(secs < 8);
}

static void test_timeout_ignores_sigint(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ignoreint");
    F.job.timeout_s = 1;
    fx->grace_ms = 300;
    double secs = run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_string_equal(F.res.error, "plan timed out after 1 s");
    assert_true(secs < 8);
}

static void test_cancel(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "graceful");
    F.cancel_when = "hanging";
    F.cancel_level = 1;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_CANCELED);
    /* tofu got SIGINT and its graceful output was still read */
    assert_log_has("Interrupt received");
    assert_log_has("stopping");
}

static void test_force_cancel(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ignoreint");
    F.cancel_when = "ignoring";
    F.cancel_level = 1;
    F.escalate = true;
    double secs = run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FORCE_CANCELED);
    assert_true(secs < 8);
}

/* A lost lease stops tofu with SIGINT (it writes its state), not SIGKILL. */
static void test_lease_lost_interrupts(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "graceful");
    F.lose_when = "hanging";
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_string_equal(F.res.error, "the job's lease was lost");
    assert_log_has("Interrupt received");
}

/* The server out of reach for a while: heartbeats, log chunks and the
 * outcome fail, then go through; the job ends as it would have, and no
 * output is lost. */
static void test_server_outage(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    pthread_mutex_lock(&F.mu);
    F.outage = 12;
    pthread_mutex_unlock(&F.mu);
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.outage_hits, 12);
    assert_log_has("Plan: 1 to add");
}

/* Appends that were stored but whose acknowledgement was lost are sent
 * again, with what came after them; the log holds every line once. */
static void test_lost_log_acks(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    pthread_mutex_lock(&F.mu);
    F.outage = 12;
    F.ack_lost = true;
    pthread_mutex_unlock(&F.mu);
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_int_equal(F.outage_hits, 12);
    assert_int_equal(F.log_gaps, 0);
    const char *first = strstr(F.log.data, "Plan: 1 to add");
    assert_non_null(first);
    if (strstr(first + 1, "Plan: 1 to add") != NULL)
        fail_msg("a line is in the log twice; log:\n%s", F.log.data);
    first = strstr(F.log.data, "Initializing plugins");
    assert_non_null(first);
    assert_null(strstr(first + 1, "Initializing plugins"));
}

static void test_checksum_mismatch(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    F.job.tool_sha256 =
        "0000000000000000000000000000000000000000000000000000000000000000";
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_string_equal(F.res.error, "tool checksum mismatch");
    assert_log_has("tool checksum mismatch");
    assert_log_lacks("plan args");
}

static void test_archive_attack(void **state)
{
    struct fx *fx = *state;
    struct entry ents[] = {{"main.tf", "# ok\n"},
                           {"../../../escaped.txt", "gotcha\n"},
                           {"../escaped2.txt", "gotcha\n"}};
    make_tarball(fx->tarball, ents, 3);
    set_mode(fx, "ok");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_non_null(strstr(F.res.error, "configuration was refused"));
    assert_log_lacks("plan args");
    char p[256];
    snprintf(p, sizeof(p), "%s/escaped.txt", fx->dir);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/work/job-test1/escaped2.txt", fx->data);
    assert_int_not_equal(access(p, F_OK), 0);
    assert_int_not_equal(access("/tmp/escaped.txt", F_OK), 0);
}

static void test_working_directory(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "pwd");
    F.job.working_directory = "sub/";
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("/src/sub\n");
}

/* A sandboxed plan job starts its tofu plan before the configuration is
 * there (early_plan_start): the plan goes on as that process once the
 * node hands it the CLI configuration, in the working directory it
 * changes to only then. */
static void test_plan_started_first(void **state)
{
    struct fx *fx = *state;
    if (!sandboxed())
        skip();
    set_mode(fx, "env");
    F.job.working_directory = "sub/";
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("\nTF_CLI_CONFIG_FILE=/terrace/start/terraform.rc\n");
    /* cat zzz_terrace_override.tf, from the working directory */
    assert_log_has("organization = \"acme\"");
    assert_log_has("Plan: 1 to add");
}

static void test_working_directory_bad(void **state)
{
    static const char *const bad[] = {"../x", "/etc", "sub/../..", "nope"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fx *fx = *state;
        if (i > 0) {
            teardown(state);
            setup(state);
            fx = *state;
        }
        set_mode(fx, "pwd");
        F.job.working_directory = bad[i];
        run_job(fx);
        assert_int_equal(F.res.outcome, JOB_ERRORED);
        assert_non_null(strstr(F.res.error, "working directory"));
        assert_log_lacks("cwd=");
    }
}

static void test_bad_variable_name(void **state)
{
    struct fx *fx = *state;
    fx->vars[0] = (struct job_var){.key = "no good", .value = "x"};
    F.job.nvars = 1;
    set_mode(fx, "ok");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_non_null(strstr(F.res.error, "variable name"));
}

/* What the code in a run can see and do, tried from inside. */
static void test_sandbox_confines(void **state)
{
    struct fx *fx = *state;
    if (!sandboxed()) {
        print_message("bubblewrap does not work here; skipping\n");
        skip();
    }
    char secret[256];
    snprintf(secret, sizeof(secret), "%s/secret", fx->data);
    assert_true(ut_write_file(secret, "the-node-secret\n"));
    unlink("/var/tmp/terrace-executor-escape");
    fx->vars[0] =
        (struct job_var){.key = "FAKE_DATA", .value = fx->data, .env = true};
    F.job.nvars = 1;
    set_mode(fx, "escape");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("HOME-WRITABLE");
    assert_log_has("TMP-WRITABLE");
    assert_log_has("NoNewPrivs:\t1\n");
    assert_log_has("Seccomp:\t2\n");
    assert_log_has("CapEff:\t0000000000000000\n");
    assert_log_has("host-processes=0\n");
    assert_log_lacks("WROTE");
    assert_log_lacks("DATA-VISIBLE");
    assert_log_lacks("the-node-secret");
    assert_log_lacks("UNSHARED");
    assert_log_lacks("MOUNTED");
    assert_log_lacks("USR-WRITABLE");
    if (geteuid() == 0) {
        assert_log_has("uid=1000000000\n");
        assert_log_has("CapBnd:\t0000000000000000\n");
    }
    assert_int_not_equal(access("/var/tmp/terrace-executor-escape", F_OK), 0);
}

/* A file one organization's run leaves in its provider cache is not in
 * another organization's. */
static void test_cache_per_organization(void **state)
{
    struct fx *fx = *state;
    /* one data directory for both jobs, outside the fixture's */
    char data[192];
    snprintf(data, sizeof(data), "%s/cache-data", tmp_root);
    ut_rmtree(data);
    assert_int_equal(mkdir(data, 0700), 0);
    snprintf(fx->data, sizeof(fx->data), "%s", data);
    F.job.org_id = "org-first";
    set_mode(fx, "cachewrite");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("CACHE-WRITTEN");
    teardown(state);
    setup(state);
    fx = *state;
    snprintf(fx->data, sizeof(fx->data), "%s", data);
    F.job.org_id = "org-second";
    set_mode(fx, "cacheread");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    assert_log_has("cache: .\n");
    assert_log_lacks("cache: marker");
    F.finished = F.handed = false;
    memset(&F.res, 0, sizeof(F.res));
    buf_reset(&F.log);
    F.job.org_id = "org-first";
    run_job(fx);
    assert_log_has("cache: marker");
    ut_rmtree(data);
}

/* A run over its memory, process or disk limit is stopped with a
 * message naming the limit, and nothing of it stays. */
static void test_limits(void **state)
{
    static const char *const modes[] = {"memhog", "forkbomb", "diskfill"};
    static const char *const want[] = {"memory limit", "process limit",
                                       "disk limit"};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            teardown(state);
            setup(state);
        }
        struct fx *fx = *state;
        if (!sandboxed())
            fx->unsandboxed = true;
        fx->mem_mb = 64;
        fx->tasks = 64;
        fx->disk_mb = 32;
        set_mode(fx, modes[i]);
        run_job(fx);
        if (F.res.outcome != JOB_ERRORED)
            fail_msg("%s: not errored; log:\n%s", modes[i], F.log.data);
        if (strstr(F.res.error, want[i]) == NULL)
            fail_msg("%s: error \"%s\" does not name the %s", modes[i],
                     F.res.error, want[i]);
        assert_log_has(want[i]);
    }
}

/* Without a sandbox, runs are refused unless the operator accepted it;
 * then they run, as the node's own user. */
static void test_no_sandbox(void **state)
{
    struct fx *fx = *state;
    fx->bwrap = "none";
    set_mode(fx, "ok");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_non_null(strstr(F.res.error, "no sandbox"));
    assert_log_has("allow-unsandboxed-runs");
    static const char *const modes[] = {"ok", "crash", "graceful", "env"};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        teardown(state);
        setup(state);
        fx = *state;
        fx->bwrap = i % 2 ? "/nonexistent/bwrap" : "none";
        fx->unsandboxed = true;
        set_mode(fx, modes[i]);
        if (strcmp(modes[i], "graceful") == 0) {
            F.cancel_when = "hanging";
            F.cancel_level = 1;
        }
        run_job(fx);
        enum job_outcome want[] = {JOB_FINISHED, JOB_ERRORED, JOB_CANCELED,
                                   JOB_FINISHED};
        assert_int_equal(F.res.outcome, want[i]);
    }
    assert_log_has("\nTF_FORCE_LOCAL_BACKEND=1\n");
}

static void test_stop_interrupts(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "hang");
    fx->grace_ms = 300;
    struct executor *x = start_executor(fx);
    for (int i = 0; i < 100 && !log_has("hanging"); i++)
        usleep(50000);
    assert_log_has("hanging");
    executor_stop(x);
    assert_true(F.finished);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_string_equal(F.res.error, "the worker shut down during the plan");
    char work[256];
    snprintf(work, sizeof(work), "%s/work", fx->data);
    assert_int_equal(ut_count_entries(work), 0);
    assert_int_equal(job_processes(fx->run_id), 0);
}

/* Prewarming hashes the tool in the background: a job still runs, a
 * stop right after does not wait on it or leak. */
static void test_prewarm(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    struct executor *x = start_executor(fx);
    const char *paths[] = {tool_path, "/nonexistent/tofu"};
    executor_prewarm(x, paths, 2);
    executor_prewarm(x, paths, 2); /* once only */
    assert_true(wait_finished());
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    executor_stop(x);
    executor_prewarm(NULL, paths, 2);
}

/* The checksum is remembered per file identity: a binary changed between
 * two jobs of one executor is caught. */
static void test_tool_changed_between_jobs(void **state)
{
    struct fx *fx = *state;
    set_mode(fx, "ok");
    struct executor *x = start_executor(fx);
    assert_true(wait_finished());
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    /* same bytes again: fine; then one byte more */
    pthread_mutex_lock(&F.mu);
    F.finished = F.handed = false;
    pthread_mutex_unlock(&F.mu);
    assert_true(wait_finished());
    assert_int_equal(F.res.outcome, JOB_FINISHED);
    FILE *f = fopen(tool_path, "a");
    assert_non_null(f);
    fputs("# changed\n", f);
    fclose(f);
    pthread_mutex_lock(&F.mu);
    F.finished = F.handed = false;
    pthread_mutex_unlock(&F.mu);
    bool done = wait_finished();
    executor_stop(x);
    assert_true(ut_write_file(tool_path, fake_tofu));
    assert_true(done);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_string_equal(F.res.error, "tool checksum mismatch");
}

static void test_full_disk(void **state)
{
    struct fx *fx = *state;
    if (small_fs[0] == '\0') {
        print_message("no private mount namespace with a small tmpfs "
                      "(needs root); skipping\n");
        skip();
    }
    snprintf(fx->data, sizeof(fx->data), "%s/data", small_fs);
    ut_rmtree(fx->data);
    assert_int_equal(mkdir(fx->data, 0700), 0);
    /* tofu fills the disk while planning */
    set_mode(fx, "fill");
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_log_has("disk full");
    /* the configuration itself does not fit */
    teardown(state);
    setup(state);
    fx = *state;
    snprintf(fx->data, sizeof(fx->data), "%s/data", small_fs);
    set_mode(fx, "ok");
    F.fill_bytes = 2 << 20;
    run_job(fx);
    assert_int_equal(F.res.outcome, JOB_ERRORED);
    assert_non_null(strstr(F.res.error, "cannot fetch the configuration"));
    ut_rmtree(fx->data);
}

static void test_hcl_and_url(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(workdir_hcl_string(&b, "a\"b\\c\n\t${x}%{y}$$%z\x01"),
                     TR_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\t$${x}%%{y}$$%z\\u0001\"");
    buf_free(&b);
    struct arena *a = arena_new();
    assert_string_equal(workdir_url_host(a, "https://h.example:8443/x"),
                        "h.example:8443");
    assert_string_equal(workdir_url_host(a, "http://h"), "h");
    assert_null(workdir_url_host(a, "https://u:p@h/"));
    assert_null(workdir_url_host(a, "h:1"));
    arena_destroy(a);
}

static void count(struct fx *fx, const char *json, bool refresh_only,
                  struct job_result *res, tr_err want)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/plan.json", fx->dir);
    assert_true(ut_write_file(path, json));
    memset(res, 0, sizeof(*res));
    struct tr_errbuf eb = {{0}};
    assert_int_equal(tofu_count_plan(path, refresh_only, res, &eb), want);
}

static void test_results(void **state)
{
    struct fx *fx = *state;
    struct job_result r;
    count(fx, "{\"resource_changes\":[]}", false, &r, TR_OK);
    assert_false(r.has_changes);
    count(fx,
          "{\"resource_changes\":[{\"change\":{\"actions\":"
          "[\"no-op\"]}}],\"output_changes\":{\"o\":{\"actions\":"
          "[\"no-op\"]}}}",
          false, &r, TR_OK);
    assert_false(r.has_changes);
    /* a move, an output, a read: changes without counts */
    count(fx,
          "{\"resource_changes\":[{\"previous_address\":\"a.b\","
          "\"change\":{\"actions\":[\"no-op\"]}}]}",
          false, &r, TR_OK);
    assert_true(r.has_changes);
    assert_int_equal(r.additions + r.changes + r.destructions, 0);
    count(fx, "{\"output_changes\":{\"o\":{\"actions\":[\"create\"]}}}", false,
          &r, TR_OK);
    assert_true(r.has_changes);
    count(fx,
          "{\"resource_changes\":[{\"change\":{\"actions\":"
          "[\"read\"]}}]}",
          false, &r, TR_OK);
    assert_true(r.has_changes);
    /* drift matters only to refresh-only plans */
    const char *drift = "{\"resource_drift\":[{\"address\":\"x\"}]}";
    count(fx, drift, false, &r, TR_OK);
    assert_false(r.has_changes);
    count(fx, drift, true, &r, TR_OK);
    assert_true(r.has_changes);
    count(fx,
          "{\"resource_changes\":[{\"change\":{\"actions\":"
          "[\"create\",\"delete\"],\"importing\":null}}]}",
          false, &r, TR_OK);
    assert_int_equal(r.additions, 1);
    assert_int_equal(r.destructions, 1);
    assert_int_equal(r.imports, 0);
    count(fx, "not json", false, &r, TR_ERR_INVALID);

    struct arena *a = arena_new();
    const char *out = "x\n\033[1mApply complete! Resources: 3 imported, "
                      "1 added, 0 changed, 2 destroyed.\033[0m\n";
    memset(&r, 0, sizeof(r));
    tofu_apply_summary(a, out, strlen(out), &r);
    assert_int_equal(r.imports, 3);
    assert_int_equal(r.additions, 1);
    assert_int_equal(r.changes, 0);
    assert_int_equal(r.destructions, 2);
    memset(&r, 0, sizeof(r));
    tofu_apply_summary(a, "no summary\n", 11, &r);
    assert_int_equal(r.additions + r.imports, 0);
    arena_destroy(a);
}

static void test_tool_helpers(void **state)
{
    struct fx *fx = *state;
    struct arena *a = arena_new();
    struct tr_errbuf eb = {{0}};
    char *sha = NULL, *ver = NULL;
    assert_int_equal(executor_tool_check(a, tool_path, &sha, &eb), TR_OK);
    assert_string_equal(sha, tool_sha);
    assert_int_equal(executor_tool_check(a, "relative/tofu", &sha, &eb),
                     TR_ERR_INVALID);
    assert_int_equal(executor_tool_check(a, "/nonexistent/x", &sha, &eb),
                     TR_ERR_INVALID);
    char plain[256];
    snprintf(plain, sizeof(plain), "%s/plain", fx->dir);
    assert_true(ut_write_file(plain, "x"));
    chmod(plain, 0644);
    assert_int_equal(executor_tool_check(a, plain, &sha, &eb), TR_ERR_INVALID);
    assert_non_null(strstr(eb.msg, "not executable"));
    assert_int_equal(executor_tool_check(a, fx->dir, &sha, &eb),
                     TR_ERR_INVALID);
    assert_int_equal(executor_tool_version(a, tool_path, &ver, &eb), TR_OK);
    assert_string_equal(ver, "1.2.3");
    assert_string_equal(executor_find_tofu(a, tool_path), tool_path);
    assert_null(executor_find_tofu(a, plain));
    arena_destroy(a);
}

/* ---- main -------------------------------------------------------------- */

/* A private mount namespace with a 1 MiB tmpfs at tmp_root/small, for the
 * full-disk test; must run while the process has one thread. */
static void make_small_fs(void)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/small", tmp_root);
    if (mkdir(dir, 0700) != 0)
        return;
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700") != 0) {
        fprintf(stderr, "note: cannot mount a small tmpfs: %s\n",
                strerror(errno));
        return;
    }
    snprintf(small_fs, sizeof(small_fs), "%s", dir);
}

int main(void)
{
    if (!ut_mkdtemp(tmp_root, sizeof(tmp_root), "test_executor"))
        return 1;
    make_small_fs();
    pthread_mutex_init(&F.mu, NULL);
    pthread_cond_init(&F.cv, NULL);
    buf_init(&F.log, 0);
    log_set_level(LOG_WARN);
    snprintf(tool_path, sizeof(tool_path), "%s/fake-tofu", tmp_root);
    if (!ut_write_file(tool_path, fake_tofu) || chmod(tool_path, 0755) != 0)
        return 1;
    struct arena *a = arena_new();
    char *sha = NULL;
    struct tr_errbuf eb = {{0}};
    if (executor_tool_check(a, tool_path, &sha, &eb) != TR_OK)
        return 1;
    snprintf(tool_sha, sizeof(tool_sha), "%s", sha);
    arena_destroy(a);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plan_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_schemas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structured_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_reuses_plan_dir, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_warm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_warm_other_env, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_warm_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_warm_not_left, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_kept_plan_changed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plan_dir_not_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plan_dir_keep_off, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plan_dir_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_dir_run_ended, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_lock_written, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_remote_module, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_registry_module, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_foreign_link, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_cli_args, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_config_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_repacked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_config_changed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_cache_link, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_cache_gone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_vars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_vars_same, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_vars_unused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_memo_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roots_own_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_go_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_go_gc_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_go_gc_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_scrub, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_config_variants, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_config_names_services, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_ignores_sigint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_lost_interrupts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_log_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_mismatch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_archive_attack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_working_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plan_started_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_working_directory_bad, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_variable_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_confines, setup, teardown),
        cmocka_unit_test(test_plan_summary),
        cmocka_unit_test_setup_teardown(test_plan_deferred_json, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_makes_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_json_after_finish, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_sandbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_per_organization, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prewarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_changed_between_jobs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hcl_and_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_helpers, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    buf_free(&F.log);
    if (small_fs[0] != '\0')
        umount2(small_fs, MNT_DETACH);
    ut_rmtree(tmp_root);
    return rc;
}
