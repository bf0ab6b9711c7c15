/*
 * curl_load.h - libcurl, loaded with dlopen the first time it is used.
 *
 * A demo or primary that never talks HTTP out (file blobs, no Vault, no
 * notifications, no tool download) then never maps libcurl and the
 * libraries it pulls in (libssl, nghttp2, libssh2, librtmp, LDAP,
 * Kerberos, ...): about 2 MB of resident memory per process, measured in
 * bench/RESULTS.md.  A secondary uses libcurl from its first request on.
 *
 * Include this header instead of <curl/curl.h>.  It keeps curl.h's types
 * and constants and turns each curl_* function Terrace calls into a call
 * through a table filled by dlsym(); the first call loads libcurl.so.4.
 * Variadic calls (curl_easy_setopt, ...) pass their arguments exactly as
 * a direct call would.
 *
 * If libcurl cannot be loaded, the functions that start something fail
 * the way libcurl says they may (curl_global_init: CURLE_FAILED_INIT;
 * curl_easy_init, curl_multi_init, curl_share_init, curl_url,
 * curl_slist_append: NULL), the cleanups do nothing, and the reason is
 * logged once and kept for curl_load_error().  The other functions take
 * a handle only those could have made, so they are never reached then.
 *
 * Thread-safe: the load runs once (pthread_once); the table is read-only
 * afterwards.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_CURL_LOAD_H
#define TR_CURL_LOAD_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "core/err.h"

/* Every libcurl function Terrace calls. */
#define CURL_LOAD_FUNCS(X)                                                     \
    X(curl_easy_cleanup)                                                       \
    X(curl_easy_getinfo)                                                       \
    X(curl_easy_init)                                                          \
    X(curl_easy_pause)                                                         \
    X(curl_easy_perform)                                                       \
    X(curl_easy_setopt)                                                        \
    X(curl_easy_strerror)                                                      \
    X(curl_free)                                                               \
    X(curl_global_cleanup)                                                     \
    X(curl_global_init)                                                        \
    X(curl_multi_add_handle)                                                   \
    X(curl_multi_cleanup)                                                      \
    X(curl_multi_info_read)                                                    \
    X(curl_multi_init)                                                         \
    X(curl_multi_perform)                                                      \
    X(curl_multi_poll)                                                         \
    X(curl_multi_remove_handle)                                                \
    X(curl_share_cleanup)                                                      \
    X(curl_share_init)                                                         \
    X(curl_share_setopt)                                                       \
    X(curl_slist_append)                                                       \
    X(curl_slist_free_all)                                                     \
    X(curl_url)                                                                \
    X(curl_url_cleanup)                                                        \
    X(curl_url_get)                                                            \
    X(curl_url_set)

#define CURL_LOAD_MEMBER(f) __typeof__(f) *f;
struct curl_load_table {
    CURL_LOAD_FUNCS(CURL_LOAD_MEMBER)
};
#undef CURL_LOAD_MEMBER

/* The table, loading libcurl on the first call.  Never NULL. */
const struct curl_load_table *curl_load_table(void);

/* Loads libcurl now: TR_OK, or TR_ERR_INTERNAL with the loader's reason,
 * for callers that want to refuse to start rather than fail later. */
tr_err curl_load(struct tr_errbuf *eb);

/* Why libcurl could not be loaded ("" when it is loaded or not tried). */
const char *curl_load_error(void);

/* From here on, curl_*() calls go through the table. */
#define CURL_LOAD_CALL(f, ...) (curl_load_table()->f(__VA_ARGS__))
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#undef curl_multi_setopt
#define curl_easy_cleanup(...) CURL_LOAD_CALL(curl_easy_cleanup, __VA_ARGS__)
#define curl_easy_getinfo(...) CURL_LOAD_CALL(curl_easy_getinfo, __VA_ARGS__)
#define curl_easy_init() (curl_load_table()->curl_easy_init())
#define curl_easy_pause(...) CURL_LOAD_CALL(curl_easy_pause, __VA_ARGS__)
#define curl_easy_perform(...) CURL_LOAD_CALL(curl_easy_perform, __VA_ARGS__)
#define curl_easy_setopt(...) CURL_LOAD_CALL(curl_easy_setopt, __VA_ARGS__)
#define curl_easy_strerror(...) CURL_LOAD_CALL(curl_easy_strerror, __VA_ARGS__)
#define curl_free(...) CURL_LOAD_CALL(curl_free, __VA_ARGS__)
#define curl_global_cleanup() (curl_load_table()->curl_global_cleanup())
#define curl_global_init(...) CURL_LOAD_CALL(curl_global_init, __VA_ARGS__)
#define curl_multi_add_handle(...)                                             \
    CURL_LOAD_CALL(curl_multi_add_handle, __VA_ARGS__)
#define curl_multi_cleanup(...) CURL_LOAD_CALL(curl_multi_cleanup, __VA_ARGS__)
#define curl_multi_info_read(...)                                              \
    CURL_LOAD_CALL(curl_multi_info_read, __VA_ARGS__)
#define curl_multi_init() (curl_load_table()->curl_multi_init())
#define curl_multi_perform(...) CURL_LOAD_CALL(curl_multi_perform, __VA_ARGS__)
#define curl_multi_poll(...) CURL_LOAD_CALL(curl_multi_poll, __VA_ARGS__)
#define curl_multi_remove_handle(...)                                          \
    CURL_LOAD_CALL(curl_multi_remove_handle, __VA_ARGS__)
#define curl_share_cleanup(...) CURL_LOAD_CALL(curl_share_cleanup, __VA_ARGS__)
#define curl_share_init() (curl_load_table()->curl_share_init())
#define curl_share_setopt(...) CURL_LOAD_CALL(curl_share_setopt, __VA_ARGS__)
#define curl_slist_append(...) CURL_LOAD_CALL(curl_slist_append, __VA_ARGS__)
#define curl_slist_free_all(...)                                               \
    CURL_LOAD_CALL(curl_slist_free_all, __VA_ARGS__)
#define curl_url() (curl_load_table()->curl_url())
#define curl_url_cleanup(...) CURL_LOAD_CALL(curl_url_cleanup, __VA_ARGS__)
#define curl_url_get(...) CURL_LOAD_CALL(curl_url_get, __VA_ARGS__)
#define curl_url_set(...) CURL_LOAD_CALL(curl_url_set, __VA_ARGS__)

#endif
