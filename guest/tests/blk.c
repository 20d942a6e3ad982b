// SPDX-License-Identifier: Apache-2.0
/*
 * blk: exercises every virtio-blk drive the device tree lists. Everything
 * after the first instruction runs at ring 3, where this machine runs guest
 * code natively: device discovery with libfdt, the virtio driver, the
 * patterns.
 *
 * Per drive: GET_ID, capacity; on a writable drive, write a pattern over
 * every sector (64 KiB requests), flush, read back and verify; on a
 * read-only drive, check that a write fails with IOERR and read it all.
 * The pattern word at byte offset o of sector s on drive d is
 * (d << 28) ^ (s * 0x9e3779b1) ^ (o / 4).
 *
 * mode=durable: on drive 0, write the pattern sector by sector, flush, print
 * "blk: durable acked N" and spin, for a test that kills the monitor then.
 * mode=2 (busy): run the drive 0 test over and over, printing
 * "blk: pass N ok" (or "failed") after each, until the monitor stops it.
 * mode=3 (stay): test every drive once, print "blk: done failed=N" and
 * spin, so a test can look at the monitor (API, metrics) after the guest's
 * last request and then stop it.
 * A request that fails where it should not is printed as
 * "blk D: OUT|IN|FLUSH sector S status X", X the status the device wrote.
 * Exit status: 0 when every check passed, 1 otherwise, 2 with no drive.
 */
#include "kit.h"
#include "virtio.h"

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_F_RO (1ull << 5)
#define BLK_F_FLUSH (1ull << 9)
#define CHUNK_SECTORS 128

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue_mem queues[GV_MAX_DEVICES];
static uint32_t data[CHUNK_SECTORS * 128] __attribute__((aligned(4096)));
static char serial[21];
static uint8_t user_stack[16384] __attribute__((aligned(16)));

static void fill(uint32_t drive, uint64_t sector, uint32_t nsec)
{
	for (uint32_t s = 0; s < nsec; s++)
		for (uint32_t w = 0; w < 128; w++)
			data[s * 128 + w] =
			    (drive << 28) ^ (uint32_t)((sector + s) * 0x9e3779b1u) ^ w;
}

static uint64_t check(uint32_t drive, uint64_t sector, uint32_t nsec)
{
	uint64_t good = 0;
	for (uint32_t s = 0; s < nsec; s++) {
		uint32_t ok = 1;
		for (uint32_t w = 0; w < 128; w++)
			ok &= data[s * 128 + w] ==
			    ((drive << 28) ^ (uint32_t)((sector + s) * 0x9e3779b1u) ^ w);
		good += ok;
	}
	return good;
}

/* Issue a request; print it when its status is not @want. */
static bool request(uint32_t i, struct gv_device *d, uint32_t type, uint64_t sector, void *buf,
		    uint32_t len, uint8_t want)
{
	uint8_t st = gv_blk_request(d, type, sector, buf, len);
	if (st == want)
		return true;
	kit_puts("blk ");
	kit_put_dec(i);
	kit_puts(type == BLK_T_OUT ? ": OUT" : type == BLK_T_IN ? ": IN" : ": FLUSH");
	kit_puts(" sector ");
	kit_put_dec(sector);
	kit_puts(" status ");
	kit_put_dec(st);
	kit_putc('\n');
	return false;
}

static void report(uint32_t i, const char *what, uint64_t v)
{
	kit_puts(" ");
	kit_puts(what);
	kit_putc('=');
	kit_put_dec(v);
	(void)i;
}

static int test_drive(uint32_t i, struct gv_device *d)
{
	int errors = 0;
	struct gv_queue_mem *q = &queues[i];
	int r = gv_start(d, BLK_F_RO | BLK_F_FLUSH, &q, 1);
	if (r < 0) {
		kit_puts("blk: device start failed at step ");
		kit_put_dec((uint64_t)-r);
		kit_putc('\n');
		return 1;
	}
	uint64_t capacity = gv_config32(d, 0) | (uint64_t)gv_config32(d, 4) << 32;
	bool ro = d->features & BLK_F_RO;
	memset(serial, 0, sizeof(serial));
	if (gv_blk_request(d, BLK_T_GET_ID, 0, serial, 20) != BLK_S_OK)
		errors++;
	uint64_t wrote = 0, verified = 0;
	if (ro) {
		fill(i, 0, 1);
		if (!request(i, d, BLK_T_OUT, 0, data, 512, BLK_S_IOERR))
			errors++;
	} else {
		for (uint64_t s = 0; s < capacity; s += CHUNK_SECTORS) {
			uint32_t n =
			    capacity - s < CHUNK_SECTORS ? (uint32_t)(capacity - s) : CHUNK_SECTORS;
			fill(i, s, n);
			if (request(i, d, BLK_T_OUT, s, data, n * 512, BLK_S_OK))
				wrote += n;
			else
				errors++;
		}
		if (!request(i, d, BLK_T_FLUSH, 0, NULL, 0, BLK_S_OK))
			errors++;
	}
	uint64_t read = 0;
	for (uint64_t s = 0; s < capacity; s += CHUNK_SECTORS) {
		uint32_t n =
		    capacity - s < CHUNK_SECTORS ? (uint32_t)(capacity - s) : CHUNK_SECTORS;
		memset(data, 0, n * 512);
		if (!request(i, d, BLK_T_IN, s, data, n * 512, BLK_S_OK)) {
			errors++;
			continue;
		}
		read += n;
		if (!ro)
			verified += check(i, s, n);
	}
	/* Past the end of the disk must fail. */
	if (!request(i, d, BLK_T_IN, capacity, data, 512, BLK_S_IOERR))
		errors++;
	kit_puts("blk ");
	kit_put_dec(i);
	kit_puts(": id=");
	kit_puts(serial);
	report(i, "capacity", capacity);
	report(i, "ro", ro);
	report(i, "irq", d->irq);
	report(i, "wrote", wrote);
	report(i, "read", read);
	report(i, "verified", verified);
	report(i, "errors", (uint64_t)errors);
	kit_putc('\n');
	return errors || (!ro && verified != capacity) || read != capacity;
}

static void durable(struct gv_device *d)
{
	struct gv_queue_mem *q = &queues[0];
	if (gv_start(d, BLK_F_FLUSH, &q, 1) < 0)
		kit_exit(1);
	uint64_t capacity = gv_config32(d, 0) | (uint64_t)gv_config32(d, 4) << 32;
	uint64_t acked = 0;
	for (uint64_t s = 0; s < capacity; s++) {
		fill(0, s, 1);
		if (gv_blk_request(d, BLK_T_OUT, s, data, 512) != BLK_S_OK)
			kit_exit(1);
		acked++;
	}
	if (gv_blk_request(d, BLK_T_FLUSH, 0, NULL, 0) != BLK_S_OK)
		kit_exit(1);
	kit_puts("blk: durable acked ");
	kit_put_dec(acked);
	kit_putc('\n');
	for (;;)
		__asm__ volatile("pause");
}

static void user_main(void)
{
	int n = gv_discover(kit_dtb(), devs, GV_MAX_DEVICES);
	kit_puts("blk: ");
	kit_put_dec(n < 0 ? 0 : (uint64_t)n);
	kit_puts(" virtio-mmio device(s) in the device tree\n");
	int failed = 0, drives = 0;
	uint64_t mode = 0;
	kit_cmdline_u64("mode=", &mode);
	for (int i = 0; i < n; i++) {
		if (devs[i].device_id != 2)
			continue;
		if (mode == 1)
			durable(&devs[i]);
		for (uint64_t pass = 1; mode == 2; pass++) {
			int bad = test_drive(0, &devs[i]);
			kit_puts("blk: pass ");
			kit_put_dec(pass);
			kit_puts(bad ? " failed\n" : " ok\n");
		}
		failed |= test_drive((uint32_t)drives++, &devs[i]);
	}
	if (mode == 3 && drives) {
		kit_puts("blk: done failed=");
		kit_put_dec((uint64_t)failed);
		kit_putc('\n');
		for (;;)
			__asm__ volatile("pause");
	}
	kit_exit(drives == 0 ? 2 : failed);
}

int guest_main(void)
{
	kit_enter_user(user_main, user_stack + sizeof(user_stack));
}
