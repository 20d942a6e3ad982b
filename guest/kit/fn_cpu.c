// SPDX-License-Identifier: Apache-2.0
/* The function runtime's CPU plumbing (contract in fn_cpu.h). */
#include "fn_cpu.h"

#include "kit.h"

extern const uint8_t fn_trap_stubs[];

struct fn_ctx *fn_catch;
struct fn_fault fn_fault;

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1, ist[7], reserved2;
	uint16_t reserved3, iomap_base;
	/* Every port allowed, then the 0xff byte the CPU wants after the map.
	 * IOPL 3 alone should do, but on the development machines (nested,
	 * ring 0 emulated) ring-3 port I/O hung once a TSS without a map was
	 * loaded. */
	uint8_t iomap[65536 / 8 + 1];
} __attribute__((packed));

#define TSS_SEL 0x28
/* The kit's selectors (pvh_entry.S): 0x08 kernel code, 0x10 data, 0x1b/0x23 user. */
static uint64_t gdt[7] __attribute__((aligned(16))) = {
	0, 0x00af9a000000ffff, 0x00cf92000000ffff, 0x00cff2000000ffff, 0x00affa000000ffff,
};
#define FN_IRQ_VECTOR 0x40
#define FN_SPURIOUS_VECTOR 0x41
static uint64_t idt[2 * (FN_SPURIOUS_VECTOR + 1)] __attribute__((aligned(16)));
extern const uint8_t fn_irq[], fn_spurious[];
uint64_t fn_lapic_eoi; /* the local APIC's EOI register (fn_trap.S) */
static struct tss tss __attribute__((aligned(16)));
static uint8_t ring0_stack[8192] __attribute__((aligned(16)));

struct __attribute__((packed)) desc_ptr {
	uint16_t limit;
	uint64_t base;
};

/* An interrupt gate (interrupts off on entry), DPL 0, to @fn in kernel code. */
static void set_gate(unsigned int v, const uint8_t *fn)
{
	uint64_t a = (uint64_t)fn;
	idt[2 * v] = (a & 0xffff) | 0x08ull << 16 | 0x8eull << 40 | (a >> 16 & 0xffff) << 48;
	idt[2 * v + 1] = a >> 32;
}

void fn_cpu_setup(void)
{
	uint64_t base = (uint64_t)&tss;
	tss.rsp[0] = (uint64_t)(ring0_stack + sizeof(ring0_stack));
	tss.iomap_base = offsetof(struct tss, iomap);
	tss.iomap[sizeof(tss.iomap) - 1] = 0xff;
	/* 64-bit available TSS (type 9), present, DPL 0. */
	gdt[5] = ((sizeof(tss) - 1) & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
	    ((base >> 24) & 0xff) << 56;
	gdt[6] = base >> 32;
	for (unsigned int v = 0; v < 32; v++)
		set_gate(v, fn_trap_stubs + 16 * v);
	set_gate(FN_IRQ_VECTOR, fn_irq);
	set_gate(FN_SPURIOUS_VECTOR, fn_spurious);
	struct desc_ptr g = { sizeof(gdt) - 1, (uint64_t)gdt },
			i = { sizeof(idt) - 1, (uint64_t)idt };
	__asm__ volatile("lgdt %0\n\t"
			 "lidt %1\n\t"
			 "ltr %w2"
			 :
			 : "m"(g), "m"(i), "r"(TSS_SEL)
			 : "memory");
}

#define LAPIC_ID 0x20
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_LINT0 0x350
#define LAPIC_MASKED 0x10000
#define IOAPIC_PINS 24

int fn_cpu_route_irq(const struct acpi_info *acpi, uint32_t gsi)
{
	if (!acpi->lapic_addr || !acpi->ioapic_addr || gsi < acpi->ioapic_gsi_base ||
	    gsi - acpi->ioapic_gsi_base >= IOAPIC_PINS)
		return -1;
	volatile uint32_t *lapic = (volatile uint32_t *)(uint64_t)acpi->lapic_addr;
	volatile uint32_t *ioapic = (volatile uint32_t *)(uint64_t)acpi->ioapic_addr;
	uint32_t pin = gsi - acpi->ioapic_gsi_base;
	uint32_t apic_id = lapic[LAPIC_ID / 4] >> 24;
	fn_lapic_eoi = acpi->lapic_addr + LAPIC_EOI;
	/* LINT0 carries the legacy PIC (the PIT's IRQ 0, at whatever vector
	 * the never-programmed PIC gives it): masked. */
	lapic[LAPIC_LINT0 / 4] = lapic[LAPIC_LINT0 / 4] | LAPIC_MASKED;
	lapic[LAPIC_SVR / 4] = 0x100 | FN_SPURIOUS_VECTOR; /* software enable */
	ioapic[0] = 0x10 + 2 * pin + 1; /* IOREGSEL, then IOWIN at +0x10 */
	ioapic[4] = apic_id << 24;
	ioapic[0] = 0x10 + 2 * pin;
	ioapic[4] = FN_IRQ_VECTOR; /* fixed, physical, active high, edge, unmasked */
	return 0;
}
