// SPDX-License-Identifier: Apache-2.0
/* virtio-vsock device: features, config, TX (guest packets) and RX queues. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/virtio/iov.h"
#include "log.h"
#include "vsock.h"

int vsock_hdr_check(const struct virtio_vsock_hdr *h, const struct vsock_pkt_check *c,
		    const char **why)
{
	if (h->src_cid != c->guest_cid) {
		*why = "source CID is not the guest's";
		return -EINVAL;
	}
	if (h->dst_cid != VSOCK_HOST_CID) {
		*why = "destination CID is not the host";
		return -EINVAL;
	}
	if (h->type != VIRTIO_VSOCK_TYPE_STREAM) {
		*why = "not a stream packet";
		return -EINVAL;
	}
	if (h->op < VIRTIO_VSOCK_OP_REQUEST || h->op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) {
		*why = "unknown operation";
		return -EINVAL;
	}
	if (h->len > c->payload_avail || h->len > VSOCK_MAX_PKT) {
		*why = "length beyond the packet's buffers";
		return -EINVAL;
	}
	if (h->len && h->op != VIRTIO_VSOCK_OP_RW) {
		*why = "payload on a control packet";
		return -EINVAL;
	}
	return 0;
}

/* ---- device ops ---------------------------------------------------------- */

static uint64_t vsock_features(void *dev)
{
	(void)dev;
	return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX);
}

static void vsock_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_vsock *v = dev;
	uint64_t cid = v->guest_cid;
	if (off < sizeof(cid) && len <= sizeof(cid) - off)
		memcpy(data, (const uint8_t *)&cid + off, len);
}

static void vsock_config_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	(void)dev, (void)off, (void)data, (void)len; /* read-only */
}

static int vsock_activate(void *dev, uint64_t acked)
{
	(void)dev, (void)acked;
	return 0;
}

static void vsock_reset(void *dev)
{
	struct virtio_vsock *v = dev;
	/* The driver forgot every connection: so do we. */
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		if (v->conns[i].state != VSOCK_FREE)
			vsock_conn_close(v, &v->conns[i]);
	v->ctrl_len = 0;
}

static void vsock_tx(struct virtio_vsock *v);

static void vsock_queue_notify(void *dev, unsigned int q)
{
	struct virtio_vsock *v = dev;
	if (q == VSOCK_TX_QUEUE)
		vsock_tx(v);
	vsock_rx(v); /* new RX buffers, or control packets the TX produced */
}

const struct virtio_device_ops vsock_device_ops = {
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = 3,
	.queue_max = VSOCK_QUEUE_SIZE,
	.features = vsock_features,
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
	.activate = vsock_activate,
	.reset = vsock_reset,
	.queue_notify = vsock_queue_notify,
};

/* ---- control packets to the guest --------------------------------------------- */

void vsock_send_ctrl(struct virtio_vsock *v, uint32_t host_port, uint32_t guest_port, uint16_t op,
		     uint32_t flags, uint32_t fwd_cnt)
{
	if (v->ctrl_len == VSOCK_CTRL_MAX) {
		/* The guest is not taking RX buffers; control traffic is bounded. */
		v->m.bad_packets++;
		return;
	}
	if (op == VIRTIO_VSOCK_OP_RST)
		v->m.resets_to_guest++;
	v->ctrl[(v->ctrl_head + v->ctrl_len++) % VSOCK_CTRL_MAX] = (struct virtio_vsock_hdr){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = v->guest_cid,
		.src_port = host_port,
		.dst_port = guest_port,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = op,
		.flags = flags,
		.buf_alloc = VSOCK_BUF_ALLOC,
		.fwd_cnt = fwd_cnt,
	};
}

/* ---- TX: packets from the guest ------------------------------------------------- */

static void vsock_handle(struct virtio_vsock *v, const struct virtio_vsock_hdr *h,
			 const struct iovec *payload, unsigned int npay)
{
	struct vsock_conn *c = vsock_conn_find(v, h->src_port, h->dst_port);
	if (c) {
		/* Every packet carries the guest's view of its receive buffer. */
		c->peer_buf_alloc = h->buf_alloc;
		c->peer_fwd_cnt = h->fwd_cnt;
	}
	switch (h->op) {
	case VIRTIO_VSOCK_OP_REQUEST:
		if (c) {
			vsock_conn_reset(v, c);
			return;
		}
		vsock_guest_connect(v, h->src_port, h->dst_port, h);
		return;
	case VIRTIO_VSOCK_OP_RST:
		if (c)
			vsock_conn_close(v, c);
		return;
	default:
		break;
	}
	if (!c) {
		/* Anything else for a connection we do not have: reset it. */
		vsock_send_ctrl(v, h->dst_port, h->src_port, VIRTIO_VSOCK_OP_RST, 0, 0);
		return;
	}
	if (c->state == VSOCK_CLOSING) {
		/* The host side is gone; only the guest's RST (above) or its own
		 * full SHUTDOWN, which the spec answers with RST, ends the slot. */
		if ((h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND) &&
		    (h->flags & VIRTIO_VSOCK_SHUTDOWN_RCV) && h->op == VIRTIO_VSOCK_OP_SHUTDOWN)
			vsock_conn_reset(v, c);
		return;
	}
	switch (h->op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state == VSOCK_REQUESTED)
			vsock_conn_established(v, c);
		else
			goto reset;
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != VSOCK_ESTABLISHED || c->guest_shut_send ||
		    vsock_conn_write(v, c, payload, npay, h->len) < 0)
			goto reset;
		v->m.tx_bytes += h->len;
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
			c->guest_shut_send = true;
		if ((h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND) &&
		    (h->flags & VIRTIO_VSOCK_SHUTDOWN_RCV))
			goto reset; /* fully shut: we answer with RST, as the spec wants */
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		vsock_send_ctrl(v, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0,
				c->fwd_cnt);
		c->fwd_cnt_sent = c->fwd_cnt;
		break;
	default: /* CREDIT_UPDATE: already applied */
		break;
	}
	return;
reset:
	vsock_conn_reset(v, c);
}

/* One packet from the guest; nothing is written into the chain. */
static int64_t vsock_tx_handle(void *dev, struct virtq *q, const struct virtq_chain *chain,
			       const char *bad)
{
	static struct iovec payload[VIRTQ_MAX_SIZE];
	struct virtio_vsock *v = dev;
	struct virtio_vsock_hdr h;
	const char *why = "";
	(void)q;
	if (bad || chain->nr_in || !iov_copy_out(chain->iov, chain->nr_out, 0, &h, sizeof(h))) {
		v->m.bad_chains++;
		return 0;
	}
	struct vsock_pkt_check pc = { .guest_cid = v->guest_cid,
				      .payload_avail = chain->out_len - VSOCK_HDR_LEN };
	if (vsock_hdr_check(&h, &pc, &why) < 0) {
		v->m.bad_packets++;
		/* Reset the connection the packet names, if it was ours. */
		if (h.src_cid == v->guest_cid && h.dst_cid == VSOCK_HOST_CID &&
		    h.op != VIRTIO_VSOCK_OP_RST) {
			struct vsock_conn *c = vsock_conn_find(v, h.src_port, h.dst_port);
			vsock_send_ctrl(v, h.dst_port, h.src_port, VIRTIO_VSOCK_OP_RST, 0, 0);
			if (c)
				vsock_conn_close(v, c);
		}
		return 0;
	}
	unsigned int npay = iov_slice(chain->iov, chain->nr_out, VSOCK_HDR_LEN, h.len, payload);
	v->m.tx_packets++;
	vsock_handle(v, &h, payload, npay);
	return 0;
}

static const struct virtq_drain_ops vsock_tx_ops = { .handle = vsock_tx_handle };

static void vsock_tx(struct virtio_vsock *v)
{
	static struct virtq_chain chain;
	virtq_drain(&v->queues[VSOCK_TX_QUEUE], &chain, &vsock_tx_ops, v, v->tops, &v->transport);
}

/* ---- RX: control packets and host data to the guest -------------------------------- */

/* The first connection with data for the guest and credit to send it. */
static struct vsock_conn *rx_conn(struct virtio_vsock *v)
{
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *k = &v->conns[i];
		uint32_t credit = k->peer_buf_alloc - (k->rx_cnt - k->peer_fwd_cnt);
		if (k->state == VSOCK_ESTABLISHED && k->readable && credit > 0 &&
		    credit <= k->peer_buf_alloc)
			return k;
	}
	return NULL;
}

/* Anything to send: control packets, or data a connection has. */
static bool vsock_rx_ready(void *dev)
{
	struct virtio_vsock *v = dev;
	return v->ctrl_len || rx_conn(v);
}

/* Deliver one packet into @chain: control packets first, then data. */
static int64_t vsock_rx_handle(void *dev, struct virtq *q, const struct virtq_chain *chain,
			       const char *bad)
{
	static struct iovec room[VIRTQ_MAX_SIZE];
	struct virtio_vsock *v = dev;
	(void)q;
	if (bad || chain->nr_out || chain->in_len < VSOCK_HDR_LEN) {
		v->m.bad_chains++;
		return 0;
	}
	if (v->ctrl_len) {
		struct virtio_vsock_hdr *h = &v->ctrl[v->ctrl_head];
		v->ctrl_head = (v->ctrl_head + 1) % VSOCK_CTRL_MAX;
		v->ctrl_len--;
		iov_copy_in(chain->iov, chain->nr_in, 0, h, sizeof(*h));
		v->m.rx_packets++;
		return VSOCK_HDR_LEN;
	}
	/* Data: read straight into the buffer after the header, within credit. */
	struct vsock_conn *c = rx_conn(v); /* vsock_rx_ready() found one */
	uint64_t space = chain->in_len - VSOCK_HDR_LEN;
	uint32_t credit = c->peer_buf_alloc - (c->rx_cnt - c->peer_fwd_cnt);
	if (space > credit)
		space = credit;
	if (space > VSOCK_MAX_PKT)
		space = VSOCK_MAX_PKT;
	unsigned int n = iov_slice(chain->iov, chain->nr_in, VSOCK_HDR_LEN, space, room);
	if (!n) {
		/* A header-only buffer has no room for data (credit was checked
		 * above): it is the guest's mistake, not the end of the stream. */
		v->m.bad_chains++;
		return 0;
	}
	ssize_t got = readv(c->fd, room, (int)n);
	if (got < 0 && errno == EAGAIN) {
		c->readable = false;
		return VIRTQ_UNPOP;
	}
	if (got <= 0) {
		/* End of stream: the host peer closed (SHUTDOWN, both ways; the
		 * slot waits for the guest's RST) or vanished (RST). Either way
		 * the host socket and buffers go now. */
		v->m.rx_read_fails += got < 0;
		if (got == 0)
			vsock_conn_host_closed(v, c);
		else
			vsock_conn_reset(v, c);
		return VIRTQ_UNPOP;
	}
	struct virtio_vsock_hdr h = {
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = v->guest_cid,
		.src_port = c->host_port,
		.dst_port = c->guest_port,
		.len = (uint32_t)got,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.op = VIRTIO_VSOCK_OP_RW,
		.buf_alloc = VSOCK_BUF_ALLOC,
		.fwd_cnt = c->fwd_cnt,
	};
	c->fwd_cnt_sent = c->fwd_cnt;
	iov_copy_in(chain->iov, chain->nr_in, 0, &h, sizeof(h));
	c->rx_cnt += (uint32_t)got;
	v->m.rx_bytes += (uint64_t)got;
	v->m.rx_packets++;
	return VSOCK_HDR_LEN + (uint32_t)got;
}

static const struct virtq_drain_ops vsock_rx_ops = {
	.ready = vsock_rx_ready,
	.handle = vsock_rx_handle,
};

void vsock_rx(struct virtio_vsock *v)
{
	static struct virtq_chain chain;
	struct virtq *q = &v->queues[VSOCK_RX_QUEUE];
	if (virtio_mmio_active(&v->transport) && q->avail)
		virtq_drain(q, &chain, &vsock_rx_ops, v, v->tops, &v->transport);
}

void virtio_vsock_transport_reset(struct virtio_vsock *v)
{
	static struct virtq_chain chain;
	struct virtq *q = &v->queues[VSOCK_EVENT_QUEUE];
	vsock_reset(v);
	const char *why = "";
	if (!q->avail || virtq_pop(q, &chain, &why) != 1)
		return;
	uint32_t id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET;
	bool ok = !chain.nr_out && iov_copy_in(chain.iov, chain.nr_in, 0, &id, sizeof(id));
	virtq_push(q, chain.head, ok ? sizeof(id) : 0);
	v->tops->signal_used(&v->transport);
}
