// SPDX-License-Identifier: Apache-2.0
#include "rate_limiter.h"

#include <errno.h>
#include <sys/timerfd.h>

#define NS_PER_MS 1000000ull

int token_bucket_init(struct token_bucket *b, uint64_t size, uint64_t one_time_burst,
		      uint64_t refill_time_ms, uint64_t now_ns)
{
	*b = (struct token_bucket){ 0 };
	if (size == 0)
		return 0;
	/* Longer refills would overflow the period in ns (and make it 0). */
	if (refill_time_ms == 0 || refill_time_ms > RATE_LIMITER_MAX_REFILL_MS)
		return -EINVAL;
	b->size = size;
	b->one_time_burst = one_time_burst;
	b->refill_time_ms = refill_time_ms;
	b->budget = size;
	b->last_refill_ns = now_ns;
	return 0;
}

/* Tokens earned since the last refill: size per refill_time, capped at size. */
static uint64_t bucket_level(const struct token_bucket *b, uint64_t now_ns, uint64_t *at_ns)
{
	uint64_t elapsed = now_ns > b->last_refill_ns ? now_ns - b->last_refill_ns : 0;
	uint64_t period = b->refill_time_ms * NS_PER_MS;
	/* 128-bit product: size and elapsed can both be large. */
	unsigned __int128 earned = (unsigned __int128)elapsed * b->size / period;
	uint64_t level = b->budget;
	if (earned >= b->size - b->budget)
		level = b->size;
	else
		level += (uint64_t)earned;
	/* Advance the refill clock only by the time that produced whole tokens. */
	*at_ns =
	    level == b->size ? now_ns : b->last_refill_ns + (uint64_t)((earned * period) / b->size);
	return level;
}

static bool bucket_can(const struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
	if (!b->size || n <= b->one_time_burst)
		return true;
	uint64_t at;
	uint64_t level = bucket_level(b, now_ns, &at);
	uint64_t need = n - b->one_time_burst;
	return level >= need || level == b->size;
}

static void bucket_take(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
	if (!b->size)
		return;
	uint64_t burst = n < b->one_time_burst ? n : b->one_time_burst;
	b->one_time_burst -= burst;
	n -= burst;
	uint64_t at;
	uint64_t level = bucket_level(b, now_ns, &at);
	b->budget = n >= level ? 0 : level - n;
	b->last_refill_ns = at;
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t ops, uint64_t bytes, uint64_t now_ns)
{
	if (!bucket_can(&rl->ops, ops, now_ns) || !bucket_can(&rl->bytes, bytes, now_ns)) {
		rl->throttled++;
		return false;
	}
	bucket_take(&rl->ops, ops, now_ns);
	bucket_take(&rl->bytes, bytes, now_ns);
	return true;
}

static uint64_t bucket_wait_ns(const struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
	if (bucket_can(b, n, now_ns))
		return 0;
	uint64_t at;
	uint64_t level = bucket_level(b, now_ns, &at);
	uint64_t need = n - b->one_time_burst;
	if (need > b->size)
		need = b->size;
	uint64_t missing = need - level;
	unsigned __int128 ns =
	    ((unsigned __int128)missing * b->refill_time_ms * NS_PER_MS + b->size - 1) / b->size;
	/* Time since the last whole token already counts towards the next one. */
	uint64_t already = now_ns - at;
	return (uint64_t)ns > already ? (uint64_t)ns - already : 1;
}

uint64_t rate_limiter_wait_ns(const struct rate_limiter *rl, uint64_t ops, uint64_t bytes,
			      uint64_t now_ns)
{
	uint64_t a = bucket_wait_ns(&rl->ops, ops, now_ns);
	uint64_t b = bucket_wait_ns(&rl->bytes, bytes, now_ns);
	return a > b ? a : b;
}

bool rate_limiter_enabled(const struct rate_limiter *rl)
{
	return rl->bytes.size || rl->ops.size;
}

void rate_limiter_charge(struct rate_limiter *rl, uint64_t ops, uint64_t bytes, uint64_t now_ns)
{
	bucket_take(&rl->ops, ops, now_ns);
	bucket_take(&rl->bytes, bytes, now_ns);
}

int rate_limiter_arm_timer(const struct rate_limiter *rl, int timer_fd, uint64_t ops,
			   uint64_t bytes, uint64_t now_ns)
{
	/* Never 0: an all-zero it_value disarms the timer, and a caller that
	 * just found the bucket short would then wait for good. */
	uint64_t ns = rate_limiter_wait_ns(rl, ops, bytes, now_ns);
	if (ns == 0)
		ns = 1;
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000ull),
						.tv_nsec = (long)(ns % 1000000000ull) } };
	return timerfd_settime(timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static void bucket_save(const struct token_bucket *b, struct token_bucket_state *s, uint64_t now_ns)
{
	*s = (struct token_bucket_state){
		.size = b->size,
		.one_time_burst = b->one_time_burst,
		.refill_time_ms = b->refill_time_ms,
		.budget = b->budget,
		.elapsed_ns =
		    b->size && now_ns > b->last_refill_ns ? now_ns - b->last_refill_ns : 0,
	};
}

void rate_limiter_save(const struct rate_limiter *rl, struct rate_limiter_state *s, uint64_t now_ns)
{
	bucket_save(&rl->bytes, &s->bytes, now_ns);
	bucket_save(&rl->ops, &s->ops, now_ns);
}

static int bucket_check(const struct token_bucket_state *s, const char **why)
{
	if (!s->size) {
		if (s->one_time_burst || s->refill_time_ms || s->budget || s->elapsed_ns) {
			*why = "an unlimited bucket (size 0) with other fields set";
			return -EINVAL;
		}
		return 0;
	}
	if (!s->refill_time_ms || s->refill_time_ms > RATE_LIMITER_MAX_REFILL_MS) {
		*why = "a bucket's refill_time is 0 or too large";
		return -EINVAL;
	}
	if (s->budget > s->size) {
		*why = "a bucket's budget is larger than its size";
		return -EINVAL;
	}
	return 0;
}

static void bucket_restore(struct token_bucket *b, const struct token_bucket_state *s,
			   uint64_t now_ns)
{
	*b = (struct token_bucket){
		.size = s->size,
		.one_time_burst = s->one_time_burst,
		.refill_time_ms = s->refill_time_ms,
		.budget = s->budget,
		/* Older than this process: refilled at its start, long enough
		 * ago to be full unless the bucket refills over days. */
		.last_refill_ns = s->elapsed_ns < now_ns ? now_ns - s->elapsed_ns : 0,
	};
}

int rate_limiter_restore(struct rate_limiter *rl, const struct rate_limiter_state *s,
			 uint64_t now_ns, const char **why)
{
	if (bucket_check(&s->bytes, why) < 0 || bucket_check(&s->ops, why) < 0)
		return -EINVAL;
	bucket_restore(&rl->bytes, &s->bytes, now_ns);
	bucket_restore(&rl->ops, &s->ops, now_ns);
	return 0;
}
