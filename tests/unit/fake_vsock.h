/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake virtio-vsock driver over fake guest memory, for the unit tests and
 * the vsock benchmark harness: the real device and its Unix sockets, with
 * the guest's side of the queues played from the host.
 */
#ifndef EMBER_TEST_FAKE_VSOCK_H
#define EMBER_TEST_FAKE_VSOCK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/vsock/vsock.h"
#include "event_loop.h"
#include "fake_mem.h"
#include "fake_virtq.h"

#define FVS_CID 3
#define FVS_QSIZE 64
#define FVS_RXBUF 0x100000ull /* FVS_QSIZE buffers of FVS_RXLEN */
#define FVS_RXLEN 4096 /* what Linux guests post */
#define FVS_TXBUF 0x200000ull /* FVS_QSIZE slots of FVS_TXSLOT */
#define FVS_TXSLOT 0x20000ull
#define FVS_ALLOC (256 * 1024) /* the guest's receive buffer */

struct fake_vsock {
	struct guest_mem mem;
	struct event_loop loop;
	struct virtio_vsock v;
	struct fake_vq rx, tx, ev;
	char dir[64], uds[96];
};

/* A device listening in a fresh temporary directory, driver up. NULL on failure. */
static inline struct fake_vsock *fvs_new(void)
{
	struct fake_vsock *e = calloc(1, sizeof(*e));
	char err[200] = "";
	if (!e || fake_mem_init(&e->mem, 16ull << 20) < 0 || event_loop_init(&e->loop) < 0)
		return NULL;
	strcpy(e->dir, "/tmp/ember-vsock-XXXXXX");
	if (!mkdtemp(e->dir))
		return NULL;
	snprintf(e->uds, sizeof(e->uds), "%s/v.sock", e->dir);
	if (virtio_vsock_init(&e->v, &e->mem, FVS_CID, e->uds, err, sizeof(err)) < 0 ||
	    virtio_vsock_add_to_loop(&e->v, &e->loop) < 0) {
		fprintf(stderr, "fake vsock: %s\n", err);
		return NULL;
	}
	struct virtio_mmio *t = &e->v.transport;
	fq_begin(t, (1ull << VIRTIO_F_VERSION_1));
	fq_queue(&e->rx, t, &e->mem, 0, FVS_QSIZE, 0x10000, 0x11000, 0x12000);
	fq_queue(&e->tx, t, &e->mem, 1, FVS_QSIZE, 0x20000, 0x21000, 0x22000);
	fq_queue(&e->ev, t, &e->mem, 2, FVS_QSIZE, 0x30000, 0x31000, 0x32000);
	return fq_driver_ok(t) & VIRTIO_STATUS_DRIVER_OK ? e : NULL;
}

/* Drop the device's connections and remove its sockets (and <uds>_0..99). */
static inline void fvs_free(struct fake_vsock *e)
{
	virtio_vsock_transport_reset(&e->v);
	close(e->v.listen_fd);
	virtio_vsock_shutdown(&e->v);
	free(e->v.uds_path);
	char path[128];
	for (unsigned int p = 0; p < 100; p++) {
		snprintf(path, sizeof(path), "%s_%u", e->uds, p);
		unlink(path);
	}
	rmdir(e->dir);
	close(e->loop.epfd);
	fake_mem_free(&e->mem);
	free(e);
}

static inline struct virtio_vsock_hdr fvs_hdr(uint32_t src_port, uint32_t dst_port, uint16_t op,
					      uint32_t len)
{
	return (struct virtio_vsock_hdr){ .src_cid = FVS_CID,
					  .dst_cid = VSOCK_HOST_CID,
					  .src_port = src_port,
					  .dst_port = dst_port,
					  .len = len,
					  .type = VIRTIO_VSOCK_TYPE_STREAM,
					  .op = op,
					  .buf_alloc = FVS_ALLOC };
}

/* Put @hlen bytes of @h and @len bytes of @data on the TX queue as one
 * descriptor of @chain_len bytes (0: exactly what is written), with
 * descriptor @flags, and kick. 0 when the device consumed it, -1 if not. */
static inline int fvs_tx_raw(struct fake_vsock *e, const void *h, uint32_t hlen, const void *data,
			     uint32_t len, uint32_t chain_len, uint16_t flags)
{
	uint64_t gpa = FVS_TXBUF + (uint64_t)e->tx.next_desc * FVS_TXSLOT;
	uint8_t *p = guest_mem_ptr(&e->mem, gpa, FVS_TXSLOT);
	memcpy(p, h, hlen);
	if (len)
		memcpy(p + hlen, data, len);
	struct fake_desc d = { gpa, chain_len ? chain_len : hlen + len, flags };
	fq_publish(&e->tx, fq_add(&e->tx, &d, 1));
	fq_kick(&e->tx);
	struct virtq_used_elem u;
	return fq_take_used(&e->tx, &u);
}

static inline int fvs_tx(struct fake_vsock *e, struct virtio_vsock_hdr h, const void *data)
{
	return fvs_tx_raw(e, &h, sizeof(h), data, h.len, 0, 0);
}

/* Post @n receive buffers of FVS_RXLEN and kick. */
static inline void fvs_post_rx(struct fake_vsock *e, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint16_t slot = e->rx.next_desc;
		struct fake_desc d = { FVS_RXBUF + (uint64_t)slot * FVS_RXLEN, FVS_RXLEN,
				       VIRTQ_DESC_F_WRITE };
		fq_publish(&e->rx, fq_add(&e->rx, &d, 1));
	}
	fq_kick(&e->rx);
}

/* The next packet the device delivered (payload copied to @data when not
 * NULL). 0; -1 when there is none; -2 when its used length is inconsistent. */
static inline int fvs_rx_take(struct fake_vsock *e, struct virtio_vsock_hdr *h, uint8_t *data)
{
	struct virtq_used_elem u;
	if (fq_take_used(&e->rx, &u) < 0)
		return -1;
	const uint8_t *p =
	    guest_mem_ptr(&e->mem, FVS_RXBUF + (uint64_t)(u.id % FVS_QSIZE) * FVS_RXLEN, FVS_RXLEN);
	if (u.len < sizeof(*h))
		return -2;
	memcpy(h, p, sizeof(*h));
	if (u.len != sizeof(*h) + h->len)
		return -2;
	if (data)
		memcpy(data, p + sizeof(*h), h->len);
	return 0;
}

#endif
