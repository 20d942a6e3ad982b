// SPDX-License-Identifier: Apache-2.0
/* virtio-net device: features, config space, the TX and RX loops. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "devices/virtio/iov.h"
#include "event_loop.h"
#include "log.h"
#include "mmds/mmds.h"
#include "net.h"

#define ETH_HLEN 14
#define VLAN_HLEN 4
#define NET_RX_MAX_CHAINS 64
/* One slot stays for the overflow buffer: readv takes at most IOV_MAX (1024). */
#define NET_RX_MAX_IOV 1023

#define F(bit) (1ull << (bit))
#define NET_GSO_FEATURES                                                                           \
	(F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_HOST_UFO))
#define NET_GUEST_GSO                                                                              \
	(F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_UFO))

uint64_t net_max_frame(uint64_t acked, uint16_t mtu, bool rx, bool vlan)
{
	uint64_t gso = rx ? NET_GUEST_GSO : NET_GSO_FEATURES;
	if (acked & gso)
		return NET_MAX_GSO_FRAME + (vlan ? VLAN_HLEN : 0);
	return (uint64_t)mtu + ETH_HLEN + (vlan ? VLAN_HLEN : 0);
}

int net_tx_hdr_check(const struct virtio_net_hdr_v1 *h, uint64_t frame_len, bool vlan,
		     uint64_t acked, uint16_t mtu, const char **why)
{
	if (frame_len < ETH_HLEN) {
		*why = "frame shorter than an Ethernet header";
		return -EINVAL;
	}
	if (frame_len > net_max_frame(acked, mtu, false, vlan)) {
		*why = "frame larger than the MTU allows";
		return -EINVAL;
	}
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		*why = "unknown header flags";
		return -EINVAL;
	}
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!(acked & F(VIRTIO_NET_F_CSUM))) {
			*why = "checksum offload used but not negotiated";
			return -EINVAL;
		}
		if ((uint64_t)h->csum_start + h->csum_offset + 2 > frame_len) {
			*why = "checksum position lies outside the frame";
			return -EINVAL;
		}
	}
	uint8_t gso = h->gso_type;
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return 0;
	uint64_t need = gso == VIRTIO_NET_HDR_GSO_TCPV4 ? F(VIRTIO_NET_F_HOST_TSO4)
	    : gso == VIRTIO_NET_HDR_GSO_TCPV6		? F(VIRTIO_NET_F_HOST_TSO6)
	    : gso == VIRTIO_NET_HDR_GSO_UDP		? F(VIRTIO_NET_F_HOST_UFO)
							: 0;
	if (!need || !(acked & need)) {
		*why = "segmentation offload type not negotiated";
		return -EINVAL;
	}
	if (!h->gso_size || h->hdr_len > frame_len || !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
		*why = "inconsistent segmentation offload header";
		return -EINVAL;
	}
	return 0;
}

/* ---- device ops ---------------------------------------------------------- */

static uint64_t net_features(void *dev)
{
	struct virtio_net *n = dev;
	uint64_t f = F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_RING_EVENT_IDX) | F(VIRTIO_NET_F_MTU) |
	    F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) |
	    NET_GUEST_GSO | NET_GSO_FEATURES;
	if (n->cfg.has_mac)
		f |= F(VIRTIO_NET_F_MAC);
	return f;
}

static void net_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = dev;
	struct virtio_net_config c = { .max_virtqueue_pairs = 1, .mtu = n->cfg.mtu };
	memcpy(c.mac, n->cfg.mac, 6);
	if (off < sizeof(c) && len <= sizeof(c) - off)
		memcpy(data, (const uint8_t *)&c + off, len);
}

static void net_config_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	/* The MAC is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR. */
	(void)dev, (void)off, (void)data, (void)len;
}

static void net_rx(struct virtio_net *n);
static void net_tx(struct virtio_net *n);

static int net_activate(void *dev, uint64_t acked)
{
	struct virtio_net *n = dev;
	n->acked = acked;
	if (!n->tap_broken && tap_set_offloads(n->tap_fd, acked) < 0)
		log_warn("%s: TUNSETOFFLOAD failed: %s", n->cfg.id, strerror(errno));
	return 0;
}

static void net_reset(void *dev)
{
	struct virtio_net *n = dev;
	n->acked = 0;
	n->rx_throttled = n->tx_throttled = false;
}

static void net_queue_notify(void *dev, unsigned int q)
{
	if (q == NET_RX_QUEUE)
		net_rx(dev);
	else
		net_tx(dev);
}

static const struct virtio_device_ops net_ops = {
	.device_id = VIRTIO_ID_NET,
	.num_queues = 2,
	.queue_max = NET_QUEUE_SIZE,
	.features = net_features,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.reset = net_reset,
	.queue_notify = net_queue_notify,
};

/* ---- helpers ---------------------------------------------------------------- */

static void net_tap_failed(struct virtio_net *n, int err)
{
	n->m.tap_errors++;
	if (n->tap_broken)
		return;
	/* The TAP went away (deleted, or its namespace): report once, keep the VM. */
	n->tap_broken = true;
	log_err("%s: TAP '%s' failed: %s; frames are dropped from now on", n->cfg.id,
		n->cfg.tap_name, strerror(err));
	if (n->tap_h)
		event_loop_del(n->loop, n->tap_h);
	n->tap_h = NULL;
}

static void net_tap_write_time(struct virtio_net *n, uint64_t ns)
{
	if (!n->m.tap_write_ns_min || ns < n->m.tap_write_ns_min)
		n->m.tap_write_ns_min = ns;
	if (ns > n->m.tap_write_ns_max)
		n->m.tap_write_ns_max = ns;
	n->m.tap_write_ns_sum += ns;
}

static void net_throttle(struct virtio_net *n, bool rx, uint64_t bytes)
{
	struct rate_limiter *rl = rx ? &n->rx_rl : &n->tx_rl;
	rate_limiter_arm_timer(rl, rx ? n->rx_timer_fd : n->tx_timer_fd, 1, bytes, clock_now_ns());
	if (rx) {
		n->rx_throttled = true;
		n->m.rx_throttled++;
	} else {
		n->tx_throttled = true;
		n->m.tx_throttled++;
	}
}

static void net_signal(struct virtio_net *n, struct virtq *q, bool progress)
{
	if (progress && virtq_should_signal(q))
		n->tops->signal_used(&n->transport);
}

/* ---- TX: guest -> TAP, straight from guest memory ------------------------------ */

/* A frame for the MMDS (its address, or ARP for it) goes to lwIP, copied
 * out of guest memory first; true when it was one. */
static bool net_tx_mmds(struct virtio_net *n, const struct virtq_chain *chain, uint64_t frame)
{
	static uint8_t buf[NET_MAX_GSO_FRAME + VLAN_HLEN];
	uint8_t head[42];
	size_t hl = frame < sizeof(head) ? (size_t)frame : sizeof(head);
	if (!iov_copy_out(chain->iov, chain->nr_out, NET_HDR_LEN, head, hl) ||
	    !mmds_net_wants(n->mmds, head, hl))
		return false;
	if (frame > sizeof(buf) ||
	    !iov_copy_out(chain->iov, chain->nr_out, NET_HDR_LEN, buf, frame))
		return true; /* for the MMDS, but no frame lwIP could take: dropped */
	mmds_net_input(n->mmds, buf, (size_t)frame);
	return true;
}

static bool net_tx_ready(void *dev)
{
	const struct virtio_net *n = dev;
	return !n->tx_throttled && !n->tx_blocked;
}

/* One frame to the TAP (or the MMDS); nothing is written into the chain. */
static int64_t net_tx_handle(void *dev, struct virtq *q, const struct virtq_chain *chain,
			     const char *bad)
{
	static struct iovec tx_iov[VIRTQ_MAX_SIZE + 1];
	struct virtio_net *n = dev;
	const char *why = "";
	if (bad) {
		n->m.bad_chains++;
		return 0;
	}
	struct virtio_net_hdr_v1 h;
	uint8_t type[2] = { 0, 0 }; /* ethertype: 0x8100 for a VLAN tag */
	uint64_t frame = chain->out_len >= NET_HDR_LEN ? chain->out_len - NET_HDR_LEN : 0;
	iov_copy_out(chain->iov, chain->nr_out, NET_HDR_LEN + 12, type, 2);
	bool vlan = type[0] == 0x81 && type[1] == 0x00;
	if (chain->nr_in || chain->out_len < NET_HDR_LEN ||
	    !iov_copy_out(chain->iov, chain->nr_out, 0, &h, sizeof(h)) ||
	    net_tx_hdr_check(&h, frame, vlan, n->acked, n->cfg.mtu, &why) < 0) {
		n->m.tx_malformed++;
		return 0;
	}
	if (rate_limiter_enabled(&n->tx_rl) &&
	    !rate_limiter_consume(&n->tx_rl, 1, frame, clock_now_ns())) {
		net_throttle(n, false, frame);
		/* What waits on the ring, this frame (given back) included. */
		n->m.tx_remaining += virtq_pending(q) + 1u;
		return VIRTQ_UNPOP;
	}
	if (n->mmds && net_tx_mmds(n, chain, frame))
		return 0;
	if (n->tap_broken) {
		n->m.tap_errors++;
		n->m.tap_write_fails++;
		return 0;
	}
	/* The header we checked, not the guest's copy, which it may change
	 * under us; then the frame from guest memory. */
	tx_iov[0] = (struct iovec){ .iov_base = &h, .iov_len = NET_HDR_LEN };
	unsigned int nf = iov_slice(chain->iov, chain->nr_out, NET_HDR_LEN, frame, tx_iov + 1);
	uint64_t t0 = clock_now_ns();
	ssize_t w = writev(n->tap_fd, tx_iov, (int)nf + 1);
	net_tap_write_time(n, clock_now_ns() - t0);
	if (w < 0 && errno == EAGAIN) {
		/* The TAP's queue is full: the frame waits for EPOLLOUT. */
		n->tx_blocked = true;
		return VIRTQ_UNPOP;
	}
	if (w < 0 && errno == EINVAL) {
		/* The TAP refused this frame: Linux checks the header more
		 * closely than net_tx_hdr_check() (hdr_len under 14, a checksum
		 * inside the first 20 bytes, a TSO checksum not at TCP's). The
		 * guest loses the frame, not the TAP. */
		n->m.tx_malformed++;
	} else if (w < 0) {
		n->m.tap_write_fails++;
		net_tap_failed(n, errno);
	} else {
		n->m.tx_frames++;
		n->m.tx_bytes += frame;
	}
	return 0;
}

static const struct virtq_drain_ops net_tx_ops = { .ready = net_tx_ready, .handle = net_tx_handle };

static void net_tx(struct virtio_net *n)
{
	static struct virtq_chain chain;
	struct virtq *q = &n->queues[NET_TX_QUEUE];
	virtq_drain(q, &chain, &net_tx_ops, n, n->tops, &n->transport);
	if (q->broken)
		return;
	if (n->mmds && mmds_net_peek(n->mmds, &(size_t){ 0 }))
		net_rx(n); /* the MMDS answered: into the guest's receive queue */
}

/* ---- RX: TAP -> guest, straight into the guest's buffers ------------------------ */

struct rx_batch {
	uint16_t heads[NET_RX_MAX_CHAINS];
	uint64_t caps[NET_RX_MAX_CHAINS];
	unsigned int nr_chains;
	struct iovec iov[NET_RX_MAX_IOV + 1];
	unsigned int nr_iov;
	uint64_t cap;
};

/* Take RX chains until they hold @want bytes (one chain without MRG_RXBUF). */
static int rx_gather(struct virtio_net *n, struct rx_batch *b, uint64_t want, bool *progress)
{
	static struct virtq_chain chain;
	struct virtq *q = &n->queues[NET_RX_QUEUE];
	bool mrg = n->acked & F(VIRTIO_NET_F_MRG_RXBUF);
	b->nr_chains = b->nr_iov = 0;
	b->cap = 0;
	while (b->cap < want && b->nr_chains < NET_RX_MAX_CHAINS) {
		const char *why = "";
		int r = virtq_pop(q, &chain, &why);
		if (r == 0)
			break;
		if (r == -EIO) {
			n->tops->needs_reset(&n->transport, why);
			return -EIO;
		}
		if (r < 0 || chain.nr_out || chain.in_len < (b->nr_chains ? 1 : NET_HDR_LEN) ||
		    b->nr_iov + chain.nr_in > NET_RX_MAX_IOV) {
			if (b->nr_chains) {
				/* Behind chains this batch holds: leave it for the next
				 * batch, so that giving those back (virtq_unpop) never
				 * rewinds over a chain already returned. */
				virtq_unpop(q);
				break;
			}
			/* A chain we cannot fill: give it back empty. */
			n->m.bad_chains++;
			virtq_push(q, chain.head, 0);
			*progress = true;
			continue;
		}
		memcpy(&b->iov[b->nr_iov], chain.iov, chain.nr_in * sizeof(struct iovec));
		b->nr_iov += chain.nr_in;
		b->heads[b->nr_chains] = chain.head;
		b->caps[b->nr_chains++] = chain.in_len;
		b->cap += chain.in_len;
		if (!mrg)
			break;
	}
	return 0;
}

static void rx_unpop(struct virtio_net *n, unsigned int count)
{
	while (count--)
		virtq_unpop(&n->queues[NET_RX_QUEUE]);
}

/*
 * The MMDS's frames, ahead of the TAP's: a virtio-net header with no
 * offloads, then the frame. False while frames still wait for buffers (the
 * driver is asked to say when it adds some).
 */
static bool net_rx_mmds(struct virtio_net *n, struct rx_batch *b, bool *progress)
{
	struct virtq *q = &n->queues[NET_RX_QUEUE];
	bool mrg = n->acked & F(VIRTIO_NET_F_MRG_RXBUF);
	size_t len;
	const uint8_t *f;
	while ((f = mmds_net_peek(n->mmds, &len))) {
		uint64_t want = len + NET_HDR_LEN;
		if (rx_gather(n, b, want, progress) < 0)
			return false;
		if (b->cap < want) {
			uint16_t seen = q->last_avail;
			rx_unpop(n, b->nr_chains);
			if (b->nr_chains && !mrg) {
				/* One chain, too small for any frame: the guest's loss. */
				n->m.rx_dropped++;
				mmds_net_pop(n->mmds);
				continue;
			}
			n->m.no_rx_avail_buffer += !b->nr_chains;
			if (!q->broken && virtq_enable_notify_past(q, seen))
				continue;
			return false;
		}
		struct virtio_net_hdr_v1 h = { .num_buffers = 0 };
		uint64_t left = want;
		uint16_t used = 0;
		while (left) {
			uint64_t take = left < b->caps[used] ? left : b->caps[used];
			left -= take;
			used++;
		}
		h.num_buffers = mrg ? used : 0;
		iov_copy_in(b->iov, b->nr_iov, 0, &h, NET_HDR_LEN);
		iov_copy_in(b->iov, b->nr_iov, NET_HDR_LEN, f, len);
		rx_unpop(n, b->nr_chains - used);
		left = want;
		for (uint16_t i = 0; i < used; i++) {
			uint64_t take = left < b->caps[i] ? left : b->caps[i];
			virtq_push(q, b->heads[i], (uint32_t)take);
			left -= take;
		}
		mmds_net_pop(n->mmds);
		*progress = true;
		n->m.rx_frames++;
		n->m.rx_bytes += len;
	}
	return true;
}

static void net_rx(struct virtio_net *n)
{
	static struct rx_batch b;
	struct virtq *q = &n->queues[NET_RX_QUEUE];
	bool progress = false;
	if (n->mmds && !net_rx_mmds(n, &b, &progress)) {
		net_signal(n, q, progress);
		return;
	}
	/* Enough room for any frame the guest may get, header included. */
	uint64_t need = net_max_frame(n->acked, n->cfg.mtu, true, true) + NET_HDR_LEN;
	while (n->rx_pending && !n->rx_throttled && !n->tap_broken) {
		/* A frame's size is known only once read: go on while the buckets
		 * hold enough for the largest frame the guest may get, then charge
		 * the frame's real size. (Waiting for a single token instead let a
		 * whole frame through per token: the buckets never go below zero.) */
		if (rate_limiter_enabled(&n->rx_rl) &&
		    rate_limiter_wait_ns(&n->rx_rl, 1, need - NET_HDR_LEN, clock_now_ns()) > 0) {
			net_throttle(n, true, need - NET_HDR_LEN);
			break;
		}
		if (rx_gather(n, &b, need, &progress) < 0)
			return;
		bool mrg = n->acked & F(VIRTIO_NET_F_MRG_RXBUF);
		if (!b.nr_chains ||
		    (mrg && b.cap < need && virtq_pending(q) == 0 &&
		     b.cap < (uint64_t)n->cfg.mtu + ETH_HLEN + VLAN_HLEN + NET_HDR_LEN)) {
			/* Not enough buffers yet: hold back what there is and wait
			 * for the driver to add more, telling it so (avail_event)
			 * or under EVENT_IDX it may never notify. Only buffers
			 * that raced in past those send us round again: the ones
			 * held back do not (they once made this loop spin). */
			uint16_t seen = q->last_avail;
			n->m.no_rx_avail_buffer += !b.nr_chains;
			if (b.nr_chains) {
				n->m.rx_short_buffers++;
				if (!n->warned_short_rx)
					log_warn("%s: the guest's receive buffers hold %llu bytes, "
						 "less than a frame; waiting for more",
						 n->cfg.id, (unsigned long long)b.cap);
				n->warned_short_rx = true;
			}
			rx_unpop(n, b.nr_chains);
			if (!q->broken && virtq_enable_notify_past(q, seen))
				continue;
			break;
		}
		/* The overflow buffer catches a frame larger than the buffers. */
		b.iov[b.nr_iov] = (struct iovec){ .iov_base = n->overflow,
						  .iov_len = NET_MAX_GSO_FRAME + NET_HDR_LEN };
		ssize_t len = readv(n->tap_fd, b.iov, (int)b.nr_iov + 1);
		if (len < 0) {
			int e = errno;
			rx_unpop(n, b.nr_chains);
			if (e == EAGAIN)
				n->rx_pending = false;
			else if (e != EINTR) {
				n->m.tap_read_fails++;
				net_tap_failed(n, e);
			}
			break;
		}
		if ((uint64_t)len > b.cap || len < NET_HDR_LEN) {
			n->m.rx_dropped++;
			rx_unpop(n, b.nr_chains);
			continue;
		}
		/* Hand back the chains the frame filled; the rest go back unused. */
		uint64_t left = (uint64_t)len;
		uint16_t used = 0;
		while (left) {
			uint64_t take = left < b.caps[used] ? left : b.caps[used];
			left -= take;
			used++;
		}
		if (mrg) {
			uint16_t nb = used;
			iov_copy_in(b.iov, b.nr_iov,
				    offsetof(struct virtio_net_hdr_v1, num_buffers), &nb,
				    sizeof(nb));
		}
		rx_unpop(n, b.nr_chains - used);
		left = (uint64_t)len;
		for (uint16_t i = 0; i < used; i++) {
			uint64_t take = left < b.caps[i] ? left : b.caps[i];
			virtq_push(q, b.heads[i], (uint32_t)take);
			left -= take;
		}
		progress = true;
		n->m.rx_frames++;
		n->m.rx_bytes += (uint64_t)len - NET_HDR_LEN;
		if (rate_limiter_enabled(&n->rx_rl))
			rate_limiter_charge(&n->rx_rl, 1, (uint64_t)len - NET_HDR_LEN,
					    clock_now_ns());
	}
	net_signal(n, q, progress);
}

/* ---- event loop glue ----------------------------------------------------------- */

static bool net_active(struct virtio_net *n)
{
	return virtio_mmio_active(&n->transport) && n->queues[NET_RX_QUEUE].avail &&
	    n->queues[NET_TX_QUEUE].avail;
}

static void net_tap_ready(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	pthread_mutex_lock(&n->transport.lock);
	n->m.tap_events++;
	if (events & EPOLLIN)
		n->rx_pending = true;
	if (events & EPOLLOUT)
		n->tx_blocked = false;
	if (events & (EPOLLERR | EPOLLHUP)) {
		n->m.tap_read_fails++;
		net_tap_failed(n, EIO);
	} else if (net_active(n)) {
		net_rx(n);
		net_tx(n);
	}
	pthread_mutex_unlock(&n->transport.lock);
}

static void net_timer(struct virtio_net *n, bool rx)
{
	uint64_t v;
	ssize_t r = read(rx ? n->rx_timer_fd : n->tx_timer_fd, &v, sizeof(v));
	(void)r;
	pthread_mutex_lock(&n->transport.lock);
	if (rx) {
		n->m.rx_timer_events++;
		n->rx_throttled = false;
	} else {
		n->m.tx_timer_events++;
		n->tx_throttled = false;
	}
	if (net_active(n)) {
		if (rx)
			net_rx(n);
		else
			net_tx(n);
	}
	pthread_mutex_unlock(&n->transport.lock);
}

static void net_rx_timer(void *opaque, uint32_t events)
{
	(void)events;
	net_timer(opaque, true);
}

static void net_tx_timer(void *opaque, uint32_t events)
{
	(void)events;
	net_timer(opaque, false);
}

static int net_limits(struct virtio_net *n, const struct net_device_config *c)
{
	uint64_t now = clock_now_ns();
	struct rate_limiter rx = { .throttled = n->rx_rl.throttled },
			    tx = { .throttled = n->tx_rl.throttled };
	if (token_bucket_init(&rx.bytes, c->rx_bw_size, c->rx_bw_burst, c->rx_bw_refill_ms, now) <
		0 ||
	    token_bucket_init(&rx.ops, c->rx_ops_size, c->rx_ops_burst, c->rx_ops_refill_ms, now) <
		0 ||
	    token_bucket_init(&tx.bytes, c->tx_bw_size, c->tx_bw_burst, c->tx_bw_refill_ms, now) <
		0 ||
	    token_bucket_init(&tx.ops, c->tx_ops_size, c->tx_ops_burst, c->tx_ops_refill_ms, now) <
		0)
		return -EINVAL;
	n->rx_rl = rx;
	n->tx_rl = tx;
	return 0;
}

void virtio_net_save_limiters(struct virtio_net *n, struct rate_limiter_state s[2])
{
	pthread_mutex_lock(&n->transport.lock);
	uint64_t now = clock_now_ns();
	rate_limiter_save(&n->rx_rl, &s[0], now);
	rate_limiter_save(&n->tx_rl, &s[1], now);
	pthread_mutex_unlock(&n->transport.lock);
}

int virtio_net_restore_limiters(struct virtio_net *n, const struct rate_limiter_state s[2],
				const char **why)
{
	pthread_mutex_lock(&n->transport.lock);
	uint64_t now = clock_now_ns();
	struct rate_limiter rx = n->rx_rl, tx = n->tx_rl;
	int r = rate_limiter_restore(&rx, &s[0], now, why);
	if (r == 0)
		r = rate_limiter_restore(&tx, &s[1], now, why);
	if (r == 0)
		n->rx_rl = rx, n->tx_rl = tx;
	pthread_mutex_unlock(&n->transport.lock);
	return r;
}

void virtio_net_set_mmds(struct virtio_net *n, struct mmds_net *mmds)
{
	n->mmds = mmds;
}

void virtio_net_mmds_kick(void *opaque)
{
	struct virtio_net *n = opaque;
	pthread_mutex_lock(&n->transport.lock);
	if (net_active(n))
		net_rx(n);
	pthread_mutex_unlock(&n->transport.lock);
}

void virtio_net_set_limits(struct virtio_net *n, const struct net_device_config *limits)
{
	pthread_mutex_lock(&n->transport.lock);
	net_limits(n, limits);
	pthread_mutex_unlock(&n->transport.lock);
}

int virtio_net_init(struct virtio_net *n, const struct guest_mem *mem,
		    const struct net_device_config *cfg, char *err, size_t err_len)
{
	memset(n, 0, sizeof(*n));
	n->cfg = *cfg;
	if (!n->cfg.mtu)
		n->cfg.mtu = NET_DEFAULT_MTU;
	n->tops = &virtio_mmio_transport_ops;
	n->rx_timer_fd = n->tx_timer_fd = -1;
	n->tap_fd = tap_open(cfg->tap_name, err, err_len);
	if (n->tap_fd < 0)
		return n->tap_fd;
	int r = -ENOMEM;
	if (net_limits(n, cfg) < 0) {
		snprintf(err, err_len, "rate limiter refill time must be more than 0 ms");
		r = -EINVAL;
		goto fail;
	}
	n->overflow = malloc(NET_MAX_GSO_FRAME + NET_HDR_LEN);
	n->rx_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	n->tx_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (!n->overflow || n->rx_timer_fd < 0 || n->tx_timer_fd < 0) {
		snprintf(err, err_len, "out of memory or descriptors");
		goto fail;
	}
	n->rx_pending = true; /* frames may be waiting already */
	r = virtio_mmio_init(&n->transport, n->cfg.id, mem, &net_ops, n, n->queues);
	if (r == 0)
		return 0;
	snprintf(err, err_len, "cannot set up the device: %s", strerror(-r));
fail:
	/* A device that did not start keeps no TAP, timer or buffer. */
	close(n->tap_fd);
	if (n->rx_timer_fd >= 0)
		close(n->rx_timer_fd);
	if (n->tx_timer_fd >= 0)
		close(n->tx_timer_fd);
	free(n->overflow);
	n->overflow = NULL;
	n->tap_fd = n->rx_timer_fd = n->tx_timer_fd = -1;
	return r;
}

int virtio_net_add_to_loop(struct virtio_net *n, struct event_loop *loop)
{
	n->loop = loop;
	/* Edge-triggered: RX without guest buffers waits for a queue notify
	 * instead of spinning on a readable TAP. */
	n->tap_h = event_loop_add(loop, n->tap_fd, EPOLLIN | EPOLLOUT | EPOLLET, net_tap_ready, n);
	if (!n->tap_h || !event_loop_add(loop, n->rx_timer_fd, EPOLLIN, net_rx_timer, n) ||
	    !event_loop_add(loop, n->tx_timer_fd, EPOLLIN, net_tx_timer, n))
		return -errno;
	return 0;
}
