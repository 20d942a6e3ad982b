// SPDX-License-Identifier: Apache-2.0
/*
 * smp: every vCPU checks in. The BSP counts the CPUs in the MP table the
 * monitor wrote, wakes the APs with INIT-SIPI-SIPI through its (in-kernel)
 * LAPIC, and waits until each AP has set the bit of its APIC id.
 * Exit 0 when all did, 1 when some never came, 2 when there is no MP table.
 */
#include "kit.h"

#define SMP_TRAMPOLINE 0x3000ull /* SIPI vector 3 */
#define SMP_COUNT 0x3f00ull
#define SMP_BITMAP 0x3f04ull
#define EBDA 0x9fc00ull
#define LAPIC 0xfee00000ull
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_INIT_ALL_BUT_SELF 0x000c4500u
#define ICR_SIPI_ALL_BUT_SELF 0x000c4600u
#define WAIT_LOOPS 5000000ull

extern const char smp_trampoline_start[], smp_trampoline_end[];

static void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC + reg) = v;
}

/* Processor entries in the MP configuration table found in the EBDA. */
static unsigned int mptable_cpus(void)
{
	for (uint64_t p = EBDA; p < EBDA + 0x400; p += 16) {
		if (memcmp((const void *)p, "_MP_", 4) != 0)
			continue;
		const uint8_t *mpc = (const uint8_t *)(uint64_t) * (const uint32_t *)(p + 4);
		if (!mpc || memcmp(mpc, "PCMP", 4) != 0)
			return 0;
		uint16_t count = *(const uint16_t *)(mpc + 34);
		const uint8_t *e = mpc + 44;
		unsigned int cpus = 0;
		for (uint16_t i = 0; i < count; i++) {
			if (e[0] == 0) {
				cpus++;
				e += 20;
			} else {
				e += 8;
			}
		}
		return cpus;
	}
	return 0;
}

int guest_main(void)
{
	unsigned int cpus = mptable_cpus();
	if (!cpus) {
		kit_puts("smp: no MP table\n");
		return 2;
	}
	volatile uint32_t *count = (volatile uint32_t *)SMP_COUNT;
	volatile uint32_t *bitmap = (volatile uint32_t *)SMP_BITMAP;
	*count = 0;
	*bitmap = 0;
	memcpy((void *)SMP_TRAMPOLINE, smp_trampoline_start,
	       (size_t)(smp_trampoline_end - smp_trampoline_start));

	if (cpus > 1) {
		lapic_write(LAPIC_SVR, 0x1ff); /* software-enable, spurious vector 0xff */
		lapic_write(LAPIC_ICR_HI, 0);
		lapic_write(LAPIC_ICR_LO, ICR_INIT_ALL_BUT_SELF);
		lapic_write(LAPIC_ICR_LO, ICR_SIPI_ALL_BUT_SELF | (SMP_TRAMPOLINE >> 12));
		lapic_write(LAPIC_ICR_LO, ICR_SIPI_ALL_BUT_SELF | (SMP_TRAMPOLINE >> 12));
	}
	for (uint64_t i = 0; i < WAIT_LOOPS && *count < cpus - 1; i++)
		__asm__ volatile("pause");

	uint32_t want = (cpus >= 32 ? 0xffffffffu : (1u << cpus) - 1) & ~1u;
	kit_puts("smp: ");
	kit_put_dec(*count + 1);
	kit_puts(" of ");
	kit_put_dec(cpus);
	kit_puts(" vCPUs checked in, APIC id bitmap ");
	kit_put_hex(*bitmap | 1);
	kit_putc('\n');
	return (*count == cpus - 1 && *bitmap == want) ? 0 : 1;
}
