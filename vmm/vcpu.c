// SPDX-License-Identifier: Apache-2.0
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86_64/cpu.h"
#include "clock.h"
#include "exit_codes.h"
#include "log.h"
#include "seccomp/seccomp.h"
#include "util.h"
#include "vm.h"

int vcpu_open(int vm_fd, unsigned int id, int run_mmap_size, int *fd, struct kvm_run **run)
{
	*fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (*fd < 0) {
		int r = -errno;
		log_err("KVM_CREATE_VCPU %u: %s", id, strerror(-r));
		return r;
	}
	*run = mmap(NULL, (size_t)run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (*run == MAP_FAILED) {
		int r = -errno;
		log_err("mmap of kvm_run for vCPU %u: %s", id, strerror(-r));
		*run = NULL;
		return r;
	}
	return 0;
}

int vcpu_adopt(struct vm *vm, unsigned int id, int fd, struct kvm_run *run,
	       const struct kvm_cpuid2 *cpuid, struct vcpu *vcpu)
{
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = fd;
	vcpu->run = run;
	return cpu_init(vm, vcpu, cpuid);
}

int vcpu_create(struct vm *vm, unsigned int id, struct vcpu *vcpu)
{
	int fd;
	struct kvm_run *run;
	vcpu->fd = -1;
	int r = vcpu_open(vm->vm_fd, id, vm->run_mmap_size, &fd, &run);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return vcpu_adopt(vm, id, fd, run, NULL, vcpu);
}

static void vcpu_exit_timed(struct vcpu *vcpu, enum vcpu_exit_kind k, uint64_t t0)
{
	struct vcpu_exit_time *t = &vcpu->exit_time[k];
	uint64_t ns = clock_now_ns() - t0;
	vcpu->exits[k]++;
	t->sum_ns += ns;
	if (!t->min_ns || ns < t->min_ns)
		t->min_ns = ns;
	if (ns > t->max_ns)
		t->max_ns = ns;
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint64_t t0 = clock_now_ns();
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	/* String I/O (rep outsb) arrives as count back-to-back accesses. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		int r = run->io.direction == KVM_EXIT_IO_OUT
		    ? bus_write(&vcpu->vm->pio_bus, run->io.port, data, run->io.size)
		    : bus_read(&vcpu->vm->pio_bus, run->io.port, data, run->io.size);
		if (r < 0)
			vcpu->exits[VCPU_EXIT_UNHANDLED_IO]++;
	}
	vcpu_exit_timed(
	    vcpu, run->io.direction == KVM_EXIT_IO_OUT ? VCPU_EXIT_IO_OUT : VCPU_EXIT_IO_IN, t0);
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;
	uint64_t t0 = clock_now_ns();
	enum vcpu_exit_kind k = run->mmio.is_write ? VCPU_EXIT_MMIO_WRITE : VCPU_EXIT_MMIO_READ;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		vcpu->exits[VCPU_EXIT_UNHANDLED_IO]++;
		vcpu_exit_timed(vcpu, k, t0);
		return;
	}
	int r = run->mmio.is_write
	    ? bus_write(&vcpu->vm->mmio_bus, run->mmio.phys_addr, run->mmio.data, len)
	    : bus_read(&vcpu->vm->mmio_bus, run->mmio.phys_addr, run->mmio.data, len);
	if (r < 0)
		vcpu->exits[VCPU_EXIT_UNHANDLED_IO]++;
	vcpu_exit_timed(vcpu, k, t0);
}

static void vcpu_handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vcpu->vm, EMBER_EXIT_OK, "guest shut down");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(vcpu->vm, EMBER_EXIT_OK, "guest reset");
		break;
	default:
		vcpu->exits[VCPU_EXIT_FAILURE]++;
		vcpu_dump_regs(vcpu);
		vm_request_stop(vcpu->vm, EMBER_EXIT_GUEST_CRASH, "guest crash event");
		break;
	}
}

/* Returns 0 to keep running, 1 when this vCPU is done. */
static int vcpu_dispatch(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return 0;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu);
		return 0;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; treat as Firecracker does: stop. */
		vcpu->exits[VCPU_EXIT_HLT]++;
		vm_request_stop(vcpu->vm, EMBER_EXIT_OK, "guest halted");
		return 1;
	case KVM_EXIT_SHUTDOWN:
		vcpu->exits[VCPU_EXIT_SHUTDOWN]++;
		vcpu->exits[VCPU_EXIT_FAILURE]++;
		log_err("vCPU %u: triple fault (KVM_EXIT_SHUTDOWN)", vcpu->id);
		vcpu_dump_regs(vcpu);
		vm_request_stop(vcpu->vm, EMBER_EXIT_TRIPLE_FAULT, "guest triple fault");
		return 1;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu->exits[VCPU_EXIT_INTERNAL_ERROR]++;
		vcpu->exits[VCPU_EXIT_FAILURE]++;
		log_err("vCPU %u: KVM internal error, suberror %u", vcpu->id,
			run->internal.suberror);
		vcpu_dump_regs(vcpu);
		vm_request_stop(vcpu->vm, EMBER_EXIT_EMULATION, "KVM could not emulate the guest");
		return 1;
	case KVM_EXIT_FAIL_ENTRY:
		vcpu->exits[VCPU_EXIT_OTHER]++;
		vcpu->exits[VCPU_EXIT_FAILURE]++;
		log_err("vCPU %u: entry failed, hardware reason 0x%llx", vcpu->id,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_dump_regs(vcpu);
		vm_request_stop(vcpu->vm, EMBER_EXIT_ENTRY_FAILED, "KVM could not enter the guest");
		return 1;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu->exits[VCPU_EXIT_SYSTEM_EVENT]++;
		vcpu_handle_system_event(vcpu);
		return 1;
	case KVM_EXIT_INTR:
		vcpu->exits[VCPU_EXIT_INTR]++;
		return 0;
	default:
		vcpu->exits[VCPU_EXIT_OTHER]++;
		vcpu->exits[VCPU_EXIT_FAILURE]++;
		log_err("vCPU %u: unexpected exit reason %u", vcpu->id, run->exit_reason);
		vcpu_dump_regs(vcpu);
		vm_request_stop(vcpu->vm, EMBER_EXIT_ERROR, "unexpected KVM exit");
		return 1;
	}
}

#define VCPU_KICK_SIGNAL SIGUSR1

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* only here to make KVM_RUN return EINTR */
}

int vcpu_signals_init(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };
	sigemptyset(&sa.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

/* Park while the VM is paused. */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	/* An I/O or MMIO exit is only complete after the next KVM_RUN (which
	 * copies in a read's data and moves RIP on): run once with
	 * immediate_exit so a snapshot taken while parked sees whole state. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(vcpu->fd, KVM_RUN, 0) == 0)
		log_warn("vCPU %u: KVM_RUN with immediate_exit entered the guest", vcpu->id);
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_requested))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

static void vcpu_exited(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	pthread_mutex_lock(&vm->pause_lock);
	vm->exited++;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

/* A vCPU thread's start: its name, then its filter. 0 or a negative errno. */
static int vcpu_thread_init(unsigned int id)
{
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", id);
	log_set_thread_name(name);
	pthread_setname_np(pthread_self(), name);
	return seccomp_apply(SECCOMP_VCPU);
}

/* vCPU threads started before their vCPU exists (vcpu_prestart): each waits,
 * named and under its filter, until vcpu_start() hands it its vCPU. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int nr;
	pthread_t thread[VM_MAX_VCPUS];
	struct vcpu *given[VM_MAX_VCPUS];
} waiting = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *vcpu_run_thread(struct vcpu *vcpu, int init);

static void *vcpu_waiting_thread(void *arg)
{
	unsigned int id = (unsigned int)(uintptr_t)arg;
	int init = vcpu_thread_init(id);
	pthread_mutex_lock(&waiting.lock);
	while (!waiting.given[id])
		pthread_cond_wait(&waiting.cond, &waiting.lock);
	struct vcpu *vcpu = waiting.given[id];
	pthread_mutex_unlock(&waiting.lock);
	return vcpu_run_thread(vcpu, init);
}

void vcpu_prestart(unsigned int nr)
{
	pthread_mutex_lock(&waiting.lock);
	while (waiting.nr < nr && waiting.nr < VM_MAX_VCPUS &&
	       thread_start(&waiting.thread[waiting.nr], vcpu_waiting_thread,
			    (void *)(uintptr_t)waiting.nr) == 0)
		waiting.nr++;
	pthread_mutex_unlock(&waiting.lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	return vcpu_run_thread(vcpu, vcpu_thread_init(vcpu->id));
}

/* The vCPU's run loop, on its own thread; @init is vcpu_thread_init's result. */
static void *vcpu_run_thread(struct vcpu *vcpu, int init)
{
	if (init < 0) {
		vm_request_stop(vcpu->vm, EMBER_EXIT_ERROR, "seccomp filter");
		vcpu_exited(vcpu);
		return NULL;
	}

	for (;;) {
		if (atomic_load(&vcpu->vm->pause_requested))
			vcpu_park(vcpu);
		/* Cleared before the run: a kick after this makes KVM_RUN return at once. */
		__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		if (atomic_load(&vcpu->vm->pause_requested))
			continue;
		if (!vcpu->first_run_us) {
			vcpu->first_run_us = clock_us_since_start();
			if (vcpu->id == 0)
				log_info("first KVM_RUN %llu us after process start",
					 (unsigned long long)vcpu->first_run_us);
			if (vcpu->id == 0 && vcpu->vm->load_start_ns)
				log_debug(
				    "first KVM_RUN %llu us after the snapshot load was asked for",
				    (unsigned long long)((clock_now_ns() -
							  vcpu->vm->load_start_ns) /
							 1000));
		}
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vcpu->exits[VCPU_EXIT_INTR]++;
				continue;
			}
			vcpu->exits[VCPU_EXIT_FAILURE]++;
			log_err("vCPU %u: KVM_RUN: %s", vcpu->id, strerror(errno));
			vm_request_stop(vcpu->vm, EMBER_EXIT_ERROR, "KVM_RUN failed");
			break;
		}
		/* A device may have asked the VM to stop (reset, debug exit):
		 * then this vCPU must not enter the guest again. */
		if (vcpu_dispatch(vcpu) || atomic_load(&vcpu->vm->stop_requested))
			break;
	}
	vcpu_exited(vcpu);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	/* vCPU threads take no signals meant for the process (SIGTERM etc. are
	 * blocked in the VMM thread before this and the mask is inherited). */
	pthread_mutex_lock(&waiting.lock);
	bool handed = vcpu->id < waiting.nr && !waiting.given[vcpu->id];
	if (handed) {
		/* Its thread already waits: wake it instead of starting one. */
		vcpu->thread = waiting.thread[vcpu->id];
		waiting.given[vcpu->id] = vcpu;
		pthread_cond_broadcast(&waiting.cond);
	}
	pthread_mutex_unlock(&waiting.lock);
	if (handed) {
		vcpu->started = true;
		return 0;
	}
	int r = thread_start(&vcpu->thread, vcpu_thread, vcpu);
	if (!r)
		vcpu->started = true;
	if (r) {
		log_err("cannot start vCPU %u thread: %s", vcpu->id, strerror(r));
		return -r;
	}
	return 0;
}

void vcpu_dump_regs(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		log_err("vCPU %u: cannot read registers: %s", vcpu->id, strerror(errno));
		return;
	}
	log_err(
	    "vCPU %u registers:\n"
	    "  rip=%016llx rsp=%016llx rflags=%016llx\n"
	    "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
	    "  rsi=%016llx rdi=%016llx rbp=%016llx\n"
	    "  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n"
	    "  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n"
	    "  cs=%04x ss=%04x ds=%04x cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%llx\n"
	    "  gdt=%016llx/%x idt=%016llx/%x",
	    vcpu->id, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8,
	    r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector, s.ss.selector,
	    s.ds.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.gdt.base, s.gdt.limit, s.idt.base,
	    s.idt.limit);
}
