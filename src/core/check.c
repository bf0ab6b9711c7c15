/*
 * check.c - what a failed TR_ASSERT/TR_ALWAYS/TR_NEVER does in a debug
 * build: one line on stderr, then abort() so a core dump or the sanitizer
 * shows the stack.  See check.h.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void tr_check_fail(const char *kind, const char *cond,
                             const char *file, int line, const char *func)
{
    fprintf(stderr, "check failed: %s(%s) at %s:%d in %s\n", kind, cond, file,
            line, func);
    fflush(stderr);
    abort();
}
