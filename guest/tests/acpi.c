// SPDX-License-Identifier: Apache-2.0
/*
 * acpi: reads the ACPI tables the monitor built (guest/kit/acpi.c) and
 * prints one "acpi: KIND key=value ..." line per finding, for a test to
 * compare with what the monitor was given: where the RSDP came from, each
 * table with its checksum, the FADT flags, the MADT, every DSDT device with
 * its resources, the VMGenID address and the 16 bytes there, the memory map.
 * Ends with "acpi: result ok|none|error ..." and exits 0 (all checked out),
 * 1 (a table or the AML failed a check) or 2 (no RSDP anywhere).
 *
 * wait=1: instead of exiting, unmask the GED's interrupt at the IOAPIC (IF
 * stays clear: it stays pending in the local APIC's IRR) and, for every byte
 * that arrives on COM1, print "vmgenid: n=N id=HEX ged=0|1"; 'q' exits. A
 * test snapshots the guest while it waits and asks each restored clone.
 *
 * All of it runs at ring 0, which is emulated here: the tables are a few
 * KiB, so the parse is a few ms; the serial output costs the most.
 */
#include "acpi.h"
#include "kit.h"

#define UART_LSR (KIT_COM1 + 5)
#define UART_LSR_DR 0x01
#define LAPIC_SVR 0xf0
#define LAPIC_IRR 0x200
#define GED_VECTOR 0x40

#define HVM_VERSION 4
#define HVM_MEMMAP_PADDR 40
#define HVM_MEMMAP_ENTRIES 48
#define ZP_E820_ENTRIES 0x1e8
#define ZP_E820_TABLE 0x2d0
#define EBDA_GUESS 0x9fc00 /* where ember (and most loaders) put it */
#define VIRTIO_MMIO_MAGIC 0x74726976u

static struct acpi_info info;

static void kv_hex(const char *key, uint64_t v)
{
	kit_putc(' ');
	kit_puts(key);
	kit_putc('=');
	kit_put_hex(v);
}

static void kv_dec(const char *key, uint64_t v)
{
	kit_putc(' ');
	kit_puts(key);
	kit_putc('=');
	kit_put_dec(v);
}

static void kv_str(const char *key, const char *s)
{
	kit_putc(' ');
	kit_puts(key);
	kit_puts("=\"");
	kit_puts(s);
	kit_putc('"');
}

static void put_hex_byte(uint8_t b)
{
	kit_putc("0123456789abcdef"[b >> 4]);
	kit_putc("0123456789abcdef"[b & 15]);
}

static void put_id(uint64_t addr)
{
	const volatile uint8_t *id = (const volatile uint8_t *)addr;
	kit_puts(" id=");
	for (int i = 0; i < 16; i++)
		put_hex_byte(id[i]);
}

static void report_tables(void)
{
	kit_puts("acpi: sources");
	kv_hex("pvh", info.rsdp_pvh);
	kv_hex("zeropage", info.rsdp_zero_page);
	kv_hex("scan", info.rsdp_scan);
	kit_putc('\n');
	if (info.via == ACPI_VIA_NONE)
		return;
	kit_puts("acpi: rsdp");
	kv_hex("addr", info.rsdp);
	kit_puts(" via=");
	kit_puts(acpi_via_name(info.via));
	kv_dec("rev", info.rsdp_revision);
	kv_dec("len", info.rsdp_length);
	kit_puts(info.rsdp_checksum_ok ? " checksum=ok" : " checksum=bad");
	kit_puts(info.rsdp_xchecksum_ok ? " xchecksum=ok" : " xchecksum=bad");
	kv_str("oem", info.oem_id);
	kv_hex("rsdt", info.rsdt_addr);
	kv_hex("xsdt", info.xsdt_addr);
	kit_putc('\n');
	for (unsigned int i = 0; i < info.nr_tables; i++) {
		const struct acpi_table *t = &info.tables[i];
		kit_puts("acpi: table sig=");
		kit_puts(t->sig);
		kv_hex("addr", t->addr);
		kv_dec("len", t->length);
		kv_dec("rev", t->revision);
		kit_puts(t->checksum_ok ? " checksum=ok" : " checksum=bad");
		kv_str("oem", t->oem_id);
		kv_str("oemtable", t->oem_table_id);
		kit_putc('\n');
	}
	if (info.has_fadt) {
		kit_puts("acpi: fadt");
		kv_hex("flags", info.fadt_flags);
		kv_dec("hw_reduced", (info.fadt_flags >> 20) & 1);
		kv_dec("minor", info.fadt_minor);
		kv_hex("boot_arch", info.fadt_boot_arch);
		kv_hex("dsdt", info.fadt_dsdt);
		kv_hex("x_dsdt", info.fadt_x_dsdt);
		kit_putc('\n');
	}
	if (info.has_madt) {
		kit_puts("acpi: madt");
		kv_hex("lapic_addr", info.lapic_addr);
		kv_hex("flags", info.madt_flags);
		kv_dec("lapics", info.nr_lapics);
		kv_dec("enabled", info.nr_lapics_enabled);
		kv_hex("apic_ids", info.apic_ids);
		kv_hex("uids", info.processor_uids);
		kv_dec("ioapics", info.nr_ioapics);
		kv_hex("ioapic_addr", info.ioapic_addr);
		kv_dec("ioapic_id", info.ioapic_id);
		kv_dec("gsi_base", info.ioapic_gsi_base);
		kv_dec("other", info.nr_madt_other);
		if (info.nr_ioapics) {
			/* What the IOAPIC's own ID register says (register 0, bits 24-27). */
			volatile uint32_t *io = (volatile uint32_t *)(uint64_t)info.ioapic_addr;
			io[0] = 0;
			kv_dec("ioapic_hw_id", (io[4] >> 24) & 0xf);
		}
		kit_putc('\n');
	}
}

static void report_device(const struct acpi_device *d)
{
	kit_puts("acpi: dev path=");
	kit_puts(d->path);
	if (d->hid[0])
		kv_str("hid", d->hid);
	if (d->cid[0])
		kv_str("cid", d->cid);
	if (d->ddn[0])
		kv_str("ddn", d->ddn);
	if (d->has_uid)
		kv_dec("uid", d->uid);
	for (unsigned int i = 0; i < d->nr_io; i++) {
		kv_hex("io", d->io[i].min);
		kit_putc('-');
		kit_put_hex(d->io[i].max);
		kit_putc('/');
		kit_put_dec(d->io[i].len);
	}
	for (unsigned int i = 0; i < d->nr_mem; i++) {
		kv_hex("mem", d->mem[i].base);
		kit_putc('/');
		kit_put_hex(d->mem[i].len);
		kit_puts(d->mem[i].writable ? "/rw" : "/ro");
	}
	for (unsigned int i = 0; i < d->nr_irq; i++) {
		kv_dec("irq", d->irq[i].gsi);
		kit_putc('/');
		kit_put_hex(d->irq[i].flags);
		kit_puts(d->irq[i].extended ? "/ext" : "/legacy");
	}
	/* A virtio-mmio window: which device answers there, and the first
	 * config bytes (a drive's capacity, a NIC's MAC, a vsock's CID). */
	if (strcmp(d->hid, "LNRO0005") == 0 && d->nr_mem && d->mem[0].len >= 0x108) {
		const volatile uint32_t *r = (const volatile uint32_t *)d->mem[0].base;
		if (r[0] == VIRTIO_MMIO_MAGIC) {
			kv_dec("virtio_id", r[2]);
			kv_hex("config", r[0x100 / 4] | (uint64_t)r[0x104 / 4] << 32);
		}
	}
	if (d->nr_other_res)
		kv_dec("other_res", d->nr_other_res);
	if (d->nr_addr) {
		kv_hex("addr", d->addr[0]);
		kit_putc(',');
		kit_put_hex(d->addr[1]);
	}
	for (unsigned int i = 0; i < d->nr_methods; i++) {
		kit_puts(" method=");
		kit_puts(d->method[i].name);
		kit_putc('/');
		kit_put_dec(d->method[i].args);
		if (d->method[i].has_notify) {
			const struct acpi_notify *n = &d->method[i].notify;
			kit_puts("/if(arg");
			kit_put_dec(n->arg);
			kit_puts("==");
			kit_put_dec(n->value);
			kit_puts("):notify(");
			kit_puts(n->target);
			kit_putc(',');
			kit_put_hex(n->code);
			kit_putc(')');
		}
	}
	kit_putc('\n');
}

/* The MP floating pointer (MP spec 1.4: EBDA's first KiB, then the BIOS
 * area) and its configuration table's processor entries: whether a monitor
 * gave the guest the legacy description too. */
static void report_mptable(void)
{
	uint64_t fp = 0;
	for (uint64_t a = EBDA_GUESS; a < 0x100000 && !fp; a += 16) {
		if (a == EBDA_GUESS + 1024)
			a = 0xf0000;
		if (*(const uint32_t *)a == 0x5f504d5fu /* "_MP_" */)
			fp = a;
	}
	uint64_t cpus = 0;
	uint32_t cfg = fp ? *(const uint32_t *)(fp + 4) : 0;
	if (cfg && cfg < 0xa0000 && *(const uint32_t *)(uint64_t)cfg == 0x504d4350u /* "PCMP" */) {
		const uint8_t *e = (const uint8_t *)(uint64_t)cfg + 44;
		uint16_t n = *(const uint16_t *)(uint64_t)(cfg + 34);
		for (uint16_t i = 0; i < n && i < 256; i++) {
			cpus += e[0] == 0;
			e += e[0] == 0 ? 20 : 8;
		}
	}
	kit_puts("acpi: mptable");
	kv_hex("addr", fp);
	kv_dec("cpus", cpus);
	kit_putc('\n');
}

static void report_e820_entry(uint64_t addr, uint64_t size, uint32_t type)
{
	kit_puts("acpi: e820");
	kv_hex("addr", addr);
	kv_hex("size", size);
	kv_dec("type", type);
	kit_putc('\n');
}

/* The memory map the boot protocol passed: PVH's or the zero page's. */
static void report_e820(void)
{
	const uint8_t *si = (const uint8_t *)kit_start_info();
	const uint8_t *zp = (const uint8_t *)kit_zero_page();
	if (si && *(const uint32_t *)(si + HVM_VERSION) >= 1) {
		const uint8_t *m = (const uint8_t *)*(const uint64_t *)(si + HVM_MEMMAP_PADDR);
		uint32_t n = *(const uint32_t *)(si + HVM_MEMMAP_ENTRIES);
		for (uint32_t i = 0; m && i < n && i < 128; i++, m += 24)
			report_e820_entry(*(const uint64_t *)m, *(const uint64_t *)(m + 8),
					  *(const uint32_t *)(m + 16));
	} else if (zp) {
		const uint8_t *e = zp + ZP_E820_TABLE;
		for (uint8_t i = 0; i < zp[ZP_E820_ENTRIES] && i < 128; i++, e += 20)
			report_e820_entry(*(const uint64_t *)e, *(const uint64_t *)(e + 8),
					  *(const uint32_t *)(e + 16));
	}
}

/* Route @gsi to this CPU as GED_VECTOR, edge, active high, unmasked. */
static void ged_unmask(uint32_t gsi)
{
	volatile uint32_t *ioapic = (volatile uint32_t *)(uint64_t)info.ioapic_addr;
	volatile uint32_t *svr = (volatile uint32_t *)(info.lapic_addr + (uint64_t)LAPIC_SVR);
	*svr = *svr | 0x100; /* software-enable the local APIC: else it drops the vector */
	ioapic[0] = 0x10 + 2 * (gsi - info.ioapic_gsi_base) + 1;
	ioapic[4] = 0; /* destination: APIC id 0 */
	ioapic[0] = 0x10 + 2 * (gsi - info.ioapic_gsi_base);
	ioapic[4] = GED_VECTOR;
}

static int ged_pending(void)
{
	const volatile uint32_t *irr =
	    (const volatile uint32_t *)(info.lapic_addr + (uint64_t)LAPIC_IRR +
					0x10 * (GED_VECTOR / 32));
	return (*irr >> (GED_VECTOR % 32)) & 1;
}

static void serve_ids(void)
{
	const struct acpi_device *ged = acpi_find_hid(&info, "ACPI0013");
	if (ged && ged->nr_irq)
		ged_unmask(ged->irq[0].gsi);
	kit_puts("acpi: waiting\n");
	for (uint64_t n = 1;; n++) {
		while (!(inb(UART_LSR) & UART_LSR_DR))
			__asm__ volatile("pause");
		if (inb(KIT_COM1) == 'q')
			kit_exit(0);
		kit_puts("vmgenid: n=");
		kit_put_dec(n);
		put_id(info.vmgenid_addr);
		kv_dec("ged", ged_pending());
		kit_putc('\n');
	}
}

int guest_main(void)
{
	int r = acpi_read(&info);
	report_tables();
	kit_puts("acpi: devices");
	kv_dec("n", info.nr_devices);
	kit_putc('\n');
	for (unsigned int i = 0; i < info.nr_devices; i++)
		report_device(&info.devices[i]);
	if (info.vmgenid_addr) {
		kit_puts("acpi: vmgenid");
		kv_hex("addr", info.vmgenid_addr);
		put_id(info.vmgenid_addr);
		kit_putc('\n');
	}
	report_e820();
	report_mptable();
	kit_puts("acpi: cmdline ");
	kit_puts(kit_cmdline());
	kit_putc('\n');
	if (info.via == ACPI_VIA_NONE) {
		kit_puts("acpi: result none\n");
		return 2;
	}
	if (r < 0) {
		kit_puts("acpi: result error");
		kv_str("what", info.error);
		kv_hex("at", info.error_at);
		kit_putc('\n');
		return 1;
	}
	kit_puts("acpi: result ok\n");
	uint64_t wait = 0;
	if (kit_cmdline_u64("wait=", &wait) == 0 && wait && info.vmgenid_addr)
		serve_ids();
	return 0;
}
