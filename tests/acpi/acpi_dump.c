// SPDX-License-Identifier: Apache-2.0
/*
 * Write the ACPI tables ember would give a VM with VCPUS vCPUs and DEVICES
 * virtio-mmio devices into DIR, one file per table (rsdp, xsdt, facp,
 * apic, dsdt .dat), for acpica-tools (iasl -d, acpiexec) to check.
 *
 *   acpi-dump VCPUS DEVICES DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"
#include "arch/x86_64/layout.h"

static uint8_t tables[ACPI_TABLES_END - ACPI_TABLES_START];

static int dump(const char *dir, const char *name, uint64_t gpa, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(tables + (gpa - ACPI_TABLES_START), 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "acpi-dump: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static uint32_t table_len(uint64_t gpa)
{
	uint32_t len;
	memcpy(&len, tables + (gpa - ACPI_TABLES_START) + 4, sizeof(len));
	return len;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: acpi-dump VCPUS DEVICES DIR\n");
		return 2;
	}
	unsigned int vcpus = (unsigned int)strtoul(argv[1], NULL, 10);
	unsigned int nr = (unsigned int)strtoul(argv[2], NULL, 10);
	struct fdt_mmio_device devs[VIRTIO_MAX_DEVICES];
	if (nr > VIRTIO_MAX_DEVICES) {
		fprintf(stderr, "acpi-dump: at most %d devices\n", VIRTIO_MAX_DEVICES);
		return 2;
	}
	for (unsigned int i = 0; i < nr; i++)
		devs[i] = (struct fdt_mmio_device){ .base = VIRTIO_MMIO_BASE + 0x1000ull * i,
						    .size = 0x1000,
						    .irq = VIRTIO_IRQ_BASE + i };
	struct acpi_params p = { .nr_vcpus = vcpus, .devices = devs, .nr_devices = nr };
	struct acpi_layout l;
	int r = acpi_build(tables, sizeof(tables), ACPI_TABLES_START, &p, &l);
	if (r < 0) {
		fprintf(stderr, "acpi-dump: %s\n", strerror(-r));
		return 1;
	}
	const char *dir = argv[3];
	if (dump(dir, "rsdp", l.rsdp, 36) || dump(dir, "xsdt", l.xsdt, table_len(l.xsdt)) ||
	    dump(dir, "facp", l.fadt, table_len(l.fadt)) ||
	    dump(dir, "apic", l.madt, table_len(l.madt)) ||
	    dump(dir, "dsdt", l.dsdt, table_len(l.dsdt)))
		return 1;
	printf("rsdp 0x%llx xsdt 0x%llx facp 0x%llx apic 0x%llx dsdt 0x%llx end 0x%llx\n",
	       (unsigned long long)l.rsdp, (unsigned long long)l.xsdt, (unsigned long long)l.fadt,
	       (unsigned long long)l.madt, (unsigned long long)l.dsdt, (unsigned long long)l.end);
	return 0;
}
