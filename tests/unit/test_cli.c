// SPDX-License-Identifier: Apache-2.0
/*
 * cli_parse() on Firecracker's launch contract: the arguments its jailer
 * passes, the default API socket, the options ember refuses.
 */
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "exit_codes.h"

#define MAX_ARGS 16

static struct vmm_config cfg;

/* Parse "ember" plus the NULL-terminated arguments, as a fresh process would. */
static int parse(const char *first, ...)
{
	char *argv[MAX_ARGS + 2] = { "ember" };
	int argc = 1;
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a && argc <= MAX_ARGS; a = va_arg(ap, const char *))
		argv[argc++] = (char *)(uintptr_t)a;
	va_end(ap);
	config_free(&cfg);
	optind = 0;
	return cli_parse(argc, argv, &cfg);
}

static void jailer_arguments(void **state)
{
	(void)state;
	char start[24];
	snprintf(start, sizeof(start), "%llu", (unsigned long long)clock_now_us());
	assert_int_equal(parse("--id", "fc-1", "--start-time-us", start, "--start-time-cpu-us",
			       "1234", "--parent-cpu-time-us", "5678", "--config-file", "vm.json",
			       NULL),
			 0);
	assert_string_equal(cfg.id, "fc-1");
	assert_true(cfg.start_time_given && cfg.start_time_cpu_given);
	assert_int_equal(cfg.start_time_us, strtoull(start, NULL, 10));
	assert_int_equal(cfg.start_time_cpu_us, 1234);
	assert_int_equal(cfg.parent_cpu_time_us, 5678);
	/* docs/jailer.md writes them --id=<id>: getopt's long form. */
	assert_int_equal(
	    parse("--id=fc-2", "--start-time-cpu-us=0", "--parent-cpu-time-us=0", NULL), 0);
	assert_string_equal(cfg.id, "fc-2");
	assert_true(cfg.start_time_cpu_given && !cfg.start_time_given);
}

static void default_socket(void **state)
{
	(void)state;
	assert_int_equal(parse(NULL), 0);
	assert_string_equal(cfg.api_sock, EMBER_DEFAULT_API_SOCK);
	assert_string_equal(cfg.id, "anonymous-instance");
	assert_int_equal(parse("--config-file", "vm.json", NULL), 0);
	assert_string_equal(cfg.api_sock, "/run/firecracker.socket");
	assert_int_equal(parse("--api-sock", "/tmp/a.sock", NULL), 0);
	assert_string_equal(cfg.api_sock, "/tmp/a.sock");
	/* --no-api, and ember's own --kernel / --restore shorthand: no socket. */
	assert_int_equal(parse("--no-api", "--config-file", "vm.json", NULL), 0);
	assert_null(cfg.api_sock);
	assert_int_equal(parse("--kernel", "vmlinux", NULL), 0);
	assert_null(cfg.api_sock);
	assert_int_equal(parse("--restore", "s", "--mem", "m", NULL), 0);
	assert_null(cfg.api_sock);
	assert_int_equal(parse("--no-api", NULL), EMBER_EXIT_USAGE);
}

static void garbage(void **state)
{
	(void)state;
	static const char *const flags[] = { "--start-time-us", "--start-time-cpu-us",
					     "--parent-cpu-time-us" };
	static const char *const values[] = { "",   "x",   "-1",  "+1",
					      "1 ", "0x1", "1e3", "18446744073709551616" };
	for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++)
		for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++)
			assert_int_equal(parse(flags[f], values[v], NULL), EMBER_EXIT_USAGE);
	/* A CLOCK_MONOTONIC reading from the future. */
	assert_int_equal(parse("--start-time-us", "18446744073709551615", NULL), EMBER_EXIT_USAGE);
	assert_int_equal(parse("--id", "a/b", NULL), EMBER_EXIT_USAGE);
	assert_int_equal(parse("--enable-pci", NULL), EMBER_EXIT_USAGE);
	assert_int_equal(parse("--metadata", "", NULL), EMBER_EXIT_USAGE);
	assert_int_equal(parse("--mmds-size-limit", "0", NULL), EMBER_EXIT_USAGE);
	assert_int_equal(parse("--mmds-size-limit", "-1", NULL), EMBER_EXIT_USAGE);
	assert_int_equal(parse("--mmds-size-limit", "1k", NULL), EMBER_EXIT_USAGE);
	assert_int_equal(parse("--metadata", "m.json", "--mmds-size-limit", "10", NULL), 0);
	assert_string_equal(cfg.metadata_path, "m.json");
	assert_int_equal(cfg.mmds_size_limit, 10);
	assert_int_equal(parse("--describe-snapshot", "/nonexistent", NULL), EMBER_EXIT_USAGE);
	assert_int_equal(parse("--describe-snapshot", "/dev/null", NULL), EMBER_EXIT_SNAPSHOT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jailer_arguments),
		cmocka_unit_test(default_socket),
		cmocka_unit_test(garbage),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	config_free(&cfg);
	return r;
}
