// SPDX-License-Identifier: Apache-2.0
/* The logger: Firecracker's line format, its options, level names, quoting,
 * FIFOs with no reader, and dropping (never blocking on) a full pipe. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static int pipe_fd[2];

static int setup(void **state)
{
	(void)state;
	if (pipe2(pipe_fd, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	/* A copy: log_replace_fd() reuses the log fd's number, not the pipe's. */
	log_init(LOG_INFO, dup(pipe_fd[1]));
	log_set_instance_id("unit-vm");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(pipe_fd[0]);
	close(pipe_fd[1]);
	return 0;
}

/* What the logger wrote since the last call ("" for nothing). */
static const char *drain(void)
{
	static char buf[8192];
	ssize_t n = read(pipe_fd[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static void configure(enum log_level level, bool show_level, bool show_origin, const char *module)
{
	struct log_options o = { level, show_level, show_origin, module };
	assert_int_equal(log_configure(&o, NULL), 0);
}

static void assert_matches(const char *text, const char *pattern)
{
	regex_t re;
	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	int r = regexec(&re, text, 0, NULL, 0);
	regfree(&re);
	if (r != 0)
		fail_msg("'%s' does not match /%s/", text, pattern);
}

#define STAMP "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9} "

static void line_format(void **state)
{
	(void)state;
	configure(LOG_INFO, false, false, NULL);
	log_info("hello %d", 42);
	assert_matches(drain(), STAMP "\\[unit-vm:main\\] hello 42\n$");
	configure(LOG_INFO, true, false, NULL);
	log_warn("w");
	assert_matches(drain(), STAMP "\\[unit-vm:main:WARN\\] w\n$");
	configure(LOG_INFO, true, true, NULL);
	int line = __LINE__ + 1;
	log_err("e");
	char want[128];
	snprintf(want, sizeof(want), STAMP "\\[unit-vm:main:ERROR:tests/unit/test_log.c:%d\\] e\n$",
		 line);
	assert_matches(drain(), want);
	configure(LOG_INFO, false, true, NULL);
	log_set_thread_name("vcpu3");
	log_info("o");
	log_set_thread_name("main");
	assert_matches(drain(), STAMP "\\[unit-vm:vcpu3:tests/unit/test_log.c:[0-9]+\\] o\n$");
}

/* The timestamp is local wall-clock time, now. */
static void timestamp_is_local_time(void **state)
{
	(void)state;
	configure(LOG_INFO, false, false, NULL);
	time_t before = time(NULL);
	log_info("t");
	const char *s = drain();
	struct tm tm = { 0 };
	assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%S", &tm));
	tm.tm_isdst = -1;
	time_t at = mktime(&tm);
	assert_true(at >= before && at <= before + 2);
}

static void levels_filter(void **state)
{
	(void)state;
	configure(LOG_WARN, false, false, NULL);
	log_info("no");
	log_debug("no");
	assert_string_equal(drain(), "");
	log_warn("yes");
	assert_non_null(strstr(drain(), "] yes\n"));
	configure(LOG_OFF, false, false, NULL);
	log_err("no");
	assert_string_equal(drain(), "");
	configure(LOG_TRACE, false, false, NULL);
	log_trace("deep");
	assert_non_null(strstr(drain(), "] deep\n"));
	assert_false(log_enabled(LOG_OFF));
}

static void level_names(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		enum log_level l;
	} ok[] = {
		{ "Error", LOG_ERROR }, { "ERROR", LOG_ERROR },	 { "warning", LOG_WARN },
		{ "WaRn", LOG_WARN },	{ "Warning", LOG_WARN }, { "info", LOG_INFO },
		{ "DEBUG", LOG_DEBUG }, { "trace", LOG_TRACE },	 { "Off", LOG_OFF },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		enum log_level l = LOG_INFO;
		assert_int_equal(log_level_parse(ok[i].s, &l), 0);
		assert_int_equal(l, ok[i].l);
	}
	const char *bad[] = { "", "Loud", "warnings", "inf", "Error ", "0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum log_level l = LOG_INFO;
		assert_int_equal(log_level_parse(bad[i], &l), -EINVAL);
	}
	assert_string_equal(log_level_name(LOG_WARN), "Warning");
}

static void module_filters_by_source_path(void **state)
{
	(void)state;
	configure(LOG_INFO, false, false, "tests/unit");
	log_info("mine");
	assert_non_null(strstr(drain(), "] mine\n"));
	configure(LOG_INFO, false, false, "tests::unit::test_log");
	log_info("colons");
	assert_non_null(strstr(drain(), "] colons\n"));
	configure(LOG_INFO, false, false, "vmm/devices");
	log_err("filtered out");
	assert_string_equal(drain(), "");
	configure(LOG_INFO, false, false, "");
	log_info("all again");
	assert_non_null(strstr(drain(), "] all again\n"));
	char *huge = malloc(LOG_MODULE_MAX + 2);
	memset(huge, 'a', LOG_MODULE_MAX + 1);
	huge[LOG_MODULE_MAX + 1] = 0;
	struct log_options o = { LOG_INFO, false, false, huge };
	assert_int_equal(log_configure(&o, NULL), -ENAMETOOLONG);
	free(huge);
}

static void messages_stay_one_line(void **state)
{
	(void)state;
	configure(LOG_INFO, false, false, NULL);
	log_info("path %s", "/a\nFORGED [x:y] line\r");
	const char *s = drain();
	assert_non_null(strstr(s, "] path /a FORGED [x:y] line \n"));
	assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
	/* A message longer than a line is cut, still ending in a newline. */
	char big[8000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	log_info("%s", big);
	s = drain();
	assert_true(strlen(s) < PIPE_BUF);
	assert_int_equal(s[strlen(s) - 1], '\n');
}

static void quoting(void **state)
{
	(void)state;
	char q[32];
	log_quote(q, sizeof(q), "a\"b\\c\n\x01\xff", 8);
	assert_string_equal(q, "\"a\\\"b\\\\c\\n\\x01\\xff\"");
	const char *longer = "0123456789012345678901234567890123456789";
	size_t n = log_quote(q, sizeof(q), longer, strlen(longer));
	assert_int_equal(n, strlen(q));
	assert_true(n < sizeof(q));
	assert_string_equal(q + n - 4, "...\"");
	log_quote(q, sizeof(q), "", 0);
	assert_string_equal(q, "\"\"");
}

/* A full pipe (a reader that stopped reading) costs dropped lines, counted,
 * never a blocked thread. */
static void full_pipe_drops_and_counts(void **state)
{
	(void)state;
	configure(LOG_INFO, false, false, NULL);
	uint64_t before = log_missed_count();
	for (int i = 0; i < 4000; i++)
		log_info("filler line %d that takes some room in the pipe", i);
	uint64_t missed = log_missed_count() - before;
	assert_true(missed > 0);
	while (*drain())
		;
	log_info("after");
	assert_non_null(strstr(drain(), "] after\n"));
	assert_int_equal(log_missed_count() - before, missed);
}

/* A FIFO nobody reads yet opens (a write-only open gets ENXIO), and what is
 * logged waits in it for the reader that comes later. */
static void fifo_without_reader(void **state)
{
	(void)state;
	char dir[] = "/tmp/ember-log-XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	struct log_options o = { LOG_INFO, false, false, NULL };
	assert_int_equal(log_configure(&o, path), 0);
	log_info("into the fifo");
	int r = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(r >= 0);
	char buf[512];
	ssize_t n = read(r, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = 0;
	assert_matches(buf, STAMP "\\[unit-vm:main\\] into the fifo\n$");
	close(r);
	/* A directory, a missing directory: refused, nothing changed. */
	assert_int_equal(log_configure(&o, dir), -EISDIR);
	snprintf(path, sizeof(path), "%s/no/such", dir);
	assert_int_equal(log_configure(&o, path), -ENOENT);
	log_info("still here");
	/* Back to the pipe (the fifo's fd number took it over). */
	assert_int_equal(log_replace_fd(dup(pipe_fd[1])), 0);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	unlink(path);
	rmdir(dir);
	log_info("pipe again");
	assert_non_null(strstr(drain(), "] pipe again\n"));
}

/* The SIGSYS path formats the same line without localtime_r(). */
static void signal_safe_line(void **state)
{
	(void)state;
	configure(LOG_INFO, true, false, NULL);
	log_info("x");
	char normal[64];
	snprintf(normal, sizeof(normal), "%.16s", drain()); /* to the minute */
	log_signal_safe("vmm/seccomp/seccomp.c", 7, "seccomp: denied");
	const char *s = drain();
	assert_matches(s, STAMP "\\[unit-vm:main:ERROR\\] seccomp: denied\n$");
	assert_memory_equal(s, normal, 16);
}

int main(void)
{
	/* A fixed zone away from UTC: the signal-safe path must apply it too. */
	setenv("TZ", "XYZ-5:30", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(line_format),
		cmocka_unit_test(timestamp_is_local_time),
		cmocka_unit_test(levels_filter),
		cmocka_unit_test(level_names),
		cmocka_unit_test(module_filters_by_source_path),
		cmocka_unit_test(messages_stay_one_line),
		cmocka_unit_test(quoting),
		cmocka_unit_test(full_pipe_drops_and_counts),
		cmocka_unit_test(fifo_without_reader),
		cmocka_unit_test(signal_safe_line),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
