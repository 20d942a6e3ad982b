/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x86_64 vCPU state at power-on: CPUID, MSRs, FPU, LAPIC, and the register
 * state each boot protocol hands to the first vCPU.
 */
#ifndef EMBER_X86_CPU_H
#define EMBER_X86_CPU_H

#include <linux/kvm.h>
#include <stdint.h>

#include "guest_mem.h"

struct vm;
struct vcpu;
struct cpu_template;

/*
 * CPUID, MSRs, FPU and LAPIC LINT set-up for a new vCPU. @preset: the CPUID
 * table the vCPU already has (set by a pre-warm), or NULL; when it is the
 * table this VM wants, KVM_SET_CPUID2 is skipped.
 */
int cpu_init(struct vm *vm, struct vcpu *vcpu, const struct kvm_cpuid2 *preset)
    __attribute__((warn_unused_result));

/* The CPUID table for vCPU @id of @nr, from KVM's supported @tmpl with
 * the CPU template @tpl (or NULL) and @threads_per_core applied
 * (malloc'd; NULL with errno ENOMEM, or ENOENT when @tpl does not apply). */
struct kvm_cpuid2 *cpu_cpuid(const struct kvm_cpuid2 *tmpl, const struct cpu_template *tpl,
			     unsigned int id, unsigned int nr, unsigned int threads_per_core);

/* Entries cpuid_filter() may add to a copy of KVM_GET_SUPPORTED_CPUID. */
#define CPUID_EXTRA_ENTRIES 6
/*
 * Rewrite @cpuid (a copy of KVM_GET_SUPPORTED_CPUID with room for
 * @capacity entries) for vCPU @id of @nr_vcpus: APIC ids and topology
 * (@threads per core, 1 or 2 with SMT, one socket; topology sub-leaves KVM
 * left out are added), hypervisor bit, and no thermal, power or PMU leaves.
 * Pure; unit-tested.
 */
void cpuid_filter(struct kvm_cpuid2 *cpuid, unsigned int capacity, unsigned int id,
		  unsigned int nr_vcpus, unsigned int threads);

/* PVH entry: 32-bit protected mode, paging off, %ebx = @start_info. */
int cpu_set_boot_pvh(struct vcpu *vcpu, const struct guest_mem *mem, uint64_t entry,
		     uint64_t start_info) __attribute__((warn_unused_result));
/*
 * Linux 64-bit boot protocol: long mode with identity-mapped low 4 GiB,
 * __BOOT_CS/__BOOT_DS flat segments, %rsi = @zero_page.
 */
int cpu_set_boot_long(struct vcpu *vcpu, const struct guest_mem *mem, uint64_t entry,
		      uint64_t zero_page) __attribute__((warn_unused_result));

#endif
