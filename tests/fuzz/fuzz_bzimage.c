// SPDX-License-Identifier: Apache-2.0
/*
 * The bzImage loader: the input is the kernel file, read from a memfd by
 * kernel_load() (the format sniffer, then bzimage_load()) into fake guest
 * memory. A kernel it accepts goes on as the builder takes it: an initrd
 * placed below the header's initrd_addr_max, then the zero page built from
 * the header (command-line limit, protocol version, setup_data).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86_64/boot.h"
#include "fake_mem.h"
#include "fuzz.h"

/* Real kernels ask for tens of MiB (init_size); only what the file holds is
 * copied, so the rest of the mapping is never touched. */
#define FUZZ_MEM_SIZE (256ull << 20)
#define FUZZ_INITRD_SIZE 4096

static const char cmdline[] = "console=ttyS0 reboot=k panic=1 root=/dev/vda rw "
			      "virtio_mmio.device=4K@0xd0001000:5";

static struct guest_mem mem;
static int kernel_fd = -1, initrd_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	kernel_fd = memfd_create("fuzz-bzimage", MFD_CLOEXEC);
	initrd_fd = memfd_create("fuzz-initrd", MFD_CLOEXEC);
	if (kernel_fd < 0 || initrd_fd < 0 || ftruncate(initrd_fd, FUZZ_INITRD_SIZE) < 0 ||
	    fake_mem_init(&mem, FUZZ_MEM_SIZE) < 0) {
		perror("fuzz_bzimage: set-up");
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
	if (kernel_load(&mem, kernel_fd, &img, err) < 0 || img.format != KERNEL_BZIMAGE)
		return 0;
	if (img.load_start != HIMEM_START || img.entry64 < img.load_start ||
	    img.entry64 >= img.load_end || !guest_mem_ptr(&mem, img.load_start, 0) ||
	    !guest_mem_ptr(&mem, img.load_end - 1, 0)) {
		fprintf(stderr, "fuzz_bzimage: accepted an image that breaks boot.h's promises\n");
		abort();
	}
	struct boot_info bi = { .cmdline = cmdline, .dtb_size = 1, .nr_vcpus = 1 };
	if (initrd_load(&mem, initrd_fd, &img, img.hdr.initrd_addr_max, &bi.initrd_addr,
			&bi.initrd_size, err) == 0 &&
	    (bi.initrd_addr < img.load_end ||
	     (img.hdr.initrd_addr_max &&
	      bi.initrd_addr + bi.initrd_size - 1 > img.hdr.initrd_addr_max))) {
		fprintf(stderr, "fuzz_bzimage: initrd placed over the kernel or past its limit\n");
		abort();
	}
	/* The header's cmdline_size bounds the command line (Linux's 2047 otherwise). */
	if (linux_setup(&mem, &img, &bi, err) == 0 && img.hdr.cmdline_size &&
	    sizeof(cmdline) > img.hdr.cmdline_size + 1ull) {
		fprintf(stderr, "fuzz_bzimage: command line longer than cmdline_size accepted\n");
		abort();
	}
	return 0;
}
