/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The flattened device tree every guest gets: memory, /chosen (bootargs,
 * initrd) and one "virtio,mmio" node per device with its interrupt. Built
 * with libfdt. Guests that do not speak ACPI or parse command lines (our
 * guest kit, unikernels) find their devices here.
 */
#ifndef EMBER_DEVTREE_H
#define EMBER_DEVTREE_H

#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"

struct fdt_mmio_device {
	uint64_t base;
	uint64_t size;
	uint32_t irq;
};

struct fdt_params {
	const char *cmdline;
	uint64_t initrd_addr, initrd_size;
	const struct fdt_mmio_device *devices;
	unsigned int nr_devices;
};

/* Build the DTB into @buf (@size bytes). Returns its length or -errno. */
int fdt_build(void *buf, size_t size, const struct guest_mem *mem, const struct fdt_params *p);

#endif
