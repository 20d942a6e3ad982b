// SPDX-License-Identifier: Apache-2.0
/*
 * balloon: a virtio-balloon driver in the style of Linux's, polled. The
 * guest touches a pool of pages (the host's RSS grows), waits for the
 * monitor to set a target, inflates by giving that many pool pages (the
 * host releases them), waits for the target to go back to 0, deflates and
 * touches the pages again. With the statistics queue it keeps a statistics
 * buffer posted and refills it each time the device gives it back.
 * Everything after the first instruction runs at ring 3.
 *
 * Command line:
 *   balloon_pool=MiB     pages to touch, from 64 MiB up (default 8)
 *   balloon_rounds=R     statistics requests to answer before exiting
 *                        (default 0; ignored without the statistics queue)
 *   balloon_bad=1        first send malformed chains and bad PFNs: each
 *                        must come back with length 0
 *   balloon_hold=1       stay inflated (never deflate), for snapshots
 *
 * Output, for the tests:
 *   "balloon: device irq=I features=F"     F: the negotiated feature bits
 *   "balloon: bad chains returned"          (with balloon_bad=1)
 *   "balloon: touched P pages"
 *   "balloon: inflated N pages"             after setting actual = N
 *   "balloon: deflated N pages sum=S"       S: of every 8th page, those that
 *                                           read back 0 before being touched
 *                                           again
 *   "balloon: stats request 1"              the device first asked for
 *                                           statistics (later requests show
 *                                           as minor_faults = R in the
 *                                           statistics the guest sends)
 *   "balloon: done"
 * Exit status: 0, 1 on a device error, 2 with no balloon device.
 */
#include "kit.h"
#include "virtio.h"

#define VIRTIO_ID_BALLOON 5
#define F_STATS_VQ 1
#define POOL_GPA (64ull << 20)
#define PAGE 4096u
#define PFNS_MAX 256
#define CFG_NUM_PAGES 0x100
#define CFG_ACTUAL 0x104

/* Statistic tags (virtio 1.2, 5.5.6.3). */
#define S_MINFLT 3
#define S_MEMFREE 4
#define S_MEMTOT 5
#define S_AVAIL 6

struct stat_entry {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue_mem queues[3];
static uint32_t pfns[PFNS_MAX] __attribute__((aligned(4096)));
static struct stat_entry stats[4] __attribute__((aligned(64)));
static uint8_t user_stack[16384] __attribute__((aligned(16)));

static uint64_t arg(const char *key, uint64_t dflt)
{
	uint64_t v;
	return kit_cmdline_u64(key, &v) == 0 ? v : dflt;
}

/* "balloon: <what><n><then>\n" */
static void say(const char *what, uint64_t n, const char *then)
{
	kit_puts("balloon: ");
	kit_puts(what);
	kit_put_dec(n);
	kit_puts(then);
	kit_putc('\n');
}

static void set_actual(struct gv_device *d, uint32_t pages)
{
	*(volatile uint32_t *)(uintptr_t)(d->base + CFG_ACTUAL) = pages;
}

static uint8_t *pool_page(uint64_t i)
{
	return (uint8_t *)(uintptr_t)(POOL_GPA + i * PAGE);
}

/* Give (queue 0) or take back (queue 1) pool pages [first, first + n). */
static int send_pages(struct gv_device *d, unsigned int q, uint64_t first, uint64_t n)
{
	while (n) {
		uint32_t k = n < PFNS_MAX ? (uint32_t)n : PFNS_MAX;
		for (uint32_t i = 0; i < k; i++)
			pfns[i] = (uint32_t)((POOL_GPA >> 12) + first + i);
		struct gv_buf b = { pfns, 4 * k, false };
		if (gv_transfer(d, q, &b, 1) != 0)
			return -1;
		first += k;
		n -= k;
	}
	return 0;
}

/* Chains the device must refuse or skip, each returned with length 0. */
static int send_bad(struct gv_device *d)
{
	int failed = 0;
	/* PFNs outside RAM: the 32-bit MMIO gap, past the end, the largest. */
	pfns[0] = 0xd0000;
	pfns[1] = 0xfffff;
	pfns[2] = 0xffffffffu;
	struct gv_buf b = { pfns, 12, false };
	failed |= gv_transfer(d, 0, &b, 1) != 0;
	/* A length that is not whole PFNs, a writable buffer, too many PFNs. */
	b.len = 6;
	failed |= gv_transfer(d, 0, &b, 1) != 0;
	b = (struct gv_buf){ pfns, 8, true };
	failed |= gv_transfer(d, 1, &b, 1) != 0;
	b = (struct gv_buf){ pfns, 4 * PFNS_MAX + 4, false };
	failed |= gv_transfer(d, 0, &b, 1) != 0;
	return failed;
}

static void post_stats(struct gv_device *d, uint64_t round, uint64_t pool_pages)
{
	stats[0] = (struct stat_entry){ S_MINFLT, round };
	stats[1] = (struct stat_entry){ S_MEMFREE, 1000000 + round };
	stats[2] = (struct stat_entry){ S_MEMTOT, pool_pages * PAGE };
	stats[3] = (struct stat_entry){ S_AVAIL, 7777 };
	struct gv_buf b = { stats, sizeof(stats), false };
	gv_post(d, 2, 0, &b, 1);
}

static void user_main(void)
{
	int n = gv_discover(kit_dtb(), devs, GV_MAX_DEVICES);
	struct gv_device *d = NULL;
	for (int i = 0; i < n && !d; i++)
		if (devs[i].device_id == VIRTIO_ID_BALLOON)
			d = &devs[i];
	if (!d) {
		kit_puts("balloon: no balloon device in the device tree\n");
		kit_exit(2);
	}
	struct gv_queue_mem *qs[3] = { &queues[0], &queues[1], &queues[2] };
	/* Ask for the statistics queue; the kit takes it only if offered. */
	int r = gv_start(d, 1ull << F_STATS_VQ, qs, 3);
	if (r < 0) {
		say("device start failed at step ", (uint64_t)-r, "");
		kit_exit(1);
	}
	bool with_stats = d->features & (1ull << F_STATS_VQ);
	kit_puts("balloon: device irq=");
	kit_put_dec(d->irq);
	kit_puts(" features=");
	kit_put_hex(d->features);
	kit_putc('\n');
	if (arg("balloon_bad=", 0)) {
		if (send_bad(d))
			kit_exit(1);
		kit_puts("balloon: bad chains returned\n");
	}
	uint64_t pool = arg("balloon_pool=", 8) << 8, rounds = arg("balloon_rounds=", 0);
	bool hold = arg("balloon_hold=", 0);
	for (uint64_t i = 0; i < pool; i++)
		*(volatile uint8_t *)pool_page(i) = 0xa5;
	say("touched ", pool, " pages");
	uint64_t round = 0, inflated = 0;
	if (with_stats)
		post_stats(d, round, pool);
	enum { WAIT_TARGET, WAIT_ZERO, DONE } phase = WAIT_TARGET;
	for (;;) {
		uint16_t head;
		uint32_t len;
		if (with_stats && gv_take_used(d, 2, &head, &len) == 0) {
			/* Only the first is printed: each character is an exit,
			 * slow enough on a loaded host to miss the next request. */
			if (++round == 1)
				say("stats request ", round, "");
			post_stats(d, round, pool);
		}
		uint32_t target = gv_config32(d, 0);
		if (phase == WAIT_TARGET && target) {
			inflated = target < pool ? target : pool;
			if (send_pages(d, 0, 0, inflated) < 0)
				kit_exit(1);
			set_actual(d, (uint32_t)inflated);
			say("inflated ", inflated, " pages");
			phase = WAIT_ZERO;
		} else if (phase == WAIT_ZERO && !target && !hold) {
			if (send_pages(d, 1, 0, inflated) < 0)
				kit_exit(1);
			set_actual(d, 0);
			/* Released pages read back as zeros, then are ours again:
			 * every 8th page (each touch is a host page fault, slow
			 * under nested virtualisation). */
			uint64_t zeros = 0;
			for (uint64_t i = 0; i < inflated; i += 8) {
				zeros += *(volatile uint8_t *)pool_page(i) == 0;
				*(volatile uint8_t *)pool_page(i) = 0x5a;
			}
			kit_puts("balloon: deflated ");
			kit_put_dec(inflated);
			kit_puts(" pages sum=");
			kit_put_dec(zeros);
			kit_putc('\n');
			phase = DONE;
		}
		if (phase == DONE && (!with_stats || round >= rounds)) {
			kit_puts("balloon: done\n");
			kit_exit(0);
		}
		uint64_t t0 = rdtsc();
		while (rdtsc() - t0 < 20000000)
			__asm__ volatile("pause");
	}
}

int guest_main(void)
{
	kit_enter_user(user_main, user_stack + sizeof(user_stack));
}
