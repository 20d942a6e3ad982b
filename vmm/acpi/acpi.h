/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ACPI tables ember gives every x86 guest (ACPI 6.5): RSDP, XSDT, a
 * hardware-reduced FADT, the MADT and a DSDT describing COM1, the i8042,
 * every virtio-mmio device, VMGenID and the Generic Event Device that
 * notifies it. They fill [ACPI_TABLES_START, ACPI_TABLES_END), which the
 * e820 map marks as ACPI data; the RSDP comes first, where the legacy
 * BIOS-area search finds it, and the boot protocols also carry its address.
 */
#ifndef EMBER_ACPI_H
#define EMBER_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devtree.h"
#include "guest_mem.h"

#define ACPI_OEM_ID "EMBER "
#define VMGENID_LEN 16

struct acpi_params {
	unsigned int nr_vcpus; /* 1-255 */
	const struct fdt_mmio_device *devices; /* in attach order: VR00, VR01, ... */
	unsigned int nr_devices;
};

/* Where each table went, as guest physical addresses. */
struct acpi_layout {
	uint64_t rsdp, xsdt, fadt, madt, dsdt, end;
};

/*
 * Build the tables into @buf, which the guest will see at @base (RSDP
 * first). 0, -E2BIG when they do not fit in @size, -EINVAL or -ENOMEM.
 */
int acpi_build(uint8_t *buf, size_t size, uint64_t base, const struct acpi_params *p,
	       struct acpi_layout *out) __attribute__((warn_unused_result));

/* Build them into guest memory at ACPI_TABLES_START. 0 or -errno. */
int acpi_setup(const struct guest_mem *mem, const struct acpi_params *p)
    __attribute__((warn_unused_result));

/*
 * Write a fresh random generation ID at VMGENID_ADDR (at boot, and on every
 * snapshot restore before the vCPUs run). 0 or -errno.
 */
int vmgenid_update(const struct guest_mem *mem) __attribute__((warn_unused_result));

/* The 8-bit sum of @len bytes, to be made zero by a checksum field. */
uint8_t acpi_checksum(const void *p, size_t len);

#endif
