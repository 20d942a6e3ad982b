// SPDX-License-Identifier: Apache-2.0
/* CPUID as a microVM's guest should see it. */
#include <stdbool.h>
#include <string.h>

#include "cpu.h"
#include "cpu_template.h"

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_TOPO_TYPE_SMT 1u
#define CPUID_TOPO_TYPE_CORE 2u
#define CPUID_TOPO_SUBLEAVES 3u /* SMT, core, and the terminating level */

static unsigned int order_base_2(unsigned int n)
{
	unsigned int bits = 0;
	while ((1u << bits) < n)
		bits++;
	return bits;
}

static void cpuid_set_topology(struct kvm_cpuid_entry2 *e, unsigned int id, unsigned int nr,
			       unsigned int threads)
{
	/* Leaf 0xb/0x1f: level 0 = SMT (@threads per core), level 1 = core. */
	switch (e->index) {
	case 0:
		e->eax = order_base_2(threads);
		e->ebx = threads;
		e->ecx = (CPUID_TOPO_TYPE_SMT << 8) | 0;
		break;
	case 1:
		e->eax = order_base_2(nr);
		e->ebx = nr;
		e->ecx = (CPUID_TOPO_TYPE_CORE << 8) | 1;
		break;
	default:
		e->eax = e->ebx = 0;
		e->ecx = e->index;
		break;
	}
	e->edx = id;
}

/*
 * KVM_GET_SUPPORTED_CPUID may list a topology leaf with fewer sub-leaves than
 * ember describes (some hosts give only sub-leaf 0 of 0xb, whose level type
 * is "invalid"): a guest would then stop at level 0 and put every vCPU in a
 * package of its own. Add sub-leaves 0-2 (SMT, core, terminator) where the
 * leaf exists but they do not. Returns the new entry count (<= @capacity).
 */
static unsigned int cpuid_add_topology_subleaves(struct kvm_cpuid2 *cpuid, unsigned int capacity)
{
	static const uint32_t leaves[] = { 0xb, 0x1f };
	unsigned int n = cpuid->nent;

	for (unsigned int l = 0; l < sizeof(leaves) / sizeof(leaves[0]); l++) {
		bool present = false, have[CPUID_TOPO_SUBLEAVES] = { false };
		for (unsigned int i = 0; i < n; i++) {
			const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
			if (e->function != leaves[l])
				continue;
			present = true;
			if (e->index < CPUID_TOPO_SUBLEAVES)
				have[e->index] = true;
		}
		for (uint32_t idx = 0; present && idx < CPUID_TOPO_SUBLEAVES && n < capacity;
		     idx++) {
			if (have[idx])
				continue;
			cpuid->entries[n++] = (struct kvm_cpuid_entry2){
				.function = leaves[l],
				.index = idx,
				.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
			};
		}
	}
	return n;
}

/* Leaf 4 EAX[7:5]: the cache level; L1 and L2 are per core, L3 per package. */
static uint32_t cache_sharing(uint32_t eax, unsigned int nr, unsigned int threads)
{
	unsigned int level = (eax >> 5) & 7, sharing = level >= 3 ? nr : threads;
	return (eax & ~(0xfffu << 14)) | (((sharing - 1) & 0xfffu) << 14);
}

void cpuid_filter(struct kvm_cpuid2 *cpuid, unsigned int capacity, unsigned int id, unsigned int nr,
		  unsigned int threads)
{
	if (threads < 1 || nr % threads)
		threads = 1;
	cpuid->nent = cpuid_add_topology_subleaves(cpuid, capacity);
	for (unsigned int i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		switch (e->function) {
		case 0x1:
			/* EBX: initial APIC id [31:24], logical CPUs [23:16]. */
			e->ebx = (e->ebx & 0xffffu) | (id << 24) | ((nr & 0xffu) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (nr > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 0x4:
			/* EAX[31:26]: cores per package - 1; [25:14]: sharing threads - 1. */
			if (e->eax & 0x1f) /* a cache, not the terminating null entry */
				e->eax = cache_sharing(e->eax, nr, threads);
			e->eax = (e->eax & 0x3ffffffu) | (((nr / threads - 1) & 0x3fu) << 26);
			break;
		case 0x6: /* thermal and power management: none */
		case 0xa: /* architectural PMU: none */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case 0xb:
		case 0x1f:
			cpuid_set_topology(e, id, nr, threads);
			break;
		case 0x80000008:
			/* AMD: ECX[7:0] threads in the package - 1, [15:12] APIC id bits. */
			if (cpu_cpuid_vendor(cpuid) == CPU_VENDOR_AMD)
				e->ecx = (e->ecx & ~0xf0ffu) | ((nr - 1) & 0xffu) |
				    (order_base_2(nr) << 12);
			break;
		case 0x8000001e:
			if (cpu_cpuid_vendor(cpuid) != CPU_VENDOR_AMD)
				break;
			/* AMD: EAX extended APIC id; EBX[15:8] threads per core - 1,
			 * [7:0] core id; ECX node 0, one node per package. */
			e->eax = id;
			e->ebx = (e->ebx & ~0xffffu) | ((threads - 1) << 8) | (id / threads);
			e->ecx = 0;
			break;
		default:
			break;
		}
	}
}
