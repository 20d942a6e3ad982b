// SPDX-License-Identifier: Apache-2.0
/*
 * The ELF kernel loader: the input is the kernel file, read from a memfd by
 * elf_load() into fake guest memory, as the builder hands it a --kernel or
 * kernel_image_path. A file the loader accepts must keep the promises
 * boot.h makes about it (entries inside what was loaded, nothing below 1 MiB).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86_64/boot.h"
#include "fake_mem.h"
#include "fuzz.h"

/* Room for real test guests and their bss; a segment's zero fill is a
 * memset, so more memory would only make each run slower. */
#define FUZZ_MEM_SIZE (32ull << 20)

static struct guest_mem mem;
static int kernel_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	kernel_fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
	if (kernel_fd < 0 || fake_mem_init(&mem, FUZZ_MEM_SIZE) < 0) {
		perror("fuzz_elf: set-up");
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kernel_image img;
	char err[BOOT_ERR_MAX] = "";
	if (ftruncate(kernel_fd, 0) < 0 || pwrite(kernel_fd, data, size, 0) != (ssize_t)size)
		abort();
	if (elf_load(&mem, kernel_fd, size, &img, err) < 0)
		return 0;
	if (img.format != KERNEL_ELF || img.load_start < HIMEM_START ||
	    img.load_start >= img.load_end || img.entry64 < img.load_start ||
	    img.entry64 >= img.load_end ||
	    (img.pvh_entry && (img.pvh_entry < img.load_start || img.pvh_entry >= img.load_end)) ||
	    !guest_mem_ptr(&mem, img.load_start, 0) || !guest_mem_ptr(&mem, img.load_end - 1, 0)) {
		fprintf(stderr, "fuzz_elf: accepted an image that breaks boot.h's promises\n");
		abort();
	}
	return 0;
}
