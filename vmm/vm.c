// SPDX-License-Identifier: Apache-2.0
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/mman.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86_64/cpu_template.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/layout.h"
#include "clock.h"
#include "kvm.h"
#include "log.h"
#include "vcpu.h"

/* What vm_prewarm() prepared and the next vm_create() takes. */
static struct {
	int kvm_fd;
	int vm_fd;
	int run_mmap_size;
	struct kvm_cpuid2 *cpuid;
	/* With a shape: the memory layout (host ranges reserved and registered
	 * as slots), then the irqchip and PIT, then vCPUs 0..nr_vcpus-1. */
	struct guest_mem mem;
	unsigned int nr_vcpus;
	int vcpu_fd[VM_MAX_VCPUS];
	struct kvm_run *vcpu_run[VM_MAX_VCPUS];
	struct kvm_cpuid2 *vcpu_cpuid[VM_MAX_VCPUS]; /* set on it; checked when taken */
	/* A shaped VM that did not fit: closed once the new VM runs. */
	int spare_vm_fd;
	struct guest_mem spare_mem;
} warm = { .kvm_fd = -1, .vm_fd = -1, .spare_vm_fd = -1 };

/* KVM memory slot @i for @reg, logging dirty pages when @dirty. */
static int vm_set_slot(int vm_fd, unsigned int i, const struct guest_region *reg, bool dirty)
{
	struct kvm_userspace_memory_region kreg = {
		.slot = i,
		.flags = dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = reg->gpa,
		.memory_size = reg->size,
		.userspace_addr = (uint64_t)(uintptr_t)reg->host,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &kreg) < 0) {
		int r = -errno;
		log_err("KVM_SET_USER_MEMORY_REGION slot %u: %s", i, strerror(-r));
		return r;
	}
	return 0;
}

/*
 * Back guest memory as @o says. With @ready the regions' host ranges
 * are already reserved (anonymous, untouched) and registered as KVM slots by
 * vm_prewarm(): the backing is mapped over them in place (MAP_FIXED), which
 * KVM follows because a slot names host addresses, not pages, and no guest
 * page has been touched yet.
 */
static int vm_map_memory(struct vm *vm, uint64_t mem_bytes, const struct vm_mem_opts *o,
			 const struct guest_mem *ready)
{
	uint64_t file_off = 0;
	int r = guest_mem_layout(&vm->mem, mem_bytes, MMIO_GAP_START, MMIO_GAP_END);
	if (r < 0) {
		log_err("invalid guest memory size %llu bytes", (unsigned long long)mem_bytes);
		return r;
	}
	for (unsigned int i = 0; i < vm->mem.nr_regions; i++) {
		struct guest_region *reg = &vm->mem.regions[i];
		/* Untouched guest pages cost nothing: MAP_NORESERVE and no prefault.
		 * From a snapshot file, MAP_PRIVATE: pages load on first touch,
		 * writes are copy-on-write, clones share the page cache. */
		int flags = MAP_PRIVATE | MAP_NORESERVE | (o->mem_fd < 0 ? MAP_ANONYMOUS : 0);
		if (o->huge_pages)
			flags |= MAP_HUGETLB | MAP_HUGE_2MB;
		bool slots_ready = ready != NULL;
		if (slots_ready) {
			reg->host = ready->regions[i].host;
			flags |= MAP_FIXED;
		}
		/* The reservation already is anonymous 4 KiB memory. */
		bool map = !slots_ready || o->mem_fd >= 0 || o->huge_pages;
		void *host = !map ? reg->host
				  : mmap(reg->host, reg->size, PROT_READ | PROT_WRITE, flags,
					 o->mem_fd, o->mem_fd < 0 ? 0 : (off_t)file_off);
		file_off += reg->size;
		if (host == MAP_FAILED) {
			r = -errno;
			log_err("cannot map %llu MiB of guest memory: %s",
				(unsigned long long)(reg->size >> 20), strerror(-r));
			return r;
		}
		reg->host = host;
		if (o->transparent_huge_pages && madvise(host, reg->size, MADV_HUGEPAGE) < 0) {
			r = -errno;
			log_err("transparent huge pages for guest memory: madvise: %s",
				strerror(-r));
			return r;
		}
		if (o->track_dirty &&
		    !(reg->dirty = calloc((reg->size / 4096 + 63) / 64, sizeof(uint64_t))))
			return -ENOMEM;
		/* A ready slot only changes its flags (KVM allows that in place). */
		if ((!slots_ready || o->track_dirty) &&
		    (r = vm_set_slot(vm->vm_fd, i, reg, o->track_dirty)) < 0)
			return r;
	}
	return 0;
}

static int vm_create_irqchip(int vm_fd)
{
	/* Both addresses must be set before the first vCPU exists. */
	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
		log_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -errno;
	}
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	if (kvm_check_cap(vm_fd, KVM_CAP_SET_IDENTITY_MAP_ADDR) &&
	    ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		log_err("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	/* The dummy speaker keeps port 0x61 in the kernel with the PIT. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_err("KVM_CREATE_PIT2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* /dev/kvm, the kvm_run size and the supported CPUID: nothing here depends
 * on the VM that will run. */
static int vm_open_kvm(struct vm *vm, const struct cpu_template *tpl)
{
	vm->kvm_fd = tpl ? kvm_open(tpl->caps, tpl->nr_caps) : kvm_open(NULL, 0);
	if (vm->kvm_fd < 0)
		return vm->kvm_fd;
	vm->run_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_mmap_size < (int)sizeof(struct kvm_run)) {
		log_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EINVAL;
	}
	vm->supported_cpuid = kvm_get_supported_cpuid(vm->kvm_fd);
	if (!vm->supported_cpuid) {
		log_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* Reserve host address space for @mem's regions, 2 MiB aligned so 2 MiB
 * pages can be mapped over it later: anonymous, untouched, no RSS. */
static int vm_reserve_memory(struct guest_mem *mem)
{
	const uint64_t align = 2ull << 20;
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		struct guest_region *reg = &mem->regions[i];
		uint8_t *p = mmap(NULL, reg->size + align, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		uint8_t *start = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
		if (start > p)
			munmap(p, (size_t)(start - p));
		munmap(start + reg->size, (size_t)(p + align - start));
		reg->host = start;
	}
	return 0;
}

static void vm_release_memory(struct guest_mem *mem)
{
	for (unsigned int i = 0; i < mem->nr_regions; i++)
		if (mem->regions[i].host)
			munmap(mem->regions[i].host, mem->regions[i].size);
	memset(mem, 0, sizeof(*mem));
}

/* The shaped part of vm_prewarm(), in vm_create's order: memory slots,
 * irqchip and PIT, vCPUs. */
static int vm_prewarm_shape(uint64_t mem_bytes, unsigned int nr_vcpus)
{
	int r = guest_mem_layout(&warm.mem, mem_bytes, MMIO_GAP_START, MMIO_GAP_END);
	if (r == 0)
		r = vm_reserve_memory(&warm.mem);
	for (unsigned int i = 0; r == 0 && i < warm.mem.nr_regions; i++)
		r = vm_set_slot(warm.vm_fd, i, &warm.mem.regions[i], false);
	if (r == 0)
		r = vm_create_irqchip(warm.vm_fd);
	for (unsigned int i = 0; r == 0 && i < nr_vcpus; i++) {
		r = vcpu_open(warm.vm_fd, i, warm.run_mmap_size, &warm.vcpu_fd[i],
			      &warm.vcpu_run[i]);
		if (warm.vcpu_fd[i] >= 0 && !warm.vcpu_run[i])
			close(warm.vcpu_fd[i]);
		if (r < 0)
			break;
		warm.nr_vcpus = i + 1;
		/* The CPUID this vCPU would get in a VM of this shape; the load
		 * compares and sets another if the snapshot's VM wants another. */
		struct kvm_cpuid2 *c = cpu_cpuid(warm.cpuid, NULL, i, nr_vcpus, 1);
		if (c && ioctl(warm.vcpu_fd[i], KVM_SET_CPUID2, c) == 0)
			warm.vcpu_cpuid[i] = c;
		else
			free(c);
	}
	return r;
}

/* Drop every vCPU of the warm VM (their fds hold the VM). */
static void vm_drop_warm_vcpus(void)
{
	for (unsigned int i = 0; i < warm.nr_vcpus; i++) {
		munmap(warm.vcpu_run[i], (size_t)warm.run_mmap_size);
		close(warm.vcpu_fd[i]);
		free(warm.vcpu_cpuid[i]);
		warm.vcpu_cpuid[i] = NULL;
	}
	warm.nr_vcpus = 0;
}

int vm_prewarm(uint64_t mem_bytes, unsigned int nr_vcpus)
{
	struct vm tmp = { .kvm_fd = -1, .vm_fd = -1 };
	if (warm.vm_fd >= 0)
		return 0;
	if (nr_vcpus > VM_MAX_VCPUS)
		return -EINVAL;
	int r = vm_open_kvm(&tmp, NULL);
	if (r == 0) {
		tmp.vm_fd = ioctl(tmp.kvm_fd, KVM_CREATE_VM, 0);
		r = tmp.vm_fd < 0 ? -errno : 0;
	}
	if (r < 0) {
		/* vm_create() will try again and say what failed. */
		if (tmp.vm_fd >= 0)
			close(tmp.vm_fd);
		if (tmp.kvm_fd >= 0)
			close(tmp.kvm_fd);
		free(tmp.supported_cpuid);
		return r;
	}
	warm.kvm_fd = tmp.kvm_fd;
	warm.vm_fd = tmp.vm_fd;
	warm.run_mmap_size = tmp.run_mmap_size;
	warm.cpuid = tmp.supported_cpuid;
	if (mem_bytes && (r = vm_prewarm_shape(mem_bytes, nr_vcpus)) < 0) {
		/* Keep /dev/kvm and the CPUID; the half-built VM goes. */
		vm_drop_warm_vcpus();
		close(warm.vm_fd);
		warm.vm_fd = -1;
		vm_release_memory(&warm.mem);
		return r;
	}
	return 0;
}

void vm_prewarm_release(void)
{
	if (warm.spare_vm_fd < 0)
		return;
	close(warm.spare_vm_fd);
	warm.spare_vm_fd = -1;
	vm_release_memory(&warm.spare_mem);
}

/* Charge the time since @t0 to @phase; returns now for the next phase. */
static uint64_t phase_end(struct vm *vm, enum vm_phase phase, uint64_t t0)
{
	uint64_t now = clock_now_ns();
	vm->phase_ns[phase] = now - t0;
	return now;
}

int vm_create(struct vm *vm, uint64_t mem_bytes, unsigned int nr_vcpus, const struct vm_mem_opts *o)
{
	int r;
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = -1;
	vm->setup_start_us = clock_now_us();
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);

	if (nr_vcpus < 1 || nr_vcpus > VM_MAX_VCPUS)
		return -EINVAL;
	vm->nr_vcpus = nr_vcpus;
	vm->cpu_template = o->cpu_template;
	vm->threads_per_core = o->smt && nr_vcpus % 2 == 0 ? 2 : 1;

	uint64_t t = clock_now_ns();
	/* A shaped warm VM fits when its memory is this VM's and it has no
	 * more vCPUs than this one (the missing ones are added below). */
	bool fits = warm.vm_fd >= 0 && warm.mem.size == mem_bytes && warm.nr_vcpus <= nr_vcpus;
	/* The pre-warmed fd was opened without the template: check what it
	 * adds before taking anything, so a refusal leaves it for the next. */
	if (warm.kvm_fd >= 0 && o->cpu_template &&
	    kvm_check_template_caps(warm.kvm_fd, o->cpu_template->caps, o->cpu_template->nr_caps) <
		0)
		return -ENOTSUP;
	struct guest_mem ready = warm.mem;
	unsigned int nr_ready = warm.nr_vcpus;
	if (warm.vm_fd >= 0 && warm.mem.nr_regions && !fits) {
		/* Closing a VM with an irqchip takes milliseconds: that waits
		 * until the new VM runs (vm_prewarm_release). */
		log_info("the pre-warmed VM (%u vCPUs, %llu MiB) does not fit this one (%u vCPUs, "
			 "%llu MiB): building a new one",
			 warm.nr_vcpus, (unsigned long long)(warm.mem.size >> 20), nr_vcpus,
			 (unsigned long long)(mem_bytes >> 20));
		vm_drop_warm_vcpus();
		warm.spare_vm_fd = warm.vm_fd;
		warm.spare_mem = warm.mem;
		warm.vm_fd = -1;
	}
	if (warm.kvm_fd >= 0) {
		/* Prepared while the API waited: take it, once. */
		vm->kvm_fd = warm.kvm_fd;
		vm->vm_fd = warm.vm_fd;
		vm->run_mmap_size = warm.run_mmap_size;
		vm->supported_cpuid = warm.cpuid;
		vm->prewarmed = warm.vm_fd >= 0
		    ? (ready.nr_regions ? VM_WARM_SHAPED : VM_WARM_EMPTY)
		    : VM_WARM_KVM;
		warm.kvm_fd = warm.vm_fd = -1;
		warm.cpuid = NULL;
		memset(&warm.mem, 0, sizeof(warm.mem));
		warm.nr_vcpus = 0;
	} else {
		r = vm_open_kvm(vm, o->cpu_template);
		if (r < 0)
			return r;
	}
	if (vm->prewarmed != VM_WARM_SHAPED)
		nr_ready = 0;
	int max_vcpus = kvm_check_cap(vm->kvm_fd, KVM_CAP_MAX_VCPUS);
	if (max_vcpus > 0 && nr_vcpus > (unsigned int)max_vcpus) {
		log_err("KVM allows at most %d vCPUs, %u asked", max_vcpus, nr_vcpus);
		return -EINVAL;
	}
	t = phase_end(vm, VM_PHASE_KVM, t);

	if (vm->vm_fd < 0)
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		log_err("KVM_CREATE_VM: %s", strerror(errno));
		return -errno;
	}
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0)
		return -errno;

	t = phase_end(vm, VM_PHASE_CREATE, t);
	/* Memory before the irqchip: the API allows either order, but adding a
	 * slot after KVM_CREATE_IRQCHIP/KVM_SET_TSS_ADDR costs 7-10 ms more on
	 * this project's nested hypervisor (and 0.9 ms per GiB of slot with
	 * its shadow-MMU rmaps), so vm_prewarm() registers slots first too. */
	vm->track_dirty = o->track_dirty;
	r = vm_map_memory(vm, mem_bytes, o, vm->prewarmed == VM_WARM_SHAPED ? &ready : NULL);
	if (r < 0)
		return r;
	t = phase_end(vm, VM_PHASE_MEMORY, t);
	if (vm->prewarmed != VM_WARM_SHAPED && (r = vm_create_irqchip(vm->vm_fd)) < 0)
		return r;
	t = phase_end(vm, VM_PHASE_IRQCHIP, t);

	vm->vcpus = calloc(nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (unsigned int i = 0; i < nr_vcpus; i++) {
		r = i < nr_ready ? vcpu_adopt(vm, i, warm.vcpu_fd[i], warm.vcpu_run[i],
					      warm.vcpu_cpuid[i], &vm->vcpus[i])
				 : vcpu_create(vm, i, &vm->vcpus[i]);
		if (i < nr_ready) {
			free(warm.vcpu_cpuid[i]);
			warm.vcpu_cpuid[i] = NULL;
		}
		if (r < 0)
			return r;
	}
	phase_end(vm, VM_PHASE_VCPUS, t);
	return 0;
}

int vm_start_vcpus(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		int r = vcpu_start(&vm->vcpus[i]);
		if (r < 0)
			return r;
	}
	/* The guest runs: now an unfit pre-warmed VM may take its time to go. */
	vm_prewarm_release();
	return 0;
}

void vm_request_stop(struct vm *vm, int status, const char *why)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&vm->stop_requested, &expected, 1))
		return;
	vm->exit_status = status;
	log_info("VM stopping (%s), exit status %d, %llu us after start", why, status,
		 (unsigned long long)clock_us_since_start());
	uint64_t one = 1;
	ssize_t w = write(vm->stop_efd, &one, sizeof(one));
	(void)w;
}

int vm_pause(struct vm *vm)
{
	atomic_store(&vm->pause_requested, true);
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->parked + vm->exited < vm->nr_vcpus) {
		pthread_mutex_unlock(&vm->pause_lock);
		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(&vm->vcpus[i]);
		pthread_mutex_lock(&vm->pause_lock);
		/* Re-kick now and then: a vCPU may have been between its check
		 * and KVM_RUN when the first kick came. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	return 0;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

int vm_irq_pulse(struct vm *vm, unsigned int irq)
{
	struct kvm_irq_level lvl = { .irq = irq, .level = 1 };
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &lvl) < 0)
		return -errno;
	lvl.level = 0;
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &lvl) < 0)
		return -errno;
	return 0;
}
