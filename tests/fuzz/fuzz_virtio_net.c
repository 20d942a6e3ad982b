// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net as a guest and the wire drive it: the real device (transport,
 * queues, TX header check, RX buffer gathering with and without
 * VIRTIO_NET_F_MRG_RXBUF) on fake guest RAM, its TAP a socketpair behind
 * fuzz_fake_tap.h, which refuses what a Linux TAP refuses. Three devices
 * (MTU 1500 with a MAC, MTU 9000 without, one rate-limited both ways) on
 * one event loop, set up once. The rate limits refill over days: within an
 * input the buckets only drain (throttling is deterministic) until the
 * input says time passes; the limiter is set afresh for each input.
 *
 * The input picks the device, the features (MRG_RXBUF, CSUM, the GSO bits,
 * EVENT_IDX) and both queues' geometry, then up to MAX_OPS moves: TX frames
 * (header fields valid or not, VLAN or not, any length, any layout), RX
 * buffer sets (too small ones included), frames arriving from the wire, raw
 * descriptors and ring moves on either queue, kicks, event loop turns and
 * the wire taking what was sent (a TAP that was full drains), time passing.
 *
 * After every step the used rings are checked (fz_vq_check_used), and the
 * TAP must not have been given up: the fake one never fails but for EAGAIN
 * and for frames it refuses (EINVAL), which are the guest's doing. On the
 * RX queue each frame's buffers come back together, all but the last
 * full, as many as its header's num_buffers says (with MRG_RXBUF).
 */
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "devices/virtio/net/net.h"
#include "event_loop.h"
#include "fuzz_fake_tap.h"
#include "fuzz_virtio.h"
#include "log.h"

#define NR_DEVS 3
#define LIMITED 2 /* the rate-limited device */
#define MAX_OPS 128
#define ETH_HLEN 14
#define DAYS_MS 1000000000 /* a refill time no input outlasts */

static const struct net_device_config cfgs[NR_DEVS] = {
	{ .id = "eth0", .tap_name = "fz0", .mac = { 2, 0, 0, 0, 0, 1 }, .has_mac = true },
	{ .id = "eth1", .tap_name = "fz1", .mtu = 9000 },
	{ .id = "eth2",
	  .tap_name = "fz2",
	  .rx_ops_size = 3,
	  .rx_ops_refill_ms = DAYS_MS,
	  .rx_bw_size = 4096,
	  .rx_bw_refill_ms = DAYS_MS,
	  .tx_ops_size = 3,
	  .tx_ops_refill_ms = DAYS_MS,
	  .tx_bw_size = 4096,
	  .tx_bw_refill_ms = DAYS_MS },
};
static struct event_loop loop;
static struct virtio_net devs[NR_DEVS];
static struct virtio_net *cur; /* the device this input drives */
static unsigned int frame_left; /* RX buffers the frame being returned still has */

static void setup_once(void)
{
	char err[200] = "";
	log_init(LOG_OFF, STDERR_FILENO);
	fz_mem_init();
	if (event_loop_init(&loop) < 0)
		abort();
	for (unsigned int i = 0; i < NR_DEVS; i++) {
		if (virtio_net_init(&devs[i], &fz_mem, &cfgs[i], err, sizeof(err)) < 0 ||
		    virtio_net_add_to_loop(&devs[i], &loop) < 0) {
			fprintf(stderr, "fuzz_virtio_net: %s\n", err);
			abort();
		}
	}
}

/* The limiter as configured, buckets full, its timers off. */
static void limits_reset(struct virtio_net *n)
{
	virtio_net_set_limits(n, &cfgs[n - devs]);
	fz_timer_off(n->rx_timer_fd);
	fz_timer_off(n->tx_timer_fd);
}

/* Time passes: the buckets are full again and the limiter's timers fire. */
static void op_time_passes(struct virtio_net *n)
{
	struct itimerspec now = { .it_value = { 0, 1 } };
	limits_reset(n);
	timerfd_settime(n->rx_timer_fd, TFD_TIMER_ABSTIME, &now, NULL);
	timerfd_settime(n->tx_timer_fd, TFD_TIMER_ABSTIME, &now, NULL);
	event_loop_run_once(&loop, 0);
}

/* Read every record waiting on @fd (what the wire holds, one way). */
static void drain(int fd, unsigned int max)
{
	static uint8_t buf[FZ_TAP_FRAME_MAX];
	for (unsigned int i = 0; i < max; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0)
			break;
}

/* Each RX buffer the device returned, in order: a frame's buffers come
 * together, every one but the last filled, num_buffers of them. */
static void rx_used(struct fz_vq *q, uint16_t head, uint32_t len)
{
	const char *bad = NULL;
	uint16_t nb = 1;
	if (fz_aliased)
		return;
	if (!frame_left && len) {
		struct virtio_net_hdr_v1 h;
		if (len < NET_HDR_LEN || !fz_vq_read_in(q, head, &h, NET_HDR_LEN))
			bad = "a frame without its header";
		else if (cur->acked & (1ull << VIRTIO_NET_F_MRG_RXBUF))
			nb = h.num_buffers;
		if (!bad && (nb == 0 || nb > 64))
			bad = "num_buffers out of range";
		frame_left = nb;
	} else if (frame_left && !len) {
		bad = "an empty buffer inside a frame";
	}
	if (frame_left > 1 && len != fz_vq_in_len(q, head))
		bad = "a frame's buffer left part empty before the next";
	if (bad) {
		fprintf(stderr, "fuzz_virtio_net: RX head %u (%u bytes): %s\n", head, len, bad);
		abort();
	}
	if (frame_left)
		frame_left--;
}

static void check(struct virtio_net *n, struct fz_vq *rxq, struct fz_vq *txq)
{
	fz_vq_check_used(rxq);
	fz_vq_check_used(txq);
	if (n->tap_broken) {
		fprintf(stderr,
			"fuzz_virtio_net: the device gave its TAP up; the TAP never "
			"failed, it only refused a frame the guest sent\n");
		abort();
	}
}

/* A frame length: the interesting edges, or any 16-bit value. */
static uint32_t frame_len(struct fuzz_in *in)
{
	static const uint32_t edges[] = { 0,	 1,	13,    14,    60,    1514,
					  1518,	 1519,	9014,  9018,  9019,  65549,
					  65550, 65553, 65554, 65535, 65521, 65522 };
	uint8_t sel = fuzz_u8(in);
	if (sel < 0xc0)
		return sel * 8u;
	sel -= 0xc0;
	return sel < sizeof(edges) / sizeof(edges[0]) ? edges[sel] : fuzz_u16(in);
}

/* An Ethernet header (VLAN-tagged or not) and up to 255 more bytes from
 * the input, at @p (@len bytes). */
static void frame_fill(uint8_t *p, uint32_t len, bool vlan, struct fuzz_in *in)
{
	uint8_t eth[18] = { 2, 0, 0, 0, 0, 1, 6, 0, 0, 0, 0, 2, 0x08, 0x00 };
	if (vlan) {
		eth[12] = 0x81, eth[13] = 0x00, eth[16] = 0x08, eth[17] = 0x00;
	}
	memcpy(p, eth, len < sizeof(eth) ? len : sizeof(eth));
	uint32_t at = len < sizeof(eth) ? len : sizeof(eth), k = fuzz_u8(in);
	if (k > len - at)
		k = len - at;
	fuzz_take(in, p + at, k);
}

/* The virtio-net header of a TX frame: a well-formed one of each kind
 * (none, checksum, TSO4, TSO6, UFO, ECN) or raw bytes, then any fields the
 * input overrides. */
static void tx_header(struct virtio_net_hdr_v1 *h, struct fuzz_in *in)
{
	static const struct virtio_net_hdr_v1 kinds[] = {
		{ 0 },
		{ .flags = 1, .csum_start = 34, .csum_offset = 16 },
		{ .flags = 1,
		  .gso_type = 1,
		  .hdr_len = 54,
		  .gso_size = 1448,
		  .csum_start = 34,
		  .csum_offset = 16 },
		{ .flags = 1,
		  .gso_type = 4,
		  .hdr_len = 74,
		  .gso_size = 1428,
		  .csum_start = 54,
		  .csum_offset = 16 },
		{ .flags = 1,
		  .gso_type = 3,
		  .hdr_len = 42,
		  .gso_size = 1472,
		  .csum_start = 34,
		  .csum_offset = 6 },
		{ .flags = 1,
		  .gso_type = 0x81,
		  .hdr_len = 54,
		  .gso_size = 1448,
		  .csum_start = 34,
		  .csum_offset = 16 },
	};
	uint8_t kind = fuzz_u8(in);
	if ((kind & 7) < 6)
		*h = kinds[kind & 7];
	else
		fuzz_take(in, h, NET_HDR_LEN);
	if (kind & 0x08)
		h->flags = fuzz_u8(in);
	if (kind & 0x10)
		h->hdr_len = fuzz_u16(in);
	if (kind & 0x20)
		h->csum_start = fuzz_u16(in);
	if (kind & 0x40)
		h->csum_offset = fuzz_u16(in);
	if (kind & 0x80)
		h->gso_size = fuzz_u16(in);
}

/* A frame the guest sends: header, frame, and a layout of one to five
 * descriptors (header apart or not, split anywhere), maybe with a
 * device-writable one it should not have. */
static void op_tx(struct fz_vq *q, struct fuzz_in *in)
{
	uint8_t shape = fuzz_u8(in);
	struct virtio_net_hdr_v1 h;
	tx_header(&h, in);
	uint32_t len = frame_len(in), total = NET_HDR_LEN + len;
	uint64_t gpa = fz_alloc(total);
	uint8_t *p = guest_mem_ptr(&fz_mem, gpa, total);
	if (!p)
		return;
	memcpy(p, &h, NET_HDR_LEN);
	frame_fill(p + NET_HDR_LEN, len, shape & 4, in);

	struct fz_seg s[FZ_MAX_SEGS];
	unsigned int n = 0;
	uint32_t at = 0;
	switch ((shape >> 4) & 3) {
	case 1: /* header, then the frame */
		s[n++] = (struct fz_seg){ gpa, NET_HDR_LEN, 0 };
		at = NET_HDR_LEN;
		break;
	case 2: /* the header split */
		s[n++] = (struct fz_seg){ gpa, 5, 0 };
		at = 5;
		break;
	case 3: /* cut where the input says */
		for (unsigned int i = 0; i < 3 && at < total; i++) {
			uint32_t cut = fuzz_u16(in) % (total - at + 1);
			s[n++] = (struct fz_seg){ gpa + at, cut, 0 };
			at += cut;
		}
		break;
	}
	s[n++] = (struct fz_seg){ gpa + at, total - at, 0 };
	if (shape & 0x40)
		s[n++] = (struct fz_seg){ fz_alloc(64), 64, VIRTQ_DESC_F_WRITE };
	uint16_t head = fz_vq_add(q, s, n);
	if (!(shape & 0x80))
		fz_vq_publish(q, head);
}

/* 1-16 receive chains of one size (tiny to room for the largest GSO
 * frame), each in 1-4 descriptors. */
static void op_rx_buffers(struct fz_vq *q, struct fuzz_in *in)
{
	static const uint32_t sizes[] = { 0,	1,     11,    12,    13,    64,	  100,
					  1526, 1530,  1531,  2048,  4096,  9026, 9030,
					  9031, 65562, 65565, 65566, 32768, 16384 };
	uint8_t shape = fuzz_u8(in), sel = fuzz_u8(in);
	uint32_t len = sel < sizeof(sizes) / sizeof(sizes[0]) ? sizes[sel] : sel * 16u;
	fz_post_writable(q, len, 1 + (shape & 15), 1 + ((shape >> 4) & 3), !(shape & 0x80));
}

/* A frame arrives from the wire: a virtio-net header as a TAP writes it
 * (zeros, or bytes from the input), then the frame; or a short record. */
static void op_wire_frame(struct virtio_net *n, struct fuzz_in *in)
{
	static uint8_t buf[FZ_TAP_FRAME_MAX];
	uint8_t shape = fuzz_u8(in);
	uint32_t len = frame_len(in);
	if (len > sizeof(buf) - NET_HDR_LEN)
		len = sizeof(buf) - NET_HDR_LEN;
	uint32_t total = NET_HDR_LEN + len;
	memset(buf, 0, NET_HDR_LEN);
	if (shape & 1)
		fuzz_take(in, buf, NET_HDR_LEN);
	frame_fill(buf + NET_HDR_LEN, len, shape & 4, in);
	if (shape & 2)
		total = fuzz_u8(in) % NET_HDR_LEN;
	send(fz_tap_peer(n->tap_fd), buf, total, MSG_DONTWAIT);
}

/* The driver resets the device and brings it up again. */
static void op_reset(struct virtio_net *n, struct fz_vq *rxq, struct fz_vq *txq, struct fuzz_in *in)
{
	fz_negotiate(&n->transport, in);
	fz_vq_setup(rxq, &n->transport, NET_RX_QUEUE, in);
	fz_vq_setup(txq, &n->transport, NET_TX_QUEUE, in);
	rxq->on_used = rx_used;
	frame_left = 0;
	fq_driver_ok(&n->transport);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		setup_once();
		ready = true;
	}
	struct fuzz_in in = { data, size };
	struct virtio_net *n = &devs[fuzz_u8(&in) % NR_DEVS];
	struct fz_vq rxq, txq;
	cur = n;

	/* A device as fresh as after virtio_net_init(): reset, the wire empty
	 * both ways, the event loop's pending edges taken while it is idle. */
	fq_reg_write(&n->transport, 0x070, 0);
	drain(n->tap_fd, UINT32_MAX);
	drain(fz_tap_peer(n->tap_fd), UINT32_MAX);
	event_loop_run_once(&loop, 0);
	n->rx_pending = true;
	n->tx_blocked = false;
	n->warned_short_rx = false;
	n->transport.config_generation = 0;
	limits_reset(n);
	fz_mem_reset();
	op_reset(n, &rxq, &txq, &in);

	for (unsigned int i = 0; i < MAX_OPS && in.left; i++) {
		uint8_t op = fuzz_u8(&in);
		struct fz_vq *q = op & 0x80 ? &txq : &rxq;
		switch (op % 16) {
		case 0:
			fz_op_desc(q, &in);
			break;
		case 1:
			fz_op_chain(q, &in);
			break;
		case 2:
		case 3:
			op_tx(&txq, &in);
			break;
		case 4:
		case 5:
			op_rx_buffers(&rxq, &in);
			break;
		case 6:
			op_wire_frame(n, &in);
			break;
		case 7:
		case 8:
			virtio_mmio_notify(&n->transport, q->qi);
			check(n, &rxq, &txq);
			break;
		case 9:
			event_loop_run_once(&loop, 0);
			check(n, &rxq, &txq);
			break;
		case 10:
			if (op & 0x40) {
				op_time_passes(n);
				check(n, &rxq, &txq);
			} else {
				drain(fz_tap_peer(n->tap_fd), 1 + fuzz_u8(&in));
			}
			break;
		case 11:
			fz_op_publish(q, &in);
			break;
		case 12:
			fz_op_avail_idx(q, &in);
			break;
		case 13:
			fz_op_ring_flags(q, &in);
			break;
		case 14:
			fz_op_recycle(q, &in);
			break;
		default:
			if (op & 0x40)
				op_reset(n, &rxq, &txq, &in);
			else
				fz_op_poke(&in);
			break;
		}
	}
	virtio_mmio_notify(&n->transport, NET_TX_QUEUE);
	virtio_mmio_notify(&n->transport, NET_RX_QUEUE);
	event_loop_run_once(&loop, 0);
	check(n, &rxq, &txq);
	limits_reset(n);
	return 0;
}
