// SPDX-License-Identifier: Apache-2.0
/* Token buckets: budget, refill, one-time burst, oversize requests, and
 * their snapshot state (saved in one process, restored in another). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rate_limiter.h"

#define MS 1000000ull

static void unlimited_always_passes(void **state)
{
	(void)state;
	struct rate_limiter rl = { 0 };
	assert_false(rate_limiter_enabled(&rl));
	for (int i = 0; i < 1000; i++)
		assert_true(rate_limiter_consume(&rl, 1, 1 << 20, 0));
}

static void bytes_bucket_refills_at_its_rate(void **state)
{
	(void)state;
	struct rate_limiter rl = { 0 };
	/* 1000 bytes per 100 ms. */
	assert_int_equal(token_bucket_init(&rl.bytes, 1000, 0, 100, 0), 0);
	assert_true(rate_limiter_consume(&rl, 1, 600, 0));
	assert_true(rate_limiter_consume(&rl, 1, 400, 0));
	assert_false(rate_limiter_consume(&rl, 1, 100, 0));
	assert_int_equal(rl.throttled, 1);
	/* 100 bytes take 10 ms to come back. */
	assert_int_equal(rate_limiter_wait_ns(&rl, 1, 100, 0), 10 * MS);
	assert_false(rate_limiter_consume(&rl, 1, 100, 9 * MS));
	assert_int_equal(rate_limiter_wait_ns(&rl, 1, 100, 9 * MS), 1 * MS);
	assert_true(rate_limiter_consume(&rl, 1, 100, 10 * MS));
	/* Never more than the bucket size, however long we wait. */
	assert_true(rate_limiter_consume(&rl, 1, 1000, 10000 * MS));
	assert_false(rate_limiter_consume(&rl, 1, 1, 10000 * MS));
}

static void one_time_burst_is_spent_first(void **state)
{
	(void)state;
	struct rate_limiter rl = { 0 };
	assert_int_equal(token_bucket_init(&rl.ops, 10, 50, 1000, 0), 0);
	assert_true(rate_limiter_consume(&rl, 50, 0, 0)); /* the burst */
	assert_true(rate_limiter_consume(&rl, 10, 0, 0)); /* the bucket */
	assert_false(rate_limiter_consume(&rl, 1, 0, 0));
	assert_true(rate_limiter_consume(&rl, 1, 0, 100 * MS));
}

static void oversize_request_waits_for_a_full_bucket(void **state)
{
	(void)state;
	struct rate_limiter rl = { 0 };
	assert_int_equal(token_bucket_init(&rl.bytes, 4096, 0, 10, 0), 0);
	assert_true(rate_limiter_consume(&rl, 1, 100, 0));
	assert_false(rate_limiter_consume(&rl, 1, 131072, 0));
	assert_true(rate_limiter_wait_ns(&rl, 1, 131072, 0) > 0);
	assert_true(rate_limiter_consume(&rl, 1, 131072, 10 * MS));
	assert_false(rate_limiter_consume(&rl, 1, 1, 10 * MS));
}

static void both_or_neither(void **state)
{
	(void)state;
	struct rate_limiter rl = { 0 };
	assert_int_equal(token_bucket_init(&rl.bytes, 1000, 0, 100, 0), 0);
	assert_int_equal(token_bucket_init(&rl.ops, 2, 0, 100, 0), 0);
	assert_true(rate_limiter_consume(&rl, 1, 10, 0));
	assert_false(rate_limiter_consume(&rl, 1, 5000, 0)); /* bytes refuse ... */
	assert_true(rate_limiter_consume(&rl, 1, 10, 0)); /* ... and took no op */
	assert_int_equal(token_bucket_init(&rl.ops, 1, 0, 0, 0), -22); /* refill 0 */
}

static void charge_after_the_fact(void **state)
{
	(void)state;
	struct rate_limiter rl = { 0 };
	/* 1000 bytes per 100 ms. A 1500-byte frame read with the bucket full
	 * empties it; the next one must wait until a token is back. */
	assert_int_equal(token_bucket_init(&rl.bytes, 1000, 0, 100, 0), 0);
	assert_int_equal(rate_limiter_wait_ns(&rl, 1, 1, 0), 0);
	rate_limiter_charge(&rl, 1, 1500, 0);
	assert_true(rate_limiter_wait_ns(&rl, 1, 1, 0) > 0);
	assert_int_equal(rate_limiter_wait_ns(&rl, 1, 1, MS / 10), 0); /* 0.1 ms: one token */
	/* A zero-byte probe passes even on an empty bucket: the RX path must not use it. */
	rate_limiter_charge(&rl, 1, 1000, MS / 10);
	assert_true(rate_limiter_consume(&rl, 1, 0, MS / 10));
	assert_true(rate_limiter_wait_ns(&rl, 1, 1, MS / 10) > 0);
}

/* Saved at one process's time, restored at another's: the same buckets. */
static void save_and_restore_across_processes(void **state)
{
	(void)state;
	struct rate_limiter rl = { 0 }, back = { .throttled = 7 };
	const char *why = "";
	/* 1000 bytes per 100 ms with a 500-byte burst; 10 ops per second. */
	assert_int_equal(token_bucket_init(&rl.bytes, 1000, 500, 100, 0), 0);
	assert_int_equal(token_bucket_init(&rl.ops, 10, 0, 1000, 0), 0);
	assert_true(rate_limiter_consume(&rl, 4, 1300, 0)); /* burst gone, 800 of the bucket */
	struct rate_limiter_state s;
	rate_limiter_save(&rl, &s, 3 * MS);
	assert_int_equal(s.bytes.size, 1000);
	assert_int_equal(s.bytes.one_time_burst, 0);
	assert_int_equal(s.bytes.budget, 200);
	assert_int_equal(s.bytes.elapsed_ns, 3 * MS);
	assert_int_equal(s.ops.budget, 6);
	/* The other process's clock is far ahead: only the age carries over. */
	uint64_t t = 5000000 * MS;
	assert_int_equal(rate_limiter_restore(&back, &s, t, &why), 0);
	assert_int_equal(back.throttled, 7);
	for (uint64_t dt = 0; dt < 200 * MS; dt += 7 * MS)
		assert_int_equal(rate_limiter_wait_ns(&back, 1, 900, t + dt),
				 rate_limiter_wait_ns(&rl, 1, 900, 3 * MS + dt));
	assert_false(rate_limiter_consume(&back, 1, 900, t));
	assert_true(rate_limiter_consume(&back, 1, 230, t)); /* 200 + 30 refilled in 3 ms */
	/* An age older than the restoring process: a bucket that refilled. */
	s.bytes.elapsed_ns = 10 * t;
	assert_int_equal(rate_limiter_restore(&back, &s, t, &why), 0);
	assert_true(rate_limiter_consume(&back, 1, 1000, t));
	/* Unlimited buckets save as zeros and restore unlimited. */
	struct rate_limiter none = { 0 };
	rate_limiter_save(&none, &s, 9 * MS);
	assert_int_equal(s.bytes.elapsed_ns, 0);
	assert_int_equal(rate_limiter_restore(&back, &s, t, &why), 0);
	assert_false(rate_limiter_enabled(&back));
}

static void garbage_state_is_refused_and_changes_nothing(void **state)
{
	(void)state;
	struct rate_limiter rl = { 0 };
	assert_int_equal(token_bucket_init(&rl.bytes, 1000, 0, 100, 0), 0);
	const struct rate_limiter keep = rl;
	const struct token_bucket_state good = { 1000, 0, 100, 10, 0 };
	struct token_bucket_state bad[] = {
		{ 1000, 0, 100, 1001, 0 }, /* budget over size */
		{ 1000, 0, 0, 10, 0 }, /* no refill time */
		{ 1000, 0, UINT64_MAX, 10, 0 }, /* refill overflows ns */
		{ 0, 1, 0, 0, 0 }, /* unlimited, with a burst */
		{ 0, 0, 0, 0, 1 }, /* unlimited, with an age */
	};
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int which = 0; which < 2; which++) {
			struct rate_limiter_state s = { .bytes = good, .ops = good };
			if (which)
				s.ops = bad[i];
			else
				s.bytes = bad[i];
			const char *why = NULL;
			assert_int_equal(rate_limiter_restore(&rl, &s, 0, &why), -EINVAL);
			assert_non_null(why);
			assert_memory_equal(&rl, &keep, sizeof(rl));
		}
	}
	/* The longest refill time init takes is one restore takes too. */
	struct token_bucket b;
	assert_int_equal(token_bucket_init(&b, 1, 0, RATE_LIMITER_MAX_REFILL_MS + 1, 0), -EINVAL);
	/* 2^58 ms made the period in ns wrap to 0: a division by zero. */
	assert_int_equal(token_bucket_init(&b, 1, 0, 1ull << 58, 0), -EINVAL);
	assert_int_equal(token_bucket_init(&b, 1, 0, RATE_LIMITER_MAX_REFILL_MS, 0), 0);
	struct rate_limiter big = { .bytes = b };
	assert_true(rate_limiter_consume(&big, 1, 1, 0));
	assert_true(rate_limiter_wait_ns(&big, 1, 1, 0) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unlimited_always_passes),
		cmocka_unit_test(bytes_bucket_refills_at_its_rate),
		cmocka_unit_test(one_time_burst_is_spent_first),
		cmocka_unit_test(oversize_request_waits_for_a_full_bucket),
		cmocka_unit_test(both_or_neither),
		cmocka_unit_test(charge_after_the_fact),
		cmocka_unit_test(save_and_restore_across_processes),
		cmocka_unit_test(garbage_state_is_refused_and_changes_nothing),
	};
	return cmocka_run_group_tests_name("rate_limiter", tests, NULL, NULL);
}
