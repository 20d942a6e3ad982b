// SPDX-License-Identifier: Apache-2.0
/* utf8_sanitize(): what reaches JSON answers and log lines. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utf8_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
