// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-rng on fake guest memory, driven through the real transport
 * registers: good chains filled and returned with their length, every
 * malformed chain refused with nothing written and counted, the 64 KiB cap,
 * the rate limiter stopping the queue and its timer taking it up again, the
 * host's entropy source failing or returning short, and a restored device
 * serving chains its driver posted before the snapshot.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <cmocka.h>

#include "event_loop.h"
#include "fake_mem.h"
#include "fake_virtq.h"
#include "devices/virtio/rng/rng.h"

#define MiB (1ull << 20)
#define MEM_SIZE (16 * MiB)
#define FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX))
#define BUF (FQ_BUF + 0x10000)
#define UNTOUCHED 0xee

struct env {
	struct guest_mem mem;
	struct virtio_rng rng;
	struct fake_vq q;
	struct event_loop loop;
};

static struct env *env_new(const struct rng_config *cfg)
{
	static const struct rng_config unlimited;
	struct env *e = calloc(1, sizeof(*e));
	char err[200] = "";
	assert_int_equal(fake_mem_init(&e->mem, MEM_SIZE), 0);
	assert_int_equal(
	    virtio_rng_init(&e->rng, &e->mem, cfg ? cfg : &unlimited, err, sizeof(err)), 0);
	assert_int_equal(event_loop_init(&e->loop), 0);
	assert_int_equal(virtio_rng_add_to_loop(&e->rng, &e->loop), 0);
	uint32_t st = fq_setup(&e->q, &e->rng.transport, &e->mem, 16, FEATURES, 0, 0, 0);
	assert_true(st & VIRTIO_STATUS_DRIVER_OK);
	assert_false(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	return e;
}

static void env_free(struct env *e)
{
	event_loop_destroy(&e->loop);
	close(e->rng.timer_fd);
	close(e->rng.transport.irq_fd);
	close(e->rng.transport.notify_fds[0]);
	fake_mem_free(&e->mem);
	free(e);
}

static uint8_t *gp(struct env *e, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_mem_ptr(&e->mem, gpa, len);
	assert_non_null(p);
	return p;
}

/* Post one chain and kick; returns its head. */
static uint16_t post(struct env *e, const struct fake_desc *d, unsigned int n)
{
	uint16_t head = fq_add(&e->q, d, n);
	fq_publish(&e->q, head);
	fq_kick(&e->q);
	return head;
}

static uint64_t count_nonzero(const uint8_t *p, uint64_t len)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < len; i++)
		n += p[i] != 0;
	return n;
}

/* One good 512-byte chain still comes back full. */
static void assert_still_serves(struct env *e)
{
	struct virtq_used_elem u;
	uint8_t *p = gp(e, BUF, 512);
	memset(p, 0, 512);
	struct fake_desc d = { BUF, 512, VIRTQ_DESC_F_WRITE };
	uint16_t head = post(e, &d, 1);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, 512);
	assert_true(count_nonzero(p, 512) > 400);
	assert_false(e->rng.transport.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static void offers_only_transport_features_and_no_config(void **state)
{
	(void)state;
	struct env *e = env_new(NULL);
	struct virtio_mmio *t = &e->rng.transport;
	assert_int_equal(fq_reg_read(t, 0x008), VIRTIO_ID_RNG);
	fq_reg_write(t, 0x014, 0);
	assert_int_equal(fq_reg_read(t, 0x010), 1u << VIRTIO_F_RING_EVENT_IDX);
	fq_reg_write(t, 0x014, 1);
	assert_int_equal(fq_reg_read(t, 0x010), 1u); /* VERSION_1 */
	fq_reg_write(t, 0x100, 0x12345678);
	assert_int_equal(fq_reg_read(t, 0x100), 0);
	assert_int_equal(fq_reg_read(t, 0x104), 0);
	env_free(e);
}

static void good_chains_are_filled(void **state)
{
	(void)state;
	struct env *e = env_new(NULL);
	struct virtq_used_elem u;
	uint8_t *a = gp(e, BUF, 4096), *b = gp(e, BUF + 0x10000, 4096);
	memset(a, 0, 4096);
	memset(b, 0, 4096);

	/* One buffer, then the same size split over three of odd lengths. */
	struct fake_desc one = { BUF, 1000, VIRTQ_DESC_F_WRITE };
	uint16_t h1 = post(e, &one, 1);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.id, h1);
	assert_int_equal(u.len, 1000);
	struct fake_desc three[3] = { { BUF + 0x10000, 1, VIRTQ_DESC_F_WRITE },
				      { BUF + 0x10100, 333, VIRTQ_DESC_F_WRITE },
				      { BUF + 0x10800, 666, VIRTQ_DESC_F_WRITE } };
	uint16_t h2 = post(e, three, 3);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.id, h2);
	assert_int_equal(u.len, 1000);
	assert_int_equal(fq_take_used(&e->q, &u), -1);

	/* Random: hardly a zero, the two chains differ, nothing past the ends. */
	assert_true(count_nonzero(a, 1000) > 950);
	assert_int_equal(count_nonzero(a + 1000, 3096), 0);
	assert_true(count_nonzero(b + 0x100, 333) > 300);
	assert_true(count_nonzero(b + 0x800, 666) > 630);
	assert_int_equal(count_nonzero(b + 1, 0xff), 0);
	assert_int_equal(count_nonzero(b + 0x100 + 333, 0x800 - 0x100 - 333), 0);
	assert_memory_not_equal(a, b + 0x800, 666);

	/* Several chains in one kick: one interrupt for the batch. */
	uint64_t irqs;
	ssize_t r = read(e->rng.transport.irq_fd, &irqs, sizeof(irqs)); /* drain */
	(void)r;
	fq_avail(&e->q)->ring[16] = e->q.used_seen; /* used_event: the next one */
	for (int i = 0; i < 4; i++) {
		struct fake_desc d = { BUF + 0x1000 * (uint64_t)i, 64, VIRTQ_DESC_F_WRITE };
		fq_publish(&e->q, fq_add(&e->q, &d, 1));
	}
	fq_kick(&e->q);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(fq_take_used(&e->q, &u), 0);
		assert_int_equal(u.len, 64);
	}
	assert_int_equal(read(e->rng.transport.irq_fd, &irqs, sizeof(irqs)), 8);
	assert_int_equal(irqs, 1);

	assert_int_equal(e->rng.m.event_count, 6);
	assert_int_equal(e->rng.m.bytes, 2000 + 4 * 64);
	assert_int_equal(e->rng.m.event_fails, 0);
	env_free(e);
}

struct chain_case {
	const char *name;
	struct fake_desc d[3];
	unsigned int n;
	void (*mutate)(struct env *e, uint16_t head);
};

static void loop_to_self(struct env *e, uint16_t head)
{
	struct virtq_desc *t = fq_desc(&e->q);
	t[(head + 1) % 16].flags |= VIRTQ_DESC_F_NEXT;
	t[(head + 1) % 16].next = head;
}

static void next_out_of_table(struct env *e, uint16_t head)
{
	fq_desc(&e->q)[head].next = 999;
}

static void indirect(struct env *e, uint16_t head)
{
	fq_desc(&e->q)[head].flags |= VIRTQ_DESC_F_INDIRECT;
}

static const struct chain_case chain_cases[] = {
	{ "device-readable descriptor", { { BUF, 64, 0 } }, 1, NULL },
	{ "readable, then writable",
	  { { BUF + 0x4000, 16, 0 }, { BUF, 64, VIRTQ_DESC_F_WRITE } },
	  2,
	  NULL },
	{ "readable after writable",
	  { { BUF, 64, VIRTQ_DESC_F_WRITE }, { BUF + 0x4000, 16, 0 } },
	  2,
	  NULL },
	{ "zero-length buffer", { { BUF, 0, VIRTQ_DESC_F_WRITE } }, 1, NULL },
	{ "two zero-length buffers",
	  { { BUF, 0, VIRTQ_DESC_F_WRITE }, { BUF + 8, 0, VIRTQ_DESC_F_WRITE } },
	  2,
	  NULL },
	{ "buffer outside guest memory", { { 0x7fff0000, 64, VIRTQ_DESC_F_WRITE } }, 1, NULL },
	{ "buffer crossing the end of memory",
	  { { BUF, 64, VIRTQ_DESC_F_WRITE }, { MEM_SIZE - 32, 64, VIRTQ_DESC_F_WRITE } },
	  2,
	  NULL },
	{ "address + length overflows", { { UINT64_MAX - 10, 64, VIRTQ_DESC_F_WRITE } }, 1, NULL },
	{ "buffer in the MMIO gap", { { 0xd0001000, 64, VIRTQ_DESC_F_WRITE } }, 1, NULL },
	{ "descriptor loop",
	  { { BUF, 64, VIRTQ_DESC_F_WRITE }, { BUF + 64, 64, VIRTQ_DESC_F_WRITE } },
	  2,
	  loop_to_self },
	{ "next outside the table",
	  { { BUF, 64, VIRTQ_DESC_F_WRITE }, { BUF + 64, 64, VIRTQ_DESC_F_WRITE } },
	  2,
	  next_out_of_table },
	{ "indirect descriptor", { { BUF, 64, VIRTQ_DESC_F_WRITE } }, 1, indirect },
};

static void bad_chains_are_refused_and_the_device_goes_on(void **state)
{
	(void)state;
	struct env *e = env_new(NULL);
	for (size_t i = 0; i < sizeof(chain_cases) / sizeof(chain_cases[0]); i++) {
		const struct chain_case *c = &chain_cases[i];
		struct virtq_used_elem u;
		print_message("  %s\n", c->name);
		uint8_t *p = gp(e, BUF, 256), *r = gp(e, BUF + 0x4000, 16);
		memset(p, UNTOUCHED, 256);
		memset(r, UNTOUCHED, 16);
		uint64_t fails = e->rng.m.event_fails, count = e->rng.m.event_count;
		uint16_t head = fq_add(&e->q, c->d, c->n);
		if (c->mutate)
			c->mutate(e, head);
		fq_publish(&e->q, head);
		fq_kick(&e->q);
		assert_int_equal(fq_take_used(&e->q, &u), 0);
		assert_int_equal(u.id, head);
		assert_int_equal(u.len, 0);
		for (int k = 0; k < 256; k++)
			assert_int_equal(p[k], UNTOUCHED);
		for (int k = 0; k < 16; k++)
			assert_int_equal(r[k], UNTOUCHED);
		assert_int_equal(e->rng.m.event_fails, fails + 1);
		assert_int_equal(e->rng.m.event_count, count + 1);
		assert_false(e->rng.transport.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
		assert_still_serves(e);
	}
	assert_int_equal(e->rng.m.host_rng_fails, 0);
	env_free(e);
}

static void huge_chains_get_at_most_64k(void **state)
{
	(void)state;
	struct env *e = env_new(NULL);
	struct virtq_used_elem u;
	/* One 1 MiB buffer: the first 64 KiB filled, the rest left alone. */
	uint8_t *p = gp(e, 4 * MiB, MiB);
	memset(p, 0, MiB);
	struct fake_desc big = { 4 * MiB, MiB, VIRTQ_DESC_F_WRITE };
	post(e, &big, 1);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.len, RNG_MAX_CHAIN_BYTES);
	assert_true(count_nonzero(p, RNG_MAX_CHAIN_BYTES) > RNG_MAX_CHAIN_BYTES - 1024);
	assert_int_equal(count_nonzero(p + RNG_MAX_CHAIN_BYTES, MiB - RNG_MAX_CHAIN_BYTES), 0);

	/* Sixteen descriptors over the same 8 MiB: 128 MiB claimed, 64 KiB given. */
	struct fake_desc same[16];
	for (int i = 0; i < 16; i++)
		same[i] = (struct fake_desc){ 4 * MiB, 8 * MiB, VIRTQ_DESC_F_WRITE };
	uint16_t head = fq_add(&e->q, same, 16);
	fq_publish(&e->q, head);
	fq_kick(&e->q);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, RNG_MAX_CHAIN_BYTES);
	/* 64 KiB split over 40000-byte descriptors: 40000 + 25536. */
	struct fake_desc split[3] = { { 4 * MiB, 40000, VIRTQ_DESC_F_WRITE },
				      { 5 * MiB, 40000, VIRTQ_DESC_F_WRITE },
				      { 6 * MiB, 40000, VIRTQ_DESC_F_WRITE } };
	memset(gp(e, 5 * MiB, 2 * MiB), 0, 2 * MiB);
	post(e, split, 3);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.len, RNG_MAX_CHAIN_BYTES);
	assert_int_equal(count_nonzero(gp(e, 5 * MiB + 25536, 40000 - 25536), 40000 - 25536), 0);
	assert_int_equal(count_nonzero(gp(e, 6 * MiB, 40000), 40000), 0);
	assert_int_equal(e->rng.m.bytes, 3ull * RNG_MAX_CHAIN_BYTES);
	assert_still_serves(e);
	env_free(e);
}

/* Wait for the limiter's timer and run the loop once (it serves the queue). */
static double wait_timer(struct env *e)
{
	struct pollfd p = { .fd = e->rng.timer_fd, .events = POLLIN };
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(poll(&p, 1, 5000), 1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(event_loop_run_once(&e->loop, 0) >= 1);
	return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

static void bandwidth_limit_stops_the_queue_until_the_timer(void **state)
{
	(void)state;
	/* 1024 bytes per 100 ms, bucket full at the start, 256 bytes of burst. */
	struct rng_config cfg = { .bw_size = 1024, .bw_refill_ms = 100, .bw_burst = 256 };
	struct env *e = env_new(&cfg);
	struct virtq_used_elem u;
	for (int i = 0; i < 3; i++) {
		struct fake_desc d = { BUF + 0x1000 * (uint64_t)i, 1024, VIRTQ_DESC_F_WRITE };
		fq_publish(&e->q, fq_add(&e->q, &d, 1));
	}
	fq_kick(&e->q);
	/* The first fits (burst + bucket); the second is held on the ring. */
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.len, 1024);
	assert_int_equal(fq_take_used(&e->q, &u), -1);
	assert_true(e->rng.throttled);
	assert_int_equal(e->rng.m.throttled, 1);
	assert_int_equal(virtq_pending(&e->rng.queue), 2);
	/* A notification meanwhile changes nothing. */
	fq_kick(&e->q);
	assert_int_equal(fq_take_used(&e->q, &u), -1);
	assert_int_equal(e->rng.m.rate_limiter_events, 1);
	/* The timer brings the queue back: 768 bytes are missing, ~75 ms. */
	double ms = wait_timer(e);
	print_message("  timer fired after %.1f ms\n", ms);
	assert_true(ms > 40);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.len, 1024);
	assert_int_equal(fq_take_used(&e->q, &u), -1);
	ms = wait_timer(e);
	print_message("  timer fired after %.1f ms\n", ms);
	assert_true(ms > 60);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(e->rng.m.bytes, 3 * 1024);
	assert_int_equal(e->rng.m.event_count, 3);
	assert_int_equal(e->rng.m.throttled, 2);
	assert_int_equal(e->rng.m.rate_limiter_events, 3);
	assert_false(e->rng.throttled);
	env_free(e);
}

static void ops_limit_counts_chains(void **state)
{
	(void)state;
	/* Two chains per 50 ms. */
	struct rng_config cfg = { .ops_size = 2, .ops_refill_ms = 50 };
	struct env *e = env_new(&cfg);
	struct virtq_used_elem u;
	for (int i = 0; i < 5; i++) {
		struct fake_desc d = { BUF + 0x1000 * (uint64_t)i, 16, VIRTQ_DESC_F_WRITE };
		fq_publish(&e->q, fq_add(&e->q, &d, 1));
	}
	fq_kick(&e->q);
	int got = 0;
	while (fq_take_used(&e->q, &u) == 0)
		got++;
	assert_int_equal(got, 2);
	wait_timer(e);
	while (fq_take_used(&e->q, &u) == 0)
		got++;
	assert_true(got >= 3 && got <= 4);
	while (got < 5) {
		wait_timer(e);
		while (fq_take_used(&e->q, &u) == 0)
			got++;
	}
	assert_int_equal(e->rng.m.event_count, 5);
	env_free(e);
}

static int source_calls;
static int source_errno;
static ssize_t failing_source(void *buf, size_t len, unsigned int flags)
{
	(void)buf, (void)len, (void)flags;
	source_calls++;
	errno = source_errno;
	return -1;
}

/* 7 bytes at a time, with an EINTR before every other call. */
static ssize_t stingy_source(void *buf, size_t len, unsigned int flags)
{
	(void)flags;
	if (source_calls++ % 2 == 0) {
		errno = EINTR;
		return -1;
	}
	size_t n = len < 7 ? len : 7;
	memset(buf, 0x5a, n);
	return (ssize_t)n;
}

static void host_source_failures(void **state)
{
	(void)state;
	struct env *e = env_new(NULL);
	struct virtq_used_elem u;
	e->rng.source = failing_source;
	source_errno = EIO;
	source_calls = 0;
	struct fake_desc d = { BUF, 128, VIRTQ_DESC_F_WRITE };
	for (int i = 0; i < 2; i++) {
		post(e, &d, 1);
		assert_int_equal(fq_take_used(&e->q, &u), 0);
		assert_int_equal(u.len, 0);
	}
	assert_int_equal(source_calls, 2);
	assert_int_equal(e->rng.m.host_rng_fails, 2);
	assert_int_equal(e->rng.m.event_fails, 2);
	assert_int_equal(e->rng.m.event_count, 2);
	assert_int_equal(e->rng.m.bytes, 0);

	/* Short reads and EINTR are retried until the buffers are full. */
	e->rng.source = stingy_source;
	source_calls = 0;
	uint8_t *p = gp(e, BUF, 200);
	memset(p, 0, 200);
	struct fake_desc two[2] = { { BUF, 50, VIRTQ_DESC_F_WRITE },
				    { BUF + 100, 50, VIRTQ_DESC_F_WRITE } };
	post(e, two, 2);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.len, 100);
	for (int i = 0; i < 200; i++)
		assert_int_equal(p[i], (i < 50 || (i >= 100 && i < 150)) ? 0x5a : 0);
	assert_int_equal(e->rng.m.host_rng_fails, 2);

	/* And the real getrandom() again. */
	e->rng.source = getrandom;
	assert_still_serves(e);
	env_free(e);
}

static void corrupt_ring_needs_reset_then_recovers(void **state)
{
	(void)state;
	struct env *e = env_new(NULL);
	struct virtq_used_elem u;
	struct virtq_avail *a = fq_avail(&e->q);
	a->ring[e->q.avail_idx % 16] = 300;
	e->q.avail_idx++;
	a->idx = e->q.avail_idx;
	fq_kick(&e->q);
	assert_true(fq_reg_read(&e->rng.transport, 0x070) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(fq_take_used(&e->q, &u), -1);
	assert_int_equal(e->rng.transport.needs_reset_events, 1);
	assert_true(fq_setup(&e->q, &e->rng.transport, &e->mem, 16, FEATURES, 0, 0, 0) &
		    VIRTIO_STATUS_DRIVER_OK);
	assert_still_serves(e);
	env_free(e);
}

static void driver_ok_without_the_queue_fails_activation(void **state)
{
	(void)state;
	struct env *e = env_new(NULL);
	struct virtio_mmio *t = &e->rng.transport;
	fq_begin(t, FEATURES);
	uint32_t st = fq_driver_ok(t); /* no queue set up */
	assert_true(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(e->rng.m.activate_fails, 1);
	fq_kick(&e->q); /* ignored */
	assert_true(fq_setup(&e->q, t, &e->mem, 16, FEATURES, 0, 0, 0) & VIRTIO_STATUS_DRIVER_OK);
	assert_still_serves(e);
	env_free(e);
}

/* Chains the driver posted (and notified) before a snapshot are served by
 * the restored device without a new notification. */
static void restored_device_serves_chains_posted_before(void **state)
{
	(void)state;
	struct env *e = env_new(NULL);
	struct virtq_used_elem u;
	assert_still_serves(e);
	struct fake_desc d = { BUF + 0x2000, 256, VIRTQ_DESC_F_WRITE };
	uint16_t head = fq_add(&e->q, &d, 1);
	fq_publish(&e->q, head); /* no kick: the notification went to the old process */
	struct virtio_mmio_state st;
	virtio_mmio_save(&e->rng.transport, &st);
	assert_int_equal(st.device_id, VIRTIO_ID_RNG);

	/* A fresh device over the same memory, as a restore builds it. */
	event_loop_destroy(&e->loop);
	close(e->rng.timer_fd);
	close(e->rng.transport.irq_fd);
	close(e->rng.transport.notify_fds[0]);
	struct rng_config none = { 0 };
	char err[200];
	assert_int_equal(virtio_rng_init(&e->rng, &e->mem, &none, err, sizeof(err)), 0);
	assert_int_equal(event_loop_init(&e->loop), 0);
	assert_int_equal(virtio_rng_add_to_loop(&e->rng, &e->loop), 0);
	const char *why = "";
	assert_int_equal(virtio_mmio_restore(&e->rng.transport, &st, &why), 0);
	struct pollfd p = { .fd = e->rng.transport.notify_fds[0], .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 1);
	virtio_mmio_notify(&e->rng.transport, 0);
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, 256);
	assert_still_serves(e);
	env_free(e);
}

static void refill_time_zero_is_refused(void **state)
{
	(void)state;
	struct guest_mem mem;
	struct virtio_rng r;
	char err[200] = "";
	struct rng_config cfg = { .bw_size = 100 };
	assert_int_equal(fake_mem_init(&mem, MEM_SIZE), 0);
	assert_int_equal(virtio_rng_init(&r, &mem, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "refill"));
	fake_mem_free(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(offers_only_transport_features_and_no_config),
		cmocka_unit_test(good_chains_are_filled),
		cmocka_unit_test(bad_chains_are_refused_and_the_device_goes_on),
		cmocka_unit_test(huge_chains_get_at_most_64k),
		cmocka_unit_test(bandwidth_limit_stops_the_queue_until_the_timer),
		cmocka_unit_test(ops_limit_counts_chains),
		cmocka_unit_test(host_source_failures),
		cmocka_unit_test(corrupt_ring_needs_reset_then_recovers),
		cmocka_unit_test(driver_ok_without_the_queue_fails_activation),
		cmocka_unit_test(restored_device_serves_chains_posted_before),
		cmocka_unit_test(refill_time_zero_is_refused),
	};
	return cmocka_run_group_tests_name("virtio_rng", tests, NULL, NULL);
}
