// SPDX-License-Identifier: Apache-2.0
#include "cpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cpu_template.h"
#include "layout.h"
#include "log.h"
#include "vcpu.h"
#include "vm.h"

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_TSC 0x10
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MISC_ENABLE_FAST_STRING 1ull
#define MTRR_ENABLE (1ull << 11)
#define MTRR_TYPE_WRBACK 6ull

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI 0x4

#define X86_CR0_PE 0x1ull
#define X86_CR0_ET 0x10ull
#define X86_CR0_PG 0x80000000ull
#define X86_CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

/* GDT slots. Linux's 64-bit protocol wants __BOOT_CS 0x10 and __BOOT_DS 0x18. */
#define GDT_CODE64 2
#define GDT_DATA 3
#define GDT_TSS 4
#define GDT_CODE32 5
#define GDT_ENTRIES 6

struct kvm_cpuid2 *cpu_cpuid(const struct kvm_cpuid2 *tmpl, const struct cpu_template *tpl,
			     unsigned int id, unsigned int nr, unsigned int threads_per_core)
{
	unsigned int capacity = tmpl->nent + CPUID_EXTRA_ENTRIES;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + capacity * sizeof(c->entries[0]));
	if (!c)
		return NULL;
	memcpy(c, tmpl, sizeof(*tmpl) + tmpl->nent * sizeof(tmpl->entries[0]));
	char err[160];
	if (tpl && cpu_template_apply_cpuid(tpl, c, err, sizeof(err))) {
		log_err("CPU template: %s", err);
		free(c);
		errno = ENOENT;
		return NULL;
	}
	cpuid_filter(c, capacity, id, nr, threads_per_core);
	return c;
}

static bool cpuid_same(const struct kvm_cpuid2 *a, const struct kvm_cpuid2 *b)
{
	return a && b && a->nent == b->nent &&
	    memcmp(a->entries, b->entries, a->nent * sizeof(a->entries[0])) == 0;
}

static int cpu_set_cpuid(struct vm *vm, struct vcpu *vcpu, const struct kvm_cpuid2 *preset)
{
	struct kvm_cpuid2 *c = cpu_cpuid(vm->supported_cpuid, vm->cpu_template, vcpu->id,
					 vm->nr_vcpus, vm->threads_per_core);
	if (!c)
		return -errno;
	/* KVM_SET_CPUID2 costs ~150 us here: skip it when the vCPU already
	 * has exactly this table (a pre-warmed vCPU of the same shape; the
	 * table compared is this VM's, template and SMT applied). */
	bool same = cpuid_same(c, preset);
	if (preset && !same)
		log_debug("vCPU %u: its pre-warmed CPUID is not this VM's; setting this VM's",
			  vcpu->id);
	int r = same || ioctl(vcpu->fd, KVM_SET_CPUID2, c) == 0 ? 0 : -errno;
	free(c);
	if (r < 0)
		log_err("KVM_SET_CPUID2 on vCPU %u: %s", vcpu->id, strerror(-r));
	return r;
}

/* One MSR of the vCPU, read-modify-written by a template's modifier. */
static int cpu_apply_msr(struct vcpu *vcpu, const struct msr_modifier *m)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} msr = { .hdr.nmsrs = 1, .e.index = m->addr };
	if (ioctl(vcpu->fd, KVM_GET_MSRS, &msr) != 1) {
		log_err(
		    "CPU template: Template changes an MSR entry not supported by KVM: Register "
		    "Address: %#x",
		    m->addr);
		return -ENOENT;
	}
	msr.e.data = cpu_modifier_apply(m->filter, m->value, msr.e.data);
	if (ioctl(vcpu->fd, KVM_SET_MSRS, &msr) != 1) {
		log_err("CPU template: KVM refused MSR %#x = %#llx on vCPU %u", m->addr,
			(unsigned long long)msr.e.data, vcpu->id);
		return -EINVAL;
	}
	return 0;
}

static int cpu_set_msrs(struct vcpu *vcpu)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} boot_msrs[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_IA32_TSC, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK },
	};
	enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[N];
	} msrs;
	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = N;
	for (unsigned int i = 0; i < N; i++) {
		msrs.entries[i].index = boot_msrs[i].index;
		msrs.entries[i].data = boot_msrs[i].value;
	}
	int r = ioctl(vcpu->fd, KVM_SET_MSRS, &msrs);
	if (r != N) {
		log_err("KVM_SET_MSRS on vCPU %u set %d of %d MSRs (stopped at 0x%x)", vcpu->id, r,
			N, r >= 0 && r < N ? boot_msrs[r].index : 0);
		return -EINVAL;
	}
	const struct cpu_template *t = vcpu->vm->cpu_template;
	for (uint32_t i = 0; t && i < t->nr_msr; i++) {
		int err = cpu_apply_msr(vcpu, &t->msr[i]);
		if (err)
			return err;
	}
	return 0;
}

static int cpu_set_fpu(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0) {
		log_err("KVM_SET_FPU on vCPU %u: %s", vcpu->id, strerror(errno));
		return -errno;
	}
	return 0;
}

static void lapic_set_lvt(struct kvm_lapic_state *l, unsigned int reg, uint32_t mode)
{
	uint32_t v;
	memcpy(&v, &l->regs[reg], sizeof(v));
	v = (v & ~0x700u) | (mode << 8);
	memcpy(&l->regs[reg], &v, sizeof(v));
}

static int cpu_set_lapic(struct vcpu *vcpu)
{
	/* LINT0 delivers the PIC's ExtINT, LINT1 NMIs, as firmware leaves them. */
	struct kvm_lapic_state l;
	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &l) < 0)
		goto fail;
	lapic_set_lvt(&l, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_lvt(&l, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &l) < 0)
		goto fail;
	return 0;
fail:
	log_err("LAPIC set-up on vCPU %u: %s", vcpu->id, strerror(errno));
	return -errno;
}

int cpu_init(struct vm *vm, struct vcpu *vcpu, const struct kvm_cpuid2 *preset)
{
	int r = cpu_set_cpuid(vm, vcpu, preset);
	if (!r)
		r = cpu_set_msrs(vcpu);
	if (!r)
		r = cpu_set_fpu(vcpu);
	if (!r)
		r = cpu_set_lapic(vcpu);
	return r;
}

/* A GDT descriptor from flags (in the 0xF0FF layout), base and limit. */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
	    ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	    (uint64_t)(limit & 0x0000ffffu);
}

/* The KVM segment that the descriptor @d in slot @slot loads. */
static struct kvm_segment gdt_to_segment(uint64_t d, unsigned int slot)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16));
	/* KVM wants the limit in bytes: scale it when the G bit says 4 KiB units. */
	if ((d >> 55) & 1)
		limit = (limit << 12) | 0xfff;
	return (struct kvm_segment){
		.base = (uint32_t)(((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24)),
		.limit = limit,
		.selector = (uint16_t)(slot * 8),
		.type = (uint8_t)((d >> 40) & 0xf),
		.present = (uint8_t)((d >> 47) & 1),
		.dpl = (uint8_t)((d >> 45) & 3),
		.db = (uint8_t)((d >> 54) & 1),
		.s = (uint8_t)((d >> 44) & 1),
		.l = (uint8_t)((d >> 53) & 1),
		.g = (uint8_t)((d >> 55) & 1),
		.avl = (uint8_t)((d >> 52) & 1),
	};
}

static const uint64_t *boot_gdt(void)
{
	static uint64_t gdt[GDT_ENTRIES];
	if (!gdt[GDT_CODE64]) {
		gdt[GDT_CODE64] = gdt_entry(0xa09b, 0, 0xfffff); /* 64-bit code, exec/read */
		gdt[GDT_DATA] = gdt_entry(0xc093, 0, 0xfffff); /* flat data, read/write */
		gdt[GDT_TSS] = gdt_entry(0x808b, 0, 0xfffff); /* busy TSS */
		gdt[GDT_CODE32] = gdt_entry(0xc09b, 0, 0xfffff); /* 32-bit code, exec/read */
	}
	return gdt;
}

static int cpu_write_gdt(const struct guest_mem *mem, struct kvm_sregs *s, unsigned int code_slot)
{
	const uint64_t *gdt = boot_gdt();
	int r = guest_mem_write(mem, BOOT_GDT_ADDR, gdt, GDT_ENTRIES * sizeof(uint64_t));
	uint64_t zero = 0;
	if (!r)
		r = guest_mem_write(mem, BOOT_IDT_ADDR, &zero, sizeof(zero));
	if (r < 0)
		return r;
	s->gdt.base = BOOT_GDT_ADDR;
	s->gdt.limit = GDT_ENTRIES * sizeof(uint64_t) - 1;
	s->idt.base = BOOT_IDT_ADDR;
	s->idt.limit = sizeof(zero) - 1;
	s->cs = gdt_to_segment(gdt[code_slot], code_slot);
	s->ds = s->es = s->fs = s->gs = s->ss = gdt_to_segment(gdt[GDT_DATA], GDT_DATA);
	s->tr = gdt_to_segment(gdt[GDT_TSS], GDT_TSS);
	return 0;
}

/* Identity map of the low 4 GiB with 2 MiB pages: PML4 -> PDPT -> 4 PDs. */
static int cpu_write_page_tables(const struct guest_mem *mem)
{
	uint64_t *pml4 = guest_mem_ptr(mem, PML4_ADDR, 4096);
	uint64_t *pdpt = guest_mem_ptr(mem, PDPT_ADDR, 4096);
	uint64_t *pd = guest_mem_ptr(mem, PD_ADDR, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = PDPT_ADDR | 0x3; /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (PD_ADDR + i * 4096) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
	return 0;
}

static int cpu_set_state(struct vcpu *vcpu, struct kvm_sregs *s, struct kvm_regs *regs)
{
	if (ioctl(vcpu->fd, KVM_SET_SREGS, s) < 0 || ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0) {
		log_err("setting boot registers on vCPU %u: %s", vcpu->id, strerror(errno));
		return -errno;
	}
	return 0;
}

int cpu_set_boot_pvh(struct vcpu *vcpu, const struct guest_mem *mem, uint64_t entry,
		     uint64_t start_info)
{
	struct kvm_sregs s;
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	int r = cpu_write_gdt(mem, &s, GDT_CODE32);
	if (r < 0)
		return r;
	s.cr0 = X86_CR0_PE | X86_CR0_ET;
	s.cr4 = 0;
	s.efer = 0;
	struct kvm_regs regs = { .rflags = 0x2, .rip = entry, .rbx = start_info };
	return cpu_set_state(vcpu, &s, &regs);
}

int cpu_set_boot_long(struct vcpu *vcpu, const struct guest_mem *mem, uint64_t entry,
		      uint64_t zero_page)
{
	struct kvm_sregs s;
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	int r = cpu_write_gdt(mem, &s, GDT_CODE64);
	if (!r)
		r = cpu_write_page_tables(mem);
	if (r < 0)
		return r;
	s.cr3 = PML4_ADDR;
	s.cr4 |= X86_CR4_PAE;
	s.cr0 |= X86_CR0_PE | X86_CR0_PG | X86_CR0_ET;
	s.efer |= EFER_LME | EFER_LMA;
	struct kvm_regs regs = {
		.rflags = 0x2,
		.rip = entry,
		.rsi = zero_page,
		.rsp = BOOT_STACK_ADDR,
		.rbp = BOOT_STACK_ADDR,
	};
	return cpu_set_state(vcpu, &s, &regs);
}
