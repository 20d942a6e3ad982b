// SPDX-License-Identifier: Apache-2.0
/*
 * What the builder writes for the guest besides its kernel, in the order
 * load_guest() does: the command line (vmm_guest_cmdline(): the user's
 * line, root= for the root drive, a virtio_mmio.device= entry per device),
 * the initrd's placement (initrd_load()), the device tree (fdt_build()),
 * then the PVH start info or the Linux zero page with the command line
 * under the boot protocol's limit, the ACPI tables (checked table by table
 * through the RSDP the boot structures point to) and the MP table, as the
 * --no-acpi / --acpi-only flags ask. Everything comes from
 * the input: a fixed header (struct params), then NUL-separated strings:
 * the user's command line and one partuuid per drive (empty: none).
 *
 * The kernel is not loaded (fuzz_elf and fuzz_bzimage do that): its
 * kernel_image (format, end, and for a bzImage the header fields the boot
 * code reads) comes from the input too. An initrd is a sparse memfd of the
 * input's size; sizes past 2 MiB are made larger than the guest's low RAM,
 * so their refusal is fuzzed without copying gigabytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "acpi/acpi.h"
#include "arch/x86_64/boot.h"
#include "fake_mem.h"
#include "fuzz.h"
#include "vmm.h"

#define MiB (1ull << 20)
#define INITRD_COPY_MAX (2 * MiB)

/* Guest memory sizes: tiny, small, typical, and one past the MMIO gap. */
static const uint64_t mem_sizes[] = { 2 * MiB, 16 * MiB, 128 * MiB, 256 * MiB, 3328 * MiB };
#define NR_MEMS (sizeof(mem_sizes) / sizeof(mem_sizes[0]))

/* The input's header, little-endian, no padding. */
struct params {
	uint8_t mem; /* index into mem_sizes */
	uint8_t flags; /* FLAG_* */
	uint8_t vcpus; /* 1 + (vcpus % VM_MAX_VCPUS) */
	uint8_t nr_drives; /* % (VMM_MAX_DRIVES + 1) */
	uint8_t nr_devices; /* % (VIRTIO_MAX_DEVICES + 1) */
	uint8_t root; /* which drive is the root device, if < nr_drives */
	uint16_t read_only; /* one bit per drive */
	uint16_t version; /* bzImage: boot protocol */
	uint32_t cmdline_size; /* bzImage */
	uint32_t initrd_addr_max; /* bzImage */
	uint32_t kernel_end; /* the kernel's load_end - HIMEM_START */
	uint32_t initrd_size; /* 0: none */
} __attribute__((packed));

#define FLAG_BZIMAGE 1
#define FLAG_PVH 2
#define FLAG_NO_DTB 4
#define FLAG_NO_ACPI 8
#define FLAG_ACPI_ONLY 16

static struct guest_mem mems[NR_MEMS];
static struct vmm vmm;
static int initrd_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	initrd_fd = memfd_create("fuzz-initrd", MFD_CLOEXEC);
	for (unsigned int i = 0; i < NR_MEMS; i++)
		if (fake_mem_init(&mems[i], mem_sizes[i]) < 0)
			initrd_fd = -1;
	if (initrd_fd < 0) {
		perror("fuzz_cmdline: set-up");
		abort();
	}
	return 0;
}

/* The next NUL-terminated string of the input, or "" when it is used up. */
static const char *next_str(char **p, const char *end)
{
	if (*p >= end)
		return "";
	char *s = *p;
	*p += strlen(s) + 1;
	return s;
}

static void fail(const char *what, const char *cmdline)
{
	fprintf(stderr, "fuzz_cmdline: %s (command line %zu bytes)\n", what, strlen(cmdline));
	abort();
}

/* The command line in guest memory and its length against the limit. */
static void check_written(const struct guest_mem *mem, const char *cmdline, uint64_t limit)
{
	size_t len = strlen(cmdline);
	const char *in_guest = guest_mem_ptr(mem, CMDLINE_ADDR, len + 1);
	if (len + 1 > limit || !in_guest || memcmp(in_guest, cmdline, len + 1) != 0)
		fail("the command line in guest memory is not the one built, or too long", cmdline);
}

/* --acpi-only: the default line, less exactly its one entry per device. */
static void check_acpi_only(const char *cmdline, const char *user)
{
	vmm.cfg.acpi = ACPI_WITH_LEGACY;
	char *full = vmm_guest_cmdline(&vmm, *user ? user : NULL);
	vmm.cfg.acpi = ACPI_ONLY;
	if (!full)
		abort();
	size_t n = strlen(cmdline);
	unsigned int entries = 0;
	for (const char *p = full + n; (p = strstr(p, "virtio_mmio.device=")); p++)
		entries++;
	if (strncmp(full, cmdline, n) != 0 || entries != vmm.nr_mmio_devs)
		fail("--acpi-only left a virtio_mmio.device= entry or changed the line", cmdline);
	free(full);
}

/* A table at @gpa: whole inside the ACPI area, its checksum right. */
static void check_table(const struct guest_mem *mem, uint64_t gpa, const char *cmdline)
{
	const uint8_t *h = guest_mem_ptr(mem, gpa, 36);
	uint32_t len;
	if (!h || gpa < ACPI_TABLES_START)
		fail("an ACPI table outside the ACPI area", cmdline);
	memcpy(&len, h + 4, 4);
	if (len < 36 || gpa + len > ACPI_TABLES_END || acpi_checksum(h, len) != 0)
		fail("an ACPI table with a bad length or checksum", cmdline);
}

/* The boot structures point at the RSDP, and every table it leads to is sound. */
static void check_acpi(const struct guest_mem *mem, bool pvh, uint64_t rsdp_addr,
		       const char *cmdline)
{
	uint64_t told;
	if (pvh) {
		const struct hvm_start_info *si = guest_mem_ptr(mem, PVH_INFO_ADDR, sizeof(*si));
		told = si->rsdp_paddr;
	} else {
		const struct boot_params *bp = guest_mem_ptr(mem, ZERO_PAGE_ADDR, sizeof(*bp));
		told = bp->acpi_rsdp_addr;
	}
	if (told != rsdp_addr)
		fail("the boot structures do not give the RSDP's address", cmdline);
	if (!rsdp_addr)
		return;
	const uint8_t *rsdp = guest_mem_ptr(mem, rsdp_addr, 36);
	if (memcmp(rsdp, "RSD PTR ", 8) || acpi_checksum(rsdp, 20) || acpi_checksum(rsdp, 36))
		fail("a bad RSDP", cmdline);
	uint64_t xsdt;
	memcpy(&xsdt, rsdp + 24, 8);
	check_table(mem, xsdt, cmdline);
	const uint8_t *x = guest_mem_ptr(mem, xsdt, 36);
	uint32_t xlen;
	memcpy(&xlen, x + 4, 4);
	for (uint32_t off = 36; off + 8 <= xlen; off += 8) {
		uint64_t t;
		memcpy(&t, guest_mem_ptr(mem, xsdt + off, 8), 8);
		check_table(mem, t, cmdline);
		if (memcmp(guest_mem_ptr(mem, t, 4), "FACP", 4) == 0) {
			uint64_t dsdt;
			memcpy(&dsdt, guest_mem_ptr(mem, t + 140, 8), 8);
			check_table(mem, dsdt, cmdline);
		}
	}
}

static void run(const struct params *pa, char *strs, const char *end)
{
	const struct guest_mem *mem = &mems[pa->mem % NR_MEMS];
	char err[BOOT_ERR_MAX] = "";

	/* The devices as the builder attached them: drives (root first), then the rest. */
	vmm.cfg.nr_drives = pa->nr_drives % (VMM_MAX_DRIVES + 1);
	vmm.nr_mmio_devs = pa->nr_devices % (VIRTIO_MAX_DEVICES + 1);
	const char *user = next_str(&strs, end);
	for (unsigned int i = 0; i < vmm.cfg.nr_drives; i++) {
		const char *partuuid = next_str(&strs, end);
		vmm.cfg.drives[i] = (struct drive_config){
			.blk.read_only = pa->read_only & (1u << i),
			.is_root = i == pa->root,
			.partuuid = *partuuid ? (char *)(uintptr_t)partuuid : NULL,
		};
	}
	for (unsigned int i = 0; i < vmm.nr_mmio_devs; i++)
		vmm.mmio_devs[i] = (struct fdt_mmio_device){
			.base = VIRTIO_MMIO_BASE + 0x1000ull * i,
			.size = VIRTIO_MMIO_SIZE,
			.irq = VIRTIO_IRQ_BASE + i,
		};
	vmm.cfg.acpi = pa->flags & FLAG_NO_ACPI ? ACPI_OFF
	    : pa->flags & FLAG_ACPI_ONLY	? ACPI_ONLY
						: ACPI_WITH_LEGACY;
	char *cmdline = vmm_guest_cmdline(&vmm, *user ? user : NULL);
	if (!cmdline)
		abort();
	if (strncmp(cmdline, user, strlen(user)) != 0)
		fail("the user's command line is not at the start", cmdline);
	if (vmm.cfg.acpi == ACPI_ONLY)
		check_acpi_only(cmdline, user);

	struct kernel_image img = {
		.format = pa->flags & FLAG_BZIMAGE ? KERNEL_BZIMAGE : KERNEL_ELF,
		.load_start = HIMEM_START,
		.load_end = HIMEM_START + pa->kernel_end,
	};
	img.hdr.version = pa->version;
	img.hdr.cmdline_size = pa->cmdline_size;
	img.hdr.initrd_addr_max = pa->initrd_addr_max;
	struct boot_info bi = { .cmdline = cmdline, .nr_vcpus = 1 + pa->vcpus % VM_MAX_VCPUS };

	if (pa->initrd_size) {
		uint64_t low_top = mem->regions[0].gpa + mem->regions[0].size;
		uint64_t size = pa->initrd_size <= INITRD_COPY_MAX
		    ? pa->initrd_size
		    : low_top + (pa->initrd_size & 0xffff) + 1;
		uint64_t max = img.format == KERNEL_BZIMAGE ? img.hdr.initrd_addr_max : 0;
		if (ftruncate(initrd_fd, (off_t)size) < 0)
			abort();
		if (initrd_load(mem, initrd_fd, &img, max, &bi.initrd_addr, &bi.initrd_size, err) ==
			0 &&
		    (bi.initrd_size != size || bi.initrd_addr < img.load_end ||
		     bi.initrd_addr < HIMEM_START || bi.initrd_addr % 4096 ||
		     !guest_mem_ptr(mem, bi.initrd_addr, bi.initrd_size) ||
		     (max && bi.initrd_addr + bi.initrd_size - 1 > max)))
			fail("initrd placed over the kernel, past its limit or outside RAM",
			     cmdline);
	}

	if (!(pa->flags & FLAG_NO_DTB)) {
		struct fdt_params fp = { .cmdline = cmdline,
					 .initrd_addr = bi.initrd_addr,
					 .initrd_size = bi.initrd_size,
					 .devices = vmm.mmio_devs,
					 .nr_devices = vmm.nr_mmio_devs };
		void *buf = guest_mem_ptr(mem, DTB_ADDR, DTB_MAX);
		int len = buf ? fdt_build(buf, DTB_MAX, mem, &fp) : -1;
		if (len > (int)DTB_MAX)
			fail("device tree larger than its buffer", cmdline);
		bi.dtb_size = len > 0 ? (uint64_t)len : 0;
	}

	if (vmm.cfg.acpi != ACPI_OFF) {
		struct acpi_params ap = { .nr_vcpus = bi.nr_vcpus,
					  .devices = vmm.mmio_devs,
					  .nr_devices = vmm.nr_mmio_devs };
		if (acpi_setup(mem, &ap) < 0)
			fail("no ACPI tables for a VM shape the API accepts", cmdline);
		bi.rsdp_addr = RSDP_ADDR;
	}

	/* PVH takes Linux's x86 limit; the zero page a bzImage's cmdline_size. */
	uint64_t limit = CMDLINE_MAX;
	if (!(pa->flags & FLAG_PVH) && img.format == KERNEL_BZIMAGE && img.hdr.cmdline_size &&
	    img.hdr.cmdline_size + 1ull < limit)
		limit = img.hdr.cmdline_size + 1ull;
	int r = pa->flags & FLAG_PVH ? pvh_setup(mem, &bi, err) : linux_setup(mem, &img, &bi, err);
	if (r == 0) {
		check_written(mem, cmdline, limit);
		check_acpi(mem, pa->flags & FLAG_PVH, bi.rsdp_addr, cmdline);
	} else if (r == -E2BIG && strlen(cmdline) + 1 <= limit)
		fail("a command line within the limit was refused", cmdline);
	if (vmm.cfg.acpi != ACPI_ONLY && mptable_setup(mem, bi.nr_vcpus) < 0)
		fail("no MP table for a vCPU count the API accepts", cmdline);
	free(cmdline);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct params pa;
	fuzz_take(&in, &pa, sizeof(pa));
	char *strs = malloc(in.left + 1);
	if (!strs)
		return 0;
	memcpy(strs, in.p, in.left);
	strs[in.left] = 0;
	run(&pa, strs, strs + in.left);
	free(strs);
	return 0;
}
