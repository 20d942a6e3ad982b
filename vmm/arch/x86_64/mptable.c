// SPDX-License-Identifier: Apache-2.0
/*
 * Intel MultiProcessor Specification 1.4 table: tells the guest how many
 * CPUs there are, their APIC ids, and how ISA IRQs reach the IOAPIC.
 */
#include <errno.h>
#include <string.h>

#include "boot.h"
#include "layout.h"

#define MP_SPEC_REV 4
#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_CPU_ENABLED 0x1
#define MP_CPU_BSP 0x2
#define MP_IRQ_INT 0
#define MP_IRQ_NMI 1
#define MP_IRQ_EXTINT 3
#define MP_BUS_ISA 0
#define MP_ALL_APICS 0xff

struct __attribute__((packed)) mpf_intel {
	char signature[4];
	uint32_t physptr;
	uint8_t length;
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
};

struct __attribute__((packed)) mpc_table {
	char signature[4];
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;
	uint32_t lapic;
	uint32_t reserved;
};

struct __attribute__((packed)) mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
};

struct __attribute__((packed)) mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
};

struct __attribute__((packed)) mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
};

struct __attribute__((packed)) mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
};

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

int mptable_setup(const struct guest_mem *mem, unsigned int nr_vcpus)
{
	const size_t size = sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
	    nr_vcpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +
	    (IOAPIC_NR_PINS + 2) * sizeof(struct mpc_intsrc);
	if (nr_vcpus == 0 || size > MPTABLE_MAX)
		return -E2BIG;
	uint8_t *base = guest_mem_ptr(mem, MPTABLE_ADDR, size);
	if (!base)
		return -EFAULT;
	memset(base, 0, size);

	struct mpf_intel *mpf = (struct mpf_intel *)base;
	struct mpc_table *mpc = (struct mpc_table *)(mpf + 1);
	uint8_t *p = (uint8_t *)(mpc + 1);
	uint16_t count = 0;
	const uint8_t ioapic_id = (uint8_t)nr_vcpus;

	for (unsigned int i = 0; i < nr_vcpus; i++, count++) {
		struct mpc_cpu *c = (struct mpc_cpu *)p;
		c->type = 0;
		c->apicid = (uint8_t)i;
		c->apicver = MP_APIC_VERSION;
		c->cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0);
		c->cpufeature = 0x600; /* family 6 */
		c->featureflag = 0x201; /* FPU, APIC */
		p += sizeof(*c);
	}
	struct mpc_bus *bus = (struct mpc_bus *)p;
	bus->type = 1;
	bus->busid = MP_BUS_ISA;
	memcpy(bus->bustype, "ISA   ", 6);
	p += sizeof(*bus);
	count++;

	struct mpc_ioapic *io = (struct mpc_ioapic *)p;
	io->type = 2;
	io->apicid = ioapic_id;
	io->apicver = MP_IOAPIC_VERSION;
	io->flags = 1;
	io->apicaddr = (uint32_t)IOAPIC_ADDR;
	p += sizeof(*io);
	count++;

	for (unsigned int irq = 0; irq < IOAPIC_NR_PINS; irq++, count++) {
		struct mpc_intsrc *s = (struct mpc_intsrc *)p;
		*s = (struct mpc_intsrc){ .type = 3,
					  .irqtype = MP_IRQ_INT,
					  .srcbus = MP_BUS_ISA,
					  .srcbusirq = (uint8_t)irq,
					  .dstapic = ioapic_id,
					  .dstirq = (uint8_t)irq };
		p += sizeof(*s);
	}
	/* LINT0 takes the PIC's ExtINT, LINT1 NMIs, on every CPU. */
	static const uint8_t lint_types[2] = { MP_IRQ_EXTINT, MP_IRQ_NMI };
	for (unsigned int lint = 0; lint < 2; lint++, count++) {
		struct mpc_intsrc *s = (struct mpc_intsrc *)p;
		*s = (struct mpc_intsrc){ .type = 4,
					  .irqtype = lint_types[lint],
					  .srcbus = MP_BUS_ISA,
					  .dstapic = MP_ALL_APICS,
					  .dstirq = (uint8_t)lint };
		p += sizeof(*s);
	}

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)(p - (uint8_t *)mpc);
	mpc->spec = MP_SPEC_REV;
	memcpy(mpc->oem, "EMBER   ", 8);
	memcpy(mpc->productid, "MICROVM     ", 12);
	mpc->oemcount = count;
	mpc->lapic = (uint32_t)LAPIC_ADDR;
	mpc->checksum = mp_checksum((const uint8_t *)mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(MPTABLE_ADDR + sizeof(*mpf));
	mpf->length = 1; /* in 16-byte units */
	mpf->specification = MP_SPEC_REV;
	mpf->checksum = mp_checksum((const uint8_t *)mpf, sizeof(*mpf));
	return 0;
}
