// SPDX-License-Identifier: Apache-2.0
/*
 * count: a long computation at ring 3 that records its progress on a
 * virtio-blk drive, for snapshot tests. It runs n= steps (default 3e9) of
 * a xorshift mix; every every= steps (default 2e8) it writes the step and
 * the running value to sector 0 and prints "count: at STEP". At the end it
 * writes "done" with the result to sector 1, flushes, prints
 * "count: done acc=HEX writes=N" and exits 0. A run snapshotted and restored
 * anywhere in between must end with the same acc as an uninterrupted one.
 * Exit status: 0 done, 1 an I/O error, 2 no drive.
 */
#include "kit.h"
#include "virtio.h"

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_F_FLUSH (1ull << 9)

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue_mem queue;
static uint64_t sector[64] __attribute__((aligned(512)));
static uint8_t user_stack[16384] __attribute__((aligned(16)));

static int blk_req(struct gv_device *d, uint32_t type, uint64_t s, void *buf, uint32_t len)
{
	return gv_blk_request(d, type, s, buf, len) == 0 ? 0 : -1;
}

static int record(struct gv_device *d, uint64_t s, uint64_t tag, uint64_t step, uint64_t acc)
{
	memset(sector, 0, sizeof(sector));
	sector[0] = tag;
	sector[1] = step;
	sector[2] = acc;
	return blk_req(d, BLK_T_OUT, s, sector, sizeof(sector));
}

static void user_main(void)
{
	uint64_t n = 3000000000ull, every = 200000000ull;
	kit_cmdline_u64("n=", &n);
	kit_cmdline_u64("every=", &every);
	if (!every)
		every = n ? n : 1;
	struct gv_device *d = NULL;
	int nd = gv_discover(kit_dtb(), devs, GV_MAX_DEVICES);
	for (int i = 0; i < nd && !d; i++)
		if (devs[i].device_id == 2)
			d = &devs[i];
	struct gv_queue_mem *q = &queue;
	if (!d || gv_start(d, BLK_F_FLUSH, &q, 1) < 0) {
		kit_puts("count: no drive\n");
		kit_exit(2);
	}
	kit_puts("count: start\n");
	uint64_t acc = 0x243f6a8885a308d3ull, writes = 0;
	for (uint64_t step = 1; step <= n; step++) {
		acc ^= acc << 13;
		acc ^= acc >> 7;
		acc ^= acc << 17;
		acc += step;
		if (step % every == 0) {
			if (record(d, 0, 0x50524f4752455353ull /* "PROGRESS" */, step, acc) < 0)
				kit_exit(1);
			writes++;
			kit_puts("count: at ");
			kit_put_dec(step);
			kit_putc('\n');
		}
	}
	if (record(d, 1, 0x454e4f44ull /* "DONE" */, n, acc) < 0 ||
	    blk_req(d, BLK_T_FLUSH, 0, NULL, 0) < 0)
		kit_exit(1);
	kit_puts("count: done acc=");
	kit_put_hex(acc);
	kit_puts(" writes=");
	kit_put_dec(writes);
	kit_putc('\n');
	kit_exit(0);
}

int guest_main(void)
{
	kit_enter_user(user_main, user_stack + sizeof(user_stack));
}
