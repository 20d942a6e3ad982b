/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember's log, in Firecracker's line format:
 *
 *   2026-11-30T15:31:31.123456789 [anonymous-instance:vcpu0:WARN:vmm/vcpu.c:211] message
 *
 * local wall-clock time, then the instance id (--id) and the thread's name,
 * then the level (show_level) and the file and line the line comes from
 * (show_log_origin), then the message.
 *
 * Thread-safe and never blocking: each line is one write(2) of less than
 * PIPE_BUF bytes, so lines from different threads never mix and a pipe or
 * FIFO takes a line whole or not at all. A line the destination cannot take
 * now (a reader that stopped reading) is dropped and counted
 * (log_missed_count()), never waited for.
 */
#ifndef EMBER_LOG_H
#define EMBER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

/* Firecracker's level filters; a line is written if its level is at most the
 * filter's. LOG_OFF writes nothing. */
enum log_level { LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

/* What PUT /logger and the logger flags set, besides the destination. */
struct log_options {
	enum log_level level;
	bool show_level; /* the level after the thread name */
	bool show_origin; /* "file.c:line" after that */
	/* Only lines from source files whose path (from the repository root,
	 * "vmm/devices/virtio/block/...") starts with this; "::" counts as "/"
	 * so Firecracker-style module paths ("vmm::devices") work. NULL or
	 * empty: every line. */
	const char *module;
};

/* Longest module filter log_configure() takes. */
#define LOG_MODULE_MAX 255

/* Start-up: the level and the destination fd (default stderr, level Info),
 * no level or origin shown, no module filter. */
void log_init(enum log_level level, int fd);
/* Start-up, before other threads: the instance id shown in every line
 * (copied; at most 64 characters kept). Default "anonymous-instance". */
void log_set_instance_id(const char *id);
/*
 * Open @path as a log or metrics destination, the way Firecracker does:
 * read-write and non-blocking, so that a FIFO with no reader yet opens (a
 * write-only open would fail with ENXIO) and a full one never blocks a
 * write. A missing path is created as a regular file (0600); an existing
 * file is appended to. Returns the fd (close-on-exec) or -errno.
 */
int log_open(const char *path) __attribute__((warn_unused_result));
/*
 * Apply @o and, with @path, log to it from now on. All or nothing: when
 * @path cannot be opened (or @o->module is too long) nothing changes and
 * -errno is returned. Any thread; PUT /logger runs it on the VMM thread.
 */
int log_configure(const struct log_options *o, const char *path)
    __attribute__((warn_unused_result));
/* Log to @fd from now on, taking it over: a previous log file is closed (its
 * descriptor number reused for @fd), stderr is left open. 0 or -errno (@fd
 * is closed either way). */
int log_replace_fd(int fd);
/* The fd log lines go to now. */
int log_get_fd(void);
/* Lines dropped because the destination could not take them (metrics:
 * Firecracker's logger.missed_log_count). */
uint64_t log_missed_count(void);
/* Whether a line at @level would be written (skip costly formatting). */
bool log_enabled(enum log_level level);

/* Name of the calling thread as it appears in log lines ("main", "vcpu3"). */
void log_set_thread_name(const char *name);
/* That name (thread-local storage: safe to read in a signal handler). */
const char *log_thread_name(void);
/* Parse a level the way Firecracker does: Error, Warn or Warning, Info,
 * Debug, Trace, Off, in any case. 0, or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
/* Firecracker's spelling of @level ("Warning"), for answers and messages. */
const char *log_level_name(enum log_level level);

/*
 * Write @src (@len bytes, untrusted: a request's path or body) into @dst as
 * a double-quoted string with quotes, backslashes, control and non-ASCII
 * bytes escaped, so it cannot forge or break a log line. Output longer than
 * @dst allows is cut and ends in '...'. @dst_len must be at least 8;
 * returns strlen(@dst).
 */
size_t log_quote(char *dst, size_t dst_len, const char *src, size_t len);

void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * One ERROR line from a signal handler that is about to end the process:
 * async-signal-safe (clock_gettime and write only; no locks, stdio or
 * allocation; the time is local time as of the last log_configure()).
 * @msg is written as it is.
 */
void log_signal_safe(const char *file, int line, const char *msg);

/* Print an error and exit with @code. Start-up paths only. The line is
 * written at ERROR whatever the module filter: the reason must be seen. */
noreturn void log_die(const char *file, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define die(code, ...) log_die(__FILE__, __LINE__, code, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define log_trace(...) log_msg(LOG_TRACE, __FILE__, __LINE__, __VA_ARGS__)

#endif
