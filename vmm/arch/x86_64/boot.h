/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading a kernel into guest memory and building what each boot protocol
 * hands it: hvm_start_info for PVH, the zero page for the Linux boot
 * protocol, the e820 map both share, and the MP table for SMP.
 *
 * Loaders read from an fd and write guest memory only through
 * guest_mem_ptr(); every field taken from the file is checked first, and a
 * bad file yields -ENOEXEC (or -EFBIG, -ERANGE) with the reason in @err.
 * All of this runs on the VMM thread before any vCPU does.
 */
#ifndef EMBER_X86_BOOT_H
#define EMBER_X86_BOOT_H

#include <asm/bootparam.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"

enum boot_protocol {
	BOOT_PROTOCOL_AUTO, /* PVH if the ELF has the note, else Linux 64-bit */
	BOOT_PROTOCOL_PVH, /* ELF PVH entry, 32-bit, hvm_start_info */
	BOOT_PROTOCOL_LINUX, /* Linux 64-bit boot protocol, zero page */
};

enum kernel_format { KERNEL_ELF, KERNEL_BZIMAGE };

#define BOOT_ERR_MAX 160

struct kernel_image {
	enum kernel_format format;
	uint64_t entry64; /* 64-bit entry (ELF e_entry, or bzImage load + 0x200) */
	uint64_t pvh_entry; /* 32-bit PVH entry; 0 when the ELF has no PVH note */
	uint64_t load_start;
	uint64_t load_end; /* one past the highest byte the kernel may use */
	struct setup_header hdr; /* bzImage only: header copied from the file */
};

/*
 * Load an ELF64 x86_64 executable's PT_LOAD segments (all at or above
 * HIMEM_START, inside guest RAM, not overlapping each other) and find its
 * PVH note. @size is the file size.
 */
int elf_load(const struct guest_mem *mem, int fd, uint64_t size, struct kernel_image *img,
	     char err[BOOT_ERR_MAX]) __attribute__((warn_unused_result));

/*
 * Check a bzImage's setup header (boot flag, "HdrS", version >= 2.12,
 * 64-bit entry) and load its protected-mode part at HIMEM_START.
 */
int bzimage_load(const struct guest_mem *mem, int fd, uint64_t size, struct kernel_image *img,
		 char err[BOOT_ERR_MAX]) __attribute__((warn_unused_result));

/* Detect the format from the first bytes and call the matching loader. */
int kernel_load(const struct guest_mem *mem, int fd, struct kernel_image *img,
		char err[BOOT_ERR_MAX]) __attribute__((warn_unused_result));

/*
 * Load an initrd at the highest page-aligned address of low RAM that stays
 * below @max_addr and above the kernel. Returns its address in @addr.
 */
int initrd_load(const struct guest_mem *mem, int fd, const struct kernel_image *img,
		uint64_t max_addr, uint64_t *addr, uint64_t *size, char err[BOOT_ERR_MAX])
    __attribute__((warn_unused_result));

/*
 * An e820 map for @mem: base RAM, EBDA reserved, the ACPI tables (ACPI
 * data), VMGenID's page and the rest of the BIOS area reserved, RAM from
 * 1 MiB on.
 */
struct e820_map {
	struct boot_e820_entry entries[10];
	unsigned int nr;
};
void e820_build(const struct guest_mem *mem, struct e820_map *map);

/* Everything the boot structures describe. */
struct boot_info {
	const char *cmdline; /* may be NULL */
	uint64_t initrd_addr, initrd_size;
	uint64_t dtb_size; /* DTB already written at DTB_ADDR when non-zero */
	uint64_t rsdp_addr; /* ACPI tables already written when non-zero */
	unsigned int nr_vcpus;
};

/*
 * Write hvm_start_info, its memory map and the command line. Modules:
 * 0 is the initrd (size 0 when there is none, as Linux takes module 0 for
 * its initrd), 1 is the device tree, with the command line "dtb".
 */
int pvh_setup(const struct guest_mem *mem, const struct boot_info *bi, char err[BOOT_ERR_MAX])
    __attribute__((warn_unused_result));
/*
 * Write the zero page and the command line for the Linux boot protocol; the
 * device tree goes in a SETUP_DTB setup_data entry (protocol 2.09+).
 */
int linux_setup(const struct guest_mem *mem, const struct kernel_image *img,
		const struct boot_info *bi, char err[BOOT_ERR_MAX])
    __attribute__((warn_unused_result));
/* Write an Intel MP table (1.4) at MPTABLE_ADDR for @nr_vcpus CPUs. */
int mptable_setup(const struct guest_mem *mem, unsigned int nr_vcpus)
    __attribute__((warn_unused_result));

/* PVH structures (Xen's public ABI, arch-x86/hvm/start_info.h). */
#define HVM_START_MAGIC 0x336ec578u
#define XEN_ELFNOTE_PHYS32_ENTRY 18
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

#endif
