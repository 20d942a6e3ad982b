/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vCPUs: one KVM vCPU fd and one thread each. The thread runs KVM_RUN in a
 * loop and dispatches exits: port I/O and MMIO to the VM's buses, and the
 * stop reasons (shutdown, internal error, system event) to vm_request_stop().
 */
#ifndef EMBER_VCPU_H
#define EMBER_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;

/* Exit counters, by reason; read by metrics from other threads. The first
 * four are Firecracker's exit_io_in .. exit_mmio_write, in that order. */
enum vcpu_exit_kind {
	VCPU_EXIT_IO_IN,
	VCPU_EXIT_IO_OUT,
	VCPU_EXIT_MMIO_READ,
	VCPU_EXIT_MMIO_WRITE,
	VCPU_EXIT_HLT,
	VCPU_EXIT_SHUTDOWN,
	VCPU_EXIT_INTERNAL_ERROR,
	VCPU_EXIT_SYSTEM_EVENT,
	VCPU_EXIT_INTR,
	VCPU_EXIT_OTHER,
	VCPU_EXIT_UNHANDLED_IO, /* port or address no device claims */
	VCPU_EXIT_FAILURE, /* Firecracker's vcpu.failures: exits that stop the VM on an error */
	VCPU_EXIT_KINDS,
};

/* Time spent handling the I/O exits (exit_io_in .. exit_mmio_write), in ns:
 * Firecracker's exit_*_agg. Written by the vCPU thread only. */
struct vcpu_exit_time {
	uint64_t min_ns, max_ns, sum_ns;
};

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	atomic_uint_fast64_t exits[VCPU_EXIT_KINDS];
	struct vcpu_exit_time exit_time[VCPU_EXIT_MMIO_WRITE + 1];
	uint64_t first_run_us; /* clock_us_since_start() of the first KVM_RUN */
	bool started;
};

/*
 * KVM_CREATE_VCPU @id on @vm_fd and map its kvm_run (@run_mmap_size bytes):
 * the part of a vCPU that depends on nothing but its id. 0 or a negative
 * errno (logged); *@fd is -1 when KVM_CREATE_VCPU failed.
 */
int vcpu_open(int vm_fd, unsigned int id, int run_mmap_size, int *fd, struct kvm_run **run)
    __attribute__((warn_unused_result));

/* Make vCPU @id of @vm from what vcpu_open() gave (the vcpu owns them from
 * here) and give it its CPUID, MSRs, FPU and LAPIC set-up; @cpuid is the
 * CPUID table already set on it, or NULL (see cpu_init). */
int vcpu_adopt(struct vm *vm, unsigned int id, int fd, struct kvm_run *run,
	       const struct kvm_cpuid2 *cpuid, struct vcpu *vcpu)
    __attribute__((warn_unused_result));

/* Create vCPU @id and give it its CPUID, MSRs, FPU and LAPIC set-up. */
int vcpu_create(struct vm *vm, unsigned int id, struct vcpu *vcpu)
    __attribute__((warn_unused_result));
/*
 * Start @nr vCPU threads (ids 0..nr-1) ahead of their vCPUs: each names
 * itself and installs its seccomp filter, then waits until vcpu_start() of
 * that id hands it its vCPU, so starting one costs a wake-up instead of a
 * thread creation and a filter. Unused, they wait until the process exits.
 * Call from the VMM thread once its own filter is on (a thread starts under
 * its creator's filter); threads that cannot start are simply not there.
 */
void vcpu_prestart(unsigned int nr);

/* Start the vCPU thread (or wake the one vcpu_prestart made for its id). */
int vcpu_start(struct vcpu *vcpu) __attribute__((warn_unused_result));
/* Make the vCPU leave KVM_RUN soon (signal + immediate_exit). Any thread. */
void vcpu_kick(struct vcpu *vcpu);
/* Install the no-op handler of the kick signal. Once, before vCPUs start. */
int vcpu_signals_init(void);
/* Log the vCPU's registers (for fatal guest exits). vCPU thread only. */
void vcpu_dump_regs(struct vcpu *vcpu);

#endif
