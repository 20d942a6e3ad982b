// SPDX-License-Identifier: Apache-2.0
/* The device tree, read back with libfdt as a guest would. */
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devtree.h"
#include "fake_mem.h"

#define GiB (1ull << 30)

static void tree_describes_memory_chosen_and_devices(void **state)
{
	(void)state;
	static uint8_t buf[DTB_MAX];
	struct guest_mem mem;
	assert_int_equal(guest_mem_layout(&mem, 5 * GiB, MMIO_GAP_START, MMIO_GAP_END), 0);
	struct fdt_mmio_device devs[3] = { { 0xd0001000, 0x1000, 5 },
					   { 0xd0002000, 0x1000, 6 },
					   { 0xd0003000, 0x1000, 7 } };
	struct fdt_params p = { .cmdline = "console=ttyS0 virtio_mmio.device=4K@0xd0001000:5",
				.initrd_addr = 0x8000000,
				.initrd_size = 4096,
				.devices = devs,
				.nr_devices = 3 };
	int len = fdt_build(buf, sizeof(buf), &mem, &p);
	assert_true(len > 0 && len < (int)sizeof(buf));
	assert_int_equal(fdt_check_header(buf), 0);

	int chosen = fdt_path_offset(buf, "/chosen");
	assert_true(chosen >= 0);
	assert_string_equal(fdt_getprop(buf, chosen, "bootargs", NULL), p.cmdline);
	const fdt64_t *start = fdt_getprop(buf, chosen, "linux,initrd-start", NULL);
	assert_int_equal(fdt64_to_cpu(*start), 0x8000000);

	int mem_nodes = 0;
	for (int off = fdt_node_offset_by_prop_value(buf, -1, "device_type", "memory", 7); off >= 0;
	     off = fdt_node_offset_by_prop_value(buf, off, "device_type", "memory", 7)) {
		const fdt64_t *reg = fdt_getprop(buf, off, "reg", NULL);
		if (mem_nodes == 1) {
			assert_int_equal(fdt64_to_cpu(reg[0]), 4 * GiB);
			assert_int_equal(fdt64_to_cpu(reg[1]), 2 * GiB);
		}
		mem_nodes++;
	}
	assert_int_equal(mem_nodes, 2);

	int n = 0;
	for (int off = fdt_node_offset_by_compatible(buf, -1, "virtio,mmio"); off >= 0;
	     off = fdt_node_offset_by_compatible(buf, off, "virtio,mmio"), n++) {
		const fdt64_t *reg = fdt_getprop(buf, off, "reg", NULL);
		const fdt32_t *irq = fdt_getprop(buf, off, "interrupts", NULL);
		assert_int_equal(fdt64_to_cpu(reg[0]), devs[n].base);
		assert_int_equal(fdt64_to_cpu(reg[1]), 0x1000);
		assert_int_equal(fdt32_to_cpu(*irq), devs[n].irq);
	}
	assert_int_equal(n, 3);

	/* Too small a buffer is an error, not an overflow. */
	assert_true(fdt_build(buf, 64, &mem, &p) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tree_describes_memory_chosen_and_devices),
	};
	return cmocka_run_group_tests_name("devtree", tests, NULL, NULL);
}
