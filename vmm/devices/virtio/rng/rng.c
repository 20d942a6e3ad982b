// SPDX-License-Identifier: Apache-2.0
/* virtio-rng device: the request queue, the host's entropy, the rate limiter. */
#include "rng.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "event_loop.h"
#include "log.h"

#define RNG_NAME "entropy"

static uint64_t rng_features(void *dev)
{
	(void)dev;
	/* VERSION_1 and EVENT_IDX, the transport's; the device has none of its own. */
	return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX);
}

static void rng_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	/* No configuration space: reads see zeros (the transport cleared @data). */
	(void)dev, (void)off, (void)data, (void)len;
}

static void rng_config_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	(void)dev, (void)off, (void)data, (void)len;
}

static int rng_activate(void *dev, uint64_t acked)
{
	struct virtio_rng *r = dev;
	(void)acked;
	if (!r->queue.avail) {
		/* DRIVER_OK without the one queue ready: nothing could be served. */
		r->m.activate_fails++;
		return -EINVAL;
	}
	/* Chains already on the ring of a restored VM: virtio_mmio_restore()
	 * replays their notification. */
	return 0;
}

static void rng_reset(void *dev)
{
	struct virtio_rng *r = dev;
	/* A timer still armed fires later and finds the queue inactive. */
	r->throttled = false;
}

static void rng_queue_notify(void *dev, unsigned int q)
{
	struct virtio_rng *r = dev;
	(void)q;
	if (r->throttled) {
		/* The timer resumes the queue; Firecracker counts this too. */
		r->m.rate_limiter_events++;
		return;
	}
	virtio_rng_process(r);
}

static const struct virtio_device_ops rng_ops = {
	.device_id = VIRTIO_ID_RNG,
	.num_queues = 1,
	.queue_max = RNG_QUEUE_SIZE,
	.features = rng_features,
	.config_read = rng_config_read,
	.config_write = rng_config_write,
	.activate = rng_activate,
	.reset = rng_reset,
	.queue_notify = rng_queue_notify,
};

/* Fill the first @want bytes of @chain's writable buffers from the host.
 * Returns the bytes written: @want, or 0 when the source failed. */
static uint32_t rng_fill(struct virtio_rng *r, const struct virtq_chain *chain, uint32_t want)
{
	uint32_t done = 0;
	const struct iovec *iov = &chain->iov[chain->nr_out];
	for (unsigned int i = 0; i < chain->nr_in && done < want; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len < want - done ? iov[i].iov_len : want - done;
		while (len) {
			/* Straight into guest memory (checked by virtq_pop). getrandom
			 * may return less than asked for, or EINTR, above 256 bytes;
			 * GRND_NONBLOCK: a host whose pool is not yet initialised
			 * (early boot) fails the chain rather than stall the VMM
			 * thread. */
			ssize_t n = r->source(p, len, GRND_NONBLOCK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || (size_t)n > len) {
				int e = n < 0 ? errno : EIO;
				r->m.host_rng_fails++;
				if (!r->logged_source_error)
					log_err("%s: getrandom failed: %s; the guest gets empty "
						"buffers (host_rng_fails counts them)",
						RNG_NAME, strerror(e));
				r->logged_source_error = true;
				return 0;
			}
			p += n;
			len -= (size_t)n;
			done += (uint32_t)n;
		}
	}
	return done;
}

static void rng_refuse(struct virtio_rng *r, const char *why)
{
	r->m.event_count++;
	r->m.event_fails++;
	if (!r->logged_bad_chain)
		log_warn("%s: refusing descriptor chain: %s (logged once; entropy_event_fails "
			 "counts them)",
			 RNG_NAME, why);
	r->logged_bad_chain = true;
}

static bool rng_ready(void *dev)
{
	const struct virtio_rng *r = dev;
	return !r->throttled;
}

/* One chain: the bytes of entropy written into it. */
static int64_t rng_handle(void *dev, struct virtq *q, const struct virtq_chain *chain,
			  const char *bad)
{
	struct virtio_rng *r = dev;
	(void)q;
	const char *problem = bad;
	if (!problem && chain->nr_out)
		problem = "device-readable descriptor"; /* Firecracker refuses these too */
	else if (!problem && chain->in_len == 0)
		problem = "no writable bytes";
	if (problem) {
		rng_refuse(r, problem);
		return 0;
	}
	uint32_t want =
	    chain->in_len < RNG_MAX_CHAIN_BYTES ? (uint32_t)chain->in_len : RNG_MAX_CHAIN_BYTES;
	uint64_t now = clock_now_ns();
	if (rate_limiter_enabled(&r->rl) && !rate_limiter_consume(&r->rl, 1, want, now)) {
		/* The chain stays on the ring (nothing in flight for a snapshot);
		 * the timer takes the queue up again. */
		rate_limiter_arm_timer(&r->rl, r->timer_fd, 1, want, now);
		r->throttled = true;
		r->m.throttled++;
		return VIRTQ_UNPOP;
	}
	uint32_t got = rng_fill(r, chain, want);
	r->m.event_count++;
	r->m.bytes += got;
	if (!got)
		r->m.event_fails++;
	return got;
}

static const struct virtq_drain_ops rng_drain_ops = { .ready = rng_ready, .handle = rng_handle };

void virtio_rng_process(struct virtio_rng *r)
{
	static struct virtq_chain chain;
	virtq_drain(&r->queue, &chain, &rng_drain_ops, r, r->tops, &r->transport);
}

static void rng_timer_ready(void *opaque, uint32_t events)
{
	struct virtio_rng *r = opaque;
	uint64_t v;
	(void)events;
	ssize_t n = read(r->timer_fd, &v, sizeof(v));
	(void)n;
	pthread_mutex_lock(&r->transport.lock);
	r->m.rate_limiter_events++;
	r->throttled = false;
	if (virtio_mmio_active(&r->transport) && r->queue.avail)
		virtio_rng_process(r);
	pthread_mutex_unlock(&r->transport.lock);
}

void virtio_rng_save_limiter(struct virtio_rng *r, struct rate_limiter_state *s)
{
	pthread_mutex_lock(&r->transport.lock);
	rate_limiter_save(&r->rl, s, clock_now_ns());
	pthread_mutex_unlock(&r->transport.lock);
}

int virtio_rng_restore_limiter(struct virtio_rng *r, const struct rate_limiter_state *s,
			       const char **why)
{
	pthread_mutex_lock(&r->transport.lock);
	int ret = rate_limiter_restore(&r->rl, s, clock_now_ns(), why);
	pthread_mutex_unlock(&r->transport.lock);
	return ret;
}

int virtio_rng_init(struct virtio_rng *r, const struct guest_mem *mem, const struct rng_config *cfg,
		    char *err, size_t err_len)
{
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	r->tops = &virtio_mmio_transport_ops;
	r->source = getrandom;
	r->timer_fd = -1;
	uint64_t now = clock_now_ns();
	if (token_bucket_init(&r->rl.bytes, cfg->bw_size, cfg->bw_burst, cfg->bw_refill_ms, now) <
		0 ||
	    token_bucket_init(&r->rl.ops, cfg->ops_size, cfg->ops_burst, cfg->ops_refill_ms, now) <
		0) {
		snprintf(err, err_len, "rate limiter refill time must be more than 0 ms");
		return -EINVAL;
	}
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->timer_fd < 0) {
		int e = errno;
		snprintf(err, err_len, "timerfd_create: %s", strerror(e));
		return -e;
	}
	int ret = virtio_mmio_init(&r->transport, RNG_NAME, mem, &rng_ops, r, &r->queue);
	if (ret < 0) {
		snprintf(err, err_len, "cannot set up the device: %s", strerror(-ret));
		close(r->timer_fd);
		r->timer_fd = -1;
	}
	return ret;
}

int virtio_rng_add_to_loop(struct virtio_rng *r, struct event_loop *loop)
{
	if (!event_loop_add(loop, r->timer_fd, EPOLLIN, rng_timer_ready, r))
		return -errno;
	return 0;
}
