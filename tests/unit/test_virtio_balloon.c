// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-balloon on fake guest memory, driven through the real transport
 * registers: the configuration space, inflate PFNs checked and coalesced
 * into runs before they are released, hostile PFNs and chains refused and
 * counted, deflate, queue numbering by negotiated features, the statistics
 * buffer read in place and given back on the timer, free page reporting,
 * and the snapshot state.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_mem.h"
#include "fake_virtq.h"
#include "devices/virtio/balloon/balloon.h"

#define MiB (1ull << 20)
#define MEM_SIZE (64 * MiB)
#define V1 (1ull << VIRTIO_F_VERSION_1)
#define F(bit) (1ull << (bit))
#define BUF (FQ_BUF + 0x10000)

struct env {
	struct guest_mem mem;
	struct virtio_balloon b;
	struct fake_vq q[4];
};

/* What the device released, in order. */
static struct {
	uint8_t *addr[64];
	uint64_t len[64];
	unsigned int n;
	int fail; /* -errno to return */
} released;

static int fake_discard(void *addr, uint64_t len)
{
	if (released.fail)
		return released.fail;
	if (released.n < 64) {
		released.addr[released.n] = addr;
		released.len[released.n] = len;
	}
	released.n++;
	return 0;
}

static uint8_t *host(struct env *e, uint64_t gpa)
{
	return guest_mem_ptr(&e->mem, gpa, 1);
}

/* The device with @cfg, the driver acking @features and bringing @nq queues up. */
static struct env *env_new(const struct balloon_config *cfg, uint64_t features, unsigned int nq)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[200] = "";
	assert_int_equal(fake_mem_init(&e->mem, MEM_SIZE), 0);
	assert_int_equal(virtio_balloon_init(&e->b, &e->mem, cfg, err, sizeof(err)), 0);
	e->b.discard = fake_discard;
	memset(&released, 0, sizeof(released));
	fq_begin(&e->b.transport, features);
	for (unsigned int i = 0; i < nq; i++)
		fq_queue(&e->q[i], &e->b.transport, &e->mem, i, 16, 0x10000 + 0x30000ull * i,
			 0x20000 + 0x30000ull * i, 0x30000 + 0x30000ull * i);
	uint32_t st = fq_driver_ok(&e->b.transport);
	assert_true(st & VIRTIO_STATUS_DRIVER_OK);
	assert_false(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	return e;
}

static void env_free(struct env *e)
{
	close(e->b.timer_fd);
	close(e->b.transport.irq_fd);
	for (int i = 0; i < 4; i++)
		close(e->b.transport.notify_fds[i]);
	fake_mem_free(&e->mem);
	free(e);
}

/* Post PFNs @pfns[0..n) at BUF on queue @qi; returns the used element. */
static struct virtq_used_elem send_pfns(struct env *e, unsigned int qi, const uint32_t *pfns,
					unsigned int n)
{
	memcpy(host(e, BUF), pfns, 4ull * n);
	struct fake_desc d = { BUF, 4 * n, 0 };
	fq_publish(&e->q[qi], fq_add(&e->q[qi], &d, 1));
	fq_kick(&e->q[qi]);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->q[qi], &u), 0);
	assert_int_equal(u.len, 0);
	return u;
}

static void config_space_and_features(void **state)
{
	(void)state;
	struct balloon_config cfg = { .amount_mib = 3, .deflate_on_oom = true };
	struct env *e = env_new(&cfg, V1, 2);
	struct virtio_mmio *t = &e->b.transport;
	assert_int_equal(fq_reg_read(t, 0x008), VIRTIO_ID_BALLOON);
	fq_reg_write(t, 0x014, 0);
	uint32_t f = fq_reg_read(t, 0x010);
	assert_true(f & F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	assert_false(f &
		     (F(VIRTIO_BALLOON_F_STATS_VQ) | F(VIRTIO_BALLOON_F_PAGE_REPORTING) |
		      F(VIRTIO_BALLOON_F_MUST_TELL_HOST)));
	assert_int_equal(fq_reg_read(t, 0x100), 3 * 256);
	assert_int_equal(fq_reg_read(t, 0x104), 0);
	/* The driver writes actual (whole, then one byte); num_pages is the host's. */
	fq_reg_write(t, 0x104, 0x12345);
	uint8_t one = 0x77;
	virtio_mmio_write(t, 0x104, &one, 1);
	fq_reg_write(t, 0x100, 9);
	fq_reg_write(t, 0x10c, 9);
	assert_int_equal(fq_reg_read(t, 0x104), 0x12377);
	assert_int_equal(fq_reg_read(t, 0x100), 768);
	/* Reads past the 16 bytes see zeros; a read across the end too. */
	assert_int_equal(fq_reg_read(t, 0x110), 0);
	uint8_t wide[8];
	virtio_mmio_read(t, 0x10c, wide, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(wide[i], 0);
	/* A new target raises the configuration interrupt. */
	uint64_t before = t->config_updates;
	virtio_balloon_set_target(&e->b, 5);
	assert_int_equal(fq_reg_read(t, 0x100), 5 * 256);
	assert_int_equal(t->config_updates, before + 1);
	assert_true(fq_reg_read(t, 0x060) & VIRTIO_INT_CONFIG);
	env_free(e);
}

static void inflate_releases_checked_runs(void **state)
{
	(void)state;
	struct balloon_config cfg = { .amount_mib = 1 };
	struct env *e = env_new(&cfg, V1, 2);
	/* Two runs (100-102, 200), a repeat, and PFNs outside RAM in between:
	 * the MMIO gap, the end of memory, the largest, the last page. */
	uint32_t pfns[] = { 100,	 101,
			    102,	 0xd0000,
			    200,	 (uint32_t)(MEM_SIZE >> 12),
			    0xffffffffu, (uint32_t)(MEM_SIZE >> 12) - 1 };
	send_pfns(e, 0, pfns, 8);
	assert_int_equal(released.n, 3);
	assert_ptr_equal(released.addr[0], host(e, 100 << 12));
	assert_int_equal(released.len[0], 3 * 4096);
	assert_ptr_equal(released.addr[1], host(e, 200 << 12));
	assert_int_equal(released.len[1], 4096);
	assert_ptr_equal(released.addr[2], host(e, MEM_SIZE - 4096));
	assert_int_equal(e->b.m.inflate_count, 1);
	assert_int_equal(e->b.m.bad_pfns, 3);
	assert_int_equal(e->b.m.event_fails, 3);
	assert_int_equal(e->b.m.inflated_pages, 5);
	/* Deflate releases nothing and counts. */
	send_pfns(e, 1, pfns, 3);
	assert_int_equal(released.n, 3);
	assert_int_equal(e->b.m.deflate_count, 1);
	/* A failing madvise is counted; the chain still comes back. */
	released.fail = -EINVAL;
	send_pfns(e, 0, pfns, 1);
	assert_int_equal(e->b.m.event_fails, 4);
	assert_false(e->b.transport.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	env_free(e);
}

static void malformed_chains_are_refused(void **state)
{
	(void)state;
	struct balloon_config cfg = { 0 };
	struct env *e = env_new(&cfg, V1, 2);
	struct fake_desc odd = { BUF, 6, 0 }, writable = { BUF, 8, VIRTQ_DESC_F_WRITE },
			 big = { BUF, 4 * BALLOON_MAX_PFNS + 4, 0 }, outside = { 0x7fff0000, 8, 0 };
	const struct fake_desc *all[] = { &odd, &writable, &big, &outside };
	memset(host(e, BUF), 0, 4096);
	for (int i = 0; i < 4; i++) {
		fq_publish(&e->q[0], fq_add(&e->q[0], all[i], 1));
		fq_kick(&e->q[0]);
		struct virtq_used_elem u;
		assert_int_equal(fq_take_used(&e->q[0], &u), 0);
		assert_int_equal(u.len, 0);
	}
	assert_int_equal(released.n, 0);
	assert_int_equal(e->b.m.event_fails, 4);
	assert_int_equal(e->b.m.inflate_count, 0);
	/* A corrupt ring needs a reset. */
	struct virtq_avail *a = fq_avail(&e->q[1]);
	a->ring[0] = 99;
	a->idx = 1;
	fq_kick(&e->q[1]);
	assert_true(e->b.transport.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	env_free(e);
}

struct stat_entry {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

static void post_stats(struct env *e, unsigned int qi, const struct stat_entry *s, unsigned int n)
{
	memcpy(host(e, BUF + 0x1000), s, sizeof(*s) * n);
	struct fake_desc d = { BUF + 0x1000, (uint32_t)(sizeof(*s) * n), 0 };
	fq_publish(&e->q[qi], fq_add(&e->q[qi], &d, 1));
	fq_kick(&e->q[qi]);
}

static void statistics_are_read_in_place_and_asked_for_on_the_tick(void **state)
{
	(void)state;
	struct balloon_config cfg = { .stats_polling_interval_s = 1 };
	struct env *e = env_new(&cfg, V1 | F(VIRTIO_BALLOON_F_STATS_VQ), 3);
	assert_int_equal(e->b.role[2], BQ_STATS);
	struct stat_entry s[] = { { 5, 1u << 30 }, { 4, 12345 }, { 99, 7 }, { 15, 1 } };
	post_stats(e, 2, s, 4);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->q[2], &u), -1); /* held on the ring */
	uint32_t target, actual;
	struct balloon_stats st;
	virtio_balloon_read(&e->b, &target, &actual, &st);
	assert_int_equal(st.mask, (1u << 5) | (1u << 4) | (1u << 15));
	assert_int_equal(st.val[5], 1u << 30);
	assert_int_equal(st.val[4], 12345);
	assert_int_equal(e->b.m.stats_updates_count, 1);
	/* A second notification of the same buffer reads nothing new. */
	fq_kick(&e->q[2]);
	assert_int_equal(e->b.m.stats_updates_count, 1);
	/* The tick gives it back, with nothing in flight on the ring. */
	virtio_balloon_stats_tick(&e->b);
	assert_int_equal(fq_take_used(&e->q[2], &u), 0);
	assert_int_equal(u.len, 0);
	assert_int_equal(e->b.m.stats_updates_count, 1);
	/* A tick with no buffer does nothing; the next buffer is read. */
	virtio_balloon_stats_tick(&e->b);
	assert_int_equal(fq_take_used(&e->q[2], &u), -1);
	s[1].val = 54321;
	post_stats(e, 2, s, 2);
	virtio_balloon_read(&e->b, &target, &actual, &st);
	assert_int_equal(st.val[4], 54321);
	assert_int_equal(e->b.m.stats_updates_count, 2);
	/* A malformed buffer (not whole entries, or writable) fails the update. */
	virtio_balloon_stats_tick(&e->b);
	assert_int_equal(fq_take_used(&e->q[2], &u), 0);
	struct fake_desc bad = { BUF + 0x1000, 15, 0 };
	fq_publish(&e->q[2], fq_add(&e->q[2], &bad, 1));
	fq_kick(&e->q[2]);
	assert_int_equal(e->b.m.stats_update_fails, 1);
	/* The interval changes; the timer is armed. */
	assert_int_equal(virtio_balloon_set_interval(&e->b, 7), 0);
	struct itimerspec its;
	assert_int_equal(timerfd_gettime(e->b.timer_fd, &its), 0);
	assert_int_equal(its.it_interval.tv_sec, 7);
	env_free(e);
}

static void reporting_queue_follows_the_negotiated_features(void **state)
{
	(void)state;
	/* Statistics offered but not acked: reporting is queue 2. */
	struct balloon_config cfg = { .stats_polling_interval_s = 1, .free_page_reporting = true };
	struct env *e = env_new(&cfg, V1 | F(VIRTIO_BALLOON_F_PAGE_REPORTING), 3);
	assert_int_equal(e->b.role[2], BQ_REPORTING);
	assert_int_equal(e->b.role[3], BQ_NONE);
	struct fake_desc d[3] = { { 2 * MiB, 2 * MiB, VIRTQ_DESC_F_WRITE },
				  { 8 * MiB, 4096, VIRTQ_DESC_F_WRITE },
				  { 9 * MiB + 100, 4096,
				    VIRTQ_DESC_F_WRITE } /* not page-aligned */ };
	fq_publish(&e->q[2], fq_add(&e->q[2], d, 3));
	fq_kick(&e->q[2]);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->q[2], &u), 0);
	assert_int_equal(released.n, 2);
	assert_ptr_equal(released.addr[0], host(e, 2 * MiB));
	assert_int_equal(released.len[0], 2 * MiB);
	assert_int_equal(e->b.m.free_page_report_count, 1);
	assert_int_equal(e->b.m.free_page_report_freed, 2 * MiB + 4096);
	assert_int_equal(e->b.m.free_page_report_fails, 1);
	env_free(e);
}

static void activation_needs_both_pfn_queues(void **state)
{
	(void)state;
	struct balloon_config cfg = { 0 };
	struct env *e = calloc(1, sizeof(*e));
	char err[200];
	assert_int_equal(fake_mem_init(&e->mem, MEM_SIZE), 0);
	assert_int_equal(virtio_balloon_init(&e->b, &e->mem, &cfg, err, sizeof(err)), 0);
	fq_begin(&e->b.transport, V1);
	fq_queue(&e->q[0], &e->b.transport, &e->mem, 0, 16, 0x10000, 0x20000, 0x30000);
	assert_true(fq_driver_ok(&e->b.transport) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(e->b.m.activate_fails, 1);
	env_free(e);
}

static void snapshot_state_round_trips_and_is_checked(void **state)
{
	(void)state;
	struct balloon_config cfg = { .amount_mib = 2, .stats_polling_interval_s = 1 };
	struct env *e = env_new(&cfg, V1 | F(VIRTIO_BALLOON_F_STATS_VQ), 3);
	fq_reg_write(&e->b.transport, 0x104, 300);
	struct stat_entry s[] = { { 4, 42 } };
	post_stats(e, 2, s, 1);
	struct balloon_state bs;
	virtio_balloon_save(&e->b, &bs);
	assert_int_equal(bs.num_pages, 512);
	assert_int_equal(bs.actual, 300);
	assert_int_equal(bs.stats_mask, 1u << 4);
	struct virtio_mmio_state ms;
	virtio_mmio_save(&e->b.transport, &ms);

	struct virtio_balloon fresh;
	char err[200];
	const char *why = "";
	assert_int_equal(virtio_balloon_init(&fresh, &e->mem, &cfg, err, sizeof(err)), 0);
	struct balloon_state bad = bs;
	bad.reserved = 1;
	assert_int_equal(virtio_balloon_restore(&fresh, &bad, &why), -EINVAL);
	bad = bs;
	bad.stats_mask = 1u << 20;
	assert_int_equal(virtio_balloon_restore(&fresh, &bad, &why), -EINVAL);
	bad = bs;
	bad.num_pages = 7;
	assert_int_equal(virtio_balloon_restore(&fresh, &bad, &why), -EINVAL);
	assert_non_null(strstr(why, "target"));
	assert_int_equal(virtio_balloon_restore(&fresh, &bs, &why), 0);
	/* The statistics buffer was never taken: nothing in flight. */
	assert_int_equal(virtio_mmio_restore(&fresh.transport, &ms, &why), 0);
	uint32_t target, actual;
	struct balloon_stats st;
	virtio_balloon_read(&fresh, &target, &actual, &st);
	assert_int_equal(target, 512);
	assert_int_equal(actual, 300);
	assert_int_equal(st.val[4], 42);
	close(fresh.timer_fd);
	close(fresh.transport.irq_fd);
	for (int i = 0; i < 4; i++)
		close(fresh.transport.notify_fds[i]);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_space_and_features),
		cmocka_unit_test(inflate_releases_checked_runs),
		cmocka_unit_test(malformed_chains_are_refused),
		cmocka_unit_test(statistics_are_read_in_place_and_asked_for_on_the_tick),
		cmocka_unit_test(reporting_queue_follows_the_negotiated_features),
		cmocka_unit_test(activation_needs_both_pfn_queues),
		cmocka_unit_test(snapshot_state_round_trips_and_is_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
