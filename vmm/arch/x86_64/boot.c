// SPDX-License-Identifier: Apache-2.0
/* The e820 map, the PVH start info and the Linux zero page. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot.h"
#include "layout.h"
#include "util.h"

#define fail(code, ...) (snprintf(err, BOOT_ERR_MAX, __VA_ARGS__), (code))

#define E820_TYPE_RAM 1
#define E820_TYPE_RESERVED 2
#define E820_TYPE_ACPI 3
#define LINUX_LOADER_TYPE_UNDEFINED 0xff
#define ZERO_PAGE_PROTOCOL 0x020f /* what ember fills in for ELF kernels */

static void e820_add(struct e820_map *map, uint64_t addr, uint64_t size, uint32_t type)
{
	if (size && map->nr < ARRAY_SIZE(map->entries))
		map->entries[map->nr++] =
		    (struct boot_e820_entry){ .addr = addr, .size = size, .type = type };
}

void e820_build(const struct guest_mem *mem, struct e820_map *map)
{
	memset(map, 0, sizeof(*map));
	const struct guest_region *low = &mem->regions[0];
	uint64_t low_end = low->gpa + low->size;
	e820_add(map, 0, low_end < EBDA_START ? low_end : EBDA_START, E820_TYPE_RAM);
	if (low_end > EBDA_START)
		e820_add(map, EBDA_START, 0xa0000 - EBDA_START, E820_TYPE_RESERVED);
	if (low_end > HIMEM_START) {
		e820_add(map, ACPI_TABLES_START, ACPI_TABLES_END - ACPI_TABLES_START,
			 E820_TYPE_ACPI);
		e820_add(map, VMGENID_ADDR, HIMEM_START - VMGENID_ADDR, E820_TYPE_RESERVED);
		e820_add(map, HIMEM_START, low_end - HIMEM_START, E820_TYPE_RAM);
	}
	for (unsigned int i = 1; i < mem->nr_regions; i++)
		e820_add(map, mem->regions[i].gpa, mem->regions[i].size, E820_TYPE_RAM);
}

/* Copy the command line to CMDLINE_ADDR; @limit counts the NUL. */
static int cmdline_write(const struct guest_mem *mem, const char *cmdline, uint64_t limit,
			 char err[BOOT_ERR_MAX])
{
	const char *s = cmdline ? cmdline : "";
	uint64_t len = strlen(s) + 1;
	if (len > limit)
		return fail(-E2BIG, "command line is %llu bytes, the kernel accepts at most %llu",
			    (unsigned long long)len - 1, (unsigned long long)limit - 1);
	if (guest_mem_write(mem, CMDLINE_ADDR, s, len) < 0)
		return fail(-EFAULT, "command line does not fit in guest memory");
	return 0;
}

int pvh_setup(const struct guest_mem *mem, const struct boot_info *bi, char err[BOOT_ERR_MAX])
{
	int r = cmdline_write(mem, bi->cmdline, CMDLINE_MAX, err);
	if (r < 0)
		return r;
	struct e820_map map;
	e820_build(mem, &map);
	struct hvm_memmap_table_entry mm[ARRAY_SIZE(map.entries)];
	for (unsigned int i = 0; i < map.nr; i++)
		mm[i] = (struct hvm_memmap_table_entry){
			.addr = map.entries[i].addr,
			.size = map.entries[i].size,
			.type = map.entries[i].type,
		};
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = CMDLINE_ADDR,
		.memmap_paddr = PVH_MEMMAP_ADDR,
		.memmap_entries = map.nr,
		.rsdp_paddr = bi->rsdp_addr,
	};
	if (bi->initrd_size || bi->dtb_size) {
		static const char dtb_name[] = "dtb";
		struct hvm_modlist_entry mods[2] = {
			{ .paddr = bi->initrd_addr, .size = bi->initrd_size },
			{ .paddr = DTB_ADDR,
			  .size = bi->dtb_size,
			  .cmdline_paddr = PVH_MODLIST_ADDR + sizeof(mods) },
		};
		si.nr_modules = bi->dtb_size ? 2 : 1;
		si.modlist_paddr = PVH_MODLIST_ADDR;
		if (guest_mem_write(mem, PVH_MODLIST_ADDR, mods, sizeof(mods)) < 0 ||
		    guest_mem_write(mem, PVH_MODLIST_ADDR + sizeof(mods), dtb_name,
				    sizeof(dtb_name)) < 0)
			return fail(-EFAULT, "PVH module list does not fit in guest memory");
	}
	if (guest_mem_write(mem, PVH_MEMMAP_ADDR, mm, map.nr * sizeof(mm[0])) < 0 ||
	    guest_mem_write(mem, PVH_INFO_ADDR, &si, sizeof(si)) < 0)
		return fail(-EFAULT, "PVH start info does not fit in guest memory");
	return 0;
}

int linux_setup(const struct guest_mem *mem, const struct kernel_image *img,
		const struct boot_info *bi, char err[BOOT_ERR_MAX])
{
	struct boot_params *bp = guest_mem_ptr(mem, ZERO_PAGE_ADDR, sizeof(*bp));
	if (!bp)
		return fail(-EFAULT, "zero page does not fit in guest memory");
	memset(bp, 0, sizeof(*bp));
	uint64_t limit = CMDLINE_MAX;
	if (img->format == KERNEL_BZIMAGE) {
		bp->hdr = img->hdr;
		if (img->hdr.cmdline_size && img->hdr.cmdline_size + 1ull < limit)
			limit = img->hdr.cmdline_size + 1ull;
	} else {
		bp->hdr.boot_flag = 0xaa55;
		bp->hdr.header = 0x53726448;
		bp->hdr.version = ZERO_PAGE_PROTOCOL;
		bp->hdr.kernel_alignment = 0x1000000;
		bp->hdr.cmdline_size = CMDLINE_MAX - 1;
	}
	int r = cmdline_write(mem, bi->cmdline, limit, err);
	if (r < 0)
		return r;
	bp->hdr.type_of_loader = LINUX_LOADER_TYPE_UNDEFINED;
	bp->hdr.cmd_line_ptr = (uint32_t)CMDLINE_ADDR;
	bp->ext_cmd_line_ptr = (uint32_t)(CMDLINE_ADDR >> 32);
	bp->hdr.ramdisk_image = (uint32_t)bi->initrd_addr;
	bp->hdr.ramdisk_size = (uint32_t)bi->initrd_size;
	bp->ext_ramdisk_image = (uint32_t)(bi->initrd_addr >> 32);
	bp->ext_ramdisk_size = (uint32_t)(bi->initrd_size >> 32);
	bp->acpi_rsdp_addr = bi->rsdp_addr; /* read by Linux whatever the protocol version */

	if (bi->dtb_size) {
		if (bp->hdr.version < 0x0209)
			return fail(-ENOEXEC,
				    "boot protocol %u.%02u cannot take a device tree (need 2.09)",
				    bp->hdr.version >> 8, bp->hdr.version & 0xff);
		struct setup_data sd = { .next = 0,
					 .type = SETUP_DTB,
					 .len = (uint32_t)bi->dtb_size };
		if (guest_mem_write(mem, SETUP_DATA_ADDR, &sd, sizeof(sd)) < 0)
			return fail(-EFAULT, "setup_data does not fit in guest memory");
		bp->hdr.setup_data = SETUP_DATA_ADDR;
	}

	struct e820_map map;
	e820_build(mem, &map);
	for (unsigned int i = 0; i < map.nr; i++)
		bp->e820_table[i] = map.entries[i];
	bp->e820_entries = (uint8_t)map.nr;
	return 0;
}
