// SPDX-License-Identifier: Apache-2.0
#include "queue.h"

#include <errno.h>
#include <string.h>

/* Ring sizes in bytes for a queue of @n entries (2.7.x). */
#define DESC_BYTES(n) (16ull * (n))
#define AVAIL_BYTES(n) (6ull + 2ull * (n))
#define USED_BYTES(n) (6ull + 8ull * (n))

static uint16_t *used_event(const struct virtq *q)
{
	return &q->avail->ring[q->cfg.size];
}

static uint16_t *avail_event(const struct virtq *q)
{
	/* Right after the used ring's last element (flags, idx, ring[size]). */
	return (uint16_t *)((uint8_t *)q->used + 4 + 8ull * q->cfg.size);
}

int virtq_activate(struct virtq *q, const struct guest_mem *mem, uint16_t max_size, bool event_idx,
		   const char **why)
{
	const struct virtq_config *c = &q->cfg;
	uint16_t n = c->size;
	if (n == 0 || n > max_size || (n & (n - 1))) {
		*why = "queue size is not a power of 2 within the device's maximum";
		return -EINVAL;
	}
	if ((c->desc_gpa & 15) || (c->avail_gpa & 1) || (c->used_gpa & 3)) {
		*why = "queue ring is misaligned";
		return -EINVAL;
	}
	q->desc = guest_mem_ptr(mem, c->desc_gpa, DESC_BYTES(n));
	q->avail = guest_mem_ptr(mem, c->avail_gpa, AVAIL_BYTES(n));
	q->used = guest_mem_ptr(mem, c->used_gpa, USED_BYTES(n));
	if (!q->desc || !q->avail || !q->used) {
		q->desc = NULL;
		q->avail = NULL;
		q->used = NULL;
		*why = "queue ring lies outside guest memory";
		return -EINVAL;
	}
	q->mem = mem;
	q->event_idx = event_idx;
	q->broken = false;
	q->last_avail = 0;
	q->used_idx = 0;
	q->signalled_valid = false;
	return 0;
}

void virtq_reset(struct virtq *q)
{
	uint64_t bad = q->bad_chains;
	memset(q, 0, sizeof(*q));
	q->bad_chains = bad;
}

uint16_t virtq_pending(const struct virtq *q)
{
	/* Acquire: read the ring entries only after seeing the index that covers them. */
	uint16_t idx = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
	return (uint16_t)(idx - q->last_avail);
}

static int chain_fail(struct virtq *q, const char **why, const char *reason)
{
	q->bad_chains++;
	*why = reason;
	return -EINVAL;
}

int virtq_pop(struct virtq *q, struct virtq_chain *chain, const char **why)
{
	if (q->broken || !q->avail)
		return -EIO;
	uint16_t pending = virtq_pending(q);
	if (pending == 0)
		return 0;
	if (pending > q->cfg.size) {
		/* The driver claims more buffers than the ring holds. */
		q->broken = true;
		*why = "available index ran ahead of the ring";
		return -EIO;
	}
	const uint16_t n = q->cfg.size;
	uint16_t head = q->avail->ring[q->last_avail & (n - 1)];
	if (head >= n) {
		q->broken = true;
		*why = "available ring names a descriptor outside the table";
		return -EIO;
	}
	q->last_avail++;

	memset(chain, 0, offsetof(struct virtq_chain, iov));
	chain->head = head;
	uint16_t idx = head;
	bool in_part = false;
	for (unsigned int count = 0;; count++) {
		/* More descriptors than the table holds means the chain loops. */
		if (count == n)
			return chain_fail(q, why,
					  "descriptor chain loops or is longer than the queue");
		struct virtq_desc d;
		memcpy(&d, &q->desc[idx], sizeof(d)); /* one read: the guest may change it */
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return chain_fail(q, why, "indirect descriptor (not negotiated)");
		void *p = guest_mem_ptr(q->mem, d.addr, d.len);
		if (!p)
			return chain_fail(q, why, "descriptor buffer lies outside guest memory");
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			/* Whatever the device does with it, count it written. */
			guest_mem_mark_dirty(q->mem, d.addr, d.len);
			in_part = true;
			chain->nr_in++;
			chain->in_len += d.len;
		} else {
			/* Device-readable buffers must all come before writable ones. */
			if (in_part)
				return chain_fail(q, why,
						  "readable descriptor after a writable one");
			chain->nr_out++;
			chain->out_len += d.len;
		}
		chain->iov[count] = (struct iovec){ .iov_base = p, .iov_len = d.len };
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= n)
			return chain_fail(q, why, "descriptor names a next outside the table");
		idx = d.next;
	}
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail--;
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
	if (!q->used)
		return;
	struct virtq_used_elem *e = &q->used->ring[q->used_idx & (q->cfg.size - 1)];
	e->id = head;
	e->len = len;
	guest_mem_mark_dirty(q->mem, q->cfg.used_gpa, 6ull + 8ull * q->cfg.size);
	q->used_idx++;
	/* Release: the element is visible before the index that publishes it. */
	__atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_signal(struct virtq *q)
{
	if (!q->used)
		return false;
	/* Full barrier: our used->idx store must be visible before we read the
	 * driver's used_event/flags, or we could miss a wanted interrupt. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t new_idx = q->used_idx;
	bool signal;
	if (q->event_idx) {
		uint16_t old = q->signalled_used;
		uint16_t event = __atomic_load_n(used_event(q), __ATOMIC_RELAXED);
		/* vring_need_event(): did new_idx pass event since the last signal? */
		signal = !q->signalled_valid ||
		    (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
	} else {
		signal = !(__atomic_load_n(&q->avail->flags, __ATOMIC_RELAXED) & 1);
	}
	if (signal) {
		q->signalled_used = new_idx;
		q->signalled_valid = true;
	}
	return signal;
}

bool virtq_enable_notify_past(struct virtq *q, uint16_t seen)
{
	if (!q->avail || q->broken)
		return false;
	if (q->event_idx) {
		__atomic_store_n(avail_event(q), seen, __ATOMIC_RELAXED);
		guest_mem_mark_dirty(q->mem, q->cfg.used_gpa, 6ull + 8ull * q->cfg.size);
	}
	/* Full barrier: publish avail_event before re-reading avail->idx, so a
	 * buffer added in between is either seen here or notified to us. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE) != seen;
}

bool virtq_enable_notify(struct virtq *q)
{
	return virtq_enable_notify_past(q, q->last_avail);
}

bool virtq_drain(struct virtq *q, struct virtq_chain *chain, const struct virtq_drain_ops *ops,
		 void *dev, const struct virtio_transport_ops *tops, struct virtio_mmio *t)
{
	bool progress = false;
	for (;;) {
		while (!ops->ready || ops->ready(dev)) {
			const char *why = "";
			int r = virtq_pop(q, chain, &why);
			if (r == 0)
				break;
			if (r == -EIO) {
				tops->needs_reset(t, why);
				break;
			}
			progress = true;
			int64_t len = ops->handle(dev, q, chain, r < 0 ? why : NULL);
			if (len == VIRTQ_UNPOP) {
				virtq_unpop(q);
				break;
			}
			if (len != VIRTQ_TAKEN)
				virtq_push(q, chain->head, (uint32_t)len);
		}
		if (ops->flush)
			ops->flush(dev);
		/* Stop when blocked or broken; otherwise re-arm and re-check. */
		if ((ops->ready && !ops->ready(dev)) || q->broken || !virtq_enable_notify(q))
			break;
	}
	if (progress && virtq_should_signal(q))
		tops->signal_used(t);
	return progress;
}
