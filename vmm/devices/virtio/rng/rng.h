/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-rng, the entropy device (virtio 1.2, 5.4): one queue, "requestq",
 * no configuration space and no device features. The driver posts
 * device-writable buffers; the device fills them with bytes from the
 * host's getrandom(2) (GRND_NONBLOCK: the VMM thread never waits for the
 * host's pool) and returns each chain with the number of bytes written. At most RNG_MAX_CHAIN_BYTES per chain, as in Firecracker, so a
 * chain whose descriptors claim gigabytes (or overlap) costs the host no
 * more than that. A token-bucket rate limiter (bytes and chains) holds the
 * guest to a budget: a chain it refuses stays on the ring until the
 * limiter's timer fires.
 *
 * Threads: everything runs on the VMM thread under the transport lock:
 * queue notifications and the rate limiter's timer.
 */
#ifndef EMBER_VIRTIO_RNG_H
#define EMBER_VIRTIO_RNG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "devices/virtio/mmio.h"
#include "rate_limiter.h"

#define RNG_QUEUE_SIZE 256
/* Firecracker's MAX_ENTROPY_BYTES: the most one chain gets. */
#define RNG_MAX_CHAIN_BYTES (64u * 1024)

/* Rate limits: bucket sizes per refill_ms; size 0 = unlimited. */
struct rng_config {
	uint64_t bw_size, bw_burst, bw_refill_ms;
	uint64_t ops_size, ops_burst, ops_refill_ms;
};

/* Firecracker's entropy metrics, cumulative. */
struct rng_metrics {
	uint64_t activate_fails; /* the driver started the device without its queue */
	uint64_t event_fails; /* chains refused (malformed, nothing writable) or not filled */
	uint64_t event_count; /* chains handled, refused ones included */
	uint64_t bytes; /* random bytes given to the guest */
	uint64_t host_rng_fails; /* getrandom() failures */
	uint64_t throttled; /* times the rate limiter stopped the queue */
	uint64_t rate_limiter_events; /* limiter timer expiries and notifies while throttled */
};

/* Where the bytes come from: getrandom(2) in the monitor; unit tests and
 * fuzz targets put their own (failures, reproducible bytes). */
typedef ssize_t (*rng_source_fn)(void *buf, size_t len, unsigned int flags);

struct event_loop;

struct virtio_rng {
	struct virtio_mmio transport;
	struct virtq queue;
	const struct virtio_transport_ops *tops;
	struct rng_config cfg;
	rng_source_fn source;
	struct rate_limiter rl;
	int timer_fd;
	bool throttled;
	bool logged_bad_chain, logged_source_error; /* each logged once */
	struct rng_metrics m;
};

/* Set the device up (rate limiter, its timer, the transport). -errno with
 * a message in @err. */
int virtio_rng_init(struct virtio_rng *r, const struct guest_mem *mem, const struct rng_config *cfg,
		    char *err, size_t err_len) __attribute__((warn_unused_result));

/* Put the rate limiter's timer on @loop. 0 or -errno. */
int virtio_rng_add_to_loop(struct virtio_rng *r, struct event_loop *loop)
    __attribute__((warn_unused_result));

/* Serve the queue until it is empty, throttled or broken. Transport lock held. */
void virtio_rng_process(struct virtio_rng *r);

/* The rate limiter's buckets for a snapshot, and back (rate_limiter_restore()
 * checks them first). VMM thread, the VM paused or not yet running. */
void virtio_rng_save_limiter(struct virtio_rng *r, struct rate_limiter_state *s);
int virtio_rng_restore_limiter(struct virtio_rng *r, const struct rate_limiter_state *s,
			       const char **why) __attribute__((warn_unused_result));

#endif
