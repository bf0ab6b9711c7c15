/*
 * check.h - assertion macros (STYLE.md 2.8).
 *
 *   TR_ASSERT(cond)  a precondition or invariant.  Checked in debug and
 *                    sanitizer builds (NDEBUG unset, or TR_DEBUG set),
 *                    where a false cond aborts; in release builds cond is
 *                    not evaluated at all, so it must have no side effects.
 *                    Never for input from the network or a user: that is
 *                    validated and answered with an error.
 *   TR_ALWAYS(cond)  a condition that cannot be false; TR_NEVER(cond) one
 *                    that cannot be true.  Both evaluate cond exactly once
 *                    and have its truth value (0 or 1), so release code
 *                    can still handle the impossible case:
 *                        if (TR_NEVER(n > cap))
 *                            return tr_fail(eb, TR_ERR_INTERNAL, "...");
 *                    In debug and sanitizer builds the impossible case
 *                    aborts loudly instead, naming the condition and line.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_CHECK_H
#define TR_CHECK_H

#if defined(TR_DEBUG) || !defined(NDEBUG)
#define TR_CHECKS 1
#else
#define TR_CHECKS 0
#endif

/* Writes "check failed: <kind>(<cond>) at <file>:<line> in <func>" to
 * stderr and aborts.  Called by the macros only. */
_Noreturn void tr_check_fail(const char *kind, const char *cond,
                             const char *file, int line, const char *func);

#if TR_CHECKS
#define TR_ASSERT(cond)                                                        \
    ((cond) ? (void)0                                                          \
            : tr_check_fail("TR_ASSERT", #cond, __FILE__, __LINE__, __func__))
#define TR_ALWAYS(cond)                                                        \
    ((cond)                                                                    \
         ? 1                                                                   \
         : (tr_check_fail("TR_ALWAYS", #cond, __FILE__, __LINE__, __func__),   \
            0))
#define TR_NEVER(cond)                                                         \
    ((cond)                                                                    \
         ? (tr_check_fail("TR_NEVER", #cond, __FILE__, __LINE__, __func__), 1) \
         : 0)
#else
/* sizeof keeps cond type-checked (and its variables used) unevaluated */
#define TR_ASSERT(cond) ((void)sizeof(!(cond)))
#define TR_ALWAYS(cond) ((cond) ? 1 : 0)
#define TR_NEVER(cond) ((cond) ? 1 : 0)
#endif

#endif
