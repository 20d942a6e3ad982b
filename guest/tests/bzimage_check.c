// SPDX-License-Identifier: Apache-2.0
/*
 * bzimage-check: packaged as a bzImage and entered through the Linux 64-bit
 * boot protocol. Reports what the zero page says (e820 map, command line,
 * initrd) and a checksum of the initrd bytes, for the test to compare with
 * what it passed. Exits 0 when the zero page is self-consistent.
 */
#include "kit.h"

#define ZP_E820_ENTRIES 0x1e8
#define ZP_HDR_HEADER 0x202
#define ZP_TYPE_OF_LOADER 0x210
#define ZP_RAMDISK_IMAGE 0x218
#define ZP_RAMDISK_SIZE 0x21c
#define ZP_CMD_LINE_PTR 0x228
#define ZP_E820_TABLE 0x2d0

struct __attribute__((packed)) e820_entry {
	uint64_t addr, size;
	uint32_t type;
};

int guest_main(void)
{
	const uint8_t *zp = (const uint8_t *)kit_zero_page();
	int bad = 0;
	uint32_t magic = *(const uint32_t *)(zp + ZP_HDR_HEADER);
	uint8_t n = zp[ZP_E820_ENTRIES];
	const struct e820_entry *e820 = (const struct e820_entry *)(zp + ZP_E820_TABLE);
	uint32_t rd_addr = *(const uint32_t *)(zp + ZP_RAMDISK_IMAGE);
	uint32_t rd_size = *(const uint32_t *)(zp + ZP_RAMDISK_SIZE);

	kit_puts("bzimage: header=");
	kit_put_hex(magic);
	kit_puts(" loader=");
	kit_put_hex(zp[ZP_TYPE_OF_LOADER]);
	kit_putc('\n');
	if (magic != 0x53726448u)
		bad = 1;
	if (n == 0 || n > 128)
		bad = 1;
	int initrd_in_ram = rd_size == 0;
	for (uint8_t i = 0; i < n && i < 128; i++) {
		kit_puts("e820: ");
		kit_put_hex(e820[i].addr);
		kit_putc(' ');
		kit_put_hex(e820[i].size);
		kit_putc(' ');
		kit_put_dec(e820[i].type);
		kit_putc('\n');
		if (e820[i].type == 1 && rd_addr >= e820[i].addr &&
		    (uint64_t)rd_addr + rd_size <= e820[i].addr + e820[i].size)
			initrd_in_ram = 1;
	}
	kit_puts("cmdline: ");
	kit_puts(kit_cmdline());
	kit_putc('\n');
	uint64_t sum = 0;
	if (initrd_in_ram) {
		/* The initrd sum is the guest's only long loop: keep initrds small. */
		const uint8_t *p = (const uint8_t *)(uint64_t)rd_addr;
		for (uint32_t i = 0; i < rd_size; i++)
			sum = sum * 31 + p[i];
	} else {
		bad = 1;
	}
	kit_puts("initrd: addr=");
	kit_put_hex(rd_addr);
	kit_puts(" size=");
	kit_put_dec(rd_size);
	kit_puts(" sum=");
	kit_put_hex(sum);
	kit_putc('\n');
	return bad;
}
