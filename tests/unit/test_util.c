// SPDX-License-Identifier: Apache-2.0
/* utf8_sanitize() and utf8_valid(): what reaches JSON answers and log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util.h"

static void sanitized(const char *in, const char *want)
{
	char buf[64];
	strcpy(buf, in);
	utf8_sanitize(buf);
	assert_string_equal(buf, want);
}

static void utf8_cases(void **state)
{
	(void)state;
	sanitized("plain /drives/a", "plain /drives/a");
	sanitized("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5",
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5");
	sanitized("/\xff\xfe", "/??");
	sanitized("a\nb\tc\x7f", "a?b?c?");
	sanitized("\xc0\xaf", "??"); /* overlong '/' */
	sanitized("\xe0\x80\xaf", "???"); /* overlong, 3 bytes */
	sanitized("\xed\xa0\x80", "???"); /* surrogate */
	sanitized("\xf4\x90\x80\x80", "????"); /* past U+10FFFF */
	sanitized("end \xe2\x82", "end ??"); /* cut by truncation */
	sanitized("\xc3", "?");
	sanitized("", "");
}

/* Control characters are text (JSON escapes them); broken sequences are not. */
static void utf8_validity(void **state)
{
	(void)state;
	assert_true(utf8_valid(""));
	assert_true(utf8_valid("console=ttyS0 reboot=k\tpanic=1\n"));
	assert_true(utf8_valid("caf\xc3\xa9 \xf0\x9f\x94\xa5"));
	assert_false(utf8_valid("c\xefnsole=ttyS0")); /* what fuzz_config found in --cmdline */
	assert_false(utf8_valid("/\xff"));
	assert_false(utf8_valid("\xc0\xaf"));
	assert_false(utf8_valid("\xed\xa0\x80"));
	assert_false(utf8_valid("end \xe2\x82"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utf8_cases),
		cmocka_unit_test(utf8_validity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
