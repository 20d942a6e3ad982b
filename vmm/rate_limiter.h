/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token-bucket rate limiter with two buckets, bytes and operations, in
 * Firecracker's model: each bucket has a size, a refill time (the bucket
 * refills completely in that many ms) and a one-time burst spent first.
 * A bucket of size 0 is unlimited.
 *
 * Devices ask before doing work; when refused, they leave the work queued and
 * retry when rate_limiter_wait_ns() has passed (a timerfd on the VMM loop).
 * Plain data, single-threaded: the owning device's lock covers it.
 */
#ifndef EMBER_RATE_LIMITER_H
#define EMBER_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

struct token_bucket {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
	uint64_t budget; /* tokens available now (excluding the burst) */
	uint64_t last_refill_ns;
};

struct rate_limiter {
	struct token_bucket bytes;
	struct token_bucket ops;
	uint64_t throttled; /* refusals, for metrics */
};

/* Configure one bucket; size 0 disables it. Starts full. -EINVAL if refill is 0. */
int token_bucket_init(struct token_bucket *b, uint64_t size, uint64_t one_time_burst,
		      uint64_t refill_time_ms, uint64_t now_ns) __attribute__((warn_unused_result));

/*
 * Take @ops operations and @bytes bytes, both or neither. A request larger
 * than a bucket's size is allowed when that bucket is full (it empties it),
 * so big requests are slowed, never starved.
 */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t ops, uint64_t bytes, uint64_t now_ns);

/* Nanoseconds until rate_limiter_consume(@ops, @bytes) can succeed. */
uint64_t rate_limiter_wait_ns(const struct rate_limiter *rl, uint64_t ops, uint64_t bytes,
			      uint64_t now_ns);

bool rate_limiter_enabled(const struct rate_limiter *rl);

/*
 * Arm the one-shot timerfd @timer_fd to fire when rate_limiter_consume(@ops,
 * @bytes) can succeed: how devices wait out a throttle. 0 or -errno.
 */
int rate_limiter_arm_timer(const struct rate_limiter *rl, int timer_fd, uint64_t ops,
			   uint64_t bytes, uint64_t now_ns);

/*
 * Take @ops and @bytes whatever the buckets' levels (down to empty), for
 * work whose size is only known once done (a received frame): the next
 * requests then wait for the refill.
 */
void rate_limiter_charge(struct rate_limiter *rl, uint64_t ops, uint64_t bytes, uint64_t now_ns);

#endif
