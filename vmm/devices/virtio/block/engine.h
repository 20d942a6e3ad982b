/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The I/O engines behind virtio-blk: one ops table, two implementations.
 * io_uring (default) submits straight from guest memory and completes
 * through an eventfd; sync does the I/O inline with preadv/pwritev.
 */
#ifndef EMBER_BLK_ENGINE_H
#define EMBER_BLK_ENGINE_H

#include "block.h"

struct blk_engine {
	const char *name;
	int (*init)(struct virtio_blk *b, char *err, size_t err_len);
	/* fd that becomes readable when completions are ready, or -1 (sync). */
	int (*completion_fd)(struct virtio_blk *b);
	/*
	 * Start @req (IN, OUT or FLUSH). Returns 0 when queued (completion comes
	 * through reap), 1 when done now (req->status holds the result), or
	 * -EAGAIN when the engine is full: the caller keeps the request for later.
	 */
	int (*submit)(struct virtio_blk *b, struct blk_req *req);
	/* Push queued submissions to the kernel, once per batch. */
	void (*kick)(struct virtio_blk *b);
	/* Call blk_complete() for each finished request. */
	void (*reap)(struct virtio_blk *b);
	/* Wait for every request in flight to complete, then free the engine. */
	void (*destroy)(struct virtio_blk *b);
};

extern const struct blk_engine blk_engine_uring;
extern const struct blk_engine blk_engine_sync;

/*
 * Move @req's data (IN or OUT) from byte @done on with preadv/pwritev,
 * retrying short transfers: the whole request's length, or -errno (-EIO at
 * end of file). Both engines use it: io_uring for what a short completion
 * left, so the guest gets the rest or the real error.
 */
int64_t blk_rw_sync(int fd, struct blk_req *req, uint64_t done);

/* An engine finished @req with @result (bytes moved, or -errno). */
void blk_complete(struct virtio_blk *b, struct blk_req *req, int64_t result);

#endif
