// SPDX-License-Identifier: Apache-2.0
/* ACPI tables for x86 guests (ACPI 6.5, chapter 5.2) and VMGenID. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "acpi.h"
#include "aml.h"
#include "arch/x86_64/layout.h"

#define ACPI_CREATOR_ID "EMBR"
#define ACPI_CREATOR_REVISION 1
#define ACPI_HYPERVISOR_ID "EMBERVMM"

struct __attribute__((packed)) acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* of the first 20 bytes (ACPI 1.0's RSDP) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* of all 36 bytes */
	uint8_t reserved[3];
};

struct __attribute__((packed)) acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
};

/* Generic Address Structure (5.2.3.2). */
struct __attribute__((packed)) acpi_gas {
	uint8_t space_id, bit_width, bit_offset, access_size;
	uint64_t address;
};

/* FADT revision 6 (5.2.9): 276 bytes. */
struct __attribute__((packed)) acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl, dsdt;
	uint8_t reserved0, preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk, pm_tmr_blk;
	uint32_t gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_blk_len, gpe1_blk_len;
	uint8_t gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl, x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg, sleep_status_reg;
	char hypervisor_vendor_id[8];
};
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes");

#define FADT_REVISION 6
#define FADT_MINOR_VERSION 5
#define FADT_F_PWR_BUTTON (1u << 4) /* no fixed-feature power button */
#define FADT_F_SLP_BUTTON (1u << 5) /* no fixed-feature sleep button */
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
#define IAPC_BOOT_ARCH_8042 (1u << 1) /* the reset line is an i8042 */
#define IAPC_BOOT_ARCH_VGA_NOT_PRESENT (1u << 2)
#define IAPC_BOOT_ARCH_MSI_NOT_SUPPORTED (1u << 3)
#define IAPC_BOOT_ARCH_CMOS_RTC_NOT_PRESENT (1u << 5)

/* MADT (5.2.12) and the entries ember uses. */
struct __attribute__((packed)) acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
};
#define MADT_REVISION 5
#define MADT_PCAT_COMPAT 1u /* there is a dual 8259 PIC too */

struct __attribute__((packed)) madt_lapic {
	uint8_t type, length, processor_uid, apic_id;
	uint32_t flags;
};
#define MADT_LAPIC 0
#define MADT_LAPIC_ENABLED 1u

struct __attribute__((packed)) madt_ioapic {
	uint8_t type, length, ioapic_id, reserved;
	uint32_t address, gsi_base;
};
#define MADT_IOAPIC 1

struct __attribute__((packed)) madt_lapic_nmi {
	uint8_t type, length, processor_uid;
	uint16_t flags;
	uint8_t lint;
};
#define MADT_LAPIC_NMI 4
#define MADT_ALL_PROCESSORS 0xff

#define DSDT_REVISION 2 /* 64-bit integers */
#define XSDT_REVISION 1
#define RSDP_REVISION 2
#define XSDT_ENTRIES 2 /* FADT, MADT */

/* A table being laid out in the host buffer. */
struct cursor {
	uint8_t *buf;
	size_t size, off;
	uint64_t base;
};

/* Reserve @len bytes, 8-aligned; NULL when they do not fit. */
static void *take(struct cursor *c, size_t len, uint64_t *gpa)
{
	size_t off = (c->off + 7) & ~(size_t)7;
	if (off > c->size || c->size - off < len)
		return NULL;
	c->off = off + len;
	*gpa = c->base + off;
	memset(c->buf + off, 0, len);
	return c->buf + off;
}

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	while (len--)
		sum = (uint8_t)(sum + *b++);
	return sum;
}

static void header(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	char table_id[9];
	snprintf(table_id, sizeof(table_id), "EMBR%.4s", sig);
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, table_id, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REVISION;
}

static void seal(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_checksum(h, h->length);
}

/* _STA: present, enabled, shown in the UI, functioning (6.3.7). */
static void dsdt_sta(struct aml *a)
{
	aml_name(a, "_STA");
	aml_integer(a, 0x0f);
}

/* Device(name) { _HID, _UID, _STA, _CRS } for a device with fixed resources. */
static void dsdt_device(struct aml *a, const char *name, const char *hid, bool eisa, uint32_t uid,
			const struct aml_res *crs)
{
	size_t dev = aml_device(a, name);
	aml_name(a, "_HID");
	if (eisa)
		aml_eisaid(a, hid);
	else
		aml_string(a, hid);
	aml_name(a, "_UID");
	aml_integer(a, uid);
	dsdt_sta(a);
	aml_name(a, "_CRS");
	aml_buffer(a, crs->buf, crs->len);
	aml_close(a, dev);
}

static void dsdt_legacy(struct aml *a)
{
	struct aml_res com1 = { .len = 0 };
	aml_res_io(&com1, SERIAL_COM1_PORT, 8);
	aml_res_irq(&com1, SERIAL_COM1_IRQ);
	aml_res_end(&com1);
	dsdt_device(a, "COM1", "PNP0501", true, 0, &com1);

	/* The i8042 is there for its reset line and Ctrl+Alt+Del. */
	struct aml_res ps2 = { .len = 0 };
	aml_res_io(&ps2, I8042_DATA_PORT, 1);
	aml_res_io(&ps2, I8042_CMD_PORT, 1);
	aml_res_irq(&ps2, 1);
	aml_res_end(&ps2);
	dsdt_device(a, "PS2_", "PNP0303", true, 0, &ps2);
	if (com1.overflow || ps2.overflow)
		aml_fail(a, -E2BIG);
}

/*
 * Linux's virtio-mmio driver binds "LNRO0005" (ARM's name for virtio-mmio,
 * which every OS with ACPI virtio-mmio support uses) to a Memory32Fixed
 * window and an interrupt.
 */
static void dsdt_virtio(struct aml *a, const struct acpi_params *p)
{
	for (unsigned int i = 0; i < p->nr_devices; i++) {
		const struct fdt_mmio_device *d = &p->devices[i];
		if (d->base > UINT32_MAX || d->size > UINT32_MAX - d->base) {
			aml_fail(a, -EINVAL);
			return;
		}
		char name[5];
		snprintf(name, sizeof(name), "VR%02u", i % 100);
		struct aml_res crs = { .len = 0 };
		aml_res_mem32_fixed(&crs, (uint32_t)d->base, (uint32_t)d->size, true);
		aml_res_ext_irq(&crs, d->irq);
		aml_res_end(&crs);
		dsdt_device(a, name, "LNRO0005", false, i, &crs);
	}
}

/*
 * VMGenID (Microsoft's "Virtual Machine Generation ID", which Linux's
 * vmgenid driver matches by _HID "VMGENCTR" or _CID "VM_Gen_Counter"): ADDR
 * is a package of the ID's address, low and high 32 bits. A new ID comes
 * with Notify(VGEN, 0x80), which the Generic Event Device's _EVT sends when
 * its interrupt fires.
 */
static void dsdt_vmgenid(struct aml *a)
{
	size_t dev = aml_device(a, "VGEN");
	aml_name(a, "_HID");
	aml_string(a, "VMGENCTR");
	aml_name(a, "_CID");
	aml_string(a, "VM_Gen_Counter");
	aml_name(a, "_DDN");
	aml_string(a, "VM_Gen_Counter");
	dsdt_sta(a);
	aml_name(a, "ADDR");
	size_t pkg = aml_package(a, 2);
	aml_integer(a, (uint32_t)VMGENID_ADDR);
	aml_integer(a, VMGENID_ADDR >> 32);
	aml_close(a, pkg);
	aml_close(a, dev);

	struct aml_res crs = { .len = 0 };
	aml_res_ext_irq(&crs, GED_IRQ);
	aml_res_end(&crs);
	dev = aml_device(a, "GED_");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	dsdt_sta(a);
	aml_name(a, "_CRS");
	aml_buffer(a, crs.buf, crs.len);
	size_t evt = aml_method(a, "_EVT", 1, true);
	size_t cond = aml_if(a);
	aml_lequal(a);
	aml_arg(a, 0);
	aml_integer(a, GED_IRQ);
	aml_notify(a, "\\_SB_.VGEN", 0x80);
	aml_close(a, cond);
	aml_close(a, evt);
	aml_close(a, dev);
}

static int build_dsdt(struct cursor *c, const struct acpi_params *p, uint64_t *gpa)
{
	struct aml a;
	aml_init(&a);
	size_t sb = aml_scope(&a, "\\_SB_");
	dsdt_legacy(&a);
	dsdt_virtio(&a, p);
	dsdt_vmgenid(&a);
	aml_close(&a, sb);
	int r = a.err;
	if (!r) {
		size_t len = sizeof(struct acpi_header) + a.len;
		struct acpi_header *h = take(c, len, gpa);
		if (h) {
			header(h, "DSDT", (uint32_t)len, DSDT_REVISION);
			memcpy(h + 1, a.buf, a.len);
			seal(h);
		} else {
			r = -E2BIG;
		}
	}
	aml_free(&a);
	return r;
}

static int build_fadt(struct cursor *c, uint64_t dsdt, uint64_t *gpa)
{
	struct acpi_fadt *f = take(c, sizeof(*f), gpa);
	if (!f)
		return -E2BIG;
	header(&f->h, "FACP", sizeof(*f), FADT_REVISION);
	f->minor_version = FADT_MINOR_VERSION;
	/* Hardware-reduced: no SCI, no PM blocks, no fixed-feature buttons. */
	f->flags = FADT_F_HW_REDUCED_ACPI | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON;
	/*
	 * An i8042 is present (Linux probes it only when this bit is set and
	 * uses it for Ctrl+Alt+Del and reset); no VGA, no MSI (no PCI), no
	 * CMOS clock.
	 */
	f->iapc_boot_arch = IAPC_BOOT_ARCH_8042 | IAPC_BOOT_ARCH_VGA_NOT_PRESENT |
	    IAPC_BOOT_ARCH_MSI_NOT_SUPPORTED | IAPC_BOOT_ARCH_CMOS_RTC_NOT_PRESENT;
	f->x_dsdt = dsdt;
	if (dsdt <= UINT32_MAX)
		f->dsdt = (uint32_t)dsdt;
	memcpy(f->hypervisor_vendor_id, ACPI_HYPERVISOR_ID, 8);
	seal(&f->h);
	return 0;
}

/*
 * One enabled local APIC per vCPU (APIC id = vCPU index, as the MP table and
 * KVM have it), the IOAPIC with the id its register reads (KVM's in-kernel
 * IOAPIC resets to 0; local and I/O APIC ids are separate name spaces on
 * xAPIC systems), and LINT1 as NMI on every CPU. ISA IRQs reach IOAPIC pins of the same number (KVM's
 * default routing), which is what an OS assumes without interrupt source
 * overrides, so there are none.
 */
static int build_madt(struct cursor *c, const struct acpi_params *p, uint64_t *gpa)
{
	size_t len = sizeof(struct acpi_madt) + p->nr_vcpus * sizeof(struct madt_lapic) +
	    sizeof(struct madt_ioapic) + sizeof(struct madt_lapic_nmi);
	struct acpi_madt *m = take(c, len, gpa);
	if (!m)
		return -E2BIG;
	header(&m->h, "APIC", (uint32_t)len, MADT_REVISION);
	m->lapic_address = (uint32_t)LAPIC_ADDR;
	m->flags = MADT_PCAT_COMPAT;
	uint8_t *e = (uint8_t *)(m + 1);
	for (unsigned int i = 0; i < p->nr_vcpus; i++, e += sizeof(struct madt_lapic))
		*(struct madt_lapic *)e = (struct madt_lapic){
			.type = MADT_LAPIC,
			.length = sizeof(struct madt_lapic),
			.processor_uid = (uint8_t)i,
			.apic_id = (uint8_t)i,
			.flags = MADT_LAPIC_ENABLED,
		};
	*(struct madt_ioapic *)e = (struct madt_ioapic){
		.type = MADT_IOAPIC,
		.length = sizeof(struct madt_ioapic),
		.ioapic_id = 0,
		.address = (uint32_t)IOAPIC_ADDR,
	};
	e += sizeof(struct madt_ioapic);
	*(struct madt_lapic_nmi *)e = (struct madt_lapic_nmi){
		.type = MADT_LAPIC_NMI,
		.length = sizeof(struct madt_lapic_nmi),
		.processor_uid = MADT_ALL_PROCESSORS,
		.lint = 1,
	};
	seal(&m->h);
	return 0;
}

int acpi_build(uint8_t *buf, size_t size, uint64_t base, const struct acpi_params *p,
	       struct acpi_layout *out)
{
	if (p->nr_vcpus == 0 || p->nr_vcpus > 254 || p->nr_devices > 100)
		return -EINVAL;
	struct cursor c = { .buf = buf, .size = size, .base = base };
	struct acpi_layout l = { 0 };
	struct acpi_rsdp *rsdp = take(&c, sizeof(*rsdp), &l.rsdp);
	const size_t xsdt_len = sizeof(struct acpi_header) + XSDT_ENTRIES * sizeof(uint64_t);
	struct acpi_header *xsdt = take(&c, xsdt_len, &l.xsdt);
	if (!rsdp || !xsdt)
		return -E2BIG;
	int r = build_dsdt(&c, p, &l.dsdt);
	if (!r)
		r = build_fadt(&c, l.dsdt, &l.fadt);
	if (!r)
		r = build_madt(&c, p, &l.madt);
	if (r)
		return r;
	l.end = base + c.off;

	header(xsdt, "XSDT", (uint32_t)xsdt_len, XSDT_REVISION);
	const uint64_t entries[XSDT_ENTRIES] = { l.fadt, l.madt };
	memcpy(xsdt + 1, entries, sizeof(entries));
	seal(xsdt);

	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, ACPI_OEM_ID, 6);
	rsdp->revision = RSDP_REVISION;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = l.xsdt;
	rsdp->checksum = (uint8_t)-acpi_checksum(rsdp, 20);
	rsdp->extended_checksum = (uint8_t)-acpi_checksum(rsdp, sizeof(*rsdp));
	if (out)
		*out = l;
	return 0;
}

int acpi_setup(const struct guest_mem *mem, const struct acpi_params *p)
{
	const size_t size = ACPI_TABLES_END - ACPI_TABLES_START;
	uint8_t *buf = guest_mem_ptr(mem, ACPI_TABLES_START, size);
	if (!buf)
		return -EFAULT;
	int r = acpi_build(buf, size, ACPI_TABLES_START, p, NULL);
	if (r < 0)
		return r;
	return vmgenid_update(mem);
}

int vmgenid_update(const struct guest_mem *mem)
{
	uint8_t id[VMGENID_LEN];
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return -EIO;
	return guest_mem_write(mem, VMGENID_ADDR, id, sizeof(id)) < 0 ? -EFAULT : 0;
}
