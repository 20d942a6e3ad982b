// SPDX-License-Identifier: Apache-2.0
/* The checked door into guest memory: boundaries and overflow. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_mem.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void layout_below_gap_is_one_region(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(guest_mem_layout(&mem, 128 * MiB, MMIO_GAP_START, MMIO_GAP_END), 0);
	assert_int_equal(mem.nr_regions, 1);
	assert_int_equal(mem.regions[0].gpa, 0);
	assert_int_equal(mem.regions[0].size, 128 * MiB);
	assert_int_equal(guest_mem_end(&mem), 128 * MiB);
}

static void layout_above_gap_splits_at_3g(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(guest_mem_layout(&mem, 5 * GiB, MMIO_GAP_START, MMIO_GAP_END), 0);
	assert_int_equal(mem.nr_regions, 2);
	assert_int_equal(mem.regions[0].size, 3 * GiB);
	assert_int_equal(mem.regions[1].gpa, 4 * GiB);
	assert_int_equal(mem.regions[1].size, 2 * GiB);
	assert_int_equal(mem.size, 5 * GiB);
	assert_int_equal(guest_mem_end(&mem), 6 * GiB);
}

static void layout_rejects_bad_sizes(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(guest_mem_layout(&mem, 0, MMIO_GAP_START, MMIO_GAP_END), -EINVAL);
	assert_int_equal(guest_mem_layout(&mem, 4097, MMIO_GAP_START, MMIO_GAP_END), -EINVAL);
	/* RAM past the gap that would wrap the address space. */
	assert_int_equal(
	    guest_mem_layout(&mem, UINT64_MAX & ~0xfffull, MMIO_GAP_START, MMIO_GAP_END), -EINVAL);
}

static void ptr_checks_boundaries(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(fake_mem_init(&mem, 16 * MiB), 0);
	uint8_t *base = mem.regions[0].host;
	assert_ptr_equal(guest_mem_ptr(&mem, 0, 16 * MiB), base);
	assert_ptr_equal(guest_mem_ptr(&mem, 16 * MiB - 1, 1), base + 16 * MiB - 1);
	assert_null(guest_mem_ptr(&mem, 16 * MiB - 1, 2));
	assert_null(guest_mem_ptr(&mem, 16 * MiB, 0));
	assert_null(guest_mem_ptr(&mem, 16 * MiB, 1));
	assert_null(guest_mem_ptr(&mem, 0, 16 * MiB + 1));
	assert_ptr_equal(guest_mem_ptr(&mem, 4096, 0), base + 4096);
	fake_mem_free(&mem);
}

static void ptr_rejects_overflow(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(fake_mem_init(&mem, 16 * MiB), 0);
	/* gpa + len wraps to a small number that would look in range. */
	assert_null(guest_mem_ptr(&mem, 0x1000, UINT64_MAX));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX - 0xfff, 0x2000));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, 0));
	fake_mem_free(&mem);
}

static void ptr_never_spans_regions_or_the_gap(void **state)
{
	(void)state;
	struct guest_mem mem;
	/* Lay out 3 GiB + 4 KiB without backing the big low region. */
	assert_int_equal(guest_mem_layout(&mem, 3 * GiB + 4096, MMIO_GAP_START, MMIO_GAP_END), 0);
	static uint8_t low_fake, high[4096];
	mem.regions[0].host = &low_fake; /* never dereferenced by guest_mem_ptr */
	mem.regions[1].host = high;
	assert_null(guest_mem_ptr(&mem, 3 * GiB - 8, 16)); /* into the gap */
	assert_null(guest_mem_ptr(&mem, 3 * GiB, 1)); /* gap start */
	assert_null(guest_mem_ptr(&mem, 4 * GiB - 1, 2)); /* gap end into RAM */
	assert_ptr_equal(guest_mem_ptr(&mem, 4 * GiB, 4096), high);
	assert_null(guest_mem_ptr(&mem, 4 * GiB, 4097));
	assert_null(guest_mem_ptr(&mem, 3 * GiB - 1, 4 * GiB)); /* across both */
	assert_int_equal(guest_mem_room(&mem, 4 * GiB + 100), 4096 - 100);
	assert_int_equal(guest_mem_room(&mem, 3 * GiB + 5), 0);
}

static void read_write_fail_cleanly(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(fake_mem_init(&mem, 2 * MiB), 0);
	uint64_t v = 0x1122334455667788ull, out = 0;
	assert_int_equal(guest_mem_write(&mem, 2 * MiB - 8, &v, 8), 0);
	assert_int_equal(guest_mem_read(&mem, 2 * MiB - 8, &out, 8), 0);
	assert_int_equal(out, v);
	assert_int_equal(guest_mem_write(&mem, 2 * MiB - 4, &v, 8), -EFAULT);
	assert_int_equal(guest_mem_read(&mem, 2 * MiB - 4, &out, 8), -EFAULT);
	fake_mem_free(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layout_below_gap_is_one_region),
		cmocka_unit_test(layout_above_gap_splits_at_3g),
		cmocka_unit_test(layout_rejects_bad_sizes),
		cmocka_unit_test(ptr_checks_boundaries),
		cmocka_unit_test(ptr_rejects_overflow),
		cmocka_unit_test(ptr_never_spans_regions_or_the_gap),
		cmocka_unit_test(read_write_fail_cleanly),
	};
	return cmocka_run_group_tests_name("guest_mem", tests, NULL, NULL);
}
