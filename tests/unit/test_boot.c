// SPDX-License-Identifier: Apache-2.0
/* Boot structures: e820, hvm_start_info, MP table, CPUID topology, bus. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/boot.h"
#include "arch/x86_64/cpu.h"
#include "bus.h"
#include "fake_mem.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void e820_small_guest(void **state)
{
	(void)state;
	struct guest_mem mem;
	struct e820_map map;
	assert_int_equal(guest_mem_layout(&mem, 128 * MiB, MMIO_GAP_START, MMIO_GAP_END), 0);
	e820_build(&mem, &map);
	assert_int_equal(map.nr, 5);
	assert_int_equal(map.entries[0].addr, 0);
	assert_int_equal(map.entries[0].size, EBDA_START);
	assert_int_equal(map.entries[0].type, 1);
	assert_int_equal(map.entries[1].addr, EBDA_START);
	assert_int_equal(map.entries[1].type, 2);
	/* The ACPI tables are ACPI data (3), VMGenID's page reserved. */
	assert_int_equal(map.entries[2].addr, ACPI_TABLES_START);
	assert_int_equal(map.entries[2].size, ACPI_TABLES_END - ACPI_TABLES_START);
	assert_int_equal(map.entries[2].type, 3);
	assert_int_equal(map.entries[3].addr, VMGENID_ADDR);
	assert_int_equal(map.entries[3].addr + map.entries[3].size, HIMEM_START);
	assert_int_equal(map.entries[3].type, 2);
	assert_int_equal(map.entries[4].addr, HIMEM_START);
	assert_int_equal(map.entries[4].size, 128 * MiB - HIMEM_START);
}

static void e820_guest_above_4g_skips_the_gap(void **state)
{
	(void)state;
	struct guest_mem mem;
	struct e820_map map;
	assert_int_equal(guest_mem_layout(&mem, 4 * GiB, MMIO_GAP_START, MMIO_GAP_END), 0);
	e820_build(&mem, &map);
	assert_int_equal(map.nr, 6);
	assert_int_equal(map.entries[4].addr + map.entries[4].size, MMIO_GAP_START);
	assert_int_equal(map.entries[5].addr, MMIO_GAP_END);
	assert_int_equal(map.entries[5].size, 1 * GiB);
	uint64_t ram = 0;
	for (unsigned int i = 0; i < map.nr; i++)
		if (map.entries[i].type == 1)
			ram += map.entries[i].size;
	/* All RAM but the EBDA..1 MiB hole is usable. */
	assert_int_equal(ram, 4 * GiB - (HIMEM_START - EBDA_START));
}

static void pvh_start_info_is_complete(void **state)
{
	(void)state;
	struct guest_mem mem;
	char err[BOOT_ERR_MAX];
	assert_int_equal(fake_mem_init(&mem, 64 * MiB), 0);
	struct boot_info bi = { .cmdline = "root=/dev/vda quiet",
				.initrd_addr = 0x2000000,
				.initrd_size = 4096,
				.rsdp_addr = RSDP_ADDR };
	assert_int_equal(pvh_setup(&mem, &bi, err), 0);
	const struct hvm_start_info *si = guest_mem_ptr(&mem, PVH_INFO_ADDR, sizeof(*si));
	assert_int_equal(si->magic, HVM_START_MAGIC);
	assert_int_equal(si->version, 1);
	assert_string_equal((const char *)guest_mem_ptr(&mem, si->cmdline_paddr, 1),
			    "root=/dev/vda quiet");
	assert_int_equal(si->rsdp_paddr, RSDP_ADDR);
	assert_int_equal(si->memmap_entries, 5);
	const struct hvm_memmap_table_entry *mm =
	    guest_mem_ptr(&mem, si->memmap_paddr, 5 * sizeof(*mm));
	assert_int_equal(mm[2].type, 3);
	assert_int_equal(mm[4].addr, HIMEM_START);
	assert_int_equal(mm[4].size, 64 * MiB - HIMEM_START);
	assert_int_equal(si->nr_modules, 1);
	const struct hvm_modlist_entry *mod = guest_mem_ptr(&mem, si->modlist_paddr, sizeof(*mod));
	assert_int_equal(mod->paddr, 0x2000000);
	assert_int_equal(mod->size, 4096);
	fake_mem_free(&mem);
}

static void cmdline_limit_is_enforced(void **state)
{
	(void)state;
	struct guest_mem mem;
	char err[BOOT_ERR_MAX];
	assert_int_equal(fake_mem_init(&mem, 16 * MiB), 0);
	char *line = malloc(CMDLINE_MAX + 1);
	memset(line, 'x', CMDLINE_MAX);
	line[CMDLINE_MAX] = 0;
	struct boot_info bi = { .cmdline = line };
	assert_int_equal(pvh_setup(&mem, &bi, err), -E2BIG);
	line[CMDLINE_MAX - 1] = 0; /* exactly the limit including NUL */
	assert_int_equal(pvh_setup(&mem, &bi, err), 0);
	free(line);
	fake_mem_free(&mem);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static void mptable_lists_every_cpu(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(fake_mem_init(&mem, 16 * MiB), 0);
	for (unsigned int n = 1; n <= 32; n += 31) {
		assert_int_equal(mptable_setup(&mem, n), 0);
		const uint8_t *mpf = guest_mem_ptr(&mem, MPTABLE_ADDR, 16);
		assert_memory_equal(mpf, "_MP_", 4);
		assert_int_equal(sum(mpf, 16), 0);
		uint32_t phys;
		memcpy(&phys, mpf + 4, 4);
		const uint8_t *mpc = guest_mem_ptr(&mem, phys, 44);
		assert_memory_equal(mpc, "PCMP", 4);
		uint16_t len, count;
		memcpy(&len, mpc + 4, 2);
		memcpy(&count, mpc + 34, 2);
		assert_true(phys + len <= MPTABLE_ADDR + MPTABLE_MAX);
		assert_int_equal(sum(mpc, len), 0);
		unsigned int cpus = 0, bsp = 0, ioapic = 0;
		const uint8_t *e = mpc + 44;
		for (unsigned int i = 0; i < count; i++) {
			if (e[0] == 0) {
				assert_int_equal(e[1], cpus); /* APIC ids 0..n-1 */
				bsp += (e[3] & 2) != 0;
				cpus++;
				e += 20;
			} else {
				ioapic += e[0] == 2;
				e += 8;
			}
		}
		assert_int_equal(cpus, n);
		assert_int_equal(bsp, 1);
		assert_int_equal(ioapic, 1);
		assert_ptr_equal(e, mpc + len);
	}
	assert_int_equal(mptable_setup(&mem, 0), -E2BIG);
	assert_int_equal(mptable_setup(&mem, 40), -E2BIG);
	fake_mem_free(&mem);
}

static struct kvm_cpuid2 *fake_cpuid(void)
{
	static const uint32_t leaves[][2] = {
		{ 0x1, 0 }, { 0x4, 0 }, { 0x6, 0 }, { 0xa, 0 },
		{ 0xb, 0 }, { 0xb, 1 }, { 0xb, 2 }, { 0x80000001, 0 }
	};
	size_t n = sizeof(leaves) / sizeof(leaves[0]);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	c->nent = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		c->entries[i] = (struct kvm_cpuid_entry2){ .function = leaves[i][0],
							   .index = leaves[i][1],
							   .eax = 0xffffffff,
							   .ebx = 0xffffffff,
							   .ecx = 0x7fffffff,
							   .edx = 0xffffffff };
	return c;
}

static void cpuid_topology_per_vcpu(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = fake_cpuid();
	cpuid_filter(c, c->nent, 5, 8, 1);
	const struct kvm_cpuid_entry2 *e = c->entries;
	assert_int_equal(e[0].ebx >> 24, 5); /* initial APIC id */
	assert_int_equal((e[0].ebx >> 16) & 0xff, 8); /* logical CPUs */
	assert_true(e[0].ecx & (1u << 31)); /* hypervisor */
	assert_int_equal(e[1].eax >> 26, 7); /* cores - 1 */
	assert_int_equal(e[2].eax | e[2].ebx | e[2].ecx | e[2].edx, 0); /* no thermal */
	assert_int_equal(e[3].eax | e[3].ebx | e[3].ecx | e[3].edx, 0); /* no PMU */
	assert_int_equal(e[4].ebx, 1); /* SMT level: 1 thread */
	assert_int_equal(e[5].eax, 3); /* core level: 2^3 >= 8 */
	assert_int_equal(e[5].ebx, 8);
	assert_int_equal(e[4].edx, 5); /* x2APIC id */
	assert_int_equal(e[6].ecx & 0xff00, 0); /* level 2: invalid */
	assert_int_equal(e[7].eax, 0xffffffff); /* other leaves untouched */
	free(c);

	c = fake_cpuid();
	cpuid_filter(c, c->nent, 0, 1, 1);
	assert_int_equal(c->entries[0].edx & (1u << 28), 0); /* no HTT with one CPU */
	assert_int_equal(c->entries[5].eax, 0);
	free(c);
}

/* A host whose KVM lists only sub-leaf 0 of leaf 0xb (as this machine's
 * does): the core level and the terminator are added, so a guest does not
 * take each vCPU for a package of its own. */
static void cpuid_topology_subleaves_added(void **state)
{
	(void)state;
	unsigned int capacity = 2 + CPUID_EXTRA_ENTRIES;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + capacity * sizeof(c->entries[0]));
	c->nent = 2;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 0x1 };
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 0, .edx = 1 };
	cpuid_filter(c, capacity, 1, 2, 1);
	assert_int_equal(c->nent, 4);
	const struct kvm_cpuid_entry2 *core = &c->entries[2], *end = &c->entries[3];
	assert_int_equal(core->function, 0xb);
	assert_int_equal(core->index, 1);
	assert_int_equal(core->flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	assert_int_equal(core->eax, 1); /* 2^1 >= 2 vCPUs */
	assert_int_equal(core->ebx, 2);
	assert_int_equal((core->ecx >> 8) & 0xff, 2); /* core level */
	assert_int_equal(core->edx, 1); /* x2APIC id */
	assert_int_equal(end->index, 2);
	assert_int_equal(end->ecx & 0xff00, 0); /* invalid: the end */
	assert_int_equal(c->entries[1].ebx, 1); /* SMT level: one thread */
	free(c);

	/* No leaf 0xb at all: nothing is invented; no room: nothing is added. */
	c = calloc(1, sizeof(*c) + capacity * sizeof(c->entries[0]));
	c->nent = 1;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 0x1 };
	cpuid_filter(c, capacity, 0, 2, 1);
	assert_int_equal(c->nent, 1);
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 0xb };
	c->nent = 2;
	cpuid_filter(c, 2, 0, 2, 1);
	assert_int_equal(c->nent, 2);
	free(c);
}

static uint8_t last_write;
static void dev_write(void *o, uint64_t off, const uint8_t *d, uint32_t l)
{
	(void)o;
	(void)l;
	last_write = (uint8_t)(d[0] + off);
}
static void dev_read(void *o, uint64_t off, uint8_t *d, uint32_t l)
{
	(void)o;
	memset(d, (int)off, l);
}

static void bus_dispatch_and_overlap(void **state)
{
	(void)state;
	static struct bus bus;
	struct bus_device a = {
		.name = "a", .base = 0x3f8, .len = 8, .read = dev_read, .write = dev_write
	};
	struct bus_device b = { .name = "b", .base = 0x3ff, .len = 2 };
	struct bus_device c = { .name = "c", .base = UINT64_MAX, .len = 2 };
	assert_int_equal(bus_register(&bus, &a), 0);
	assert_int_equal(bus_register(&bus, &b), -EEXIST);
	assert_int_equal(bus_register(&bus, &c), -EINVAL);
	uint8_t v[4] = { 1 };
	assert_int_equal(bus_write(&bus, 0x3f9, v, 1), 0);
	assert_int_equal(last_write, 2);
	assert_int_equal(bus_read(&bus, 0x3fa, v, 2), 0);
	assert_int_equal(v[0], 2);
	/* Straddling the device end, or nothing there: all-ones, -ENOENT. */
	assert_int_equal(bus_read(&bus, 0x3fe, v, 4), -ENOENT);
	assert_int_equal(v[0], 0xff);
	assert_int_equal(bus_write(&bus, 0x80, v, 1), -ENOENT);
	assert_int_equal(bus_read(&bus, UINT64_MAX, v, 4), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(e820_small_guest),
		cmocka_unit_test(e820_guest_above_4g_skips_the_gap),
		cmocka_unit_test(pvh_start_info_is_complete),
		cmocka_unit_test(cmdline_limit_is_enforced),
		cmocka_unit_test(mptable_lists_every_cpu),
		cmocka_unit_test(cpuid_topology_per_vcpu),
		cmocka_unit_test(cpuid_topology_subleaves_added),
		cmocka_unit_test(bus_dispatch_and_overlap),
	};
	return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}
