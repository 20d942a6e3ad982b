/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk (virtio 1.2, 5.2): IN, OUT, FLUSH and GET_ID on one queue,
 * backed by a host file through an I/O engine (io_uring or sync).
 *
 * Threads: requests are parsed and submitted on the VMM thread (queue
 * notify) and completed there too (io_uring completion eventfd). All of it
 * runs under the transport lock.
 */
#ifndef EMBER_VIRTIO_BLOCK_H
#define EMBER_VIRTIO_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio/mmio.h"
#include "rate_limiter.h"

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_ID_BYTES 20
#define BLK_SECTOR_SIZE 512
#define BLK_QUEUE_SIZE 256

enum blk_cache_type { BLK_CACHE_UNSAFE, BLK_CACHE_WRITEBACK };
enum blk_engine_kind { BLK_ENGINE_URING, BLK_ENGINE_SYNC };

struct blk_drive_config {
	const char *id; /* drive_id; also the GET_ID serial (first 20 bytes) */
	const char *path;
	bool read_only;
	bool direct; /* O_DIRECT (benchmarks) */
	enum blk_cache_type cache;
	enum blk_engine_kind engine;
	/* Rate limits: bucket sizes per refill_ms; 0 = unlimited. */
	uint64_t bw_size, bw_burst, bw_refill_ms;
	uint64_t ops_size, ops_burst, ops_refill_ms;
};

/* A request after validation: everything the engine needs, nothing from the ring. */
struct blk_req {
	uint16_t head;
	uint32_t type;
	uint64_t sector;
	uint64_t data_len;
	uint8_t *status; /* the status byte, in guest memory */
	uint32_t nr_iov;
	struct iovec iov[VIRTQ_MAX_SIZE]; /* data buffers, in guest memory */
	/* engine bookkeeping */
	uint32_t generation;
	uint64_t submit_ns; /* metrics: when the engine got it */
	bool in_use;
};

/*
 * Validate @chain as a virtio-blk request for a disk of @capacity sectors.
 * Returns VIRTIO_BLK_S_OK with @req filled, or an error status to report
 * (req->status set when the chain has a status byte, NULL when it has none).
 */
uint8_t blk_req_parse(const struct virtq_chain *chain, uint64_t capacity, bool read_only,
		      struct blk_req *req);

/* Cumulative; metrics.c shows them under Firecracker's names (README). */
struct blk_metrics {
	uint64_t reads, writes, flushes, get_ids;
	uint64_t read_bytes, write_bytes;
	uint64_t errors; /* requests failed (bad request or I/O error) */
	uint64_t io_errors; /* of those, failed by the backing file (EIO, ENOSPC, ...) */
	uint64_t invalid_reqs; /* of those, refused when parsed (type, size, range) */
	uint64_t bad_chains; /* malformed descriptor chains */
	uint64_t throttled; /* rate limiter refusals */
	uint64_t rate_limiter_events; /* limiter timer expiries */
	uint64_t backpressure; /* times the engine was full */
	uint64_t no_avail_buffer; /* queue runs that found no request */
	uint64_t cfg_fails; /* config space accesses outside it (none is writable) */
	uint64_t update_count, update_fails; /* PATCH /drives */
	uint64_t remaining_reqs; /* requests left on the ring each time the limiter stopped it */
	/* Submission to completion of reads and writes (min and max are values,
	 * over the device's life). */
	struct blk_time {
		uint64_t min_ns, max_ns, sum_ns;
	} read_time, write_time;
};

struct blk_engine;
struct event_loop;
struct event_handler;

struct virtio_blk {
	struct virtio_mmio transport;
	struct virtq queue;
	const struct virtio_transport_ops *tops;
	struct blk_drive_config cfg;
	char id[VIRTIO_BLK_ID_BYTES + 1];
	int fd;
	uint64_t capacity; /* sectors */
	uint64_t acked;
	uint32_t generation; /* bumped on reset: completions of older requests are dropped */

	const struct blk_engine *engine;
	void *engine_state;
	struct blk_req *reqs; /* BLK_QUEUE_SIZE slots */
	uint32_t free_slots[BLK_QUEUE_SIZE];
	uint32_t nr_free;
	uint32_t inflight;

	struct rate_limiter rl;
	int timer_fd;
	struct event_loop *loop;
	struct event_handler *completion_h;
	char *swapped_path; /* owned copy of cfg.path after a PATCH swap */
	bool throttled;
	struct blk_metrics m;
	bool logged_bad_chain;
	int logged_io_errno; /* the last backing-file error logged: each new one once */
};

/*
 * Open the backing file and set up the device (engine included). On error
 * returns -errno and a message in @err.
 */
int virtio_blk_init(struct virtio_blk *b, const struct guest_mem *mem,
		    const struct blk_drive_config *cfg, char *err, size_t err_len)
    __attribute__((warn_unused_result));

/* Register the device's fds (engine completions, rate-limit timer) on @loop. */
int virtio_blk_add_to_loop(struct virtio_blk *b, struct event_loop *loop)
    __attribute__((warn_unused_result));

/* Run the queue: pop, parse, submit, complete what finished. Transport lock held. */
void virtio_blk_process(struct virtio_blk *b);
/* Reap engine completions (VMM thread, takes the transport lock). */
void virtio_blk_complete_ready(struct virtio_blk *b);

/*
 * PATCH /drives: swap the backing file for @path (after the requests in
 * flight have completed; the guest is told the capacity may have changed)
 * and/or replace the rate limits with those in @limits. VMM thread.
 */
int virtio_blk_update(struct virtio_blk *b, const char *path, const struct blk_drive_config *limits,
		      char *err, size_t err_len) __attribute__((warn_unused_result));

/* The rate limiter's buckets for a snapshot, and back (rate_limiter_restore()
 * checks them first). VMM thread, the VM paused or not yet running. */
void virtio_blk_save_limiter(struct virtio_blk *b, struct rate_limiter_state *s);
int virtio_blk_restore_limiter(struct virtio_blk *b, const struct rate_limiter_state *s,
			       const char **why) __attribute__((warn_unused_result));

/* Wait (up to a few seconds) until no request is in flight: before a
 * snapshot. VMM thread, VM paused. 0 or -ETIMEDOUT. */
int virtio_blk_drain(struct virtio_blk *b);

/* Flush the backing file (writeback mode) before the process exits. */
int virtio_blk_flush_backing(struct virtio_blk *b);

#endif
