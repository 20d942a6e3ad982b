// SPDX-License-Identifier: Apache-2.0
/* From configuration to a VM whose boot vCPU is ready to run. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acpi/acpi.h"
#include "arch/x86_64/boot.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/layout.h"
#include "devices/virtio/block/engine.h"
#include "exit_codes.h"
#include "log.h"
#include "devtree.h"
#include "vcpu.h"
#include "vmm.h"

static int open_input(const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		log_err("cannot open %s '%s': %s", what, path, strerror(errno));
	return fd;
}

/* Built in a growing buffer: its length is checked against the boot
 * protocol's limit when it is written to the guest, with a clear error. */
char *vmm_guest_cmdline(const struct vmm *vmm, const char *user)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	if (!f)
		return NULL;
	const char *sep = "";
	if (user && *user) {
		fputs(user, f);
		sep = " ";
	}
	for (unsigned int i = 0; i < vmm->cfg.nr_drives; i++) {
		const struct drive_config *d = &vmm->cfg.drives[i];
		if (!d->is_root)
			continue;
		if (d->partuuid)
			fprintf(f, "%sroot=PARTUUID=%s", sep, d->partuuid);
		else
			fprintf(f, "%sroot=/dev/vda", sep);
		fprintf(f, " %s", d->blk.read_only ? "ro" : "rw");
		sep = " ";
	}
	for (unsigned int i = 0; vmm->cfg.acpi != ACPI_ONLY && i < vmm->nr_mmio_devs; i++) {
		const struct fdt_mmio_device *d = &vmm->mmio_devs[i];
		fprintf(f, "%svirtio_mmio.device=4K@0x%llx:%u", sep, (unsigned long long)d->base,
			d->irq);
		sep = " ";
	}
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

static int write_dtb(struct vmm *vmm, struct boot_info *bi)
{
	struct fdt_params p = {
		.cmdline = bi->cmdline,
		.initrd_addr = bi->initrd_addr,
		.initrd_size = bi->initrd_size,
		.devices = vmm->mmio_devs,
		.nr_devices = vmm->nr_mmio_devs,
	};
	void *buf = guest_mem_ptr(&vmm->vm.mem, DTB_ADDR, DTB_MAX);
	int len = buf ? fdt_build(buf, DTB_MAX, &vmm->vm.mem, &p) : -EFAULT;
	if (len < 0) {
		log_err("cannot build the device tree: %s", strerror(-len));
		return len;
	}
	bi->dtb_size = (uint64_t)len;
	return 0;
}

static int load_guest_with(struct vmm *vmm, const char *cmdline)
{
	const struct vmm_config *cfg = &vmm->cfg;
	struct vm *vm = &vmm->vm;
	char err[BOOT_ERR_MAX] = "";
	struct kernel_image img;
	struct boot_info bi = { .cmdline = cmdline, .nr_vcpus = cfg->vcpus };

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

	if (write_dtb(vmm, &bi) < 0)
		return EMBER_EXIT_ERROR;
	if (cfg->acpi != ACPI_OFF) {
		struct acpi_params ap = {
			.nr_vcpus = cfg->vcpus,
			.devices = vmm->mmio_devs,
			.nr_devices = vmm->nr_mmio_devs,
		};
		r = acpi_setup(&vm->mem, &ap);
		if (r < 0) {
			log_err("cannot build the ACPI tables: %s", strerror(-r));
			return EMBER_EXIT_ERROR;
		}
		bi.rsdp_addr = RSDP_ADDR;
		vmm->vmgenid = true;
	}
	r = pvh ? pvh_setup(&vm->mem, &bi, err) : linux_setup(&vm->mem, &img, &bi, err);
	if (r < 0) {
		log_err("boot set-up: %s", err);
		return r == -E2BIG ? EMBER_EXIT_USAGE : EMBER_EXIT_BAD_KERNEL;
	}
	if (cfg->acpi != ACPI_ONLY && mptable_setup(&vm->mem, cfg->vcpus) < 0) {
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

static int load_guest(struct vmm *vmm)
{
	const char *user = vmm->cfg.cmdline;
	if (!user && vmm->cfg.default_boot_args)
		user = VMM_DEFAULT_BOOT_ARGS;
	char *cmdline = vmm_guest_cmdline(vmm, user);
	if (!cmdline)
		return EMBER_EXIT_ERROR;
	int r = load_guest_with(vmm, cmdline);
	free(cmdline);
	return r;
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

/* "06:00:0a:00:02:02" -> bytes; the API checked the format already. */
static void parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)strtoul(s + 3 * i, NULL, 16);
}

static struct fdt_mmio_device *next_mmio_slot(struct vmm *vmm)
{
	if (vmm->nr_mmio_devs == VIRTIO_MAX_DEVICES) {
		log_err("too many virtio devices (at most %d)", VIRTIO_MAX_DEVICES);
		return NULL;
	}
	struct fdt_mmio_device *d = &vmm->mmio_devs[vmm->nr_mmio_devs];
	*d = (struct fdt_mmio_device){
		.base = VIRTIO_MMIO_BASE + 0x1000ull * vmm->nr_mmio_devs,
		.size = VIRTIO_MMIO_SIZE,
		.irq = VIRTIO_IRQ_BASE + vmm->nr_mmio_devs,
	};
	return d;
}

/* The root device first (it becomes /dev/vda), then the rest in order. */
static const struct blk_drive_config *nth_drive(const struct vmm_config *cfg, unsigned int n)
{
	unsigned int k = 0;
	for (int pass = 0; pass < 2; pass++)
		for (unsigned int i = 0; i < cfg->nr_drives; i++)
			if (cfg->drives[i].is_root == (pass == 0) && k++ == n)
				return &cfg->drives[i].blk;
	return NULL;
}

static int add_drives(struct vmm *vmm, const struct vmm_config *cfg)
{
	if (!cfg->nr_drives)
		return 0;
	vmm->blks = calloc(cfg->nr_drives, sizeof(*vmm->blks));
	if (!vmm->blks)
		return EMBER_EXIT_ERROR;
	for (unsigned int i = 0; i < cfg->nr_drives; i++) {
		struct virtio_blk *b = &vmm->blks[i];
		const struct blk_drive_config *dc = nth_drive(cfg, i);
		char err[200] = "";
		struct fdt_mmio_device *d = next_mmio_slot(vmm);
		if (!d)
			return EMBER_EXIT_USAGE;
		if (virtio_blk_init(b, &vmm->vm.mem, dc, err, sizeof(err)) < 0) {
			log_err("drive '%s': %s", dc->id, err);
			return EMBER_EXIT_BAD_DRIVE;
		}
		vmm->nr_blks++;
		if (virtio_blk_add_to_loop(b, &vmm->loop) < 0 ||
		    virtio_mmio_attach(&b->transport, &vmm->vm, &vmm->loop, d->base, d->irq) < 0) {
			log_err("drive '%s': cannot attach the device", dc->id);
			return EMBER_EXIT_ERROR;
		}
		vmm->nr_mmio_devs++;
		log_info("drive '%s': %s, %llu sectors, %s, %s engine, at 0x%llx irq %u", b->id,
			 b->cfg.path, (unsigned long long)b->capacity,
			 b->cfg.read_only ? "ro" : "rw", b->engine->name,
			 (unsigned long long)d->base, d->irq);
	}
	return 0;
}

static int add_nets(struct vmm *vmm, const struct vmm_config *cfg)
{
	if (!cfg->nr_nets)
		return 0;
	vmm->nets = calloc(cfg->nr_nets, sizeof(*vmm->nets));
	if (!vmm->nets)
		return EMBER_EXIT_ERROR;
	for (unsigned int i = 0; i < cfg->nr_nets; i++) {
		const struct net_config *nc = &cfg->nets[i];
		struct net_device_config dc = nc->limits;
		dc.id = nc->iface_id;
		dc.tap_name = nc->host_dev_name;
		dc.has_mac = nc->guest_mac != NULL;
		if (dc.has_mac)
			parse_mac(nc->guest_mac, dc.mac);
		struct virtio_net *n = &vmm->nets[i];
		char err[200] = "";
		struct fdt_mmio_device *d = next_mmio_slot(vmm);
		if (!d)
			return EMBER_EXIT_USAGE;
		if (virtio_net_init(n, &vmm->vm.mem, &dc, err, sizeof(err)) < 0) {
			log_err("network interface '%s': %s", nc->iface_id, err);
			return EMBER_EXIT_BAD_DRIVE;
		}
		vmm->nr_nets++;
		if (virtio_net_add_to_loop(n, &vmm->loop) < 0 ||
		    virtio_mmio_attach(&n->transport, &vmm->vm, &vmm->loop, d->base, d->irq) < 0) {
			log_err("network interface '%s': cannot attach the device", nc->iface_id);
			return EMBER_EXIT_ERROR;
		}
		vmm->nr_mmio_devs++;
		if (nc->mmds) {
			struct mmds_net *mn;
			int r = mmds_net_attach(&mn, &vmm->mmds, cfg->mmds.ipv4, &vmm->loop,
						virtio_net_mmds_kick, n);
			if (r < 0) {
				log_err("network interface '%s': cannot start MMDS: %s",
					nc->iface_id, strerror(-r));
				return EMBER_EXIT_ERROR;
			}
			virtio_net_set_mmds(n, mn);
		}
		log_info("network interface '%s': TAP %s at 0x%llx irq %u", nc->iface_id,
			 nc->host_dev_name, (unsigned long long)d->base, d->irq);
	}
	return 0;
}

static int add_vsock(struct vmm *vmm, const struct vmm_config *cfg)
{
	if (!cfg->vsock.set)
		return 0;
	char err[200] = "";
	struct fdt_mmio_device *d = next_mmio_slot(vmm);
	if (!d)
		return EMBER_EXIT_USAGE;
	vmm->vsock = calloc(1, sizeof(*vmm->vsock));
	if (!vmm->vsock)
		return EMBER_EXIT_ERROR;
	if (virtio_vsock_init(vmm->vsock, &vmm->vm.mem, cfg->vsock.guest_cid, cfg->vsock.uds_path,
			      err, sizeof(err)) < 0) {
		log_err("vsock: %s", err);
		free(vmm->vsock);
		vmm->vsock = NULL;
		return EMBER_EXIT_BAD_DRIVE;
	}
	if (virtio_vsock_add_to_loop(vmm->vsock, &vmm->loop) < 0 ||
	    virtio_mmio_attach(&vmm->vsock->transport, &vmm->vm, &vmm->loop, d->base, d->irq) < 0) {
		log_err("vsock: cannot attach the device");
		return EMBER_EXIT_ERROR;
	}
	vmm->nr_mmio_devs++;
	log_info("vsock: guest CID %llu, %s, at 0x%llx irq %u",
		 (unsigned long long)cfg->vsock.guest_cid, cfg->vsock.uds_path,
		 (unsigned long long)d->base, d->irq);
	return 0;
}

static int add_entropy(struct vmm *vmm, const struct vmm_config *cfg)
{
	if (!cfg->entropy.set)
		return 0;
	char err[200] = "";
	struct fdt_mmio_device *d = next_mmio_slot(vmm);
	if (!d)
		return EMBER_EXIT_USAGE;
	vmm->rng = calloc(1, sizeof(*vmm->rng));
	if (!vmm->rng)
		return EMBER_EXIT_ERROR;
	if (virtio_rng_init(vmm->rng, &vmm->vm.mem, &cfg->entropy.limits, err, sizeof(err)) < 0) {
		log_err("entropy: %s", err);
		free(vmm->rng);
		vmm->rng = NULL;
		return EMBER_EXIT_ERROR;
	}
	if (virtio_rng_add_to_loop(vmm->rng, &vmm->loop) < 0 ||
	    virtio_mmio_attach(&vmm->rng->transport, &vmm->vm, &vmm->loop, d->base, d->irq) < 0) {
		log_err("entropy: cannot attach the device");
		return EMBER_EXIT_ERROR;
	}
	vmm->nr_mmio_devs++;
	log_info("entropy: virtio-rng at 0x%llx irq %u", (unsigned long long)d->base, d->irq);
	return 0;
}

static int add_balloon(struct vmm *vmm, const struct vmm_config *cfg)
{
	if (!cfg->balloon.set)
		return 0;
	char err[200] = "";
	struct fdt_mmio_device *d = next_mmio_slot(vmm);
	if (!d)
		return EMBER_EXIT_USAGE;
	vmm->balloon = calloc(1, sizeof(*vmm->balloon));
	if (!vmm->balloon)
		return EMBER_EXIT_ERROR;
	if (virtio_balloon_init(vmm->balloon, &vmm->vm.mem, &cfg->balloon.dev, err, sizeof(err)) <
	    0) {
		log_err("balloon: %s", err);
		free(vmm->balloon);
		vmm->balloon = NULL;
		return EMBER_EXIT_ERROR;
	}
	if (virtio_balloon_add_to_loop(vmm->balloon, &vmm->loop) < 0 ||
	    virtio_mmio_attach(&vmm->balloon->transport, &vmm->vm, &vmm->loop, d->base, d->irq) <
		0) {
		log_err("balloon: cannot attach the device");
		return EMBER_EXIT_ERROR;
	}
	vmm->nr_mmio_devs++;
	log_info("balloon: virtio-balloon at 0x%llx irq %u, target %u MiB",
		 (unsigned long long)d->base, d->irq, cfg->balloon.dev.amount_mib);
	return 0;
}

static int add_devices(struct vmm *vmm, const struct vmm_config *cfg)
{
	struct vm *vm = &vmm->vm;
	int out_fd = serial_output_fd(cfg);
	if (out_fd < 0 && cfg->serial == SERIAL_FILE)
		return EMBER_EXIT_USAGE;
	vmm->i8042 = calloc(1, sizeof(*vmm->i8042));
	if (!vmm->i8042)
		return EMBER_EXIT_ERROR;
	if (serial_init(&vmm->serial, vm, out_fd) < 0 ||
	    serial_set_out_limit(&vmm->serial, cfg->serial_rl_size, cfg->serial_rl_burst,
				 cfg->serial_rl_refill_ms) < 0 ||
	    i8042_init(vmm->i8042, vm) < 0 || debug_exit_init(vm) < 0 ||
	    (cfg->boot_timer && boot_timer_init(vm) < 0)) {
		log_err("cannot set up legacy devices");
		return EMBER_EXIT_ERROR;
	}
	int r = add_drives(vmm, cfg);
	if (!r)
		r = add_nets(vmm, cfg);
	if (!r)
		r = add_vsock(vmm, cfg);
	if (!r)
		r = add_entropy(vmm, cfg);
	return r ? r : add_balloon(vmm, cfg);
}

/* The VM and its devices, memory anonymous or from a snapshot's file. */
static int build_vm(struct vmm *vmm, int mem_fd)
{
	const struct vmm_config *cfg = &vmm->cfg;
	struct vm_mem_opts o = { .cpu_template = vmm->cpu_tpl_on ? &vmm->cpu_tpl : NULL,
				 .smt = cfg->smt,
				 .huge_pages = cfg->huge_pages_2m,
				 .transparent_huge_pages = cfg->huge_pages_thp,
				 .track_dirty = cfg->track_dirty_pages,
				 .mem_fd = mem_fd };
	int r = vm_create(&vmm->vm, cfg->mem_mib << 20, cfg->vcpus, &o);
	if (r < 0)
		return r == -EINVAL ? EMBER_EXIT_USAGE : EMBER_EXIT_KVM;
	return add_devices(vmm, cfg);
}

int vmm_cpu_template_resolve(struct vmm *vmm, char *err, size_t err_len)
{
	const struct vmm_config *cfg = &vmm->cfg;
	vmm->cpu_tpl_on = false;
	if (cfg->cpu_custom) {
		vmm->cpu_tpl = *cfg->cpu_custom;
		vmm->cpu_tpl_on = true;
		return 0;
	}
	if (cfg->cpu_template == TPL_NONE)
		return 0;
	char why[160];
	if (cpu_template_static(cfg->cpu_template, cpu_host_vendor(), &vmm->cpu_tpl, why,
				sizeof(why)) < 0) {
		snprintf(err, err_len, "Failed to get CPU template: %s (%s is for %s CPUs)", why,
			 cpu_template_name(cfg->cpu_template),
			 cpu_template_vendor(cfg->cpu_template) == CPU_VENDOR_AMD ? "AMD"
										  : "Intel");
		return -1;
	}
	vmm->cpu_tpl_on = true;
	return 0;
}

int vmm_build(struct vmm *vmm)
{
	const struct vmm_config *cfg = &vmm->cfg;
	if (!cfg->kernel_path) {
		log_err("no kernel configured (PUT /boot-source or --kernel)");
		return EMBER_EXIT_USAGE;
	}
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

	int r = build_vm(vmm, -1);
	return r ? r : load_guest(vmm);
}

int vmm_build_restored(struct vmm *vmm, int mem_fd)
{
	return build_vm(vmm, mem_fd);
}

void vmm_shutdown(struct vmm *vmm)
{
	for (unsigned int i = 0; i < vmm->nr_blks; i++)
		if (virtio_blk_flush_backing(&vmm->blks[i]) < 0)
			log_err("drive '%s': final flush failed", vmm->blks[i].id);
	if (vmm->vsock)
		virtio_vsock_shutdown(vmm->vsock);
	if (vmm->api_on)
		api_server_stop(&vmm->api);
}
