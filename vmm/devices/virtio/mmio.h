/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio transport, version 2 (virtio 1.2, 4.2). One page of registers
 * per device in the MMIO window, one interrupt line, one ioeventfd per queue
 * (datamatch = queue index) and one irqfd.
 *
 * Register accesses come from vCPU threads; queue notifications and I/O
 * completions are handled on the VMM thread. t->lock serialises all of it,
 * including every call into the device's ops.
 */
#ifndef EMBER_VIRTIO_MMIO_H
#define EMBER_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest_mem.h"
#include "queue.h"
#include "virtio.h"

#define VIRTIO_MMIO_SIZE 0x1000
#define VIRTIO_MMIO_MAX_QUEUES 4

struct vm;
struct event_loop;
struct event_handler;

struct virtio_mmio;

/* What a queue's notify handler on the event loop needs to know. */
struct virtio_mmio_notify {
	struct virtio_mmio *t;
	unsigned int q;
};

struct virtio_mmio {
	pthread_mutex_t lock;
	const struct virtio_device_ops *ops;
	void *dev;
	struct virtq *queues; /* the device's, ops->num_queues of them */
	const struct guest_mem *mem;
	const char *name;

	uint64_t base;
	uint32_t irq;
	int irq_fd; /* written to raise the interrupt (an irqfd under KVM) */
	int notify_fds[VIRTIO_MMIO_MAX_QUEUES];
	struct event_handler *notify_h[VIRTIO_MMIO_MAX_QUEUES];
	struct virtio_mmio_notify notify_ctx[VIRTIO_MMIO_MAX_QUEUES];

	/* Registers. */
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint32_t status, interrupt_status, config_generation;
	uint64_t driver_features;

	/* Metrics, cumulative, under the lock (queue_events: VMM thread). */
	uint64_t needs_reset_events;
	uint64_t queue_events[VIRTIO_MMIO_MAX_QUEUES]; /* notifications handled, per queue */
	uint64_t activate_fails; /* DRIVER_OK refused: bad queue or device set-up */
	uint64_t event_fails; /* eventfd reads or interrupt writes that failed */
	uint64_t irq_triggers, config_updates; /* interrupts raised, config changes signalled */
};

/* What devices are given to reach their transport. */
extern const struct virtio_transport_ops virtio_mmio_transport_ops;

/*
 * Set up the transport state for @dev (no KVM, no event loop: the block
 * benchmark harness drives a transport this way). Creates the irq and
 * notify eventfds. 0 or -errno.
 */
int virtio_mmio_init(struct virtio_mmio *t, const char *name, const struct guest_mem *mem,
		     const struct virtio_device_ops *ops, void *dev, struct virtq *queues)
    __attribute__((warn_unused_result));

/*
 * Put the transport at @base with interrupt @irq in @vm: MMIO bus entry,
 * KVM_IOEVENTFD per queue, KVM_IRQFD, and the notify fds on @loop.
 */
int virtio_mmio_attach(struct virtio_mmio *t, struct vm *vm, struct event_loop *loop, uint64_t base,
		       uint32_t irq) __attribute__((warn_unused_result));

/* Register access, as a vCPU's MMIO exit delivers it (offset within the page). */
void virtio_mmio_read(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len);
void virtio_mmio_write(struct virtio_mmio *t, uint64_t off, const uint8_t *data, uint32_t len);

/* Queue @q was notified: drain its eventfd and hand it to the device. VMM thread. */
void virtio_mmio_notify(struct virtio_mmio *t, unsigned int q);

/* A transport's state in a snapshot: registers and queues (fixed layout). */
struct virtio_mmio_queue_state {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size, last_avail, used_idx, signalled_used;
	uint8_t ready, signalled_valid, broken, pad[5];
};

struct virtio_mmio_state {
	uint32_t device_id, num_queues;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint32_t status, interrupt_status, config_generation;
	uint64_t driver_features;
	struct virtio_mmio_queue_state q[VIRTIO_MMIO_MAX_QUEUES];
};

/* Record @t's state. Caller holds no lock; the VM is paused. */
void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *st);
/*
 * Put @st back into a freshly made transport, validating all of it first:
 * the device type, acked features within those offered (with VERSION_1),
 * status bits in order, queue sizes, ring placement inside guest memory
 * (virtq_activate), indices consistent with the used ring in memory. Then
 * activates the device if the driver had. 0, or -EINVAL with @why.
 */
int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *st, const char **why)
    __attribute__((warn_unused_result));

/* True between DRIVER_OK and the next reset, unless the device needs a reset. */
bool virtio_mmio_active(const struct virtio_mmio *t);

#endif
