// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-mmio transport state from a snapshot: a saved running device comes
 * back running, and every field a tampered state file can get wrong is
 * refused before the device starts.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_vsock.h"

static struct virtio_mmio_state saved;

static int setup(void **state)
{
	(void)state;
	struct fake_vsock *e = fvs_new();
	assert_non_null(e);
	fvs_post_rx(e, 4);
	virtio_mmio_save(&e->v.transport, &saved);
	fvs_free(e);
	return 0;
}

static int try_restore(const struct virtio_mmio_state *st, const char **why)
{
	struct fake_vsock *e = fvs_new();
	assert_non_null(e);
	/* A fresh device, as the restore path builds it: reset, nothing set. */
	fq_reg_write(&e->v.transport, 0x070, 0);
	int r = virtio_mmio_restore(&e->v.transport, st, why);
	if (r == 0)
		assert_true(virtio_mmio_active(&e->v.transport));
	fvs_free(e);
	return r;
}

static void saved_state_comes_back(void **state)
{
	(void)state;
	const char *why = "";
	assert_int_equal(saved.device_id, VIRTIO_ID_VSOCK);
	assert_true(saved.status & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(saved.q[0].last_avail, saved.q[0].used_idx);
	assert_int_equal(try_restore(&saved, &why), 0);
}

static bool notified(const struct virtio_mmio *t, unsigned int q)
{
	struct pollfd p = { .fd = t->notify_fds[q], .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

/*
 * Buffers the driver published (and notified the old process about) must
 * not wait for a notification that will never come again: restore replays
 * it for each queue with pending chains, and only for those.
 */
static void restore_replays_pending_notifications(void **state)
{
	(void)state;
	struct fake_vsock *e = fvs_new();
	assert_non_null(e);
	fvs_post_rx(e, 4);
	struct virtio_mmio_state st;
	virtio_mmio_save(&e->v.transport, &st);
	/* The same memory under a reset transport with nothing notified. */
	fq_reg_write(&e->v.transport, 0x070, 0);
	uint64_t v;
	for (unsigned int q = 0; q < 3; q++)
		while (read(e->v.transport.notify_fds[q], &v, sizeof(v)) == sizeof(v))
			;
	const char *why = "";
	assert_int_equal(virtio_mmio_restore(&e->v.transport, &st, &why), 0);
	assert_true(notified(&e->v.transport, 0)); /* RX: 4 buffers pending */
	assert_false(notified(&e->v.transport, 1)); /* TX: nothing */
	assert_false(notified(&e->v.transport, 2)); /* events: nothing */
	fvs_free(e);
}

struct tamper {
	const char *name;
	void (*apply)(struct virtio_mmio_state *st);
};

static void other_device(struct virtio_mmio_state *st)
{
	st->device_id = 2;
}
static void other_queue_count(struct virtio_mmio_state *st)
{
	st->num_queues = 1;
}
static void unknown_status(struct virtio_mmio_state *st)
{
	st->status |= 0x1000;
}
static void unoffered_feature(struct virtio_mmio_state *st)
{
	st->driver_features |= 1ull << 40;
}
static void no_version_1(struct virtio_mmio_state *st)
{
	st->driver_features &= ~(1ull << 32);
}
static void driver_ok_alone(struct virtio_mmio_state *st)
{
	st->status &= ~VIRTIO_STATUS_FEATURES_OK;
}
static void queue_too_big(struct virtio_mmio_state *st)
{
	st->q[1].size = 1024;
}
static void queue_not_pow2(struct virtio_mmio_state *st)
{
	st->q[1].size = 48;
}
static void ring_outside_memory(struct virtio_mmio_state *st)
{
	st->q[0].desc_gpa = 1ull << 40;
}
static void ring_misaligned(struct virtio_mmio_state *st)
{
	st->q[0].used_gpa += 2;
}
static void used_index_off(struct virtio_mmio_state *st)
{
	st->q[0].used_idx += 3;
}
static void requests_in_flight(struct virtio_mmio_state *st)
{
	st->q[0].last_avail += 1;
}
static void bad_flag(struct virtio_mmio_state *st)
{
	st->q[2].ready = 7;
}

static const struct tamper tampers[] = {
	{ "another device type", other_device },
	{ "another queue count", other_queue_count },
	{ "unknown status bits", unknown_status },
	{ "a feature never offered", unoffered_feature },
	{ "no VERSION_1", no_version_1 },
	{ "DRIVER_OK without FEATURES_OK", driver_ok_alone },
	{ "queue larger than the maximum", queue_too_big },
	{ "queue size not a power of 2", queue_not_pow2 },
	{ "ring outside guest memory", ring_outside_memory },
	{ "ring misaligned", ring_misaligned },
	{ "used index disagrees with memory", used_index_off },
	{ "requests in flight", requests_in_flight },
	{ "flag out of range", bad_flag },
};

static void tampered_states_are_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(tampers) / sizeof(tampers[0]); i++) {
		struct virtio_mmio_state st = saved;
		tampers[i].apply(&st);
		const char *why = "";
		int r = try_restore(&st, &why);
		print_message("  %-34s -> %s\n", tampers[i].name, r ? why : "ACCEPTED");
		assert_true(r < 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(saved_state_comes_back),
		cmocka_unit_test(tampered_states_are_refused),
		cmocka_unit_test(restore_replays_pending_notifications),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
