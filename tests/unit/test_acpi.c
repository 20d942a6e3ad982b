// SPDX-License-Identifier: Apache-2.0
/* The ACPI tables: checksums, lengths, revisions, pointers and contents. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "acpi/acpi.h"
#include "arch/x86_64/layout.h"
#include "fake_mem.h"

#define TABLES_SIZE (ACPI_TABLES_END - ACPI_TABLES_START)

static uint8_t buf[TABLES_SIZE];

static const uint8_t *at(uint64_t gpa)
{
	assert_true(gpa >= ACPI_TABLES_START && gpa < ACPI_TABLES_END);
	return buf + (gpa - ACPI_TABLES_START);
}

static uint32_t u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* A table's header: signature, length inside the area, checksum, revision. */
static const uint8_t *table(uint64_t gpa, const char *sig, uint8_t rev, const struct acpi_layout *l)
{
	const uint8_t *t = at(gpa);
	assert_memory_equal(t, sig, 4);
	uint32_t len = u32(t + 4);
	assert_true(len >= 36);
	assert_true(gpa + len <= l->end);
	assert_int_equal(t[8], rev);
	assert_int_equal(acpi_checksum(t, len), 0);
	assert_memory_equal(t + 10, ACPI_OEM_ID, 6);
	return t;
}

static size_t count(const uint8_t *p, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	for (size_t i = 0; i + nl <= len; i++)
		n += memcmp(p + i, needle, nl) == 0;
	return n;
}

static void check_shape(unsigned int vcpus, unsigned int nr_devs)
{
	struct fdt_mmio_device devs[VIRTIO_MAX_DEVICES];
	for (unsigned int i = 0; i < nr_devs; i++)
		devs[i] = (struct fdt_mmio_device){ .base = VIRTIO_MMIO_BASE + 0x1000ull * i,
						    .size = 0x1000,
						    .irq = VIRTIO_IRQ_BASE + i };
	struct acpi_params p = { .nr_vcpus = vcpus, .devices = devs, .nr_devices = nr_devs };
	struct acpi_layout l;
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_START, &p, &l), 0);

	/* RSDP: first, 16-byte aligned, both checksums, revision 2, 36 bytes. */
	assert_int_equal(l.rsdp, RSDP_ADDR);
	const uint8_t *rsdp = at(l.rsdp);
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(rsdp, 20), 0);
	assert_int_equal(acpi_checksum(rsdp, 36), 0);
	assert_int_equal(rsdp[15], 2);
	assert_int_equal(u32(rsdp + 16), 0); /* no RSDT */
	assert_int_equal(u32(rsdp + 20), 36);
	assert_int_equal(u64(rsdp + 24), l.xsdt);

	const uint8_t *xsdt = table(l.xsdt, "XSDT", 1, &l);
	assert_int_equal(u32(xsdt + 4), 36 + 2 * 8);
	assert_int_equal(u64(xsdt + 36), l.fadt);
	assert_int_equal(u64(xsdt + 44), l.madt);

	const uint8_t *fadt = table(l.fadt, "FACP", 6, &l);
	assert_int_equal(u32(fadt + 4), 276);
	assert_int_equal(fadt[131], 5); /* minor version: ACPI 6.5 */
	uint32_t flags = u32(fadt + 112);
	assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
	uint16_t boot_arch;
	memcpy(&boot_arch, fadt + 109, 2);
	assert_true(boot_arch & (1u << 1)); /* i8042 present */
	assert_int_equal(u64(fadt + 140), l.dsdt); /* X_DSDT */
	assert_int_equal(u32(fadt + 40), l.dsdt);
	assert_int_equal(u32(fadt + 56), 0); /* no PM1a event block */
	assert_memory_equal(fadt + 268, "EMBERVMM", 8);

	const uint8_t *madt = table(l.madt, "APIC", 5, &l);
	assert_int_equal(u32(madt + 36), LAPIC_ADDR);
	uint32_t madt_len = u32(madt + 4);
	unsigned int lapics = 0, ioapics = 0, nmis = 0;
	for (uint32_t off = 44; off < madt_len;) {
		const uint8_t *e = madt + off;
		assert_true(e[1] >= 2 && off + e[1] <= madt_len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics); /* processor UID */
			assert_int_equal(e[3], lapics); /* APIC id */
			assert_int_equal(u32(e + 4), 1); /* enabled */
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], 0); /* what KVM's IOAPIC id register reads */
			assert_int_equal(u32(e + 4), IOAPIC_ADDR);
			assert_int_equal(u32(e + 8), 0);
			ioapics++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(lapics, vcpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(nmis, 1);

	const uint8_t *dsdt = table(l.dsdt, "DSDT", 2, &l);
	uint32_t dsdt_len = u32(dsdt + 4);
	assert_int_equal(count(dsdt, dsdt_len, "LNRO0005"), nr_devs);
	assert_int_equal(count(dsdt, dsdt_len, "VMGENCTR"), 1);
	assert_int_equal(count(dsdt, dsdt_len, "ACPI0013"), 1);
	for (unsigned int i = 0; i < nr_devs; i++) {
		/* Each window's Memory32Fixed and Extended Interrupt descriptors. */
		uint8_t mem[12] = { 0x86, 9, 0, 1 };
		uint32_t base = (uint32_t)devs[i].base, size = 0x1000;
		memcpy(mem + 4, &base, 4);
		memcpy(mem + 8, &size, 4);
		uint8_t irq[9] = { 0x89, 6, 0, 3, 1 };
		memcpy(irq + 5, &devs[i].irq, 4);
		uint8_t both[21];
		memcpy(both, mem, 12);
		memcpy(both + 12, irq, 9);
		size_t found = 0;
		for (size_t k = 0; k + sizeof(both) <= dsdt_len; k++)
			found += memcmp(dsdt + k, both, sizeof(both)) == 0;
		assert_int_equal(found, 1);
	}
	/* Tables do not overlap and stay inside the area. */
	assert_true(l.xsdt >= l.rsdp + 36);
	assert_true(l.end <= ACPI_TABLES_END);
}

static void shapes_from_1_to_32_vcpus(void **state)
{
	(void)state;
	static const unsigned int vcpus[] = { 1, 4, 32 };
	static const unsigned int devs[] = { 0, 16, VIRTIO_MAX_DEVICES };
	for (size_t i = 0; i < 3; i++)
		for (size_t k = 0; k < 3; k++)
			check_shape(vcpus[i], devs[k]);
}

static void bad_parameters_and_small_buffers(void **state)
{
	(void)state;
	struct acpi_params p = { .nr_vcpus = 0 };
	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_START, &p, NULL), -EINVAL);
	p.nr_vcpus = 255;
	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_START, &p, NULL), -EINVAL);
	p.nr_vcpus = 2;
	assert_int_equal(acpi_build(buf, 100, ACPI_TABLES_START, &p, NULL), -E2BIG);
	assert_int_equal(acpi_build(buf, 600, ACPI_TABLES_START, &p, NULL), -E2BIG);
	/* A window above 4 GiB cannot be a Memory32Fixed. */
	struct fdt_mmio_device high = { .base = 1ull << 32, .size = 0x1000, .irq = 5 };
	p.devices = &high;
	p.nr_devices = 1;
	assert_int_equal(acpi_build(buf, sizeof(buf), ACPI_TABLES_START, &p, NULL), -EINVAL);
}

static void setup_writes_tables_and_a_generation_id(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(fake_mem_init(&mem, 16 << 20), 0);
	struct acpi_params p = { .nr_vcpus = 2 };
	assert_int_equal(acpi_setup(&mem, &p), 0);
	const uint8_t *rsdp = guest_mem_ptr(&mem, RSDP_ADDR, 36);
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	uint8_t id1[VMGENID_LEN], id2[VMGENID_LEN], zero[VMGENID_LEN] = { 0 };
	assert_int_equal(guest_mem_read(&mem, VMGENID_ADDR, id1, sizeof(id1)), 0);
	assert_memory_not_equal(id1, zero, sizeof(id1));
	assert_int_equal(vmgenid_update(&mem), 0);
	assert_int_equal(guest_mem_read(&mem, VMGENID_ADDR, id2, sizeof(id2)), 0);
	assert_memory_not_equal(id1, id2, sizeof(id1));
	fake_mem_free(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shapes_from_1_to_32_vcpus),
		cmocka_unit_test(bad_parameters_and_small_buffers),
		cmocka_unit_test(setup_writes_tables_and_a_generation_id),
	};
	return cmocka_run_group_tests_name("acpi", tests, NULL, NULL);
}
