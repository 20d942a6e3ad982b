// SPDX-License-Identifier: Apache-2.0
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Every line, prefix and message, fits in one atomic pipe write. */
#define LOG_LINE_MAX 2048
_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a log line must be one atomic pipe write");

static atomic_int log_level = LOG_INFO;
static atomic_bool show_level, show_origin;
static atomic_int log_fd = STDERR_FILENO;
static atomic_uint_fast64_t log_missed;
/* Seconds east of UTC when the options last changed: the signal-safe path
 * cannot call localtime_r(). */
static atomic_long utc_offset;
static char instance_id[65] = "anonymous-instance";
static __thread char thread_name[16] = "main";

/* The module filter is the one setting too large for an atomic: lines read
 * it under the read lock, log_configure() swaps it under the write lock. */
static pthread_rwlock_t module_lock = PTHREAD_RWLOCK_INITIALIZER;
static char module[LOG_MODULE_MAX + 1];

static const char *const level_names[] = {
	[LOG_OFF] = "OFF",   [LOG_ERROR] = "ERROR", [LOG_WARN] = "WARN",
	[LOG_INFO] = "INFO", [LOG_DEBUG] = "DEBUG", [LOG_TRACE] = "TRACE",
};

static const char *const level_fc_names[] = {
	[LOG_OFF] = "Off",   [LOG_ERROR] = "Error", [LOG_WARN] = "Warning",
	[LOG_INFO] = "Info", [LOG_DEBUG] = "Debug", [LOG_TRACE] = "Trace",
};

static void note_utc_offset(void)
{
	struct tm tm;
	time_t now = time(NULL);
	if (localtime_r(&now, &tm))
		atomic_store(&utc_offset, tm.tm_gmtoff);
}

void log_init(enum log_level level, int fd)
{
	/* Read the time zone now: later lines may come from threads under a
	 * seccomp filter that would not let localtime_r() open its file. */
	tzset();
	note_utc_offset();
	atomic_store(&log_level, level);
	atomic_store(&log_fd, fd);
	atomic_store(&show_level, false);
	atomic_store(&show_origin, false);
	pthread_rwlock_wrlock(&module_lock);
	module[0] = 0;
	pthread_rwlock_unlock(&module_lock);
}

void log_set_instance_id(const char *id)
{
	snprintf(instance_id, sizeof(instance_id), "%s", id);
}

int log_open(const char *path)
{
	int flags = O_APPEND | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd = open(path, O_RDWR | flags, 0600);
	/* A file we may write but not read: a regular file can do without the
	 * read side, which only a FIFO with no reader yet needs. */
	if (fd < 0 && errno == EACCES)
		fd = open(path, O_WRONLY | flags, 0600);
	return fd < 0 ? -errno : fd;
}

int log_replace_fd(int fd)
{
	int old = atomic_load(&log_fd);
	if (old == STDERR_FILENO || old < 0) {
		atomic_store(&log_fd, fd);
		return 0;
	}
	/* Same descriptor number, new file: threads logging right now write to
	 * the old file or the new one, never to a closed or reused fd. */
	int r = dup3(fd, old, O_CLOEXEC) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int log_configure(const struct log_options *o, const char *path)
{
	char m[LOG_MODULE_MAX + 1];
	size_t n = 0;
	for (const char *s = o->module ? o->module : ""; *s; s++) {
		if (n == LOG_MODULE_MAX)
			return -ENAMETOOLONG;
		if (s[0] == ':' && s[1] == ':')
			s++, m[n++] = '/';
		else
			m[n++] = *s;
	}
	m[n] = 0;
	if (path) {
		int fd = log_open(path);
		if (fd < 0)
			return fd;
		int r = log_replace_fd(fd);
		if (r < 0)
			return r;
	}
	note_utc_offset();
	pthread_rwlock_wrlock(&module_lock);
	memcpy(module, m, n + 1);
	pthread_rwlock_unlock(&module_lock);
	atomic_store(&show_level, o->show_level);
	atomic_store(&show_origin, o->show_origin);
	atomic_store(&log_level, o->level);
	return 0;
}

int log_get_fd(void)
{
	return atomic_load(&log_fd);
}

uint64_t log_missed_count(void)
{
	return atomic_load(&log_missed);
}

bool log_enabled(enum log_level level)
{
	return level != LOG_OFF && (int)level <= atomic_load(&log_level);
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
	for (size_t i = 0; i < sizeof(level_fc_names) / sizeof(level_fc_names[0]); i++) {
		if (strcasecmp(s, level_fc_names[i]) == 0 || strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	return (unsigned int)level <= LOG_TRACE ? level_fc_names[level] : "?";
}

size_t log_quote(char *dst, size_t dst_len, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	dst[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		char esc[4] = { '\\', (char)c, 0, 0 };
		size_t w = 2;
		if (c == '\n')
			esc[1] = 'n';
		else if (c == '\t')
			esc[1] = 't';
		else if (c < 0x20 || c >= 0x7f)
			esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15], w = 4;
		else if (c != '"' && c != '\\')
			esc[0] = (char)c, w = 1;
		/* Room for this, and for '..."' and the NUL after it. */
		if (n + w + 5 > dst_len) {
			memcpy(dst + n, "...", 3);
			n += 3;
			break;
		}
		memcpy(dst + n, esc, w);
		n += w;
	}
	dst[n++] = '"';
	dst[n] = 0;
	return n;
}

static bool module_matches(const char *file)
{
	pthread_rwlock_rdlock(&module_lock);
	bool ok = strncmp(file, module, strlen(module)) == 0;
	pthread_rwlock_unlock(&module_lock);
	return ok;
}

/* Appenders for the signal-safe path: no stdio. */
static char *put_str(char *p, char *end, const char *s)
{
	while (*s && p < end)
		*p++ = *s++;
	return p;
}

static char *put_dec(char *p, char *end, unsigned long v, int width)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 20);
	while (n < width)
		tmp[n++] = '0';
	while (n && p < end)
		*p++ = tmp[--n];
	return p;
}

/* "2026-11-30T15:31:31.123456789 [id:thread:LEVEL:file:line] ", as
 * Firecracker's LocalTime and logger print it. Signal-safe when @tm is
 * given (no localtime_r). */
static char *put_prefix(char *p, char *end, const struct tm *tm, long nsec, enum log_level level,
			const char *file, int line)
{
	p = put_dec(p, end, (unsigned long)tm->tm_year + 1900, 4);
	p = put_str(p, end, "-");
	p = put_dec(p, end, (unsigned long)tm->tm_mon + 1, 2);
	p = put_str(p, end, "-");
	p = put_dec(p, end, (unsigned long)tm->tm_mday, 2);
	p = put_str(p, end, "T");
	p = put_dec(p, end, (unsigned long)tm->tm_hour, 2);
	p = put_str(p, end, ":");
	p = put_dec(p, end, (unsigned long)tm->tm_min, 2);
	p = put_str(p, end, ":");
	p = put_dec(p, end, (unsigned long)tm->tm_sec, 2);
	p = put_str(p, end, ".");
	p = put_dec(p, end, (unsigned long)nsec, 9);
	p = put_str(p, end, " [");
	p = put_str(p, end, instance_id);
	p = put_str(p, end, ":");
	p = put_str(p, end, thread_name);
	if (atomic_load(&show_level)) {
		p = put_str(p, end, ":");
		p = put_str(p, end, level_names[level]);
	}
	if (atomic_load(&show_origin)) {
		p = put_str(p, end, ":");
		p = put_str(p, end, file);
		p = put_str(p, end, ":");
		p = put_dec(p, end, (unsigned long)line, 1);
	}
	return put_str(p, end, "] ");
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian), for the
 * signal-safe path (Howard Hinnant's algorithm). */
static void civil_from_days(long z, struct tm *tm)
{
	z += 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	long doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long mp = (5 * doy + 2) / 153;
	long d = doy - (153 * mp + 2) / 5 + 1;
	long m = mp < 10 ? mp + 3 : mp - 9;
	tm->tm_year = (int)(yoe + era * 400 + (m <= 2) - 1900);
	tm->tm_mon = (int)m - 1;
	tm->tm_mday = (int)d;
}

/* One line, one write. A reader that stops reading (a full pipe or FIFO)
 * must never stall the monitor: a line that cannot be written now is dropped
 * and counted. The log fd is non-blocking when log_open() opened it; stderr
 * may be a blocking pipe, so poll first: a pipe that polls writable has a
 * free page, which takes a line of less than PIPE_BUF bytes whole. */
static void log_write(const char *line, size_t len)
{
	int fd = atomic_load(&log_fd);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
		atomic_fetch_add(&log_missed, 1);
		return;
	}
	if (write(fd, line, len) != (ssize_t)len)
		atomic_fetch_add(&log_missed, 1);
}

static void log_vmsg(enum log_level level, const char *file, int line, const char *fmt, va_list ap)
{
	char buf[LOG_LINE_MAX];
	char *end = buf + sizeof(buf) - 1; /* room for the newline */
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!localtime_r(&ts.tv_sec, &tm))
		memset(&tm, 0, sizeof(tm));
	char *p = put_prefix(buf, end, &tm, ts.tv_nsec, level, file, line);
	int m = vsnprintf(p, (size_t)(end - p) + 1, fmt, ap);
	if (m < 0)
		return;
	char *stop = m > end - p ? end : p + m;
	/* One entry, one line: a message that quotes something untrusted
	 * (a request's path, a file name) cannot start a forged line. */
	for (; p < stop; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	*p++ = '\n';
	log_write(buf, (size_t)(p - buf));
}

void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	if (!log_enabled(level) || !module_matches(file))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, file, line, fmt, ap);
	va_end(ap);
}

void log_signal_safe(const char *file, int line, const char *msg)
{
	char buf[LOG_LINE_MAX];
	char *end = buf + sizeof(buf) - 1;
	struct timespec ts;
	struct tm tm = { 0 };
	clock_gettime(CLOCK_REALTIME, &ts);
	long s = (long)ts.tv_sec + atomic_load(&utc_offset);
	long days = s / 86400, rem = s % 86400;
	if (rem < 0)
		days--, rem += 86400;
	civil_from_days(days, &tm);
	tm.tm_hour = (int)(rem / 3600);
	tm.tm_min = (int)(rem / 60 % 60);
	tm.tm_sec = (int)(rem % 60);
	char *p = put_prefix(buf, end, &tm, ts.tv_nsec, LOG_ERROR, file, line);
	p = put_str(p, end, msg);
	*p++ = '\n';
	/* write() alone: it is what every thread's seccomp filter allows. */
	if (write(atomic_load(&log_fd), buf, (size_t)(p - buf)) != p - buf)
		atomic_fetch_add(&log_missed, 1);
}

void log_die(const char *file, int line, int code, const char *fmt, ...)
{
	if (log_enabled(LOG_ERROR)) {
		va_list ap;
		va_start(ap, fmt);
		log_vmsg(LOG_ERROR, file, line, fmt, ap);
		va_end(ap);
	}
	exit(code);
}
