/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (virtio 1.2, 5.1) over a host TAP device: one RX and one TX
 * queue, the virtio-net header shared with the TAP (IFF_VNET_HDR), the
 * offloads the guest negotiates passed to the TAP (TUNSETOFFLOAD), and
 * per-direction rate limiters.
 *
 * Threads: everything runs on the VMM thread under the transport lock:
 * queue notifications, TAP readiness, rate-limit timers.
 */
#ifndef EMBER_VIRTIO_NET_H
#define EMBER_VIRTIO_NET_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/virtio/mmio.h"
#include "rate_limiter.h"

#define NET_RX_QUEUE 0
#define NET_TX_QUEUE 1
#define NET_QUEUE_SIZE 256
#define NET_HDR_LEN 12 /* struct virtio_net_hdr_v1 */
#define NET_DEFAULT_MTU 1500
/* Largest frame with TSO/UFO: a 64 KiB IP packet plus the Ethernet header. */
#define NET_MAX_GSO_FRAME (65535 + 14)

struct net_device_config {
	const char *id;
	const char *tap_name;
	uint8_t mac[6];
	bool has_mac;
	uint16_t mtu;
	/* Rate limits (bucket size per refill ms); 0 = unlimited. */
	uint64_t rx_bw_size, rx_bw_burst, rx_bw_refill_ms, rx_ops_size, rx_ops_burst,
	    rx_ops_refill_ms;
	uint64_t tx_bw_size, tx_bw_burst, tx_bw_refill_ms, tx_ops_size, tx_ops_burst,
	    tx_ops_refill_ms;
};

struct net_metrics {
	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
	uint64_t rx_dropped; /* frames larger than the guest's buffers */
	uint64_t tx_malformed; /* bad header, too large, empty, writable buffers */
	uint64_t bad_chains;
	uint64_t rx_throttled, tx_throttled;
	uint64_t tap_errors; /* TAP read/write failures (e.g. the TAP was deleted) */
	uint64_t rx_short_buffers; /* waits because the guest's RX buffers held less than a frame */
	/* For Firecracker's names (metrics.c maps the rest from the above). */
	uint64_t no_rx_avail_buffer; /* frames waiting with no RX buffer at all */
	uint64_t tap_read_fails, tap_write_fails; /* of tap_errors */
	uint64_t tap_events; /* TAP readiness events */
	uint64_t rx_timer_events, tx_timer_events; /* rate limiter timer expiries */
	uint64_t tx_remaining; /* frames left on the ring each time the TX limiter stopped it */
	uint64_t tap_write_ns_min, tap_write_ns_max, tap_write_ns_sum; /* writev() to the TAP */
};

struct event_loop;
struct event_handler;
struct mmds_net;

struct virtio_net {
	struct virtio_mmio transport;
	struct virtq queues[2];
	const struct virtio_transport_ops *tops;
	struct net_device_config cfg;
	int tap_fd;
	bool tap_broken;
	uint64_t acked;
	struct rate_limiter rx_rl, tx_rl;
	int rx_timer_fd, tx_timer_fd;
	bool rx_throttled, tx_throttled;
	bool rx_pending; /* the TAP may hold frames we have not read */
	bool tx_blocked; /* the TAP refused a write (EAGAIN): wait for EPOLLOUT */
	struct event_loop *loop;
	struct event_handler *tap_h;
	struct net_metrics m;
	uint8_t *overflow; /* where the tail of an oversize RX frame lands, to be dropped */
	bool warned_short_rx; /* the short-buffers warning is logged once */
	/* MMDS serves this interface: frames to its address go there, not to
	 * the TAP, and its answers reach the guest ahead of the TAP's frames. */
	struct mmds_net *mmds;
};

/*
 * Check a TX frame's virtio-net header against what was negotiated (@acked)
 * and the frame's length (header excluded); @vlan when the frame carries an
 * 802.1Q tag. Returns 0 or -EINVAL with @why. Pure; unit-tested.
 */
int net_tx_hdr_check(const struct virtio_net_hdr_v1 *h, uint64_t frame_len, bool vlan,
		     uint64_t acked, uint16_t mtu, const char **why);

/* Largest frame (header excluded) the guest may send or must be able to take. */
uint64_t net_max_frame(uint64_t acked, uint16_t mtu, bool rx, bool vlan);

/* Open the TAP and set the device up. -errno with a message in @err. */
int virtio_net_init(struct virtio_net *n, const struct guest_mem *mem,
		    const struct net_device_config *cfg, char *err, size_t err_len)
    __attribute__((warn_unused_result));
int virtio_net_add_to_loop(struct virtio_net *n, struct event_loop *loop)
    __attribute__((warn_unused_result));
/* Serve MMDS (@mmds, from mmds_net_attach()) on this interface; the
 * callback mmds_net_attach() wants as @kick is virtio_net_mmds_kick. */
void virtio_net_set_mmds(struct virtio_net *n, struct mmds_net *mmds);
void virtio_net_mmds_kick(void *opaque);
/* PATCH /network-interfaces: replace the rate limits. VMM thread. */
void virtio_net_set_limits(struct virtio_net *n, const struct net_device_config *limits);

/* The RX ([0]) and TX ([1]) rate limiters' buckets for a snapshot, and back
 * (both checked before either is replaced). VMM thread, the VM paused or
 * not yet running. */
void virtio_net_save_limiters(struct virtio_net *n, struct rate_limiter_state s[2]);
int virtio_net_restore_limiters(struct virtio_net *n, const struct rate_limiter_state s[2],
				const char **why) __attribute__((warn_unused_result));

/* Open TAP @name with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking. */
int tap_open(const char *name, char *err, size_t err_len);
/* TUNSETOFFLOAD from the guest's negotiated features. */
int tap_set_offloads(int fd, uint64_t acked);

#endif
