// SPDX-License-Identifier: Apache-2.0
/* From configuration to a VM whose boot vCPU is ready to run. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86_64/boot.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/layout.h"
#include "exit_codes.h"
#include "log.h"
#include "vcpu.h"
#include "vmm.h"

static int open_input(const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		log_err("cannot open %s '%s': %s", what, path, strerror(errno));
	return fd;
}

static int load_guest(struct vm *vm, const struct vmm_config *cfg)
{
	char err[BOOT_ERR_MAX] = "";
	struct kernel_image img;
	struct boot_info bi = { .cmdline = cfg->cmdline, .nr_vcpus = cfg->vcpus };

	int fd = open_input("kernel", cfg->kernel_path);
	if (fd < 0)
		return EMBER_EXIT_BAD_KERNEL;
	int r = kernel_load(&vm->mem, fd, &img, err);
	close(fd);
	if (r < 0) {
		log_err("kernel '%s': %s", cfg->kernel_path, err);
		return EMBER_EXIT_BAD_KERNEL;
	}

	bool pvh = false;
	switch (cfg->protocol) {
	case BOOT_PROTOCOL_AUTO:
		pvh = img.pvh_entry != 0;
		break;
	case BOOT_PROTOCOL_PVH:
		if (!img.pvh_entry) {
			log_err("kernel '%s' has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
				cfg->kernel_path);
			return EMBER_EXIT_BAD_KERNEL;
		}
		pvh = true;
		break;
	case BOOT_PROTOCOL_LINUX:
		break;
	}

	if (cfg->initrd_path) {
		fd = open_input("initrd", cfg->initrd_path);
		if (fd < 0)
			return EMBER_EXIT_BAD_KERNEL;
		uint64_t max = img.format == KERNEL_BZIMAGE ? img.hdr.initrd_addr_max : 0;
		r = initrd_load(&vm->mem, fd, &img, max, &bi.initrd_addr, &bi.initrd_size, err);
		close(fd);
		if (r < 0) {
			log_err("initrd '%s': %s", cfg->initrd_path, err);
			return EMBER_EXIT_BAD_KERNEL;
		}
	}

	r = pvh ? pvh_setup(&vm->mem, &bi, err) : linux_setup(&vm->mem, &img, &bi, err);
	if (r < 0) {
		log_err("boot set-up: %s", err);
		return r == -E2BIG ? EMBER_EXIT_USAGE : EMBER_EXIT_BAD_KERNEL;
	}
	if (mptable_setup(&vm->mem, cfg->vcpus) < 0) {
		log_err("cannot write the MP table");
		return EMBER_EXIT_ERROR;
	}
	r = pvh ? cpu_set_boot_pvh(&vm->vcpus[0], &vm->mem, img.pvh_entry, PVH_INFO_ADDR)
		: cpu_set_boot_long(&vm->vcpus[0], &vm->mem, img.entry64, ZERO_PAGE_ADDR);
	if (r < 0)
		return EMBER_EXIT_KVM;
	log_info("kernel loaded at [0x%llx, 0x%llx), %s entry 0x%llx",
		 (unsigned long long)img.load_start, (unsigned long long)img.load_end,
		 pvh ? "PVH" : "64-bit", (unsigned long long)(pvh ? img.pvh_entry : img.entry64));
	return 0;
}

static int serial_output_fd(const struct vmm_config *cfg)
{
	switch (cfg->serial) {
	case SERIAL_STDOUT:
		return STDOUT_FILENO;
	case SERIAL_NONE:
		return -1;
	case SERIAL_FILE:
		break;
	}
	int fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		log_err("cannot open serial output '%s': %s", cfg->serial_path, strerror(errno));
	return fd;
}

static int add_devices(struct vmm *vmm, const struct vmm_config *cfg)
{
	struct vm *vm = &vmm->vm;
	int out_fd = serial_output_fd(cfg);
	if (out_fd < 0 && cfg->serial == SERIAL_FILE)
		return EMBER_EXIT_USAGE;
	if (serial_init(&vmm->serial, vm, out_fd) < 0 || i8042_init(vm) < 0 ||
	    debug_exit_init(vm) < 0 || (cfg->boot_timer && boot_timer_init(vm) < 0)) {
		log_err("cannot set up legacy devices");
		return EMBER_EXIT_ERROR;
	}
	return 0;
}

int vmm_build(struct vmm *vmm, const struct vmm_config *cfg)
{
	/* Check the inputs exist before paying for a VM. */
	int fd = open_input("kernel", cfg->kernel_path);
	if (fd < 0)
		return EMBER_EXIT_BAD_KERNEL;
	close(fd);
	if (cfg->initrd_path) {
		fd = open_input("initrd", cfg->initrd_path);
		if (fd < 0)
			return EMBER_EXIT_BAD_KERNEL;
		close(fd);
	}

	int r = vm_create(&vmm->vm, cfg->mem_mib << 20, cfg->vcpus);
	if (r < 0)
		return r == -EINVAL ? EMBER_EXIT_USAGE : EMBER_EXIT_KVM;
	r = add_devices(vmm, cfg);
	if (r)
		return r;
	return load_guest(&vmm->vm, cfg);
}
