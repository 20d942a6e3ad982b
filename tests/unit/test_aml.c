// SPDX-License-Identifier: Apache-2.0
/* The AML encoder: every encoding against bytes worked out from ACPI 6.5. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "acpi/aml.h"

#define expect_bytes(a, ...)                                                                       \
	do {                                                                                       \
		static const uint8_t want_[] = { __VA_ARGS__ };                                    \
		assert_int_equal((a)->err, 0);                                                     \
		assert_int_equal((a)->len, sizeof(want_));                                         \
		assert_memory_equal((a)->buf, want_, sizeof(want_));                               \
	} while (0)

static void integers_take_the_shortest_form(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 2);
	aml_integer(&a, 0xff);
	aml_integer(&a, 0x100);
	aml_integer(&a, 0x10000);
	aml_integer(&a, 0x100000000ull);
	expect_bytes(&a, 0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00, 0x01, 0x0c, 0x00, 0x00,
		     0x01, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
	aml_free(&a);
}

static void name_strings(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_path(&a, "_HID");
	aml_path(&a, "GED"); /* padded with '_' */
	aml_path(&a, "\\_SB_.VGEN");
	aml_path(&a, "^^A.B.C");
	aml_path(&a, "\\");
	expect_bytes(&a, '_', 'H', 'I', 'D', 'G', 'E', 'D', '_', '\\', 0x2e, '_', 'S', 'B', '_',
		     'V', 'G', 'E', 'N', '^', '^', 0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_',
		     'C', '_', '_', '_', '\\', 0x00);
	aml_free(&a);
}

static void bad_names_latch_an_error(void **state)
{
	(void)state;
	static const char *const bad[] = { "",	 "1ABC", "ABCDE", "abcd", "A..B",
					   "A.", "\\^X", "^\\X",  "A-B",  ".ABC" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aml a;
		aml_init(&a);
		aml_path(&a, bad[i]);
		assert_int_equal(a.err, -EINVAL);
		/* Nothing more is written once an error has latched. */
		size_t len = a.len;
		aml_integer(&a, 5);
		aml_string(&a, "x");
		assert_int_equal(a.len, len);
		aml_free(&a);
	}
}

static void strings_and_eisa_ids(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_string(&a, "AB");
	aml_eisaid(&a, "PNP0501");
	expect_bytes(&a, 0x0d, 'A', 'B', 0x00, 0x0c, 0x41, 0xd0, 0x05, 0x01);
	aml_free(&a);
	assert_int_equal(aml_eisaid_value("PNP0303"), 0x0303d041);
	assert_int_equal(aml_eisaid_value("PNP0A03"), 0x030ad041);
	assert_int_equal(aml_eisaid_value("pnp0501"), 0);
	assert_int_equal(aml_eisaid_value("PNP05G1"), 0);
	assert_int_equal(aml_eisaid_value("PNP050"), 0);
	assert_int_equal(aml_eisaid_value("PNP05011"), 0);

	aml_init(&a);
	aml_string(&a, "caf\xc3\xa9");
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_eisaid(&a, "XYZ");
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
}

/* Device (VR00) { Name (_HID, "LNRO0005") } as iasl compiles it. */
static void device_with_a_name(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	size_t d = aml_device(&a, "VR00");
	aml_name(&a, "_HID");
	aml_string(&a, "LNRO0005");
	aml_close(&a, d);
	expect_bytes(&a, 0x5b, 0x82, 0x14, 'V', 'R', '0', '0', 0x08, '_', 'H', 'I', 'D', 0x0d, 'L',
		     'N', 'R', 'O', '0', '0', '0', '5', 0x00);
	aml_free(&a);
}

/* Method (_EVT, 1, Serialized) { If ((Arg0 == 0x17)) { Notify (\_SB.VGEN, 0x80) } } */
static void method_if_notify(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	size_t m = aml_method(&a, "_EVT", 1, true);
	size_t c = aml_if(&a);
	aml_lequal(&a);
	aml_arg(&a, 0);
	aml_integer(&a, 0x17);
	aml_notify(&a, "\\_SB_.VGEN", 0x80);
	aml_close(&a, c);
	aml_close(&a, m);
	expect_bytes(&a, 0x14, 0x19, '_', 'E', 'V', 'T', 0x09, 0xa0, 0x12, 0x93, 0x68, 0x0a, 0x17,
		     0x86, '\\', 0x2e, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N', 0x0a, 0x80);
	aml_free(&a);

	aml_init(&a);
	aml_method(&a, "_EVT", 8, false);
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_arg(&a, 7);
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
}

static void packages_and_buffers(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	size_t p = aml_package(&a, 2);
	aml_integer(&a, 0xf0000);
	aml_integer(&a, 0);
	aml_close(&a, p);
	static const uint8_t three[3] = { 1, 2, 3 };
	aml_buffer(&a, three, sizeof(three));
	expect_bytes(&a, 0x12, 0x08, 0x02, 0x0c, 0x00, 0x00, 0x0f, 0x00, 0x00, 0x11, 0x06, 0x0a,
		     0x03, 1, 2, 3);
	aml_free(&a);
}

/* PkgLength counts itself: 1 byte up to 63, then 2, 3 and 4 bytes. */
static void package_lengths_at_each_boundary(void **state)
{
	(void)state;
	static const struct {
		size_t body;
		unsigned int bytes;
		uint32_t total;
	} cases[] = {
		{ 2, 1, 3 },
		{ 62, 1, 63 },
		{ 63, 2, 65 },
		{ 4093, 2, 4095 },
		{ 4094, 3, 4097 },
		{ 1048572, 3, 1048575 },
		{ 1048573, 4, 1048577 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aml a;
		aml_init(&a);
		size_t m = aml_scope(&a, "\\");
		/* The scope's name is 2 bytes ("\" and NullName); pad the rest. */
		size_t pad = cases[i].body - 2;
		for (size_t k = 0; k < pad; k++)
			aml_integer(&a, 0);
		aml_close(&a, m);
		assert_int_equal(a.err, 0);
		assert_int_equal(a.len, 1 + cases[i].bytes + cases[i].body);
		const uint8_t *pl = a.buf + 1;
		uint32_t total;
		if (cases[i].bytes == 1) {
			assert_int_equal(pl[0] >> 6, 0);
			total = pl[0];
		} else {
			assert_int_equal(pl[0] >> 6, cases[i].bytes - 1);
			assert_int_equal(pl[0] & 0x30, 0);
			total = pl[0] & 0x0f;
			for (unsigned int k = 1; k < cases[i].bytes; k++)
				total |= (uint32_t)pl[k] << (4 + 8 * (k - 1));
		}
		assert_int_equal(total, cases[i].total);
		/* What follows the PkgLength is the body, moved intact. */
		assert_int_equal(pl[cases[i].bytes], '\\');
		aml_free(&a);
	}
}

static void resource_descriptors(void **state)
{
	(void)state;
	struct aml_res r = { .len = 0 };
	aml_res_io(&r, 0x3f8, 8);
	aml_res_irq(&r, 4);
	aml_res_mem32_fixed(&r, 0xd0001000, 0x1000, true);
	aml_res_ext_irq(&r, 23);
	aml_res_end(&r);
	static const uint8_t want[] = {
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, /* IO */
		0x22, 0x10, 0x00, /* IRQNoFlags {4} */
		0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x00, 0x10, 0x00,
		0x00, 0x89, 0x06, 0x00, 0x03, 0x01, 0x17, 0x00, 0x00, 0x00, /* Interrupt {23} */
		0x79, 0x00,
	};
	assert_false(r.overflow);
	assert_int_equal(r.len, sizeof(want));
	assert_memory_equal(r.buf, want, sizeof(want));

	struct aml_res bad = { .len = 0 };
	aml_res_irq(&bad, 16); /* not an ISA IRQ */
	assert_true(bad.overflow);
	struct aml_res full = { .len = 0 };
	for (int i = 0; i < 40; i++)
		aml_res_mem32_fixed(&full, 0, 0x1000, true);
	assert_true(full.overflow);
	assert_true(full.len <= sizeof(full.buf));
}

static void close_with_a_bad_mark_fails(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_integer(&a, 0);
	aml_close(&a, 100);
	assert_int_equal(a.err, -EINVAL);
	aml_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(integers_take_the_shortest_form),
		cmocka_unit_test(name_strings),
		cmocka_unit_test(bad_names_latch_an_error),
		cmocka_unit_test(strings_and_eisa_ids),
		cmocka_unit_test(device_with_a_name),
		cmocka_unit_test(method_if_notify),
		cmocka_unit_test(packages_and_buffers),
		cmocka_unit_test(package_lengths_at_each_boundary),
		cmocka_unit_test(resource_descriptors),
		cmocka_unit_test(close_with_a_bad_mark_fails),
	};
	return cmocka_run_group_tests_name("aml", tests, NULL, NULL);
}
