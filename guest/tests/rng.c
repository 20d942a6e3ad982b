// SPDX-License-Identifier: Apache-2.0
/*
 * rng: reads entropy from the virtio-rng device the device tree lists.
 * Everything after the first instruction runs at ring 3 (native speed on
 * the development machines): discovery with libfdt, the virtio driver,
 * the checks.
 *
 * Command line:
 *   rng_bytes=N  bytes to read (default 4096)
 *   rng_chunk=C  bytes per request, 1 to 65536 (default 512)
 *   rng_bad=1    first post a chain whose one buffer is device-readable:
 *                the device must give it back with length 0
 *   rng_loop=1   read rng_bytes again and again, rng_spin million TSC
 *                cycles apart (default 100), until the monitor stops it
 *
 * Output, for the tests:
 *   "rng: device irq=I"
 *   "rng: bad chain len=L"                  (with rng_bad=1)
 *   "rng: start"                            just before the first request
 *   "rng: read N bytes in K requests short=S nonzero=Z digest=D head=H"
 *   "rng: pass P short=S nonzero=Z head=H"  (with rng_loop=1)
 * short counts requests that came back with less than asked; nonzero the
 * bytes that are not 0 (random bytes: about 255 in 256); D is the FNV-1a
 * 64 of every byte read and H the first 16 bytes in hex.
 * Exit status: 0 when every request came back full and the bytes look
 * random, 1 otherwise, 2 with no entropy device.
 */
#include "kit.h"
#include "virtio.h"

#define VIRTIO_ID_RNG 4
#define MAX_CHUNK 65536

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue_mem queue;
static uint8_t buf[MAX_CHUNK] __attribute__((aligned(4096)));
static uint8_t user_stack[16384] __attribute__((aligned(16)));

struct pass {
	uint64_t requests, bytes, shorts, nonzero, digest;
	uint8_t head[16];
};

static uint64_t arg(const char *key, uint64_t dflt)
{
	uint64_t v;
	return kit_cmdline_u64(key, &v) == 0 ? v : dflt;
}

static void put_hex_bytes(const uint8_t *p, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		kit_putc("0123456789abcdef"[p[i] >> 4]);
		kit_putc("0123456789abcdef"[p[i] & 15]);
	}
}

static void read_bytes(struct gv_device *d, uint64_t total, uint32_t chunk, struct pass *p)
{
	*p = (struct pass){ .digest = 0xcbf29ce484222325ull };
	while (p->bytes < total) {
		uint32_t want = total - p->bytes < chunk ? (uint32_t)(total - p->bytes) : chunk;
		/* Zeros first: what the device did not write reads as 0. */
		memset(buf, 0, want);
		struct gv_buf b = { buf, want, true };
		uint32_t got = gv_transfer(d, 0, &b, 1);
		p->requests++;
		if (got != want)
			p->shorts++;
		if (got > want)
			got = want;
		for (uint32_t i = 0; i < got; i++) {
			uint8_t v = *(volatile uint8_t *)&buf[i]; /* written by the device */
			if (p->bytes + i < sizeof(p->head))
				p->head[p->bytes + i] = v;
			p->nonzero += v != 0;
			p->digest = (p->digest ^ v) * 0x100000001b3ull;
		}
		p->bytes += got;
		if (!got)
			break; /* the device gives nothing: stop rather than spin */
	}
}

/* Random bytes: no short request, and not more than 4x the zeros expected. */
static bool pass_ok(const struct pass *p, uint64_t total)
{
	return p->shorts == 0 && p->bytes == total && p->nonzero + total / 64 + 4 >= total;
}

static void put_stats(const struct pass *p)
{
	kit_puts(" short=");
	kit_put_dec(p->shorts);
	kit_puts(" nonzero=");
	kit_put_dec(p->nonzero);
}

static void user_main(void)
{
	int n = gv_discover(kit_dtb(), devs, GV_MAX_DEVICES);
	struct gv_device *d = NULL;
	for (int i = 0; i < n && !d; i++)
		if (devs[i].device_id == VIRTIO_ID_RNG)
			d = &devs[i];
	if (!d) {
		kit_puts("rng: no entropy device in the device tree\n");
		kit_exit(2);
	}
	uint64_t total = arg("rng_bytes=", 4096), chunk = arg("rng_chunk=", 512);
	if (chunk < 1 || chunk > MAX_CHUNK)
		chunk = 512;
	struct gv_queue_mem *q = &queue;
	int r = gv_start(d, 0, &q, 1);
	if (r < 0) {
		kit_puts("rng: device start failed at step ");
		kit_put_dec((uint64_t)-r);
		kit_putc('\n');
		kit_exit(1);
	}
	kit_puts("rng: device irq=");
	kit_put_dec(d->irq);
	kit_putc('\n');
	int failed = 0;
	if (arg("rng_bad=", 0)) {
		/* A buffer the device may only read: it must write nothing. */
		memset(buf, 0xa5, 64);
		struct gv_buf b = { buf, 64, false };
		uint32_t len = gv_transfer(d, 0, &b, 1);
		for (int i = 0; i < 64; i++)
			failed |= *(volatile uint8_t *)&buf[i] != 0xa5;
		failed |= len != 0;
		kit_puts("rng: bad chain len=");
		kit_put_dec(len);
		kit_putc('\n');
	}
	struct pass p;
	kit_puts("rng: start\n");
	read_bytes(d, total, (uint32_t)chunk, &p);
	kit_puts("rng: read ");
	kit_put_dec(p.bytes);
	kit_puts(" bytes in ");
	kit_put_dec(p.requests);
	kit_puts(" requests");
	put_stats(&p);
	kit_puts(" digest=");
	kit_put_hex(p.digest);
	kit_puts(" head=");
	put_hex_bytes(p.head, p.bytes < 16 ? (unsigned int)p.bytes : 16);
	kit_putc('\n');
	failed |= !pass_ok(&p, total);
	for (uint64_t pass = 1; arg("rng_loop=", 0); pass++) {
		uint64_t t0 = rdtsc(), spin = arg("rng_spin=", 100) * 1000000;
		while (rdtsc() - t0 < spin)
			__asm__ volatile("pause");
		read_bytes(d, total, (uint32_t)chunk, &p);
		kit_puts("rng: pass ");
		kit_put_dec(pass);
		put_stats(&p);
		kit_puts(" head=");
		put_hex_bytes(p.head, p.bytes < 16 ? (unsigned int)p.bytes : 16);
		kit_puts(pass_ok(&p, total) ? " ok\n" : " failed\n");
	}
	kit_exit((unsigned int)failed);
}

int guest_main(void)
{
	kit_enter_user(user_main, user_stack + sizeof(user_stack));
}
