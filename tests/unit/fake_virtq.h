/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake virtio driver for unit tests and the block benchmark harness: it
 * lays out a split virtqueue in (fake) guest memory, brings a virtio-mmio
 * transport up through its registers, and builds descriptor chains,
 * well-formed or not.
 */
#ifndef EMBER_TEST_FAKE_VIRTQ_H
#define EMBER_TEST_FAKE_VIRTQ_H

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/mmio.h"

/* Guest-physical layout of the fake driver's queue and buffers. */
#define FQ_DESC 0x10000ull
#define FQ_AVAIL 0x20000ull
#define FQ_USED 0x30000ull
#define FQ_BUF 0x100000ull /* request buffers from here */

struct fake_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* VIRTQ_DESC_F_WRITE etc.; NEXT is added by fq_add */
};

struct fake_vq {
	const struct guest_mem *mem;
	struct virtio_mmio *t;
	unsigned int qi; /* queue index */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size;
	uint16_t next_desc; /* next free descriptor slot (wraps) */
	uint16_t avail_idx;
	uint16_t used_seen;
};

static inline void fq_reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio_write(t, off, (const uint8_t *)&v, 4);
}

static inline uint32_t fq_reg_read(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v;
	virtio_mmio_read(t, off, (uint8_t *)&v, 4);
	return v;
}

/* Reset the device and negotiate @features (status up to FEATURES_OK). */
static inline void fq_begin(struct virtio_mmio *t, uint64_t features)
{
	fq_reg_write(t, 0x070, 0);
	fq_reg_write(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	fq_reg_write(t, 0x024, 0);
	fq_reg_write(t, 0x020, (uint32_t)features);
	fq_reg_write(t, 0x024, 1);
	fq_reg_write(t, 0x020, (uint32_t)(features >> 32));
	fq_reg_write(t, 0x070,
		     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

/* Lay out queue @qi with @size entries at the given addresses and make it ready. */
static inline void fq_queue(struct fake_vq *q, struct virtio_mmio *t, const struct guest_mem *mem,
			    unsigned int qi, uint16_t size, uint64_t desc, uint64_t avail,
			    uint64_t used)
{
	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->t = t;
	q->qi = qi;
	q->size = size;
	q->desc_gpa = desc;
	q->avail_gpa = avail;
	q->used_gpa = used;
	uint8_t *d = guest_mem_ptr(mem, desc, 16ull * size),
		*a = guest_mem_ptr(mem, avail, 6ull + 2 * size),
		*u = guest_mem_ptr(mem, used, 6ull + 8 * size);
	if (d)
		memset(d, 0, 16ull * size);
	if (a)
		memset(a, 0, 6ull + 2 * size);
	if (u)
		memset(u, 0, 6ull + 8 * size);
	fq_reg_write(t, 0x030, qi);
	fq_reg_write(t, 0x038, size);
	fq_reg_write(t, 0x080, (uint32_t)desc);
	fq_reg_write(t, 0x084, (uint32_t)(desc >> 32));
	fq_reg_write(t, 0x090, (uint32_t)avail);
	fq_reg_write(t, 0x094, (uint32_t)(avail >> 32));
	fq_reg_write(t, 0x0a0, (uint32_t)used);
	fq_reg_write(t, 0x0a4, (uint32_t)(used >> 32));
	fq_reg_write(t, 0x044, 1);
}

/* Set DRIVER_OK; returns the status register. */
static inline uint32_t fq_driver_ok(struct virtio_mmio *t)
{
	fq_reg_write(t, 0x070,
		     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			 VIRTIO_STATUS_DRIVER_OK);
	return fq_reg_read(t, 0x070);
}

/* Negotiate @features and bring queue 0 up with @size entries at the default
 * addresses (or @desc/@avail/@used when non-zero). Returns the status register. */
static inline uint32_t fq_setup(struct fake_vq *q, struct virtio_mmio *t,
				const struct guest_mem *mem, uint16_t size, uint64_t features,
				uint64_t desc, uint64_t avail, uint64_t used)
{
	fq_begin(t, features);
	fq_queue(q, t, mem, 0, size, desc ? desc : FQ_DESC, avail ? avail : FQ_AVAIL,
		 used ? used : FQ_USED);
	return fq_driver_ok(t);
}

static inline struct virtq_desc *fq_desc(struct fake_vq *q)
{
	return guest_mem_ptr(q->mem, q->desc_gpa, 16ull * q->size);
}

static inline struct virtq_avail *fq_avail(struct fake_vq *q)
{
	return guest_mem_ptr(q->mem, q->avail_gpa, 6ull + 2ull * q->size);
}

static inline struct virtq_used *fq_used(struct fake_vq *q)
{
	return guest_mem_ptr(q->mem, q->used_gpa, 6ull + 8ull * q->size);
}

/* Write a chain of @n descriptors linked in order; returns its head. */
static inline uint16_t fq_add(struct fake_vq *q, const struct fake_desc *d, unsigned int n)
{
	struct virtq_desc *table = fq_desc(q);
	uint16_t head = q->next_desc;
	for (unsigned int i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % q->size);
		uint16_t next = (uint16_t)((idx + 1) % q->size);
		table[idx] = (struct virtq_desc){
			.addr = d[i].addr,
			.len = d[i].len,
			.flags = (uint16_t)(d[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			.next = next
		};
	}
	q->next_desc = (uint16_t)((head + n) % q->size);
	return head;
}

/* Make chain @head available (without notifying). */
static inline void fq_publish(struct fake_vq *q, uint16_t head)
{
	struct virtq_avail *a = fq_avail(q);
	a->ring[q->avail_idx % q->size] = head;
	q->avail_idx++;
	__atomic_store_n(&a->idx, q->avail_idx, __ATOMIC_RELEASE);
}

/* Notify the queue the way an ioeventfd would. */
static inline void fq_kick(struct fake_vq *q)
{
	uint64_t one = 1;
	ssize_t w = write(q->t->notify_fds[q->qi], &one, sizeof(one));
	(void)w;
	virtio_mmio_notify(q->t, q->qi);
}

/* Next used element, or -1 if none. */
static inline int fq_take_used(struct fake_vq *q, struct virtq_used_elem *e)
{
	struct virtq_used *u = fq_used(q);
	if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == q->used_seen)
		return -1;
	*e = u->ring[q->used_seen % q->size];
	q->used_seen++;
	return 0;
}

#endif
