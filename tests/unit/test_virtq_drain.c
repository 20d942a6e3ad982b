// SPDX-License-Identifier: Apache-2.0
/*
 * virtq_drain(), the queue loop every virtio device but net RX runs, on a
 * bare queue in fake guest memory: what the handler returns is what gets
 * pushed, malformed chains reach it with the reason and go back empty, a
 * chain it cannot take now stays on the ring and notifications stay off
 * while the device is not ready, flush runs before notifications are
 * re-armed, and a ring that breaks asks for a reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_mem.h"
#include "fake_virtq.h"

#define MEM_SIZE (16ull << 20)
#define QSIZE 8
#define SENTINEL 0xabcd

struct env {
	struct guest_mem mem;
	struct virtq q;
	struct virtq_chain chain;
	struct fake_vq fq; /* the driver's side, for fq_add/fq_publish/fq_take_used */
	/* What the handler returns, call by call, and what it saw. */
	int64_t verdict[8];
	unsigned int handled, bad_seen, flushes;
	const char *last_bad;
	bool blocked; /* ready() says no */
	bool block_on_unpop; /* a VIRTQ_UNPOP also blocks the device */
	bool break_ring; /* the handler corrupts the avail index */
	unsigned int race_on_flush; /* chains the "driver" adds during flush */
	uint16_t avail_event_at_flush; /* at the first flush */
};

static unsigned int resets, signals;

static void fake_signal_used(struct virtio_mmio *t)
{
	(void)t;
	signals++;
}

static void fake_signal_config(struct virtio_mmio *t)
{
	(void)t;
}

static void fake_needs_reset(struct virtio_mmio *t, const char *why)
{
	(void)t;
	assert_non_null(why);
	resets++;
}

static const struct virtio_transport_ops fake_tops = {
	.signal_used = fake_signal_used,
	.signal_config = fake_signal_config,
	.needs_reset = fake_needs_reset,
};

static uint16_t *avail_event(struct env *e)
{
	return (uint16_t *)((uint8_t *)fq_used(&e->fq) + 4 + 8 * QSIZE);
}

static bool t_ready(void *dev)
{
	return !((struct env *)dev)->blocked;
}

static int64_t t_handle(void *dev, struct virtq *q, const struct virtq_chain *chain,
			const char *bad)
{
	struct env *e = dev;
	assert_ptr_equal(q, &e->q);
	assert_ptr_equal(chain, &e->chain);
	if (bad) {
		e->bad_seen++;
		e->last_bad = bad;
	}
	int64_t v = e->verdict[e->handled++];
	if (v == VIRTQ_UNPOP && e->block_on_unpop)
		e->blocked = true;
	if (e->break_ring)
		fq_avail(&e->fq)->idx = (uint16_t)(e->fq.avail_idx + QSIZE + 1);
	return v;
}

static void t_flush(void *dev)
{
	struct env *e = dev;
	if (!e->flushes++)
		e->avail_event_at_flush = *avail_event(e);
	for (; e->race_on_flush; e->race_on_flush--)
		fq_publish(&e->fq, fq_add(&e->fq, &(struct fake_desc){ FQ_BUF, 64, 0 }, 1));
}

static const struct virtq_drain_ops ops = { .ready = t_ready,
					    .handle = t_handle,
					    .flush = t_flush };

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	assert_int_equal(fake_mem_init(&e->mem, MEM_SIZE), 0);
	e->q.cfg = (struct virtq_config){ .size = QSIZE,
					  .ready = true,
					  .desc_gpa = FQ_DESC,
					  .avail_gpa = FQ_AVAIL,
					  .used_gpa = FQ_USED };
	const char *why = "";
	assert_int_equal(virtq_activate(&e->q, &e->mem, QSIZE, true, &why), 0);
	e->fq = (struct fake_vq){ .mem = &e->mem,
				  .desc_gpa = FQ_DESC,
				  .avail_gpa = FQ_AVAIL,
				  .used_gpa = FQ_USED,
				  .size = QSIZE };
	*avail_event(e) = SENTINEL;
	resets = signals = 0;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	fake_mem_free(&e->mem);
	free(e);
	return 0;
}

static void add_good(struct env *e)
{
	fq_publish(&e->fq,
		   fq_add(&e->fq, &(struct fake_desc){ FQ_BUF, 64, VIRTQ_DESC_F_WRITE }, 1));
}

static void pushes_what_the_handler_says(void **state)
{
	struct env *e = *state;
	add_good(e);
	/* A buffer outside guest memory: virtq_pop refuses it. */
	fq_publish(&e->fq, fq_add(&e->fq, &(struct fake_desc){ MEM_SIZE << 4, 64, 0 }, 1));
	add_good(e);
	e->verdict[0] = 10;
	e->verdict[1] = 0;
	e->verdict[2] = VIRTQ_TAKEN;
	assert_true(virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL));
	assert_int_equal(e->handled, 3);
	assert_int_equal(e->bad_seen, 1);
	assert_non_null(e->last_bad);
	assert_int_equal(e->q.bad_chains, 1);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->fq, &u), 0);
	assert_int_equal(u.id, 0);
	assert_int_equal(u.len, 10);
	assert_int_equal(fq_take_used(&e->fq, &u), 0);
	assert_int_equal(u.id, 1);
	assert_int_equal(u.len, 0);
	assert_int_equal(fq_take_used(&e->fq, &u), -1); /* the taken one is the device's */
	assert_int_equal(signals, 1); /* once for the batch */
	assert_int_equal(resets, 0);
	assert_int_equal(*avail_event(e), 3); /* re-armed for the next chain */
	assert_int_equal(e->flushes, 1);
}

static void empty_ring_takes_nothing(void **state)
{
	struct env *e = *state;
	assert_false(virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL));
	assert_int_equal(e->handled, 0);
	assert_int_equal(signals, 0);
	assert_int_equal(*avail_event(e), 0);
}

static void unpop_keeps_the_chain_and_notifications_off(void **state)
{
	struct env *e = *state;
	add_good(e);
	add_good(e);
	e->verdict[0] = VIRTQ_UNPOP;
	e->block_on_unpop = true;
	virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL);
	assert_int_equal(e->handled, 1);
	assert_int_equal(virtq_pending(&e->q), 2);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->fq, &u), -1);
	/* Blocked: the device drains again when unblocked, not on a kick. */
	assert_int_equal(*avail_event(e), SENTINEL);
	/* Still blocked: nothing is taken. */
	virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL);
	assert_int_equal(e->handled, 1);
	e->blocked = false;
	e->verdict[1] = e->verdict[2] = 4;
	virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL);
	assert_int_equal(e->handled, 3);
	assert_int_equal(fq_take_used(&e->fq, &u), 0);
	assert_int_equal(u.id, 0); /* the chain given back comes first again */
	assert_int_equal(u.len, 4);
	assert_int_equal(*avail_event(e), 2);
}

static void unpop_while_ready_ends_the_batch(void **state)
{
	/* The engine was full: flush makes room and the chain is taken again. */
	struct env *e = *state;
	add_good(e);
	e->verdict[0] = VIRTQ_UNPOP;
	e->verdict[1] = VIRTQ_TAKEN;
	virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL);
	assert_int_equal(e->handled, 2);
	assert_int_equal(e->flushes, 2);
	assert_int_equal(virtq_pending(&e->q), 0);
}

static void flush_runs_before_rearming(void **state)
{
	struct env *e = *state;
	add_good(e);
	e->race_on_flush = 1; /* a chain the driver adds while the batch ends */
	virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL);
	assert_int_equal(e->flushes, 2);
	assert_int_equal(e->handled, 2); /* the re-check after re-arming found it */
	assert_int_equal(e->avail_event_at_flush, SENTINEL);
	assert_int_equal(*avail_event(e), 2);
	assert_int_equal(signals, 1);
}

static void broken_ring_asks_for_reset(void **state)
{
	struct env *e = *state;
	add_good(e);
	add_good(e);
	e->verdict[0] = 8;
	e->break_ring = true;
	assert_true(virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL));
	assert_int_equal(e->handled, 1);
	assert_int_equal(resets, 1);
	assert_true(e->q.broken);
	assert_int_equal(e->flushes, 1);
	/* The chain done before the ring broke is signalled. */
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->fq, &u), 0);
	assert_int_equal(u.len, 8);
	assert_int_equal(signals, 1);
	assert_int_equal(*avail_event(e), SENTINEL);
	/* Broken stays broken until reset: asking again does nothing more. */
	virtq_drain(&e->q, &e->chain, &ops, e, &fake_tops, NULL);
	assert_int_equal(e->handled, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pushes_what_the_handler_says, setup, teardown),
		cmocka_unit_test_setup_teardown(empty_ring_takes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(unpop_keeps_the_chain_and_notifications_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(unpop_while_ready_ends_the_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(flush_runs_before_rearming, setup, teardown),
		cmocka_unit_test_setup_teardown(broken_ring_asks_for_reset, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
