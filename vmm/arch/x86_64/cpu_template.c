// SPDX-License-Identifier: Apache-2.0
/* CPU templates: Firecracker's static ones as tables, and applying any template. */
#include "cpu_template.h"

#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * The static templates' modifiers, bit for bit Firecracker's (its
 * static_cpu_templates/ and the equivalent custom templates in its tests'
 * data agree). T2 and C3 are close to AWS's T2 and C3 instances; T2S also
 * sets IA32_ARCH_CAPABILITIES (MSR 0x10a) for Skylake/Cascade Lake snapshot
 * migration; T2CL is Cascade Lake's, T2A Milan's with T2CL's feature set.
 * Leaves: 0x1 (family/model, features), 0x7.0 (extended features), 0xd.0
 * and 0xd.1 (XSAVE components and instructions), 0x80000001 and 0x80000008.
 */
static const struct cpuid_modifier t2_cpuid[] = {
	{ 0x1, 0x0, 0, CPUID_EAX, 0x0fff3fff, 0x000306f2 },
	{ 0x1, 0x0, 0, CPUID_ECX, 0x0004cdfc, 0x00000000 },
	{ 0x1, 0x0, 0, CPUID_EDX, 0xe8641080, 0x00001080 },
	{ 0x7, 0x0, 1, CPUID_EBX, 0xffefda14, 0x00000200 },
	{ 0x7, 0x0, 1, CPUID_ECX, 0x40415f5e, 0x00000000 },
	{ 0x7, 0x0, 1, CPUID_EDX, 0x0000011c, 0x00000000 },
	{ 0xd, 0x0, 1, CPUID_EAX, 0x000002f8, 0x00000000 },
	{ 0xd, 0x1, 1, CPUID_EAX, 0x0000000e, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_ECX, 0x20000100, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_EDX, 0x04000000, 0x00000000 },
	{ 0x80000008, 0x0, 0, CPUID_EBX, 0x00000200, 0x00000000 },
};
static const struct cpuid_modifier t2s_cpuid[] = {
	{ 0x1, 0x0, 0, CPUID_EAX, 0x0fff3fff, 0x000306f2 },
	{ 0x1, 0x0, 0, CPUID_ECX, 0x0004cdfc, 0x00000000 },
	{ 0x1, 0x0, 0, CPUID_EDX, 0xe8641080, 0x00001080 },
	{ 0x7, 0x0, 1, CPUID_EBX, 0xffefda14, 0x00000200 },
	{ 0x7, 0x0, 1, CPUID_ECX, 0x40415f5e, 0x00000000 },
	{ 0x7, 0x0, 1, CPUID_EDX, 0x0000011c, 0x00000000 },
	{ 0xd, 0x0, 1, CPUID_EAX, 0x000002f8, 0x00000000 },
	{ 0xd, 0x1, 1, CPUID_EAX, 0x0000000e, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_ECX, 0x20000100, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_EDX, 0x04000000, 0x00000000 },
	{ 0x80000008, 0x0, 0, CPUID_EBX, 0x00000200, 0x00000000 },
};
static const struct msr_modifier t2s_msr[] = {
	{ 0x10a, 0, 0xffffffffffffffffull, 0x000000000c0a0c4cull },
};
static const struct cpuid_modifier t2cl_cpuid[] = {
	{ 0x1, 0x0, 0, CPUID_EAX, 0x0fff3fff, 0x000306f2 },
	{ 0x1, 0x0, 0, CPUID_ECX, 0x0004cdfc, 0x00000000 },
	{ 0x1, 0x0, 0, CPUID_EDX, 0xe8641080, 0x00001080 },
	{ 0x7, 0x0, 1, CPUID_EBX, 0xffefda14, 0x00000200 },
	{ 0x7, 0x0, 1, CPUID_ECX, 0x40415f5e, 0x00000000 },
	{ 0x7, 0x0, 1, CPUID_EDX, 0x0000011c, 0x00000000 },
	{ 0xd, 0x0, 1, CPUID_EAX, 0x000002f8, 0x00000000 },
	{ 0xd, 0x1, 1, CPUID_EAX, 0x0000000e, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_ECX, 0x200001c0, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_EDX, 0x07c00000, 0x00000000 },
	{ 0x80000008, 0x0, 0, CPUID_EBX, 0x00000200, 0x00000000 },
};
static const struct msr_modifier t2cl_msr[] = {
	{ 0x10a, 0, 0xffffffffe2f51e00ull, 0x0000000000000000ull },
};
static const struct cpuid_modifier t2a_cpuid[] = {
	{ 0x1, 0x0, 0, CPUID_EAX, 0x0fff3fff, 0x000306f2 },
	{ 0x1, 0x0, 0, CPUID_ECX, 0x0004cdfc, 0x00000000 },
	{ 0x1, 0x0, 0, CPUID_EDX, 0xe8641080, 0x00001080 },
	{ 0x7, 0x0, 1, CPUID_EBX, 0xffefda14, 0x00000200 },
	{ 0x7, 0x0, 1, CPUID_ECX, 0x40415f5e, 0x00000000 },
	{ 0x7, 0x0, 1, CPUID_EDX, 0x0000011c, 0x00000000 },
	{ 0xd, 0x0, 1, CPUID_EAX, 0x000002f8, 0x00000000 },
	{ 0xd, 0x1, 1, CPUID_EAX, 0x0000000e, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_ECX, 0x200001c4, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_EDX, 0x06400000, 0x00000000 },
	{ 0x80000008, 0x0, 0, CPUID_EBX, 0x001c0205, 0x001c0004 },
};
static const struct cpuid_modifier c3_cpuid[] = {
	{ 0x1, 0x0, 0, CPUID_EAX, 0x0fff3fff, 0x000306e4 },
	{ 0x1, 0x0, 0, CPUID_ECX, 0x0040dd3c, 0x00000000 },
	{ 0x1, 0x0, 0, CPUID_EDX, 0xa8641080, 0x00001080 },
	{ 0x7, 0x0, 1, CPUID_EBX, 0xffafdd3c, 0x00000000 },
	{ 0x7, 0x0, 1, CPUID_ECX, 0x4041481e, 0x00000000 },
	{ 0x7, 0x0, 1, CPUID_EDX, 0x0000000c, 0x00000000 },
	{ 0xd, 0x0, 1, CPUID_EAX, 0x000002f8, 0x00000000 },
	{ 0xd, 0x1, 1, CPUID_EAX, 0x0000000e, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_ECX, 0x00000120, 0x00000000 },
	{ 0x80000001, 0x0, 0, CPUID_EDX, 0x04000000, 0x00000000 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct static_template_def {
	const char *name;
	enum cpu_vendor vendor;
	const struct cpuid_modifier *cpuid;
	size_t nr_cpuid;
	const struct msr_modifier *msr;
	size_t nr_msr;
} static_templates[TPL_COUNT] = {
	[TPL_NONE] = { "None", CPU_VENDOR_OTHER, NULL, 0, NULL, 0 },
	[TPL_C3] = { "C3", CPU_VENDOR_INTEL, c3_cpuid, N(c3_cpuid), NULL, 0 },
	[TPL_T2] = { "T2", CPU_VENDOR_INTEL, t2_cpuid, N(t2_cpuid), NULL, 0 },
	[TPL_T2S] = { "T2S", CPU_VENDOR_INTEL, t2s_cpuid, N(t2s_cpuid), t2s_msr, N(t2s_msr) },
	[TPL_T2CL] = { "T2CL", CPU_VENDOR_INTEL, t2cl_cpuid, N(t2cl_cpuid), t2cl_msr, N(t2cl_msr) },
	[TPL_T2A] = { "T2A", CPU_VENDOR_AMD, t2a_cpuid, N(t2a_cpuid), NULL, 0 },
};

const char *cpu_template_name(enum static_template t)
{
	return (unsigned int)t < TPL_COUNT ? static_templates[t].name : "None";
}

int cpu_template_by_name(const char *name)
{
	for (int t = 0; t < TPL_COUNT; t++)
		if (strcmp(static_templates[t].name, name) == 0)
			return t;
	return -1;
}

enum cpu_vendor cpu_template_vendor(enum static_template t)
{
	return (unsigned int)t < TPL_COUNT ? static_templates[t].vendor : CPU_VENDOR_OTHER;
}

static enum cpu_vendor vendor_from_regs(uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	char id[13];
	memcpy(id, &ebx, 4);
	memcpy(id + 4, &edx, 4);
	memcpy(id + 8, &ecx, 4);
	id[12] = 0;
	if (strcmp(id, "GenuineIntel") == 0)
		return CPU_VENDOR_INTEL;
	if (strcmp(id, "AuthenticAMD") == 0)
		return CPU_VENDOR_AMD;
	return CPU_VENDOR_OTHER;
}

enum cpu_vendor cpu_host_vendor(void)
{
	unsigned int eax, ebx, ecx, edx;
	if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx))
		return CPU_VENDOR_OTHER;
	return vendor_from_regs(ebx, ecx, edx);
}

enum cpu_vendor cpu_cpuid_vendor(const struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0)
			return vendor_from_regs(c->entries[i].ebx, c->entries[i].ecx,
						c->entries[i].edx);
	return CPU_VENDOR_OTHER;
}

int cpu_template_static(enum static_template t, enum cpu_vendor host, struct cpu_template *out,
			char *err, size_t err_len)
{
	memset(out, 0, sizeof(*out));
	if ((unsigned int)t >= TPL_COUNT || t == TPL_NONE)
		return 0;
	const struct static_template_def *d = &static_templates[t];
	if (d->vendor != host) {
		snprintf(err, err_len,
			 "CPU vendor mismatched between actual CPU and CPU template.");
		return -ENOTSUP;
	}
	memcpy(out->cpuid, d->cpuid, d->nr_cpuid * sizeof(d->cpuid[0]));
	out->nr_cpuid = (uint32_t)d->nr_cpuid;
	if (d->nr_msr) /* T2, T2A and C3 have none: no memcpy from NULL */
		memcpy(out->msr, d->msr, d->nr_msr * sizeof(d->msr[0]));
	out->nr_msr = (uint32_t)d->nr_msr;
	return 0;
}

int cpu_bitmap_parse(const char *s, unsigned int width, uint64_t *filter, uint64_t *value,
		     char *err, size_t err_len)
{
	const char *p = strncmp(s, "0b", 2) == 0 ? s + 2 : s;
	uint64_t f = 0, v = 0;
	unsigned int bit = 0;
	/* From the lowest bit up: a short bitmap leaves the high bits as x. */
	for (size_t i = strlen(p); i-- > 0;) {
		char ch = p[i];
		if (ch == '_')
			continue;
		if (bit == width) {
			snprintf(err, err_len,
				 "Failed to parse string [%s] as a bitmap - string is too long", s);
			return -EINVAL;
		}
		if (ch == '0' || ch == '1') {
			f |= 1ull << bit;
			if (ch == '1')
				v |= 1ull << bit;
		} else if (ch != 'x') {
			snprintf(err, err_len,
				 "Failed to parse string [%s] as a bitmap - unknown character: %c",
				 s, ch);
			return -EINVAL;
		}
		bit++;
	}
	*filter = f;
	*value = v;
	return 0;
}

void cpu_bitmap_format(uint64_t filter, uint64_t value, unsigned int width, char *out)
{
	out[0] = '0';
	out[1] = 'b';
	for (unsigned int i = 0; i < width; i++) {
		unsigned int bit = width - 1 - i;
		out[2 + i] = !((filter >> bit) & 1) ? 'x' : ((value >> bit) & 1) ? '1' : '0';
	}
	out[2 + width] = 0;
}

int cpu_number_parse(const char *s, uint64_t max, uint64_t *out)
{
	unsigned int base = strncmp(s, "0x", 2) == 0 ? 16 : strncmp(s, "0b", 2) == 0 ? 2 : 0;
	if (!base || !s[2])
		return -EINVAL;
	uint64_t v = 0;
	for (const char *p = s + 2; *p; p++) {
		unsigned int d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned int)(*p - 'a' + 10);
		else if (*p >= 'A' && *p <= 'F')
			d = (unsigned int)(*p - 'A' + 10);
		else
			return -EINVAL;
		if (d >= base || v > (max - d) / base)
			return -EINVAL;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

int cpu_template_apply_cpuid(const struct cpu_template *t, struct kvm_cpuid2 *c, char *err,
			     size_t err_len)
{
	for (uint32_t m = 0; m < t->nr_cpuid; m++) {
		const struct cpuid_modifier *mod = &t->cpuid[m];
		struct kvm_cpuid_entry2 *e = NULL;
		for (uint32_t i = 0; i < c->nent && !e; i++)
			if (c->entries[i].function == mod->leaf &&
			    c->entries[i].index == mod->subleaf)
				e = &c->entries[i];
		if (!e) {
			snprintf(err, err_len,
				 "Template changes a CPUID entry not supported by KVM: Leaf: %#x, "
				 "Subleaf: %#x",
				 mod->leaf, mod->subleaf);
			return -ENOENT;
		}
		e->flags = mod->flags;
		uint32_t *r = mod->reg == CPUID_EAX ? &e->eax
		    : mod->reg == CPUID_EBX	    ? &e->ebx
		    : mod->reg == CPUID_ECX	    ? &e->ecx
						    : &e->edx;
		*r = (uint32_t)cpu_modifier_apply(mod->filter, mod->value, *r);
	}
	return 0;
}

static const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *e, uint32_t n,
						 uint32_t leaf, uint32_t subleaf)
{
	for (uint32_t i = 0; i < n; i++)
		if (e[i].function == leaf && e[i].index == subleaf)
			return &e[i];
	return NULL;
}

static uint32_t cpuid_reg_of(const struct kvm_cpuid_entry2 *e, uint32_t reg)
{
	return reg == CPUID_EAX ? e->eax
	    : reg == CPUID_EBX	? e->ebx
	    : reg == CPUID_ECX	? e->ecx
				: e->edx;
}

int cpu_cpuid_check_subset(const struct kvm_cpuid_entry2 *saved, uint32_t n,
			   const struct kvm_cpuid2 *host, char *err, size_t err_len)
{
	static const struct {
		uint32_t leaf, subleaf, reg;
	} features[] = {
		{ 0x1, 0, CPUID_ECX }, { 0x1, 0, CPUID_EDX },	     { 0x7, 0, CPUID_EBX },
		{ 0x7, 0, CPUID_ECX }, { 0x7, 0, CPUID_EDX },	     { 0x7, 1, CPUID_EAX },
		{ 0xd, 1, CPUID_EAX }, { 0x80000001, 0, CPUID_ECX }, { 0x80000001, 0, CPUID_EDX },
	};
	static const char *const names[] = { "eax", "ebx", "ecx", "edx" };
	const struct kvm_cpuid_entry2 *s0 = cpuid_find(saved, n, 0, 0),
				      *h0 = cpuid_find(host->entries, host->nent, 0, 0);
	if (s0 && h0 && (s0->ebx != h0->ebx || s0->ecx != h0->ecx || s0->edx != h0->edx)) {
		snprintf(err, err_len, "the CPU vendor differs from the snapshot's");
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		const struct kvm_cpuid_entry2 *s =
		    cpuid_find(saved, n, features[i].leaf, features[i].subleaf);
		if (!s)
			continue;
		const struct kvm_cpuid_entry2 *h =
		    cpuid_find(host->entries, host->nent, features[i].leaf, features[i].subleaf);
		uint32_t want = cpuid_reg_of(s, features[i].reg);
		uint32_t have = h ? cpuid_reg_of(h, features[i].reg) : 0;
		uint32_t missing = want & ~have;
		if (missing) {
			snprintf(err, err_len,
				 "the guest saw CPUID leaf %#x subleaf %#x %s bit %d, which this "
				 "host does not offer",
				 features[i].leaf, features[i].subleaf, names[features[i].reg],
				 __builtin_ctz(missing));
			return -ENOTSUP;
		}
	}
	return 0;
}
