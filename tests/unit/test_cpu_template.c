// SPDX-License-Identifier: Apache-2.0
/* CPU templates: bitmap and number syntax, the static tables against
 * Firecracker's published bitmaps, applying CPUID modifiers, the snapshot's
 * CPUID subset check, and SMT topology. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/cpu_template.h"

static void bitmaps_parse_and_format(void **state)
{
	(void)state;
	char err[160];
	uint64_t f, v;
	assert_int_equal(cpu_bitmap_parse("0bxxxx_10x1", 32, &f, &v, err, sizeof(err)), 0);
	assert_int_equal(f, 0xd);
	assert_int_equal(v, 0x9);
	/* "0b" is optional, as in Firecracker; an empty bitmap changes nothing. */
	assert_int_equal(cpu_bitmap_parse("1", 32, &f, &v, err, sizeof(err)), 0);
	assert_int_equal(f, 1);
	assert_int_equal(cpu_bitmap_parse("0b", 32, &f, &v, err, sizeof(err)), 0);
	assert_int_equal(f, 0);
	char b64[67];
	memset(b64, '1', sizeof(b64));
	b64[0] = '0', b64[1] = 'b', b64[66] = 0;
	assert_int_equal(cpu_bitmap_parse(b64, 64, &f, &v, err, sizeof(err)), 0);
	assert_true(f == UINT64_MAX && v == UINT64_MAX);
	assert_int_equal(cpu_bitmap_parse(b64, 32, &f, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "string is too long"));
	assert_int_equal(cpu_bitmap_parse("0b10y", 32, &f, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown character: y"));
	char out[35];
	cpu_bitmap_format(0xd, 0x9, 32, out);
	assert_string_equal(out, "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxx10x1");
}

static void numbers_need_a_prefix(void **state)
{
	(void)state;
	uint64_t n;
	assert_int_equal(cpu_number_parse("0x8000001e", UINT32_MAX, &n), 0);
	assert_int_equal(n, 0x8000001e);
	assert_int_equal(cpu_number_parse("0b101", UINT32_MAX, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(cpu_number_parse("0xFFFFFFFF", UINT32_MAX, &n), 0);
	assert_int_equal(cpu_number_parse("0x100000000", UINT32_MAX, &n), -EINVAL);
	assert_int_equal(cpu_number_parse("10", UINT32_MAX, &n), -EINVAL);
	assert_int_equal(cpu_number_parse("0x", UINT32_MAX, &n), -EINVAL);
	assert_int_equal(cpu_number_parse("0b2", UINT32_MAX, &n), -EINVAL);
	assert_int_equal(cpu_number_parse("0x1g", UINT32_MAX, &n), -EINVAL);
}

/* Firecracker's T2 and T2S as its docs' custom-template bitmaps. */
static const struct {
	uint32_t leaf, subleaf, reg;
	const char *bitmap;
} t2_bitmaps[] = {
	{ 0x1, 0, CPUID_EAX, "0bxxxx000000000011xx00011011110010" },
	{ 0x1, 0, CPUID_ECX, "0bxxxxxxxxxxxxx0xx00xx00x0000000xx" },
	{ 0x1, 0, CPUID_EDX, "0b000x0xxxx00xx0xxxxx1xxxx1xxxxxxx" },
	{ 0x7, 0, CPUID_EBX, "0b00000000000x000000x00x1xxxx0x0xx" },
	{ 0x7, 0, CPUID_ECX, "0bx0xxxxxxx0xxxxx0x0x00000x0x0000x" },
	{ 0x7, 0, CPUID_EDX, "0bxxxxxxxxxxxxxxxxxxxxxxx0xxx000xx" },
	{ 0xd, 0, CPUID_EAX, "0bxxxxxxxxxxxxxxxxxxxxxx0x00000xxx" },
	{ 0xd, 1, CPUID_EAX, "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxx000x" },
	{ 0x80000001, 0, CPUID_ECX, "0bxx0xxxxxxxxxxxxxxxxxxxx0xxxxxxxx" },
	{ 0x80000001, 0, CPUID_EDX, "0bxxxxx0xxxxxxxxxxxxxxxxxxxxxxxxxx" },
	{ 0x80000008, 0, CPUID_EBX, "0bxxxxxxxxxxxxxxxxxxxxxx0xxxxxxxxx" },
};

static void static_t2_is_firecrackers(void **state)
{
	(void)state;
	static struct cpu_template t;
	char err[160];
	assert_int_equal(cpu_template_static(TPL_T2, CPU_VENDOR_INTEL, &t, err, sizeof(err)), 0);
	size_t n = sizeof(t2_bitmaps) / sizeof(t2_bitmaps[0]);
	assert_int_equal(t.nr_cpuid, n);
	assert_int_equal(t.nr_msr, 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t f, v;
		assert_int_equal(
		    cpu_bitmap_parse(t2_bitmaps[i].bitmap, 32, &f, &v, err, sizeof(err)), 0);
		assert_int_equal(t.cpuid[i].leaf, t2_bitmaps[i].leaf);
		assert_int_equal(t.cpuid[i].subleaf, t2_bitmaps[i].subleaf);
		assert_int_equal(t.cpuid[i].reg, t2_bitmaps[i].reg);
		assert_int_equal(t.cpuid[i].filter, f);
		assert_int_equal(t.cpuid[i].value, v);
	}
	/* T2S: T2's CPUID plus IA32_ARCH_CAPABILITIES set whole. */
	assert_int_equal(cpu_template_static(TPL_T2S, CPU_VENDOR_INTEL, &t, err, sizeof(err)), 0);
	assert_int_equal(t.nr_msr, 1);
	assert_int_equal(t.msr[0].addr, 0x10a);
	assert_true(t.msr[0].filter == UINT64_MAX && t.msr[0].value == 0x0c0a0c4c);
}

static void templates_refuse_the_other_vendor(void **state)
{
	(void)state;
	static struct cpu_template t;
	char err[160] = "";
	assert_int_equal(cpu_template_static(TPL_T2A, CPU_VENDOR_INTEL, &t, err, sizeof(err)),
			 -ENOTSUP);
	assert_string_equal(err, "CPU vendor mismatched between actual CPU and CPU template.");
	for (int k = TPL_C3; k <= TPL_T2CL; k++)
		assert_int_equal(cpu_template_static(k, CPU_VENDOR_AMD, &t, err, sizeof(err)),
				 -ENOTSUP);
	assert_int_equal(cpu_template_static(TPL_T2A, CPU_VENDOR_AMD, &t, err, sizeof(err)), 0);
	assert_true(t.nr_cpuid > 0);
	assert_int_equal(cpu_template_by_name("T2CL"), TPL_T2CL);
	assert_int_equal(cpu_template_by_name("t2"), -1);
	assert_string_equal(cpu_template_name(TPL_C3), "C3");
}

static struct kvm_cpuid2 *table(unsigned int cap)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + cap * sizeof(c->entries[0]));
	assert_non_null(c);
	return c;
}

static void apply_changes_only_the_filtered_bits(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = table(4);
	c->nent = 2;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 1, .eax = 0xffffffff };
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 7, .index = 0, .ebx = 0xf0f0 };
	static struct cpu_template t;
	memset(&t, 0, sizeof(t));
	t.cpuid[t.nr_cpuid++] = (struct cpuid_modifier){ 1, 0, 0, CPUID_EAX, 0xff, 0x12 };
	t.cpuid[t.nr_cpuid++] = (struct cpuid_modifier){ 7, 0, 1, CPUID_EBX, 0xf000, 0 };
	char err[160];
	assert_int_equal(cpu_template_apply_cpuid(&t, c, err, sizeof(err)), 0);
	assert_int_equal(c->entries[0].eax, 0xffffff12);
	assert_int_equal(c->entries[1].ebx, 0x00f0);
	assert_int_equal(c->entries[1].flags, 1);
	t.cpuid[t.nr_cpuid++] = (struct cpuid_modifier){ 7, 1, 1, CPUID_EAX, 1, 1 };
	assert_int_equal(cpu_template_apply_cpuid(&t, c, err, sizeof(err)), -ENOENT);
	assert_string_equal(
	    err, "Template changes a CPUID entry not supported by KVM: Leaf: 0x7, Subleaf: 0x1");
	free(c);
}

static void subset_check_names_the_missing_bit(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 saved[2] = {
		{ .function = 0, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69 },
		{ .function = 7, .ebx = 0x5 },
	};
	struct kvm_cpuid2 *host = table(2);
	host->nent = 2;
	host->entries[0] = saved[0];
	host->entries[1] = (struct kvm_cpuid_entry2){ .function = 7, .ebx = 0xff };
	char err[240];
	assert_int_equal(cpu_cpuid_check_subset(saved, 2, host, err, sizeof(err)), 0);
	host->entries[1].ebx = 0x1;
	assert_int_equal(cpu_cpuid_check_subset(saved, 2, host, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "leaf 0x7 subleaf 0 ebx bit 2"));
	host->entries[0].ebx = 0x68747541; /* "Auth": another vendor */
	assert_int_equal(cpu_cpuid_check_subset(saved, 2, host, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "vendor"));
	free(host);
}

static void smt_topology_says_two_threads_per_core(void **state)
{
	(void)state;
	unsigned int cap = 8;
	struct kvm_cpuid2 *c = table(cap);
	c->nent = 3;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 0 };
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 4, .index = 0, .eax = 0x21 };
	c->entries[2] = (struct kvm_cpuid_entry2){ .function = 4, .index = 3, .eax = 0x63 };
	cpuid_filter(c, cap, 3, 4, 2);
	for (unsigned int i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 0xb && e->index == 0) {
			assert_int_equal(e->eax, 1); /* one bit of thread id */
			assert_int_equal(e->ebx, 2);
			assert_int_equal(e->edx, 3);
		} else if (e->function == 0xb && e->index == 1) {
			assert_int_equal(e->ebx, 4);
		} else if (e->function == 4 && e->index == 0) {
			assert_int_equal((e->eax >> 14) & 0xfff, 1); /* L1: a core's 2 threads */
			assert_int_equal(e->eax >> 26, 1); /* 2 cores */
		} else if (e->function == 4 && e->index == 3) {
			assert_int_equal((e->eax >> 14) & 0xfff, 3); /* L3: all 4 */
		}
	}
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bitmaps_parse_and_format),
		cmocka_unit_test(numbers_need_a_prefix),
		cmocka_unit_test(static_t2_is_firecrackers),
		cmocka_unit_test(templates_refuse_the_other_vendor),
		cmocka_unit_test(apply_changes_only_the_filtered_bits),
		cmocka_unit_test(subset_check_names_the_missing_bit),
		cmocka_unit_test(smt_topology_says_two_threads_per_core),
	};
	return cmocka_run_group_tests_name("cpu_template", tests, NULL, NULL);
}
