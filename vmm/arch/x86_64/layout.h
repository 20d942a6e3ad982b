/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where ember puts things in an x86_64 guest's physical address space.
 *
 *   0x000500  GDT the monitor loads for the first vCPU
 *   0x000520  IDT (empty; the guest installs its own)
 *   0x006000  hvm_start_info (PVH) and, after it, its memory map
 *   0x007000  zero page (struct boot_params, Linux boot protocol)
 *   0x008ff0  initial stack pointer
 *   0x009000  PML4, PDPT and 4 PDs: identity map of the low 4 GiB (2 MiB pages)
 *   0x020000  kernel command line
 *   0x030000  setup_data header, then the device tree blob (64 KiB at most)
 *   0x09fc00  MP table, in the last KiB of base memory (EBDA)
 *   0x0e0000  RSDP (where the legacy BIOS search finds it), then the other
 *             ACPI tables: e820 type 3, ACPI data (64 KiB)
 *   0x0f0000  VMGenID's 16-byte generation ID: e820 reserved (to 1 MiB)
 *   0x100000  kernel (bzImage protected-mode part, or ELF segments >= here)
 *   top of low RAM: initrd
 *   0xc0000000 - 4 GiB: 32-bit MMIO gap (devices, IOAPIC, LAPIC); RAM resumes at 4 GiB
 */
#ifndef EMBER_X86_LAYOUT_H
#define EMBER_X86_LAYOUT_H

#define BOOT_GDT_ADDR 0x500ull
#define BOOT_IDT_ADDR 0x520ull
#define PVH_INFO_ADDR 0x6000ull
#define PVH_MEMMAP_ADDR 0x6040ull
#define PVH_MODLIST_ADDR 0x6400ull
#define ZERO_PAGE_ADDR 0x7000ull
#define BOOT_STACK_ADDR 0x8ff0ull
#define PML4_ADDR 0x9000ull
#define PDPT_ADDR 0xa000ull
#define PD_ADDR 0xb000ull /* four pages: 0xb000 - 0xefff */
#define CMDLINE_ADDR 0x20000ull
#define CMDLINE_MAX 2048u /* bytes including the NUL, Linux's x86 limit */
#define SETUP_DATA_ADDR 0x30000ull
#define DTB_ADDR 0x30010ull /* right after the 16-byte setup_data header */
#define DTB_MAX 0xfff0u
#define EBDA_START 0x9fc00ull
#define MPTABLE_ADDR EBDA_START
#define MPTABLE_MAX 0x400u
#define ACPI_TABLES_START 0xe0000ull
#define RSDP_ADDR ACPI_TABLES_START
#define ACPI_TABLES_END 0xf0000ull
#define VMGENID_ADDR 0xf0000ull
#define HIMEM_START 0x100000ull

#define MMIO_GAP_START 0xc0000000ull
#define MMIO_GAP_END 0x100000000ull
/* Boot timer first, then virtio-mmio devices, one page each. */
#define MMIO_DEVICES_START 0xd0000000ull
#define BOOT_TIMER_ADDR MMIO_DEVICES_START
#define IOAPIC_ADDR 0xfec00000ull
#define LAPIC_ADDR 0xfee00000ull
/* KVM's private pages for real-mode TSS and the EPT identity map. */
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull
#define KVM_TSS_ADDR 0xfffbd000ull

/* Legacy ports. */
#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ 4
#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define DEBUG_EXIT_PORT 0xf4

#define IOAPIC_NR_PINS 24
/* The ACPI Generic Event Device (VMGenID's notification) has the last pin. */
#define GED_IRQ (IOAPIC_NR_PINS - 1)
/* virtio-mmio devices: one page each after the boot timer, IRQs 5 to 22. */
#define VIRTIO_MMIO_BASE (MMIO_DEVICES_START + 0x1000)
#define VIRTIO_IRQ_BASE 5
#define VIRTIO_MAX_DEVICES (GED_IRQ - VIRTIO_IRQ_BASE)

#endif
