// SPDX-License-Identifier: Apache-2.0
/*
 * bzImage loader and Linux zero page: a synthetic image with each header
 * field broken in turn, and Debian's real linux-image-cloud-amd64 bzImage
 * (path in $EMBER_DEBIAN_BZIMAGE, fetched by scripts/fetch-debian-kernel.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86_64/boot.h"
#include "fake_mem.h"

#define MiB (1ull << 20)
#define SETUP_SECTS 4
#define IMG_SIZE ((SETUP_SECTS + 1) * 512 + 8192)

static uint8_t *synth(void)
{
	static uint8_t img[IMG_SIZE];
	memset(img, 0, sizeof(img));
	struct setup_header *h = (struct setup_header *)(img + 0x1f1);
	h->setup_sects = SETUP_SECTS;
	h->syssize = 8192 / 16;
	h->boot_flag = 0xaa55;
	h->header = 0x53726448;
	h->version = 0x020f;
	h->loadflags = LOADED_HIGH;
	h->code32_start = 0x100000;
	h->xloadflags = XLF_KERNEL_64;
	h->cmdline_size = 255;
	h->init_size = 64 * 1024;
	h->initrd_addr_max = 0x7fffffff;
	for (int i = 0; i < 8192; i++)
		img[(SETUP_SECTS + 1) * 512 + i] = (uint8_t)(i * 7);
	return img;
}

static int memfd_with(const void *buf, size_t len)
{
	int fd = memfd_create("bz", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	return fd;
}

static void synthetic_bzimage_loads_at_1m(void **state)
{
	(void)state;
	struct guest_mem mem;
	struct kernel_image img;
	char err[BOOT_ERR_MAX] = "";
	assert_int_equal(fake_mem_init(&mem, 16 * MiB), 0);
	uint8_t *file = synth();
	int fd = memfd_with(file, IMG_SIZE);
	assert_int_equal(kernel_load(&mem, fd, &img, err), 0);
	close(fd);
	assert_int_equal(img.format, KERNEL_BZIMAGE);
	assert_int_equal(img.entry64, 0x100200);
	assert_int_equal(img.load_start, 0x100000);
	assert_int_equal(img.load_end, 0x100000 + 64 * 1024);
	assert_memory_equal(guest_mem_ptr(&mem, 0x100000, 8192), file + (SETUP_SECTS + 1) * 512,
			    8192);

	/* The zero page carries the file's header plus what the loader adds. */
	struct boot_info bi = { .cmdline = "console=ttyS0",
				.initrd_addr = 0x800000,
				.initrd_size = 1234 };
	assert_int_equal(linux_setup(&mem, &img, &bi, err), 0);
	const struct boot_params *bp = guest_mem_ptr(&mem, ZERO_PAGE_ADDR, sizeof(*bp));
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, CMDLINE_ADDR);
	assert_string_equal((const char *)guest_mem_ptr(&mem, CMDLINE_ADDR, 14), "console=ttyS0");
	assert_int_equal(bp->hdr.ramdisk_image, 0x800000);
	assert_int_equal(bp->hdr.ramdisk_size, 1234);
	assert_int_equal(bp->e820_entries, 5); /* base, EBDA, ACPI, VMGenID, high */
	assert_int_equal(bp->e820_table[4].addr, HIMEM_START);
	assert_int_equal(bp->e820_table[4].size, 16 * MiB - HIMEM_START);

	/* The header's cmdline_size (255) bounds the command line. */
	char longline[300];
	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = 0;
	bi.cmdline = longline;
	assert_int_equal(linux_setup(&mem, &img, &bi, err), -E2BIG);
	assert_non_null(strstr(err, "at most 255"));
	fake_mem_free(&mem);
}

struct bad_case {
	const char *name;
	void (*mutate)(uint8_t *img, size_t *len);
	int err;
	const char *msg;
};

/* clang-format off: one mutation per line reads as a table */
#define HDR(img) ((struct setup_header *)((img) + 0x1f1))
static void m_boot_flag(uint8_t *i, size_t *l)
{
	(void)l;
	HDR(i)->boot_flag = 0x1234;
}
static void m_hdrs(uint8_t *i, size_t *l)
{
	(void)l;
	HDR(i)->header = 0x12345678;
}
static void m_old(uint8_t *i, size_t *l)
{
	(void)l;
	HDR(i)->version = 0x0204;
}
static void m_no64(uint8_t *i, size_t *l)
{
	(void)l;
	HDR(i)->xloadflags = 0;
}
static void m_not_high(uint8_t *i, size_t *l)
{
	(void)l;
	HDR(i)->loadflags = 0;
}
static void m_setup_huge(uint8_t *i, size_t *l)
{
	(void)l;
	HDR(i)->setup_sects = 200;
}
static void m_truncated(uint8_t *i, size_t *l)
{
	(void)i;
	*l = (SETUP_SECTS + 1) * 512 + 4000;
}
static void m_short(uint8_t *i, size_t *l)
{
	(void)i;
	*l = 0x210;
}
static void m_init_size(uint8_t *i, size_t *l)
{
	(void)l;
	HDR(i)->init_size = 0x7fffffff;
}

static const struct bad_case bad_cases[] = {
	{ "wrong boot flag", m_boot_flag, -ENOEXEC, "boot flag" },
	{ "wrong magic", m_hdrs, -ENOEXEC, "neither an ELF file nor a bzImage" },
	{ "protocol too old", m_old, -ENOEXEC, "too old" },
	{ "no 64-bit entry", m_no64, -ENOEXEC, "64-bit" },
	{ "not bz", m_not_high, -ENOEXEC, "high-loaded" },
	{ "setup past end", m_setup_huge, -ENOEXEC, "truncated" },
	{ "truncated kernel", m_truncated, -ENOEXEC, "truncated" },
	{ "header cut short", m_short, -ENOEXEC, "too short" },
	{ "init_size too big", m_init_size, -EFBIG, "more than guest memory" },
};
/* clang-format on */

static void malformed_bzimages_fail_with_clear_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct guest_mem mem;
		struct kernel_image img;
		char err[BOOT_ERR_MAX] = "";
		size_t len = IMG_SIZE;
		uint8_t *file = synth();
		c->mutate(file, &len);
		assert_int_equal(fake_mem_init(&mem, 16 * MiB), 0);
		int fd = memfd_with(file, len);
		int r = kernel_load(&mem, fd, &img, err);
		close(fd);
		fake_mem_free(&mem);
		print_message("  %-18s -> %d \"%s\"\n", c->name, r, err);
		assert_int_equal(r, c->err);
		assert_non_null(strstr(err, c->msg));
	}
}

static void debian_cloud_bzimage_parses_and_lands(void **state)
{
	(void)state;
	const char *path = getenv("EMBER_DEBIAN_BZIMAGE");
	if (!path || !*path)
		fail_msg("EMBER_DEBIAN_BZIMAGE is not set: run scripts/fetch-debian-kernel.sh "
			 "(make unit sets it)");
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("cannot open %s", path);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t file_hdr[0x280];
	assert_int_equal(pread(fd, file_hdr, sizeof(file_hdr), 0), (ssize_t)sizeof(file_hdr));
	const struct setup_header *fh = (const struct setup_header *)(file_hdr + 0x1f1);

	struct guest_mem mem;
	struct kernel_image img;
	char err[BOOT_ERR_MAX] = "";
	assert_int_equal(fake_mem_init(&mem, 256 * MiB), 0);
	assert_int_equal(kernel_load(&mem, fd, &img, err), 0);
	print_message("  %s: protocol %x, setup_sects %u, init_size %u KiB, xloadflags %#x\n", path,
		      img.hdr.version, img.hdr.setup_sects, img.hdr.init_size >> 10,
		      img.hdr.xloadflags);
	assert_int_equal(img.format, KERNEL_BZIMAGE);
	assert_true(img.hdr.version >= 0x020c);
	assert_true(img.hdr.xloadflags & XLF_KERNEL_64);
	assert_int_equal(img.hdr.init_size, fh->init_size);
	/* Where each part lands: protected-mode code at 1 MiB, entry at +0x200. */
	uint64_t setup_size = ((uint64_t)fh->setup_sects + 1) * 512;
	uint64_t kernel_size = (uint64_t)st.st_size - setup_size;
	assert_int_equal(img.entry64, 0x100200);
	assert_int_equal(img.load_end,
			 0x100000 + (kernel_size > fh->init_size ? kernel_size : fh->init_size));
	uint8_t head[4096], tail[4096];
	assert_int_equal(pread(fd, head, sizeof(head), (off_t)setup_size), (ssize_t)sizeof(head));
	assert_int_equal(pread(fd, tail, sizeof(tail), st.st_size - 4096), (ssize_t)sizeof(tail));
	assert_memory_equal(guest_mem_ptr(&mem, 0x100000, 4096), head, 4096);
	assert_memory_equal(guest_mem_ptr(&mem, 0x100000 + kernel_size - 4096, 4096), tail, 4096);

	/* An initrd goes to the top of low RAM, clear of the kernel's init_size. */
	int ifd = memfd_create("initrd", MFD_CLOEXEC);
	assert_int_equal(ftruncate(ifd, 3 * MiB + 5), 0);
	uint64_t addr, size;
	assert_int_equal(initrd_load(&mem, ifd, &img, img.hdr.initrd_addr_max, &addr, &size, err),
			 0);
	assert_int_equal(size, 3 * MiB + 5);
	assert_int_equal(addr % 4096, 0);
	assert_true(addr >= img.load_end);
	assert_true(addr + size <= 256 * MiB);
	/* The same initrd cannot fit in a guest the kernel already fills. */
	struct guest_mem small;
	assert_int_equal(fake_mem_init(&small, 32 * MiB), 0);
	int r = initrd_load(&small, ifd, &img, 0, &addr, &size, err);
	assert_int_equal(r, -EFBIG);
	close(ifd);
	close(fd);
	fake_mem_free(&small);
	fake_mem_free(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(synthetic_bzimage_loads_at_1m),
		cmocka_unit_test(malformed_bzimages_fail_with_clear_errors),
		cmocka_unit_test(debian_cloud_bzimage_parses_and_lands),
	};
	return cmocka_run_group_tests_name("bzimage", tests, NULL, NULL);
}
