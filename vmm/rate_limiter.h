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

/* Longer refill times would overflow the nanosecond arithmetic (about 584 years). */
#define RATE_LIMITER_MAX_REFILL_MS (UINT64_MAX / 1000000ull)

/* Configure one bucket; size 0 disables it. Starts full. -EINVAL if refill
 * is 0 or over RATE_LIMITER_MAX_REFILL_MS. */
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

/*
 * A bucket as a snapshot keeps it (Firecracker's TokenBucketState): the
 * configuration, the tokens and one-time burst left, and how long ago the
 * bucket last refilled. A monotonic timestamp means nothing in another
 * process; an age does, and the restored bucket goes on refilling from it
 * (the time the snapshot sat on disk does not count).
 */
struct token_bucket_state {
	uint64_t size;
	uint64_t one_time_burst; /* left, not as configured */
	uint64_t refill_time_ms;
	uint64_t budget;
	uint64_t elapsed_ns; /* since the last refill */
};

struct rate_limiter_state {
	struct token_bucket_state bytes, ops;
};

void rate_limiter_save(const struct rate_limiter *rl, struct rate_limiter_state *s,
		       uint64_t now_ns);

/*
 * Check @s (an unlimited bucket is all zeros; a limited one has a refill
 * time of at most RATE_LIMITER_MAX_REFILL_MS and a budget within its size)
 * and only then replace @rl's buckets with it; the throttle count stays.
 * 0, or -EINVAL with @why naming the bad field.
 */
int rate_limiter_restore(struct rate_limiter *rl, const struct rate_limiter_state *s,
			 uint64_t now_ns, const char **why) __attribute__((warn_unused_result));

#endif
