/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest kit's virtio-mmio driver: device discovery from the device tree
 * (libfdt), feature negotiation, one split virtqueue per device, polled
 * completion. Written to run at ring 3 (native speed on the development
 * machines); it never enables interrupts.
 */
#ifndef EMBER_GUEST_VIRTIO_H
#define EMBER_GUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#define GV_QUEUE_SIZE 16
#define GV_MAX_DEVICES 8

struct gv_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

/* One page holds the whole queue: descriptors, avail ring, used ring. */
struct gv_queue_mem {
	struct gv_desc desc[GV_QUEUE_SIZE];
	struct {
		uint16_t flags, idx, ring[GV_QUEUE_SIZE], used_event;
	} avail;
	uint8_t pad[2048 - 16 * GV_QUEUE_SIZE - 6 - 2 * GV_QUEUE_SIZE];
	struct {
		uint16_t flags, idx;
		struct {
			uint32_t id, len;
		} ring[GV_QUEUE_SIZE];
		uint16_t avail_event;
	} used;
} __attribute__((aligned(4096)));

#define GV_MAX_QUEUES 3

struct gv_device {
	uint64_t base;
	uint32_t irq;
	uint32_t device_id;
	uint64_t features; /* negotiated */
	unsigned int nr_queues;
	struct gv_queue_mem *q[GV_MAX_QUEUES];
	uint16_t avail_idx[GV_MAX_QUEUES], used_seen[GV_MAX_QUEUES];
};

/* Fill @devs from the device tree's "virtio,mmio" nodes; returns how many. */
int gv_discover(const void *dtb, struct gv_device *devs, int max);

/*
 * Reset and start @d: negotiate VERSION_1 plus what @wanted asks of the
 * device's offer, set up queues 0..@nq-1 in @q[]. Returns 0 or a negative
 * step number.
 */
int gv_start(struct gv_device *d, uint64_t wanted, struct gv_queue_mem **q, unsigned int nq);

/* Read 32 bits of device config space at @off. */
uint32_t gv_config32(const struct gv_device *d, uint32_t off);

/*
 * Post one chain of @n buffers (addr, len, writable) and poll until the
 * device returns it. Returns the used length.
 */
struct gv_buf {
	const void *addr;
	uint32_t len;
	bool writable;
};
uint32_t gv_transfer(struct gv_device *d, unsigned int qi, const struct gv_buf *bufs, int n);

/*
 * One virtio-blk request on queue 0 of @d, polled: header, then @len bytes
 * at @buf (device-writable unless it is a write, VIRTIO_BLK_T_OUT = 1), then
 * the status byte. Returns the status (0 OK, 1 IOERR, 2 UNSUPP).
 */
uint8_t gv_blk_request(struct gv_device *d, uint32_t type, uint64_t sector, void *buf,
		       uint32_t len);

/*
 * Post a chain of @n buffers at descriptor @slot of queue @qi (the caller
 * keeps slots of chains in flight apart) and notify if the device wants it.
 */
void gv_post(struct gv_device *d, unsigned int qi, uint16_t slot, const struct gv_buf *bufs, int n);
/* Take the next used chain of queue @qi: 0 with its head and length, -1 if none. */
int gv_take_used(struct gv_device *d, unsigned int qi, uint16_t *head, uint32_t *len);
/* The same, polling for at most @cycles TSC cycles: 0, or -1 on timeout. */
int gv_wait_used(struct gv_device *d, unsigned int qi, uint16_t *head, uint32_t *len,
		 uint64_t cycles);

#endif
