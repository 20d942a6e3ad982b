/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (virtio 1.2, 5.10), stream sockets only, mapped to Unix
 * sockets on the host the way Firecracker does it:
 *   - host -> guest: a host process connects to uds_path and writes
 *     "CONNECT <port>\n"; once the guest accepts, ember answers
 *     "OK <host_port>\n" and forwards bytes both ways;
 *   - guest -> host: a guest connecting to CID 2 port P makes ember connect
 *     to "<uds_path>_P"; nobody listening there means RST to the guest.
 * Credit-based flow control per connection (both directions), bounded
 * buffers, a connection limit. Queues: 0 RX, 1 TX, 2 event.
 *
 * Threads: VMM thread only, under the transport lock (queue notifies, host
 * socket readiness).
 */
#ifndef EMBER_VIRTIO_VSOCK_H
#define EMBER_VIRTIO_VSOCK_H

#include <linux/virtio_vsock.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/mmio.h"

#define VSOCK_RX_QUEUE 0
#define VSOCK_TX_QUEUE 1
#define VSOCK_EVENT_QUEUE 2
#define VSOCK_QUEUE_SIZE 256
#define VSOCK_HOST_CID 2
#define VSOCK_HDR_LEN 44
#define VSOCK_MAX_CONNS 256
#define VSOCK_BUF_ALLOC (256 * 1024) /* what we let the guest send unacknowledged */
#define VSOCK_MAX_PKT (64 * 1024)
/* A host peer that never finishes "CONNECT <port>\n", or a guest that never
 * answers the REQUEST, loses the connection after this long. */
#define VSOCK_CONNECT_TIMEOUT_MS 2000
/* sun_path holds 107 characters; "_4294967295" takes 11 of them. */
#define VSOCK_UDS_PATH_MAX 96

struct vsock_pkt_check {
	uint64_t guest_cid;
	uint64_t payload_avail; /* bytes of the chain after the header */
};

/*
 * Validate a header the guest put on the TX queue: addresses (from its own
 * CID to the host), stream type, a known op, length within the chain and
 * VSOCK_MAX_PKT, no payload except on RW. 0 or -EINVAL with @why. Pure.
 */
int vsock_hdr_check(const struct virtio_vsock_hdr *h, const struct vsock_pkt_check *c,
		    const char **why);

enum vsock_conn_state {
	VSOCK_FREE,
	VSOCK_HANDSHAKE, /* host accepted, waiting for "CONNECT <port>\n" */
	VSOCK_REQUESTED, /* REQUEST sent to the guest, waiting for RESPONSE */
	VSOCK_ESTABLISHED,
	/* The host peer closed: SHUTDOWN (both ways) went to the guest and the
	 * host socket is gone; the slot waits for the guest's RST (virtio 1.2,
	 * 5.10.6.5), ignoring what the guest still sends, so that a late
	 * credit update or SHUTDOWN is not answered with RST while the guest
	 * still reads the last bytes. */
	VSOCK_CLOSING,
};

struct virtio_vsock;

struct vsock_conn {
	struct virtio_vsock *owner;
	enum vsock_conn_state state;
	int fd;
	uint32_t guest_port, host_port;
	/* Guest-to-host: bytes the UDS has not taken yet (a ring of
	 * VSOCK_BUF_ALLOC, allocated the first time it is needed), and what we
	 * forwarded. */
	uint8_t *txbuf;
	uint32_t tx_head, tx_len;
	uint32_t fwd_cnt, fwd_cnt_sent;
	/* Host-to-guest: what the guest's buffers allow. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt;
	bool readable; /* the UDS may have bytes for the guest */
	bool guest_shut_send; /* the guest sends no more */
	char line[32]; /* "CONNECT <port>\n" being read */
	uint64_t deadline_us; /* HANDSHAKE, REQUESTED: when it is given up */
	unsigned int line_len;
	struct event_handler *h;
};

struct vsock_metrics {
	uint64_t conns_opened, conns_closed, conns_refused;
	uint64_t tx_bytes, rx_bytes; /* guest->host, host->guest */
	uint64_t bad_packets, bad_chains;
	uint64_t resets_to_guest;
	uint64_t conns_timed_out; /* gave up in set-up (VSOCK_CONNECT_TIMEOUT_MS) */
	uint64_t tx_packets, rx_packets; /* well-formed packets from and to the guest */
	uint64_t rx_read_fails; /* reads from a host socket that failed (the connection is reset) */
};

struct event_loop;
struct event_handler;

#define VSOCK_CTRL_MAX 512

struct virtio_vsock {
	struct virtio_mmio transport;
	struct virtq queues[3];
	const struct virtio_transport_ops *tops;
	uint64_t guest_cid;
	char *uds_path;
	int listen_fd;
	bool bound; /* uds_path is our socket, to remove at the end */
	struct event_loop *loop;
	struct event_handler *listen_h;
	int timer_fd; /* connection set-up timeouts */
	struct event_handler *timer_h;
	struct vsock_conn conns[VSOCK_MAX_CONNS];
	uint32_t next_host_port;
	/* Control packets waiting for an RX buffer. */
	struct virtio_vsock_hdr ctrl[VSOCK_CTRL_MAX];
	unsigned int ctrl_head, ctrl_len;
	struct vsock_metrics m;
};

/* Bind @uds_path (which must not exist) and set the device up. */
int virtio_vsock_init(struct virtio_vsock *v, const struct guest_mem *mem, uint64_t guest_cid,
		      const char *uds_path, char *err, size_t err_len)
    __attribute__((warn_unused_result));
int virtio_vsock_add_to_loop(struct virtio_vsock *v, struct event_loop *loop)
    __attribute__((warn_unused_result));
/* Drop every connection and tell the guest (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET). */
void virtio_vsock_transport_reset(struct virtio_vsock *v);
/* Close host sockets and remove the listening socket file. */
void virtio_vsock_shutdown(struct virtio_vsock *v);

#endif

/* ---- between vsock.c (queues) and muxer.c (host sockets) ---- */

extern const struct virtio_device_ops vsock_device_ops;

/* The connection for (guest_port, host_port), or NULL. */
struct vsock_conn *vsock_conn_find(struct virtio_vsock *v, uint32_t guest_port, uint32_t host_port);
/* Tell the guest RST for @c, then close it (vsock_conn_close()). */
void vsock_conn_reset(struct virtio_vsock *v, struct vsock_conn *c);
/* Close the host socket and free the slot. */
void vsock_conn_close(struct virtio_vsock *v, struct vsock_conn *c);
/* The host peer closed @c: SHUTDOWN (both ways) to the guest, host socket
 * closed, the slot kept as VSOCK_CLOSING until the guest's RST or a timeout. */
void vsock_conn_host_closed(struct virtio_vsock *v, struct vsock_conn *c);
/* Queue a control packet for the guest about @c (or about the two ports). */
void vsock_send_ctrl(struct virtio_vsock *v, uint32_t host_port, uint32_t guest_port, uint16_t op,
		     uint32_t flags, uint32_t fwd_cnt);
/* Deliver queued control packets and readable host data to the guest. */
void vsock_rx(struct virtio_vsock *v);
/* The guest asked to connect to host port @port from its @guest_port. */
void vsock_guest_connect(struct virtio_vsock *v, uint32_t guest_port, uint32_t port,
			 const struct virtio_vsock_hdr *h);
/* Forward @len bytes of guest payload to @c's host socket (buffering what it
 * does not take; a host error resets @c). Returns -1 when the guest overran
 * its credit, which the caller answers with a reset. */
int vsock_conn_write(struct virtio_vsock *v, struct vsock_conn *c, const struct iovec *iov,
		     unsigned int n, uint32_t len);
/* Try to push buffered guest bytes to the host socket. */
void vsock_conn_flush(struct virtio_vsock *v, struct vsock_conn *c);
/* A host-initiated connection was accepted by the guest. */
void vsock_conn_established(struct virtio_vsock *v, struct vsock_conn *c);
