/*
 * env_names.c - the environment variable names a run may not be given
 * (the rule is in env_names.h; the list and its reasons are here).
 *
 * A run's environment reaches more than the tenant's own code: bubblewrap
 * (which may run as root), the C library and loader of every program the
 * run starts, shells that Terrace or a provider runs, and Terrace's own
 * settings for tofu.  A name is refused when it does one of:
 *
 *   - overrides what Terrace sets for every run (the backend override,
 *     the CLI config with the run's token, the plugin cache, PATH, HOME,
 *     TMPDIR, the CA bundle): the run would no longer be Terrace's;
 *   - makes the dynamic loader load code or change how it starts a
 *     program (every LD_* name: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT);
 *   - makes the C library load code or read files it names: glibc's own
 *     list of names it ignores in set-user-ID programs (GCONV_PATH,
 *     GLIBC_TUNABLES, MALLOC_*, HOSTALIASES, LOCPATH, NLSPATH, ...), less
 *     LOCALDOMAIN and RES_OPTIONS, which only tune DNS lookups;
 *   - makes a shell run code at start-up or parse scripts differently
 *     (BASH_ENV, ENV, exported functions BASH_FUNC_*, SHELLOPTS,
 *     BASHOPTS, PS4, PROMPT_COMMAND, IFS);
 *   - makes an interpreter found on ordinary hosts load code at start-up
 *     (Python, Perl, Ruby, Node.js, Java options and module paths).
 *
 * Deliberately allowed, since users need them and they act only inside
 * the run's sandbox on the tenant's own behalf: cloud credentials (AWS_*,
 * GOOGLE_*, ARM_*, ...), TF_VAR_*, TF_LOG*, TF_CLI_ARGS*, TF_TOKEN_*
 * (private registries), GIT_SSH_COMMAND and GIT_CONFIG_* (private module
 * sources), SSL_CERT_DIR, TZ, LANG and LC_*, PYTHONWARNINGS.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/env_names.h"

#include "core/check.h"

#include <string.h>

#define WHY_TERRACE "it is set by Terrace for every run"
#define WHY_LOADER                                                             \
    "the dynamic loader reads it and it changes how every program is "         \
    "loaded"
#define WHY_LIBC                                                               \
    "the C library reads it in every program and it can make programs "        \
    "load code or read other files"
#define WHY_SHELL "it makes shells run code or parse scripts differently"
#define WHY_INTERP "it makes an interpreter load code when it starts"

struct refused {
    const char *name;
    bool prefix; /* name is a prefix: every name starting with it */
    const char *why;
};

static const struct refused refused[] = {
    /* set by Terrace (src/executor/tofu.c) */
    {"TF_CLI_CONFIG_FILE", false, WHY_TERRACE},
    {"TF_FORCE_LOCAL_BACKEND", false, WHY_TERRACE},
    {"TFE_RUN_ID", false, WHY_TERRACE},
    {"TF_IN_AUTOMATION", false, WHY_TERRACE},
    {"TF_INPUT", false, WHY_TERRACE},
    {"PATH", false, WHY_TERRACE},
    {"HOME", false, WHY_TERRACE},
    {"TMPDIR", false, WHY_TERRACE},
    {"TF_PLUGIN_CACHE_DIR", false, WHY_TERRACE},
    {"TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE", false, WHY_TERRACE},
    {"SSL_CERT_FILE", false, WHY_TERRACE},
    /* the dynamic loader */
    {"LD_", true, WHY_LOADER},
    /* the C library (glibc's unsecvars.h, but the DNS-only names) */
    {"GCONV_PATH", false, WHY_LIBC},
    {"GETCONF_DIR", false, WHY_LIBC},
    {"GLIBC_TUNABLES", false, WHY_LIBC},
    {"HOSTALIASES", false, WHY_LIBC},
    {"LOCPATH", false, WHY_LIBC},
    {"MALLOC_", true, WHY_LIBC},
    {"NIS_PATH", false, WHY_LIBC},
    {"NLSPATH", false, WHY_LIBC},
    {"RESOLV_HOST_CONF", false, WHY_LIBC},
    {"TZDIR", false, WHY_LIBC},
    /* shells */
    {"BASH_ENV", false, WHY_SHELL},
    {"BASH_FUNC_", true, WHY_SHELL},
    {"BASHOPTS", false, WHY_SHELL},
    {"ENV", false, WHY_SHELL},
    {"IFS", false, WHY_SHELL},
    {"PROMPT_COMMAND", false, WHY_SHELL},
    {"PS4", false, WHY_SHELL},
    {"SHELLOPTS", false, WHY_SHELL},
    /* interpreters' start-up hooks and module paths */
    {"PYTHONHOME", false, WHY_INTERP},
    {"PYTHONPATH", false, WHY_INTERP},
    {"PYTHONSTARTUP", false, WHY_INTERP},
    {"PERL5DB", false, WHY_INTERP},
    {"PERL5LIB", false, WHY_INTERP},
    {"PERL5OPT", false, WHY_INTERP},
    {"PERLLIB", false, WHY_INTERP},
    {"RUBYLIB", false, WHY_INTERP},
    {"RUBYOPT", false, WHY_INTERP},
    {"NODE_OPTIONS", false, WHY_INTERP},
    {"JAVA_TOOL_OPTIONS", false, WHY_INTERP},
    {"JDK_JAVA_OPTIONS", false, WHY_INTERP},
    {"_JAVA_OPTIONS", false, WHY_INTERP},
};

#define NREFUSED (sizeof(refused) / sizeof(refused[0]))

bool env_name_refused(const char *name, const char **why)
{
    TR_ASSERT(name != NULL);
    for (size_t i = 0; i < NREFUSED; i++) {
        const struct refused *r = &refused[i];
        bool hit = r->prefix ? strncmp(name, r->name, strlen(r->name)) == 0
                             : strcmp(name, r->name) == 0;
        if (hit) {
            if (why != NULL)
                *why = r->why;
            return true;
        }
    }
    return false;
}
