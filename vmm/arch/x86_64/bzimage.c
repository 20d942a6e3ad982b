// SPDX-License-Identifier: Apache-2.0
/* bzImage loader (Linux boot protocol 2.12+, 64-bit entry), and the format sniffer. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot.h"
#include "layout.h"
#include "util.h"

#define fail(code, ...) (snprintf(err, BOOT_ERR_MAX, __VA_ARGS__), (code))

#define SETUP_HDR_OFFSET 0x1f1
#define BOOT_FLAG 0xaa55
#define HDRS_MAGIC 0x53726448u /* "HdrS" */
#define MIN_PROTOCOL 0x020c /* 2.12: xloadflags and the 64-bit entry flag */
#define ENTRY64_OFFSET 0x200

int bzimage_load(const struct guest_mem *mem, int fd, uint64_t size, struct kernel_image *img,
		 char err[BOOT_ERR_MAX])
{
	memset(img, 0, sizeof(*img));
	img->format = KERNEL_BZIMAGE;
	struct setup_header *h = &img->hdr;

	if (size < SETUP_HDR_OFFSET + sizeof(*h) ||
	    pread_full(fd, h, sizeof(*h), SETUP_HDR_OFFSET) < 0)
		return fail(-ENOEXEC, "file too short for a bzImage setup header");
	if (h->boot_flag != BOOT_FLAG)
		return fail(-ENOEXEC, "bad bzImage boot flag 0x%04x (want 0xaa55)", h->boot_flag);
	if (h->header != HDRS_MAGIC)
		return fail(-ENOEXEC, "bad bzImage magic 0x%08x (want \"HdrS\")", h->header);
	if (h->version < MIN_PROTOCOL)
		return fail(-ENOEXEC, "boot protocol %u.%02u is too old (need 2.12)",
			    h->version >> 8, h->version & 0xff);
	if (!(h->xloadflags & XLF_KERNEL_64))
		return fail(-ENOEXEC, "bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)");
	if (!(h->loadflags & LOADED_HIGH))
		return fail(-ENOEXEC, "bzImage is not a high-loaded (bz) kernel");

	/* The real-mode part is setup_sects sectors after the boot sector. */
	uint64_t setup_sects = h->setup_sects ? h->setup_sects : 4;
	uint64_t setup_size = (setup_sects + 1) * 512;
	if (size <= setup_size + ENTRY64_OFFSET)
		return fail(-ENOEXEC, "bzImage is truncated: %llu bytes, setup alone takes %llu",
			    (unsigned long long)size, (unsigned long long)setup_size);
	uint64_t kernel_size = size - setup_size;
	/* syssize counts 16-byte paragraphs, rounded up by Linux's build tool. */
	if ((kernel_size + 15) / 16 < h->syssize)
		return fail(-ENOEXEC,
			    "bzImage is truncated: header says %llu bytes of kernel, file has %llu",
			    (unsigned long long)h->syssize * 16, (unsigned long long)kernel_size);

	/* The kernel decompresses in place and needs init_size bytes from its load address. */
	uint64_t need = kernel_size > h->init_size ? kernel_size : h->init_size;
	if (!guest_mem_ptr(mem, HIMEM_START, need))
		return fail(-EFBIG, "kernel needs %llu KiB at 1 MiB, more than guest memory holds",
			    (unsigned long long)(need >> 10));
	uint8_t *dst = guest_mem_ptr(mem, HIMEM_START, kernel_size);
	if (pread_full(fd, dst, kernel_size, setup_size) < 0)
		return fail(-EIO, "cannot read the bzImage kernel");
	img->load_start = HIMEM_START;
	img->load_end = HIMEM_START + need;
	img->entry64 = HIMEM_START + ENTRY64_OFFSET;
	return 0;
}

int kernel_load(const struct guest_mem *mem, int fd, struct kernel_image *img,
		char err[BOOT_ERR_MAX])
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fail(-errno, "cannot stat kernel: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(-ENOEXEC, "kernel is not a regular file");
	uint8_t magic[SELFMAG];
	if (st.st_size < (off_t)sizeof(magic) || pread_full(fd, magic, sizeof(magic), 0) < 0)
		return fail(-ENOEXEC, "kernel file is empty or too short");
	if (memcmp(magic, ELFMAG, SELFMAG) == 0)
		return elf_load(mem, fd, (uint64_t)st.st_size, img, err);
	uint32_t hdrs = 0;
	if (st.st_size >= 0x206)
		pread_full(fd, &hdrs, sizeof(hdrs), 0x202);
	if (hdrs != HDRS_MAGIC)
		return fail(
		    -ENOEXEC,
		    "not a kernel: neither an ELF file nor a bzImage (no \"HdrS\" at 0x202)");
	return bzimage_load(mem, fd, (uint64_t)st.st_size, img, err);
}

int initrd_load(const struct guest_mem *mem, int fd, const struct kernel_image *img,
		uint64_t max_addr, uint64_t *addr, uint64_t *size, char err[BOOT_ERR_MAX])
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return fail(-errno, "cannot stat initrd: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(-EINVAL, "initrd is not a regular file");
	uint64_t len = (uint64_t)st.st_size;
	if (len == 0)
		return fail(-EINVAL, "initrd is empty");
	/* Top of the low RAM region, capped by what the kernel can address. */
	uint64_t top = mem->regions[0].gpa + mem->regions[0].size;
	if (max_addr && top > max_addr + 1)
		top = max_addr + 1;
	if (len > top)
		return fail(-EFBIG, "initrd of %llu bytes does not fit below 0x%llx",
			    (unsigned long long)len, (unsigned long long)top);
	uint64_t start = (top - len) & ~0xfffull;
	if (start < img->load_end || start < HIMEM_START)
		return fail(-EFBIG, "initrd of %llu KiB does not fit between the kernel and 0x%llx",
			    (unsigned long long)(len >> 10), (unsigned long long)top);
	uint8_t *dst = guest_mem_ptr(mem, start, len);
	if (!dst)
		return fail(-EFBIG, "initrd does not fit in guest memory");
	if (pread_full(fd, dst, len, 0) < 0)
		return fail(-EIO, "cannot read initrd");
	*addr = start;
	*size = len;
	return 0;
}
