/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leveled, timestamped log lines. Thread-safe: each line is one write(2).
 * Lines look like "[   0.001234] ember[vcpu0] WARN: message".
 */
#ifndef EMBER_LOG_H
#define EMBER_LOG_H

#include <stdint.h>
#include <stdnoreturn.h>

enum log_level { LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set the lowest level printed and the destination fd (default stderr). */
void log_init(enum log_level level, int fd);
/* Lines dropped because the log destination was full (for metrics). */
uint64_t log_missed_count(void);
/* The fd log lines go to now. */
int log_get_fd(void);
/* Log to @fd from now on (PUT /logger), taking it over: a previous log file
 * is closed (its descriptor number reused for @fd), stderr is left open.
 * 0 or -errno (@fd is closed either way). */
int log_replace_fd(int fd);
/* Name of the calling thread as it appears in log lines ("main", "vcpu3"). */
void log_set_thread_name(const char *name);
/* That name (thread-local storage: safe to read in a signal handler). */
const char *log_thread_name(void);
/* Parse "error|warn|info|debug" (case-insensitive); -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print an error and exit with @code. Start-up paths only. */
noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
