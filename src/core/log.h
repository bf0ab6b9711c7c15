/*
 * log.h - leveled, thread-safe logging to stderr.
 *
 * One line per call: time, level, message.  Callers never pass tokens or
 * secrets.  The level is set once at start-up.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_LOG_H
#define TR_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(enum log_level level);
/* "debug", "info", "warn", "error"; returns -1 for anything else. */
int log_parse_level(const char *s);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
