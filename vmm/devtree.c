// SPDX-License-Identifier: Apache-2.0
#include "devtree.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>

#define FDT_CHECK(x)                                                                               \
	do {                                                                                       \
		int r_ = (x);                                                                      \
		if (r_ < 0)                                                                        \
			return -ENOSPC;                                                            \
	} while (0)

/* reg = <addr-hi addr-lo size-hi size-lo> with #address-cells = #size-cells = 2. */
static int fdt_reg(void *fdt, uint64_t addr, uint64_t size)
{
	fdt64_t reg[2] = { cpu_to_fdt64(addr), cpu_to_fdt64(size) };
	return fdt_property(fdt, "reg", reg, sizeof(reg));
}

int fdt_build(void *buf, size_t size, const struct guest_mem *mem, const struct fdt_params *p)
{
	void *fdt = buf;
	char name[48];
	FDT_CHECK(fdt_create(fdt, (int)size));
	FDT_CHECK(fdt_finish_reservemap(fdt));
	FDT_CHECK(fdt_begin_node(fdt, ""));
	FDT_CHECK(fdt_property_string(fdt, "compatible", "ember,microvm"));
	FDT_CHECK(fdt_property_string(fdt, "model", "ember microVM"));
	FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 2));
	FDT_CHECK(fdt_property_u32(fdt, "#size-cells", 2));

	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		snprintf(name, sizeof(name), "memory@%llx",
			 (unsigned long long)mem->regions[i].gpa);
		FDT_CHECK(fdt_begin_node(fdt, name));
		FDT_CHECK(fdt_property_string(fdt, "device_type", "memory"));
		FDT_CHECK(fdt_reg(fdt, mem->regions[i].gpa, mem->regions[i].size));
		FDT_CHECK(fdt_end_node(fdt));
	}

	FDT_CHECK(fdt_begin_node(fdt, "chosen"));
	FDT_CHECK(fdt_property_string(fdt, "bootargs", p->cmdline ? p->cmdline : ""));
	if (p->initrd_size) {
		FDT_CHECK(fdt_property_u64(fdt, "linux,initrd-start", p->initrd_addr));
		FDT_CHECK(
		    fdt_property_u64(fdt, "linux,initrd-end", p->initrd_addr + p->initrd_size));
	}
	FDT_CHECK(fdt_end_node(fdt));

	for (unsigned int i = 0; i < p->nr_devices; i++) {
		const struct fdt_mmio_device *d = &p->devices[i];
		snprintf(name, sizeof(name), "virtio_mmio@%llx", (unsigned long long)d->base);
		FDT_CHECK(fdt_begin_node(fdt, name));
		FDT_CHECK(fdt_property_string(fdt, "compatible", "virtio,mmio"));
		FDT_CHECK(fdt_reg(fdt, d->base, d->size));
		FDT_CHECK(fdt_property_u32(fdt, "interrupts", d->irq));
		FDT_CHECK(fdt_property(fdt, "dma-coherent", NULL, 0));
		FDT_CHECK(fdt_end_node(fdt));
	}

	FDT_CHECK(fdt_end_node(fdt));
	FDT_CHECK(fdt_finish(fdt));
	FDT_CHECK(fdt_pack(fdt));
	return (int)fdt_totalsize(fdt);
}
