/*
 * curl_load.c - loads libcurl.so.4 on first use and fills the function
 * table curl_load.h's macros call through.
 *
 * Before the load, and after a failed one, the table holds stand-ins:
 * the functions that create something fail as libcurl documents they
 * may, the cleanups do nothing.  A successful load replaces every entry
 * at once, inside pthread_once, so readers see either state whole.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include "core/curl_load.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

static CURLcode no_global_init(long flags)
{
    return CURLE_FAILED_INIT;
}
static void no_global_cleanup(void)
{
}
static CURL *no_easy_init(void)
{
    return NULL;
}
static void no_easy_cleanup(CURL *h)
{
}
static const char *no_easy_strerror(CURLcode c)
{
    return "libcurl could not be loaded";
}
static CURLM *no_multi_init(void)
{
    return NULL;
}
static CURLMcode no_multi_cleanup(CURLM *m)
{
    return CURLM_BAD_HANDLE;
}
static CURLSH *no_share_init(void)
{
    return NULL;
}
static CURLSHcode no_share_cleanup(CURLSH *s)
{
    return CURLSHE_INVALID;
}
static CURLU *no_url(void)
{
    return NULL;
}
static void no_url_cleanup(CURLU *u)
{
}
static struct curl_slist *no_slist_append(struct curl_slist *l, const char *s)
{
    return NULL;
}
static void no_slist_free_all(struct curl_slist *l)
{
}
static void no_free(void *p)
{
}

static struct curl_load_table table = {
    .curl_global_init = no_global_init,
    .curl_global_cleanup = no_global_cleanup,
    .curl_easy_init = no_easy_init,
    .curl_easy_cleanup = no_easy_cleanup,
    .curl_easy_strerror = no_easy_strerror,
    .curl_multi_init = no_multi_init,
    .curl_multi_cleanup = no_multi_cleanup,
    .curl_share_init = no_share_init,
    .curl_share_cleanup = no_share_cleanup,
    .curl_url = no_url,
    .curl_url_cleanup = no_url_cleanup,
    .curl_slist_append = no_slist_append,
    .curl_slist_free_all = no_slist_free_all,
    .curl_free = no_free,
};
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256]; /* empty unless the load failed */

static void load(void)
{
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(load_error, sizeof(load_error), "%s", e ? e : "dlopen failed");
        log_error("cannot load libcurl: %s", load_error);
        return;
    }
    struct curl_load_table t;
    const char *e;
#define RESOLVE(f)                                                             \
    t.f = (__typeof__(f) *)dlsym(lib, #f);                                     \
    if (t.f == NULL) {                                                         \
        e = dlerror();                                                         \
        snprintf(load_error, sizeof(load_error), "%s",                         \
                 e ? e : "missing symbol " #f);                                \
        log_error("cannot load libcurl: %s", load_error);                      \
        dlclose(lib);                                                          \
        return;                                                                \
    }
    CURL_LOAD_FUNCS(RESOLVE)
#undef RESOLVE
    table = t;
}

const struct curl_load_table *curl_load_table(void)
{
    pthread_once(&load_once, load);
    return &table;
}

tr_err curl_load(struct tr_errbuf *eb)
{
    pthread_once(&load_once, load);
    if (load_error[0] != '\0')
        return tr_fail(eb, TR_ERR_INTERNAL, "cannot load libcurl: %s",
                       load_error);
    return TR_OK;
}

const char *curl_load_error(void)
{
    return load_error;
}
