/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest kit's ACPI reader, for test guests that check the tables a
 * monitor builds. acpi_read() finds the RSDP, checks the signature, length
 * and checksum of every table it reaches (XSDT, what the XSDT lists, the
 * FADT's DSDT), reads the FADT flags and the MADT, and parses the DSDT's AML
 * far enough to list its devices with their names and _CRS resources.
 *
 * The AML subset: Scope, Device, Name with data objects (integers, strings,
 * buffers, packages), Method (skipped by its PkgLength; an _EVT body of the
 * shape If (ArgN == K) { Notify (Name, V) } is decoded), and the objects a
 * DSDT may hold at scope level that carry a PkgLength (If/Else/While,
 * Processor, PowerResource, ThermalZone), which are skipped. Anything else
 * stops the parse with an error naming the opcode and its DSDT offset.
 *
 * Nothing read is trusted: every length is checked against its container,
 * nesting and counts are bounded, tables must lie in RAM below 3 GiB. The
 * reader only reads guest memory (identity-mapped, as the kit maps it) and
 * runs at any privilege level the kit's page tables allow (ring 0 or 3).
 */
#ifndef EMBER_GUEST_ACPI_H
#define EMBER_GUEST_ACPI_H

#include <stdint.h>

#define ACPI_MAX_TABLES 16
#define ACPI_MAX_DEVICES 40
#define ACPI_MAX_DEPTH 8 /* name segments in a path; nesting of terms */
#define ACPI_MAX_RES 4 /* of each kind (I/O, memory, interrupt) per device */
#define ACPI_MAX_METHODS 4
#define ACPI_PATH_MAX (ACPI_MAX_DEPTH * 5 + 2)

/* Where acpi_read() found the RSDP it used. */
enum acpi_via { ACPI_VIA_NONE, ACPI_VIA_PVH, ACPI_VIA_ZERO_PAGE, ACPI_VIA_SCAN };

struct acpi_table {
	char sig[5];
	char oem_id[7], oem_table_id[9];
	uint64_t addr;
	uint32_t length;
	uint8_t revision;
	uint8_t checksum_ok;
};

struct acpi_irq {
	uint32_t gsi;
	/* Extended Interrupt flags (bit 0 consumer, 1 edge, 2 active low,
	 * 3 shared); an IRQ descriptor without flags is edge, high, exclusive. */
	uint8_t flags;
	uint8_t extended; /* from a large Extended Interrupt descriptor */
};

/* A decoded If (Arg<arg> == <value>) { Notify (<target>, <code>) } method. */
struct acpi_notify {
	uint8_t arg;
	uint64_t value, code;
	char target[ACPI_PATH_MAX];
};

struct acpi_device {
	char path[ACPI_PATH_MAX]; /* "\_SB_.COM1" */
	char hid[24], cid[24], ddn[24]; /* strings, or decoded EISA ids; "" if absent */
	uint8_t has_uid;
	uint64_t uid;
	uint8_t has_crs, nr_io, nr_mem, nr_irq, nr_other_res;
	struct {
		uint16_t min, max;
		uint8_t len;
	} io[ACPI_MAX_RES];
	struct {
		uint64_t base, len;
		uint8_t writable;
	} mem[ACPI_MAX_RES];
	struct acpi_irq irq[ACPI_MAX_RES];
	uint8_t nr_addr; /* integers of an "ADDR" package (VMGenID) */
	uint64_t addr[2];
	uint8_t nr_methods;
	struct {
		char name[5];
		uint8_t args;
		uint8_t has_notify;
		struct acpi_notify notify;
	} method[ACPI_MAX_METHODS];
};

struct acpi_info {
	/* What each source says (0: nothing there), and the RSDP used. */
	uint64_t rsdp_pvh, rsdp_zero_page, rsdp_scan;
	uint64_t rsdp;
	enum acpi_via via;
	uint8_t rsdp_revision, rsdp_checksum_ok, rsdp_xchecksum_ok;
	uint32_t rsdp_length, rsdt_addr;
	uint64_t xsdt_addr;
	char oem_id[7];

	unsigned int nr_tables;
	struct acpi_table tables[ACPI_MAX_TABLES];

	uint8_t has_fadt;
	uint32_t fadt_flags, fadt_dsdt;
	uint64_t fadt_x_dsdt;
	uint8_t fadt_minor;
	uint16_t fadt_boot_arch;

	uint8_t has_madt;
	uint32_t lapic_addr, madt_flags;
	unsigned int nr_lapics, nr_lapics_enabled, nr_ioapics, nr_madt_other;
	uint64_t apic_ids, processor_uids; /* bitmaps of values below 64 */
	uint32_t ioapic_addr, ioapic_gsi_base;
	uint8_t ioapic_id;

	unsigned int nr_devices;
	struct acpi_device devices[ACPI_MAX_DEVICES];
	uint64_t vmgenid_addr; /* from the VMGENCTR device's ADDR; 0 if none */

	/* The first problem found, where (an address, or a DSDT offset for AML). */
	const char *error;
	uint64_t error_at;
};

/*
 * Find and check the ACPI tables. Fills @info (zeroed first) as far as it
 * got. Returns 0 when an RSDP was found and everything checked out; -1 with
 * @info->error set otherwise (no RSDP: via == ACPI_VIA_NONE, error "no RSDP").
 */
int acpi_read(struct acpi_info *info);

/* "pvh", "zeropage", "scan" or "none". */
const char *acpi_via_name(enum acpi_via via);

/* The device whose _HID is @hid, or NULL. */
const struct acpi_device *acpi_find_hid(const struct acpi_info *info, const char *hid);

#endif
