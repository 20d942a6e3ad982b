// SPDX-License-Identifier: Apache-2.0
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static enum log_level log_level = LOG_INFO;
static atomic_uint_fast64_t log_missed;
static int log_fd = STDERR_FILENO;
static __thread char thread_name[16] = "main";

static const char *const level_names[] = {
	[LOG_OFF] = "OFF",   [LOG_ERROR] = "ERROR", [LOG_WARN] = "WARN",
	[LOG_INFO] = "INFO", [LOG_DEBUG] = "DEBUG",
};

void log_init(enum log_level level, int fd)
{
	log_level = level;
	log_fd = fd;
}

uint64_t log_missed_count(void)
{
	return atomic_load(&log_missed);
}

int log_replace_fd(int fd)
{
	if (log_fd == STDERR_FILENO || log_fd < 0) {
		log_fd = fd;
		return 0;
	}
	/* Same descriptor number, new file: threads logging right now write to
	 * the old file or the new one, never to a closed or reused fd. */
	int r = dup3(fd, log_fd, O_CLOEXEC) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int log_get_fd(void)
{
	return log_fd;
}

const char *log_thread_name(void)
{
	return thread_name;
}

void log_set_thread_name(const char *name)
{
	snprintf(thread_name, sizeof(thread_name), "%s", name);
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0 ||
		    (i == LOG_WARN && strcasecmp(s, "warning") == 0)) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	uint64_t us = clock_us_since_start();
	int n = snprintf(line, sizeof(line),
			 "[%4llu.%06llu] ember[%s] %s: ", (unsigned long long)(us / 1000000),
			 (unsigned long long)(us % 1000000), thread_name, level_names[level]);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* A log reader that stops reading (a full pipe or FIFO) must never stall
	 * the monitor: lines that cannot be written now are dropped and counted.
	 * A line is shorter than PIPE_BUF, so a pipe that polls writable takes it
	 * whole, in one write that also keeps lines from different threads apart. */
	struct pollfd p = { .fd = log_fd, .events = POLLOUT };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
		atomic_fetch_add(&log_missed, 1);
		return;
	}
	ssize_t w = write(log_fd, line, len);
	if (w != (ssize_t)len)
		atomic_fetch_add(&log_missed, 1);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(code);
}
