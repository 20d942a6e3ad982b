/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueues, device side. Everything in a ring is written by the
 * guest and is treated as hostile: queue geometry is validated when the
 * driver activates the device, and every descriptor chain is validated by
 * virtq_pop() before a device sees it.
 *
 * The loop a device runs (STYLE.md, "a fixed queue loop"):
 *   while (virtq_pop(q, &chain) > 0) { parse; execute; virtq_push(q, head, len); }
 *   if (virtq_should_signal(q)) signal once for the batch;
 * virtq_drain() below is that loop; devices whose chains stand alone use it.
 * One thread at a time per queue (the caller holds the transport lock).
 */
#ifndef EMBER_VIRTQ_H
#define EMBER_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "guest_mem.h"
#include "virtio.h"

#define VIRTQ_MAX_SIZE 256

/* Queue configuration as the driver wrote it through the transport. */
struct virtq_config {
	uint16_t size;
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
};

struct virtq {
	struct virtq_config cfg;
	/* Resolved at activation by virtq_activate(); valid until reset. */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	const struct guest_mem *mem;
	bool event_idx;
	bool broken; /* structure corrupted: device needs reset */
	uint16_t last_avail; /* next avail ring entry to take */
	uint16_t used_idx; /* our copy of used->idx */
	uint16_t signalled_used; /* used_idx at the last interrupt */
	bool signalled_valid;
	uint64_t bad_chains; /* chains refused, for metrics */
};

/* A validated descriptor chain: readable buffers first, then writable ones. */
/*
 * Devices keep the chain they pop into in static storage (it is 4 KiB, too
 * big for a frame), not __thread: device work runs on the VMM thread only,
 * and glibc zeroes every thread's copy of each __thread variable when the
 * thread starts, which cost each vCPU and HTTP thread ~58 KiB of private
 * memory in every clone.
 */
struct virtq_chain {
	uint16_t head;
	uint16_t nr_out, nr_in; /* readable (driver->device), writable */
	uint64_t out_len, in_len;
	struct iovec iov[VIRTQ_MAX_SIZE]; /* out iovecs, then in iovecs */
};

/*
 * Check @cfg against guest memory and @max_size and bind the queue to it:
 * size a power of 2 in [1, max], rings aligned and wholly inside guest RAM.
 * Returns 0 or -EINVAL with the reason in @why.
 */
int virtq_activate(struct virtq *q, const struct guest_mem *mem, uint16_t max_size, bool event_idx,
		   const char **why) __attribute__((warn_unused_result));
void virtq_reset(struct virtq *q);

/*
 * Take the next available chain. Returns 1 with @chain filled, 0 when the
 * ring is empty, -EINVAL when the chain is malformed (then @chain->head is
 * set, the caller must give the head back with virtq_push(q, head, 0), and
 * the chain is counted in bad_chains), or -EIO when the ring itself is
 * corrupt (q->broken is set; stop and ask for a device reset).
 */
int virtq_pop(struct virtq *q, struct virtq_chain *chain, const char **why);

/* Give back the chain virtq_pop() just returned, to take it again later. */
void virtq_unpop(struct virtq *q);

/* Number of chains the driver has made available and we have not taken. */
uint16_t virtq_pending(const struct virtq *q);

/* Return chain @head to the driver with @len bytes written. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);

/*
 * After a batch of pushes: does the driver want an interrupt? Honours
 * VIRTIO_F_RING_EVENT_IDX (used_event) or, without it, the avail ring's
 * NO_INTERRUPT flag. Records the signal when it says yes.
 */
bool virtq_should_signal(struct virtq *q);

/*
 * Before waiting for the next notification: tell the driver (avail_event)
 * which index we wait for, then re-check for chains that raced in. Returns
 * true if there is more work, in which case the caller loops again.
 */
bool virtq_enable_notify(struct virtq *q);
/*
 * The same, for a device that holds back the chains up to avail index
 * @seen (it popped and unpopped them: too small for its need): wait for
 * the driver to add a chain past @seen. True if one is there already.
 */
bool virtq_enable_notify_past(struct virtq *q, uint16_t seen);

/* What a drain handler may return instead of a length to push. */
#define VIRTQ_TAKEN (-1) /* the device pushes the chain itself, now or when its I/O ends */
#define VIRTQ_UNPOP (-2) /* not now (throttled, backend full): give it back, end the batch */

/* A device's part in virtq_drain(); @dev is the device's own state. */
struct virtq_drain_ops {
	/* May the device take a chain now (not throttled, backend not full)?
	 * When not, the loop ends without re-arming notifications: the device
	 * drains again when that changes. NULL: always. */
	bool (*ready)(void *dev);
	/* One chain from @q. @bad: virtq_pop() refused it for that reason (count
	 * it and return 0). Returns the bytes written into the chain, which it
	 * is pushed back with, VIRTQ_TAKEN or VIRTQ_UNPOP. */
	int64_t (*handle)(void *dev, struct virtq *q, const struct virtq_chain *chain,
			  const char *bad);
	/* After each batch, before notifications are re-armed. NULL: nothing. */
	void (*flush)(void *dev);
};

/*
 * The fixed queue loop: while @ops->ready, pop into @chain (the device's
 * static scratch), handle, push; when the ring runs dry re-arm notifications
 * and look again. A corrupt ring asks @tops for a reset and ends it. Signals
 * used buffers once at the end if the driver wants it (EVENT_IDX). Returns
 * true if it took any chain (given back ones too).
 */
bool virtq_drain(struct virtq *q, struct virtq_chain *chain, const struct virtq_drain_ops *ops,
		 void *dev, const struct virtio_transport_ops *tops, struct virtio_mmio *t);

#endif
