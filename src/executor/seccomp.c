/*
 * seccomp.c - the system-call filter of sandboxed programs (sandbox.h).
 *
 * Built once with libseccomp and handed to bubblewrap as a classic BPF
 * program (--seccomp FD), which installs it just before the program
 * starts.  Everything is allowed except:
 *   - mounts and the new mount API, pivot_root, chroot: the mount tree
 *     is the sandbox's, it must stay as built;
 *   - unshare, setns, and clone with any CLONE_NEW* flag: no new
 *     namespaces (a user namespace would hand back capabilities inside
 *     it); clone3 answers ENOSYS, since its flags sit in memory a filter
 *     cannot read, and the C library then falls back to clone;
 *   - ptrace, process_vm_readv/writev, kcmp: no reaching into other
 *     processes;
 *   - keyctl, add_key, request_key: the kernel keyrings;
 *   - module loading, kexec, bpf, perf_event_open, userfaultfd,
 *     io_uring, fanotify, open_by_handle_at, quotactl, swap, reboot,
 *     acct, syslog, iopl/ioperm: kernel attack surface a plan never
 *     needs;
 *   - ioctl TIOCSTI and TIOCLINUX: typing into a terminal.
 * Refused calls fail with EPERM (ENOSYS for clone3), so programs see an
 * ordinary error.  System calls of another architecture (32-bit x86 on
 * x86-64, say) kill the process: the filter could not judge them.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "executor/sandbox.h"

static const char *const refused[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
    "open_by_handle_at",
    "name_to_handle_at",
    "quotactl",
    "quotactl_fd",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "syslog",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "uselib",
    "vhangup",
    "nfsservctl",
    "get_kernel_syms",
    "query_module",
    "_sysctl",
};

static const unsigned long ns_flags[] = {
    CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
    CLONE_NEWUTS, CLONE_NEWIPC,  CLONE_NEWCGROUP,
};

static int add_rules(scmp_filter_ctx ctx)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(refused) / sizeof(*refused); i++) {
        int nr = seccomp_syscall_resolve_name(refused[i]);
        if (nr == __NR_SCMP_ERROR || nr < 0)
            continue; /* not a call of this architecture */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    for (size_t i = 0; rc == 0 && i < sizeof(ns_flags) / sizeof(*ns_flags); i++)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
            SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    int clone3 = seccomp_syscall_resolve_name("clone3");
    if (rc == 0 && clone3 != __NR_SCMP_ERROR && clone3 >= 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
    static const unsigned long tty[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; rc == 0 && i < 2; i++)
        rc =
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, tty[i]));
    return rc;
}

tr_err sandbox_seccomp_program(unsigned char **prog, size_t *len,
                               struct tr_errbuf *eb)
{
    *prog = NULL;
    *len = 0;
    tr_err e = TR_OK;
    int fd = -1;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL)
        return tr_fail(eb, TR_ERR_INTERNAL, "cannot build the seccomp filter");
    int rc =
        seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* bubblewrap sets no_new_privs itself where it must */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (rc == 0)
        rc = add_rules(ctx);
    if (rc != 0) {
        e = tr_fail(eb, TR_ERR_INTERNAL, "cannot build the seccomp filter: %s",
                    strerror(-rc));
        goto out;
    }
    fd = memfd_create("seccomp", MFD_CLOEXEC);
    rc = fd < 0 ? -errno : seccomp_export_bpf(ctx, fd);
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (rc != 0 || size <= 0 || size > (1 << 20) ||
        lseek(fd, 0, SEEK_SET) != 0) {
        e = tr_fail(eb, TR_ERR_INTERNAL, "cannot export the seccomp filter");
        goto out;
    }
    unsigned char *p = malloc((size_t)size);
    if (p == NULL) {
        e = tr_fail(eb, TR_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t n = read(fd, p + got, (size_t)size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != (size_t)size) {
        free(p);
        e = tr_fail(eb, TR_ERR_INTERNAL, "cannot export the seccomp filter");
        goto out;
    }
    *prog = p;
    *len = got;
out:
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return e;
}
