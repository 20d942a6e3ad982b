/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One microVM: the KVM VM fd, guest memory (vm.c is its only owner), the
 * in-kernel irqchip and PIT, the I/O buses and the vCPUs.
 *
 * Threads: the VMM thread (the one that called vm_create) builds the VM,
 * starts the vCPUs and then runs the event loop until a stop is requested.
 * vCPU threads only run the guest and dispatch its exits.
 */
#ifndef EMBER_VM_H
#define EMBER_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "guest_mem.h"

#define VM_MAX_VCPUS 32

struct vcpu;
struct cpu_template;

/* vm_create's steps, timed one by one. */
enum vm_phase {
	VM_PHASE_KVM, /* /dev/kvm open, capability checks, supported CPUID */
	VM_PHASE_CREATE, /* KVM_CREATE_VM and the stop eventfd */
	VM_PHASE_MEMORY, /* mmap of guest memory and its KVM memory slots */
	VM_PHASE_IRQCHIP, /* TSS, identity map, in-kernel irqchip and PIT */
	VM_PHASE_VCPUS, /* KVM_CREATE_VCPU, kvm_run mapping, CPUID and MSRs */
	VM_NR_PHASES
};

/* How much of a VM vm_prewarm() had ready when vm_create() took it. */
enum vm_warm {
	VM_WARM_NONE, /* nothing: built from /dev/kvm up */
	VM_WARM_KVM, /* /dev/kvm and its CPUID (a shaped VM that did not fit) */
	VM_WARM_EMPTY, /* those and an empty KVM VM */
	VM_WARM_SHAPED, /* those, memory slots, irqchip, PIT and vCPU fds */
};

struct vm {
	int kvm_fd;
	int vm_fd;
	struct guest_mem mem;
	struct bus pio_bus;
	struct bus mmio_bus;

	unsigned int nr_vcpus;
	struct vcpu *vcpus;
	struct kvm_cpuid2 *supported_cpuid; /* template; each vCPU patches a copy */
	/* What the vCPUs look like: a CPU template (NULL: none; owned by the
	 * caller of vm_create, outlives the VM) and 1, or 2 threads per core
	 * with SMT. */
	const struct cpu_template *cpu_template;
	unsigned int threads_per_core;
	int run_mmap_size;

	/* Stop requests: the first one wins and its exit status is kept. */
	int stop_efd;
	atomic_int stop_requested;
	int exit_status;

	uint64_t setup_start_us; /* clock_now_us() when vm_create began */
	/* Where vm_create's time went, in ns (restore profiling, logged at
	 * Debug). */
	uint64_t phase_ns[VM_NR_PHASES];
	enum vm_warm prewarmed; /* what of vm_prewarm()'s work it took */
	/* clock_now_ns() when the request that built this VM from a snapshot
	 * arrived (the process start for --restore; 0 for a boot): the boot
	 * vCPU logs its first KVM_RUN relative to it. */
	uint64_t load_start_ns;
	bool track_dirty; /* slots log dirty pages */

	/* Pause: vCPUs park outside KVM_RUN while pause_requested is set. */
	atomic_bool pause_requested;
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	unsigned int parked; /* vCPUs parked now */
	unsigned int exited; /* vCPU threads that have ended */
};

/* How guest memory is backed, and what the vCPUs look like. */
struct vm_mem_opts {
	const struct cpu_template *cpu_template; /* NULL: KVM's CPUID as it is */
	bool smt; /* two threads per core (an even vCPU count) */
	bool huge_pages; /* 2 MiB hugetlbfs pages */
	bool transparent_huge_pages; /* madvise(MADV_HUGEPAGE): THP where the host allows */
	bool track_dirty; /* KVM dirty log on every slot (diff snapshots) */
	int mem_fd; /* -1: anonymous; else a snapshot memory file mapped
			     * MAP_PRIVATE, regions back to back from offset 0 */
};

/*
 * Create the VM with @mem_bytes of RAM (page-aligned, split around the 32-bit
 * MMIO gap) and @nr_vcpus vCPUs (1..VM_MAX_VCPUS), memory backed as @o says;
 * set up the irqchip and PIT. Returns 0 or a negative errno with the cause
 * logged.
 */
int vm_create(struct vm *vm, uint64_t mem_bytes, unsigned int nr_vcpus, const struct vm_mem_opts *o)
    __attribute__((warn_unused_result));

/*
 * Prepare, before anyone asks for a VM, what does not depend on it: the
 * /dev/kvm fd, its supported CPUID and an empty KVM VM. With @mem_bytes
 * (else 0), also the VM's shape: host address space for that much guest
 * memory reserved and registered as KVM memory slots, the irqchip and PIT,
 * and @nr_vcpus vCPU fds (KVM_CREATE_VCPU and kvm_run; their CPUID, MSRs
 * and LAPIC are set when they are taken, from the configuration then).
 *
 * The next vm_create() takes them instead of making its own. A shaped VM is
 * taken only if its memory size is the new VM's and it has no more vCPUs
 * (missing ones are added); otherwise the new VM is built from the /dev/kvm
 * fd up, said at Info, and the unfit VM closes after the new one's vCPUs
 * start (vm_start_vcpus). Unused, they live until the process exits.
 * Returns 0 or a negative errno; on failure only what works is kept (at
 * worst nothing) and vm_create() works as without it. VMM thread only.
 */
int vm_prewarm(uint64_t mem_bytes, unsigned int nr_vcpus) __attribute__((warn_unused_result));

/* Close a pre-warmed VM that vm_create() could not use; no-op without one. */
void vm_prewarm_release(void);

/* Start one thread per vCPU. The boot vCPU's registers must be set first. */
int vm_start_vcpus(struct vm *vm) __attribute__((warn_unused_result));

/*
 * Ask the VM to stop with process exit status @status; @why is logged.
 * Safe from any thread and from several at once: only the first call counts.
 */
void vm_request_stop(struct vm *vm, int status, const char *why);

/*
 * Stop every vCPU outside KVM_RUN and wait until all are parked (or gone);
 * vm_resume() lets them run again. VMM thread only.
 */
int vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);

/* Raise an edge on IOAPIC/PIC input @irq (KVM_IRQ_LINE). Any thread. */
int vm_irq_pulse(struct vm *vm, unsigned int irq);

#endif
