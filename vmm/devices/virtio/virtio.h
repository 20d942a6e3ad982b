/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Virtio 1.2 definitions ember uses (split virtqueues over virtio-mmio), and
 * the contract between a virtio device and its transport.
 *
 * A device (block, later net and vsock) fills one static const
 * struct virtio_device_ops; the transport (mmio.c) fills one
 * struct virtio_transport_ops. Neither writes into the other's table.
 *
 * Threads: the transport takes register accesses on vCPU threads and queue
 * notifications on the VMM thread; it holds its lock around every call into
 * the device, so device callbacks never race each other.
 */
#ifndef EMBER_VIRTIO_H
#define EMBER_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u

/* Feature bits shared by all devices. */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Interrupt status bits. */
#define VIRTIO_INT_USED 1u
#define VIRTIO_INT_CONFIG 2u

/* Split virtqueue layout (2.7). All fields little-endian. */
#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* then uint16_t used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* then uint16_t avail_event */
};

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

struct virtio_mmio;
struct virtq;

/* What a device implements. @dev is the device's own state. */
struct virtio_device_ops {
	uint32_t device_id;
	uint16_t num_queues;
	uint16_t queue_max; /* largest queue size the device accepts, power of 2 */
	uint64_t (*features)(void *dev);
	void (*config_read)(void *dev, uint64_t off, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint64_t off, const uint8_t *data, uint32_t len);
	/* The driver set DRIVER_OK with @acked features and valid queues. 0 or -errno. */
	int (*activate)(void *dev, uint64_t acked);
	/* The driver wrote 0 to status: forget queues and in-flight work. */
	void (*reset)(void *dev);
	/* Queue @q was notified (VMM thread). */
	void (*queue_notify)(void *dev, unsigned int q);
};

/* What the transport offers the device: interrupts and error reporting. */
struct virtio_transport_ops {
	/* Used buffers were added to some queue: raise the device interrupt. */
	void (*signal_used)(struct virtio_mmio *t);
	/* The device's configuration changed. */
	void (*signal_config)(struct virtio_mmio *t);
	/* The device hit a state it cannot go on from (DEVICE_NEEDS_RESET). */
	void (*needs_reset)(struct virtio_mmio *t, const char *why);
};

#endif
