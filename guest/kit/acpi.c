// SPDX-License-Identifier: Apache-2.0
/* ACPI tables: RSDP, XSDT, FADT, MADT, and the DSDT handed to acpi_aml.c. */
#include "acpi.h"
#include "acpi_aml.h"
#include "kit.h"

#define ACPI_HDR_LEN 36
/* Tables must lie in RAM below the 32-bit MMIO gap, and be of sane size. */
#define ACPI_RAM_END 0xc0000000ull
#define ACPI_TABLE_MAX 0x100000u

#define HVM_START_MAGIC 0x336ec578u
#define HVM_RSDP_PADDR 32 /* offset in hvm_start_info */
#define ZP_ACPI_RSDP_ADDR 0x070 /* offset in the zero page */
#define BDA_EBDA_SEGMENT 0x40e

#define FADT_DSDT 40
#define FADT_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_MINOR 131
#define FADT_X_DSDT 140

uint16_t acpi_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t acpi_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t acpi_rd64(const uint8_t *p)
{
	return acpi_rd32(p) | (uint64_t)acpi_rd32(p + 4) << 32;
}

int acpi_fail(struct acpi_info *info, const char *what, uint64_t at)
{
	if (!info->error) {
		info->error = what;
		info->error_at = at;
	}
	return -1;
}

static uint8_t sum8(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;
	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static int in_ram(uint64_t addr, uint64_t len)
{
	return addr != 0 && addr < ACPI_RAM_END && len <= ACPI_RAM_END - addr;
}

const char *acpi_via_name(enum acpi_via via)
{
	switch (via) {
	case ACPI_VIA_PVH:
		return "pvh";
	case ACPI_VIA_ZERO_PAGE:
		return "zeropage";
	case ACPI_VIA_SCAN:
		return "scan";
	case ACPI_VIA_NONE:
		break;
	}
	return "none";
}

static void copy_text(char *dst, const uint8_t *src, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
	dst[n] = 0;
}

/* "RSD PTR " with a valid ACPI 1.0 checksum over its first 20 bytes. */
static int rsdp_at(uint64_t addr)
{
	const uint8_t *p = (const uint8_t *)addr;
	return in_ram(addr, 36) && acpi_rd32(p) == 0x20445352u /* "RSD " */ &&
	    acpi_rd32(p + 4) == 0x20525450u /* "PTR " */ && sum8(p, 20) == 0;
}

static uint64_t rsdp_scan_range(uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a + 36 <= end; a += 16)
		if (rsdp_at(a))
			return a;
	return 0;
}

/* ACPI 6.x 5.2.5.1: the first KiB of the EBDA, then 0xe0000-0xfffff. */
static uint64_t rsdp_scan(void)
{
	/* The BDA's address, hidden from gcc, which takes page 0 for NULL. */
	uintptr_t bda = BDA_EBDA_SEGMENT;
	__asm__("" : "+r"(bda));
	uint64_t ebda = (uint64_t)acpi_rd16((const uint8_t *)bda) << 4;
	uint64_t found = 0;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		found = rsdp_scan_range(ebda, ebda + 1024);
	return found ? found : rsdp_scan_range(0xe0000, 0x100000);
}

static void rsdp_sources(struct acpi_info *info)
{
	const uint8_t *si = (const uint8_t *)kit_start_info();
	const uint8_t *zp = (const uint8_t *)kit_zero_page();
	if (si && acpi_rd32(si) == HVM_START_MAGIC)
		info->rsdp_pvh = acpi_rd64(si + HVM_RSDP_PADDR);
	if (zp)
		info->rsdp_zero_page = acpi_rd64(zp + ZP_ACPI_RSDP_ADDR);
	info->rsdp_scan = rsdp_scan();
	if (info->rsdp_pvh) {
		info->rsdp = info->rsdp_pvh;
		info->via = ACPI_VIA_PVH;
	} else if (info->rsdp_zero_page) {
		info->rsdp = info->rsdp_zero_page;
		info->via = ACPI_VIA_ZERO_PAGE;
	} else if (info->rsdp_scan) {
		info->rsdp = info->rsdp_scan;
		info->via = ACPI_VIA_SCAN;
	}
}

static int rsdp_read(struct acpi_info *info)
{
	const uint8_t *p = (const uint8_t *)info->rsdp;
	if (!rsdp_at(info->rsdp))
		return acpi_fail(info, "no RSDP signature or bad checksum", info->rsdp);
	info->rsdp_checksum_ok = 1;
	copy_text(info->oem_id, p + 9, 6);
	info->rsdp_revision = p[15];
	info->rsdt_addr = acpi_rd32(p + 16);
	if (info->rsdp_revision < 2)
		return acpi_fail(info, "RSDP revision below 2: no XSDT", info->rsdp);
	info->rsdp_length = acpi_rd32(p + 20);
	if (info->rsdp_length < 36 || info->rsdp_length > 4096 ||
	    !in_ram(info->rsdp, info->rsdp_length))
		return acpi_fail(info, "bad RSDP length", info->rsdp);
	info->rsdp_xchecksum_ok = sum8(p, info->rsdp_length) == 0;
	info->xsdt_addr = acpi_rd64(p + 24);
	if (!info->rsdp_xchecksum_ok)
		return acpi_fail(info, "bad RSDP extended checksum", info->rsdp);
	return 0;
}

/* Check one table's header, length and checksum; record it. NULL if bad. */
static const uint8_t *table_check(struct acpi_info *info, uint64_t addr, const char *want)
{
	if (!in_ram(addr, ACPI_HDR_LEN))
		return acpi_fail(info, "table address outside RAM", addr), NULL;
	const uint8_t *p = (const uint8_t *)addr;
	if (info->nr_tables == ACPI_MAX_TABLES)
		return acpi_fail(info, "too many tables", addr), NULL;
	struct acpi_table *t = &info->tables[info->nr_tables++];
	copy_text(t->sig, p, 4);
	copy_text(t->oem_id, p + 10, 6);
	copy_text(t->oem_table_id, p + 16, 8);
	t->addr = addr;
	t->length = acpi_rd32(p + 4);
	t->revision = p[8];
	if (want && memcmp(p, want, 4) != 0)
		return acpi_fail(info, "unexpected table signature", addr), NULL;
	if (t->length < ACPI_HDR_LEN || t->length > ACPI_TABLE_MAX || !in_ram(addr, t->length))
		return acpi_fail(info, "bad table length", addr), NULL;
	t->checksum_ok = sum8(p, t->length) == 0;
	if (!t->checksum_ok)
		return acpi_fail(info, "bad table checksum", addr), NULL;
	return p;
}

static int fadt_read(struct acpi_info *info, const uint8_t *p, uint32_t len)
{
	if (info->has_fadt)
		return acpi_fail(info, "second FADT", (uint64_t)p);
	if (len < FADT_X_DSDT + 8)
		return acpi_fail(info, "FADT too short for X_DSDT", (uint64_t)p);
	info->has_fadt = 1;
	info->fadt_dsdt = acpi_rd32(p + FADT_DSDT);
	info->fadt_boot_arch = acpi_rd16(p + FADT_BOOT_ARCH);
	info->fadt_flags = acpi_rd32(p + FADT_FLAGS);
	info->fadt_minor = p[FADT_MINOR];
	info->fadt_x_dsdt = acpi_rd64(p + FADT_X_DSDT);
	return 0;
}

static int madt_read(struct acpi_info *info, const uint8_t *p, uint32_t len)
{
	if (info->has_madt)
		return acpi_fail(info, "second MADT", (uint64_t)p);
	if (len < ACPI_HDR_LEN + 8)
		return acpi_fail(info, "MADT too short", (uint64_t)p);
	info->has_madt = 1;
	info->lapic_addr = acpi_rd32(p + 36);
	info->madt_flags = acpi_rd32(p + 40);
	for (uint32_t off = ACPI_HDR_LEN + 8; off < len;) {
		const uint8_t *e = p + off;
		if (len - off < 2 || e[1] < 2 || e[1] > len - off)
			return acpi_fail(info, "MADT entry overruns the table", (uint64_t)e);
		switch (e[0]) {
		case 0: /* Processor Local APIC */
			if (e[1] != 8)
				return acpi_fail(info, "bad Local APIC entry length", (uint64_t)e);
			info->nr_lapics++;
			if (acpi_rd32(e + 4) & 1)
				info->nr_lapics_enabled++;
			if (e[2] < 64)
				info->processor_uids |= 1ull << e[2];
			if (e[3] < 64)
				info->apic_ids |= 1ull << e[3];
			break;
		case 1: /* I/O APIC */
			if (e[1] != 12)
				return acpi_fail(info, "bad I/O APIC entry length", (uint64_t)e);
			if (info->nr_ioapics++ == 0) {
				info->ioapic_id = e[2];
				info->ioapic_addr = acpi_rd32(e + 4);
				info->ioapic_gsi_base = acpi_rd32(e + 8);
			}
			break;
		default:
			info->nr_madt_other++;
			break;
		}
		off += e[1];
	}
	return 0;
}

static int xsdt_walk(struct acpi_info *info)
{
	const uint8_t *x = table_check(info, info->xsdt_addr, "XSDT");
	if (!x)
		return -1;
	uint32_t len = acpi_rd32(x + 4);
	if ((len - ACPI_HDR_LEN) % 8)
		return acpi_fail(info, "XSDT length not a whole number of entries",
				 info->xsdt_addr);
	for (uint32_t off = ACPI_HDR_LEN; off < len; off += 8) {
		const uint8_t *t = table_check(info, acpi_rd64(x + off), NULL);
		if (!t)
			return -1;
		uint32_t tlen = acpi_rd32(t + 4);
		if (memcmp(t, "FACP", 4) == 0 && fadt_read(info, t, tlen) < 0)
			return -1;
		if (memcmp(t, "APIC", 4) == 0 && madt_read(info, t, tlen) < 0)
			return -1;
	}
	return 0;
}

/* The VMGenID device's ADDR: where the 16-byte generation ID lies. */
static int vmgenid_find(struct acpi_info *info)
{
	const struct acpi_device *d = acpi_find_hid(info, "VMGENCTR");
	if (!d)
		return 0;
	if (d->nr_addr != 2)
		return acpi_fail(info, "VMGENCTR without an ADDR package of two integers", 0);
	uint64_t addr = d->addr[0] | d->addr[1] << 32;
	if (!in_ram(addr, 16) || d->addr[0] > 0xffffffffu || d->addr[1] > 0xffffffffu)
		return acpi_fail(info, "VMGenID address outside RAM", addr);
	info->vmgenid_addr = addr;
	return 0;
}

int acpi_read(struct acpi_info *info)
{
	memset(info, 0, sizeof(*info));
	rsdp_sources(info);
	if (info->via == ACPI_VIA_NONE)
		return acpi_fail(info, "no RSDP", 0);
	if (rsdp_read(info) < 0 || xsdt_walk(info) < 0)
		return -1;
	if (!info->has_fadt)
		return acpi_fail(info, "no FADT in the XSDT", info->xsdt_addr);
	if (!info->has_madt)
		return acpi_fail(info, "no MADT in the XSDT", info->xsdt_addr);
	uint64_t dsdt_addr = info->fadt_x_dsdt ? info->fadt_x_dsdt : info->fadt_dsdt;
	if (info->fadt_x_dsdt && info->fadt_dsdt && info->fadt_dsdt != info->fadt_x_dsdt)
		return acpi_fail(info, "FADT DSDT and X_DSDT differ", info->fadt_dsdt);
	const uint8_t *dsdt = table_check(info, dsdt_addr, "DSDT");
	if (!dsdt)
		return -1;
	if (acpi_aml_parse(info, dsdt + ACPI_HDR_LEN, acpi_rd32(dsdt + 4) - ACPI_HDR_LEN,
			   ACPI_HDR_LEN) < 0)
		return -1;
	return vmgenid_find(info);
}

const struct acpi_device *acpi_find_hid(const struct acpi_info *info, const char *hid)
{
	for (unsigned int i = 0; i < info->nr_devices; i++)
		if (strcmp(info->devices[i].hid, hid) == 0)
			return &info->devices[i];
	return NULL;
}
