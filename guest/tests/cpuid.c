// SPDX-License-Identifier: Apache-2.0
/*
 * cpuid: prints the CPUID leaves a CPU template or SMT changes, one line per
 * leaf/sub-leaf ("cpuid LEAF SUB EAX EBX ECX EDX", hex), then the MSRs a
 * template may set, each only when CPUID says the guest may read it
 * ("msr ADDR VALUE"), then "cpuid done". Command line:
 *   tick=N   afterwards, print '.' every N TSC cycles forever (to snapshot)
 */
#include "kit.h"

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static void show(uint32_t leaf, uint32_t sub)
{
	uint32_t r[4];
	cpuid(leaf, sub, r);
	kit_puts("cpuid ");
	kit_put_hex(leaf);
	kit_putc(' ');
	kit_put_hex(sub);
	for (int i = 0; i < 4; i++) {
		kit_putc(' ');
		kit_put_hex(r[i]);
	}
	kit_putc('\n');
}

int guest_main(void)
{
	static const struct {
		uint32_t leaf, sub;
	} leaves[] = {
		{ 0x0, 0 },	   { 0x1, 0 },	      { 0x4, 0 },	 { 0x4, 1 },  { 0x4, 2 },
		{ 0x4, 3 },	   { 0x7, 0 },	      { 0x7, 1 },	 { 0xb, 0 },  { 0xb, 1 },
		{ 0xb, 2 },	   { 0xd, 0 },	      { 0xd, 1 },	 { 0x1f, 0 }, { 0x1f, 1 },
		{ 0x80000001, 0 }, { 0x80000008, 0 }, { 0x8000001e, 0 },
	};
	uint32_t r[4];
	cpuid(0, 0, r);
	uint32_t max = r[0];
	cpuid(0x80000000, 0, r);
	uint32_t max_ext = r[0];
	for (unsigned int i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		uint32_t l = leaves[i].leaf;
		if ((l < 0x80000000 && l <= max) || (l >= 0x80000000 && l <= max_ext))
			show(l, leaves[i].sub);
	}
	/* IA32_ARCH_CAPABILITIES exists when CPUID.7.0:EDX[29] says so. */
	cpuid(0x7, 0, r);
	if (max >= 7 && (r[3] >> 29) & 1) {
		kit_puts("msr 0x10a ");
		kit_put_hex(rdmsr(0x10a));
		kit_putc('\n');
	}
	kit_puts("cpuid done\n");
	uint64_t tick = 0;
	if (kit_cmdline_u64("tick=", &tick) == 0 && tick)
		for (uint64_t t = rdtsc();; t = rdtsc()) {
			while (rdtsc() - t < tick)
				__asm__ volatile("pause");
			kit_putc('.');
		}
	return 0;
}
