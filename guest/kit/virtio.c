// SPDX-License-Identifier: Apache-2.0
#include "virtio.h"

#include <libfdt.h>

#include "kit.h"

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEVICE_FEATURES 0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_STATUS 0x070
#define R_QUEUE_DESC 0x080
#define R_QUEUE_DRIVER 0x090
#define R_QUEUE_DEVICE 0x0a0
#define R_CONFIG 0x100

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define F_VERSION_1 (1ull << 32)
#define F_EVENT_IDX (1ull << 29)
#define D_NEXT 1
#define D_WRITE 2

static uint32_t rd(const struct gv_device *d, uint32_t off)
{
	return *(volatile uint32_t *)(d->base + off);
}

static void wr(const struct gv_device *d, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(d->base + off) = v;
}

int gv_discover(const void *dtb, struct gv_device *devs, int max)
{
	if (!dtb || fdt_check_header(dtb) != 0)
		return -1;
	int n = 0;
	for (int off = fdt_node_offset_by_compatible(dtb, -1, "virtio,mmio"); off >= 0 && n < max;
	     off = fdt_node_offset_by_compatible(dtb, off, "virtio,mmio")) {
		int len;
		const fdt64_t *reg = fdt_getprop(dtb, off, "reg", &len);
		const fdt32_t *irq = fdt_getprop(dtb, off, "interrupts", NULL);
		if (!reg || len < 16)
			continue;
		devs[n] = (struct gv_device){ .base = fdt64_to_cpu(reg[0]),
					      .irq = irq ? fdt32_to_cpu(*irq) : 0 };
		devs[n].device_id = rd(&devs[n], R_DEVICE_ID);
		n++;
	}
	return n;
}

static void wr64(const struct gv_device *d, uint32_t off, uint64_t v)
{
	wr(d, off, (uint32_t)v);
	wr(d, off + 4, (uint32_t)(v >> 32));
}

int gv_start(struct gv_device *d, uint64_t wanted, struct gv_queue_mem **qs, unsigned int nq)
{
	if (rd(d, R_MAGIC) != 0x74726976 || rd(d, R_VERSION) != 2)
		return -1;
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DEVICE_FEATURES_SEL, 0);
	uint64_t offered = rd(d, R_DEVICE_FEATURES);
	wr(d, R_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(d, R_DEVICE_FEATURES) << 32;
	if (!(offered & F_VERSION_1))
		return -2;
	d->features = offered & (wanted | F_VERSION_1 | F_EVENT_IDX);
	wr(d, R_DRIVER_FEATURES_SEL, 0);
	wr(d, R_DRIVER_FEATURES, (uint32_t)d->features);
	wr(d, R_DRIVER_FEATURES_SEL, 1);
	wr(d, R_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(rd(d, R_STATUS) & S_FEATURES_OK))
		return -3;
	if (nq > GV_MAX_QUEUES)
		return -4;
	d->nr_queues = nq;
	for (unsigned int i = 0; i < nq; i++) {
		struct gv_queue_mem *q = qs[i];
		wr(d, R_QUEUE_SEL, i);
		if (rd(d, R_QUEUE_NUM_MAX) < GV_QUEUE_SIZE)
			return -4;
		memset(q, 0, sizeof(*q));
		d->q[i] = q;
		d->avail_idx[i] = d->used_seen[i] = 0;
		wr(d, R_QUEUE_NUM, GV_QUEUE_SIZE);
		wr64(d, R_QUEUE_DESC, (uint64_t)q->desc);
		wr64(d, R_QUEUE_DRIVER, (uint64_t)&q->avail);
		wr64(d, R_QUEUE_DEVICE, (uint64_t)&q->used);
		wr(d, R_QUEUE_READY, 1);
	}
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return (rd(d, R_STATUS) & S_DRIVER_OK) ? 0 : -5;
}

uint32_t gv_config32(const struct gv_device *d, uint32_t off)
{
	return rd(d, R_CONFIG + off);
}

void gv_post(struct gv_device *d, unsigned int qi, uint16_t slot, const struct gv_buf *bufs, int n)
{
	struct gv_queue_mem *q = d->q[qi];
	for (int i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((slot + i) % GV_QUEUE_SIZE);
		q->desc[idx] =
		    (struct gv_desc){ .addr = (uint64_t)bufs[i].addr,
				      .len = bufs[i].len,
				      .flags = (uint16_t)((bufs[i].writable ? D_WRITE : 0) |
							  (i + 1 < n ? D_NEXT : 0)),
				      .next = (uint16_t)((idx + 1) % GV_QUEUE_SIZE) };
	}
	uint16_t old = d->avail_idx[qi];
	q->avail.ring[old % GV_QUEUE_SIZE] = slot;
	q->avail.used_event = d->used_seen[qi]; /* interrupts would come at once; we poll */
	d->avail_idx[qi]++;
	/* Release: the ring entry and descriptors before the index. */
	__atomic_store_n(&q->avail.idx, d->avail_idx[qi], __ATOMIC_RELEASE);
	/* Full barrier before reading avail_event (the device's side of EVENT_IDX). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bool notify = true;
	if (d->features & F_EVENT_IDX) {
		uint16_t ev = __atomic_load_n(&q->used.avail_event, __ATOMIC_RELAXED);
		notify = (uint16_t)(d->avail_idx[qi] - ev - 1) < (uint16_t)(d->avail_idx[qi] - old);
	}
	if (notify)
		wr(d, R_QUEUE_NOTIFY, qi);
}

int gv_take_used(struct gv_device *d, unsigned int qi, uint16_t *head, uint32_t *len)
{
	struct gv_queue_mem *q = d->q[qi];
	if (__atomic_load_n(&q->used.idx, __ATOMIC_ACQUIRE) == d->used_seen[qi])
		return -1;
	*head = (uint16_t)q->used.ring[d->used_seen[qi] % GV_QUEUE_SIZE].id;
	*len = q->used.ring[d->used_seen[qi] % GV_QUEUE_SIZE].len;
	d->used_seen[qi]++;
	return 0;
}

int gv_wait_used(struct gv_device *d, unsigned int qi, uint16_t *head, uint32_t *len,
		 uint64_t cycles)
{
	uint64_t t0 = rdtsc();
	while (gv_take_used(d, qi, head, len) < 0) {
		if (rdtsc() - t0 >= cycles)
			return -1;
		__asm__ volatile("pause");
	}
	return 0;
}

uint32_t gv_transfer(struct gv_device *d, unsigned int qi, const struct gv_buf *bufs, int n)
{
	/* One request at a time on this queue: descriptors from 0 are free. */
	gv_post(d, qi, 0, bufs, n);
	uint16_t head;
	uint32_t len;
	while (gv_take_used(d, qi, &head, &len) < 0)
		__asm__ volatile("pause");
	return len;
}

uint8_t gv_blk_request(struct gv_device *d, uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	static struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr __attribute__((aligned(16)));
	static uint8_t status; /* written by the device: read through a volatile access */
	hdr.type = type;
	hdr.sector = sector;
	status = 0xff;
	struct gv_buf b[3] = { { &hdr, 16, false } };
	int n = 1;
	if (len)
		b[n++] = (struct gv_buf){ buf, len, type != 1 /* VIRTIO_BLK_T_OUT */ };
	b[n++] = (struct gv_buf){ &status, 1, true };
	gv_transfer(d, 0, b, n);
	return *(volatile uint8_t *)&status;
}
