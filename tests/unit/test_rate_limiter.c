// SPDX-License-Identifier: Apache-2.0
/* Token buckets: budget, refill, one-time burst, oversize requests. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unlimited_always_passes),
		cmocka_unit_test(bytes_bucket_refills_at_its_rate),
		cmocka_unit_test(one_time_burst_is_spent_first),
		cmocka_unit_test(oversize_request_waits_for_a_full_bucket),
		cmocka_unit_test(both_or_neither),
		cmocka_unit_test(charge_after_the_fact),
	};
	return cmocka_run_group_tests_name("rate_limiter", tests, NULL, NULL);
}
