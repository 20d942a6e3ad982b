/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CPU templates: what the guest's CPUID and MSRs say, changed bit by bit.
 *
 * A template is a list of modifiers, each a (filter, value) pair over one
 * CPUID register of one leaf/sub-leaf or one MSR: bits set in the filter
 * take the value's bit, the others keep what KVM offers. Firecracker's
 * static templates (T2, T2S, T2CL, T2A, C3) are tables of such modifiers;
 * a custom template (PUT /cpu-config) is the same struct filled from JSON.
 * The template is applied before ember's own CPUID normalisation (APIC ids,
 * topology, hypervisor bit), which wins where they overlap, as in
 * Firecracker. Plain data with fixed-width fields; pure code, unit-tested.
 */
#ifndef EMBER_X86_CPU_TEMPLATE_H
#define EMBER_X86_CPU_TEMPLATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPU_TEMPLATE_MAX_CPUID 256 /* register modifiers */
#define CPU_TEMPLATE_MAX_MSR 64
#define CPU_TEMPLATE_MAX_CAPS 64

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

struct cpuid_modifier {
	uint32_t leaf, subleaf;
	uint32_t flags; /* KVM_CPUID_FLAG_*: replaces the entry's flags */
	uint32_t reg; /* enum cpuid_reg */
	uint32_t filter, value;
};

struct msr_modifier {
	uint32_t addr;
	uint32_t reserved;
	uint64_t filter, value;
};

/* A KVM capability the host must have ("N") or that ember stops requiring ("!N"). */
struct kvm_cap_modifier {
	uint32_t cap;
	uint32_t remove;
};

struct cpu_template {
	uint32_t nr_cpuid, nr_msr, nr_caps;
	struct cpuid_modifier cpuid[CPU_TEMPLATE_MAX_CPUID];
	struct msr_modifier msr[CPU_TEMPLATE_MAX_MSR];
	struct kvm_cap_modifier caps[CPU_TEMPLATE_MAX_CAPS];
};

/* Firecracker's static templates, in the order of its API's enum. */
enum static_template { TPL_NONE, TPL_C3, TPL_T2, TPL_T2S, TPL_T2CL, TPL_T2A, TPL_COUNT };

enum cpu_vendor { CPU_VENDOR_OTHER, CPU_VENDOR_INTEL, CPU_VENDOR_AMD };

/* "None", "C3", "T2", ... */
const char *cpu_template_name(enum static_template t);
/* The template named @name (exact case), or -1. */
int cpu_template_by_name(const char *name);
/* The vendor a static template is written for (CPU_VENDOR_OTHER for None). */
enum cpu_vendor cpu_template_vendor(enum static_template t);
/* The vendor of the CPU we run on (CPUID leaf 0). */
enum cpu_vendor cpu_host_vendor(void);
/* The vendor a KVM CPUID table's leaf 0 names. */
enum cpu_vendor cpu_cpuid_vendor(const struct kvm_cpuid2 *c);

/*
 * Fill @out with static template @t's modifiers. Returns 0, or -ENOTSUP
 * with @err set to Firecracker's words when the template is for the other
 * vendor than @host.
 */
int cpu_template_static(enum static_template t, enum cpu_vendor host, struct cpu_template *out,
			char *err, size_t err_len) __attribute__((warn_unused_result));

/*
 * Parse a bitmap string for a @width-bit register ("0b" then up to @width of
 * 0, 1, x, with any '_' between; missing high bits are x) into @filter and
 * @value. Returns 0, or -EINVAL with @err set (Firecracker's wording).
 */
int cpu_bitmap_parse(const char *s, unsigned int width, uint64_t *filter, uint64_t *value,
		     char *err, size_t err_len) __attribute__((warn_unused_result));
/* The bitmap string for (@filter, @value): "0b" then @width characters;
 * @out must hold @width + 3 bytes. */
void cpu_bitmap_format(uint64_t filter, uint64_t value, unsigned int width, char *out);
/* A "0x..." or "0b..." number (Firecracker's leaf, subleaf and addr). 0 or -EINVAL. */
int cpu_number_parse(const char *s, uint64_t max, uint64_t *out);

/*
 * Apply @t's CPUID modifiers to @c. Returns 0, or -ENOENT with @err set
 * when a modifier names a leaf/sub-leaf @c lacks (Firecracker's error).
 */
int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *c, char *err,
			     size_t err_len) __attribute__((warn_unused_result));

/*
 * Does @host (a vCPU's CPUID here) offer every feature bit of @saved (a
 * snapshot's) and the same vendor? The feature registers compared: leaf 1
 * ECX/EDX, 7.0 EBX/ECX/EDX, 7.1 EAX, 0xd.1 EAX, 0x80000001 ECX/EDX. 0, or
 * -ENOTSUP with @err naming the first missing bit.
 */
int cpu_cpuid_check_subset(const struct kvm_cpuid_entry2 *saved, uint32_t n,
			   const struct kvm_cpuid2 *host, char *err, size_t err_len)
    __attribute__((warn_unused_result));

/* @v with the modifier's filter applied. */
static inline uint64_t cpu_modifier_apply(uint64_t filter, uint64_t value, uint64_t v)
{
	return (v & ~filter) | (value & filter);
}

#endif
