// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-vsock and its muxer, with the guest and the host both played from
 * the input: the real device on fake guest RAM, its listening socket and
 * the guest's connections on real Unix sockets in a private directory, one
 * event loop, all set up once.
 *
 * The input negotiates features and lays out the three queues, then makes
 * up to MAX_OPS moves. Guest: TX packets (every op and some that are not,
 * CIDs, ports, lengths beyond the buffers or VSOCK_MAX_PKT, flags, credit
 * fields; header and payload in any layout), RX and event buffers of any
 * size, raw descriptors and ring moves, kicks, a driver reset. Host: peers
 * that connect to uds_path and send a CONNECT line (or something else),
 * peers behind the guest's connections to <uds_path>_<port> accepted, bytes
 * written, read and shut down either way, the event loop turned, set-up
 * deadlines passing, a transport reset (what a snapshot does).
 *
 * Checked after every step: the used rings, and each packet on the RX
 * queue: from the host to this guest, its length that of the used element
 * (unless the input made buffers overlap).
 * At the end of each input the driver resets the device and every socket
 * the input made is closed, so the next starts from the same place.
 */
#include <signal.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include "devices/virtio/vsock/vsock.h"
#include "event_loop.h"
#include "fuzz_virtio.h"
#include "log.h"

#define GUEST_CID 3
#define MAX_OPS 128
#define MAX_PEERS 8
#define HOST_PORT_FIRST (1u << 30) /* muxer.c: the first host port it hands out */

/* The ports the input names: two with a host listener, one without, the
 * edges, the host ports ember hands out, and two guest ports. */
static const uint32_t ports[] = {
	1024, 52,  1025, 0, UINT32_MAX, HOST_PORT_FIRST, HOST_PORT_FIRST + 1, HOST_PORT_FIRST + 2,
	5000, 5001
};
#define NR_LISTENERS 2

static struct event_loop loop;
static struct virtio_vsock v;
static char dir[64], uds[96];
static int listeners[NR_LISTENERS];
static int peers[MAX_PEERS];
static unsigned int nr_peers;
static struct fz_vq rxq, txq, evq;
static uint16_t last_tx_head;

static void remove_files(void)
{
	char path[128];
	for (unsigned int i = 0; i < NR_LISTENERS; i++) {
		snprintf(path, sizeof(path), "%s_%u", uds, ports[i]);
		unlink(path);
	}
	virtio_vsock_shutdown(&v);
	rmdir(dir);
}

static void setup_once(void)
{
	char err[200] = "";
	signal(SIGPIPE, SIG_IGN); /* as main() does: a peer gone is an error return */
	log_init(LOG_OFF, STDERR_FILENO);
	fz_mem_init();
	strcpy(dir, "/tmp/ember-fuzz-vsock-XXXXXX");
	if (event_loop_init(&loop) < 0 || !mkdtemp(dir))
		abort();
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	if (virtio_vsock_init(&v, &fz_mem, GUEST_CID, uds, err, sizeof(err)) < 0 ||
	    virtio_vsock_add_to_loop(&v, &loop) < 0) {
		fprintf(stderr, "fuzz_vsock: %s\n", err);
		abort();
	}
	for (unsigned int i = 0; i < NR_LISTENERS; i++) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", uds, ports[i]);
		listeners[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (listeners[i] < 0 || bind(listeners[i], (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    listen(listeners[i], 128) < 0)
			abort();
	}
	atexit(remove_files);
}

static uint32_t port(struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in);
	return sel < sizeof(ports) / sizeof(ports[0]) ? ports[sel] : fuzz_u32(in);
}

static void add_peer(int fd)
{
	if (fd < 0)
		return;
	if (nr_peers == MAX_PEERS) {
		close(fd);
		return;
	}
	peers[nr_peers++] = fd;
}

/* Accept what waits on @fd and close it (or keep it as a peer). */
static void accept_all(int fd, bool keep)
{
	for (int c; (c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;)
		if (keep)
			add_peer(c);
		else
			close(c);
}

/* Each packet the device put on the RX queue: from the host to this guest,
 * and as long as the used element says. */
static void rx_used(struct fz_vq *q, uint16_t head, uint32_t len)
{
	struct virtio_vsock_hdr h;
	if (len == 0 || fz_aliased)
		return; /* a chain given back unused; or another's bytes may be in it */
	if (len < sizeof(h) || !fz_vq_read_in(q, head, &h, sizeof(h))) {
		fprintf(stderr, "fuzz_vsock: RX element of %u bytes, no header\n", len);
		abort();
	}
	if (h.src_cid != VSOCK_HOST_CID || h.dst_cid != GUEST_CID ||
	    h.type != VIRTIO_VSOCK_TYPE_STREAM || len != sizeof(h) + h.len ||
	    (h.len && h.op != VIRTIO_VSOCK_OP_RW) || h.len > VSOCK_MAX_PKT) {
		fprintf(
		    stderr,
		    "fuzz_vsock: bad RX packet: %llu -> %llu type %u op %u len %u in %u bytes\n",
		    (unsigned long long)h.src_cid, (unsigned long long)h.dst_cid, h.type, h.op,
		    h.len, len);
		abort();
	}
}

static void check(void)
{
	fz_vq_check_used(&rxq);
	fz_vq_check_used(&txq);
	fz_vq_check_used(&evq);
}

/* The driver resets the device and sets it up again. */
static void op_reset(struct fuzz_in *in)
{
	struct virtio_mmio *t = &v.transport;
	fz_negotiate(t, in);
	fz_vq_setup(&rxq, t, VSOCK_RX_QUEUE, in);
	fz_vq_setup(&txq, t, VSOCK_TX_QUEUE, in);
	fz_vq_setup(&evq, t, VSOCK_EVENT_QUEUE, in);
	rxq.on_used = rx_used;
	last_tx_head = 0;
	fq_driver_ok(t);
}

/* A payload length: small, the limits, or any 32-bit value. */
static uint32_t pkt_len(struct fuzz_in *in)
{
	static const uint32_t edges[] = { 0, 1, 4096, VSOCK_MAX_PKT, VSOCK_MAX_PKT + 1 };
	uint8_t sel = fuzz_u8(in);
	if (sel < 0xf0)
		return sel;
	sel -= 0xf0;
	return sel < sizeof(edges) / sizeof(edges[0]) ? edges[sel] : fuzz_u32(in);
}

/* A packet from the guest: a header (addresses right or not, any op, port,
 * length, flags, credit) and its payload, in one to three descriptors;
 * maybe claiming more payload than the buffers hold, maybe with a
 * device-writable descriptor. */
static void op_tx(struct fuzz_in *in)
{
	uint8_t shape = fuzz_u8(in), kind = fuzz_u8(in);
	struct virtio_vsock_hdr h = {
		.src_cid = GUEST_CID,
		.dst_cid = VSOCK_HOST_CID,
		.type = VIRTIO_VSOCK_TYPE_STREAM,
		.buf_alloc = VSOCK_BUF_ALLOC,
	};
	h.src_port = port(in);
	h.dst_port = port(in);
	h.op = kind & 0x80 ? fuzz_u16(in) : kind & 7;
	h.len = pkt_len(in);
	if (kind & 0x08)
		h.flags = fuzz_u32(in);
	else
		h.flags = (kind >> 4) & 3; /* SHUTDOWN's RCV and SEND */
	if (kind & 0x40) {
		h.buf_alloc = fuzz_u32(in);
		h.fwd_cnt = fuzz_u32(in);
	}
	if (shape & 0x08) {
		h.src_cid = fuzz_u64(in);
		h.dst_cid = fuzz_u64(in);
		h.type = fuzz_u16(in);
	}
	/* What the buffers hold: the payload, or less, or more. */
	uint32_t avail = h.len;
	if (shape & 0x04)
		avail = fuzz_u16(in);
	if (avail > VSOCK_MAX_PKT + 16)
		avail = VSOCK_MAX_PKT + 16;
	uint64_t gpa = fz_alloc(sizeof(h) + avail);
	fz_write(gpa, &h, sizeof(h));
	fz_fill(in, gpa + sizeof(h), avail);

	struct fz_seg s[4];
	unsigned int n = 0;
	uint32_t total = sizeof(h) + avail, at = 0;
	switch (shape & 3) {
	case 1: /* header, then payload */
		s[n++] = (struct fz_seg){ gpa, sizeof(h), 0 };
		at = sizeof(h);
		break;
	case 2: /* the header split */
		s[n++] = (struct fz_seg){ gpa, 20, 0 };
		at = 20;
		break;
	case 3: /* the header short of a whole one */
		total = fuzz_u8(in) % sizeof(h);
		break;
	}
	s[n++] = (struct fz_seg){ gpa + at, total - at, 0 };
	if (shape & 0x40)
		s[n++] = (struct fz_seg){ fz_alloc(64), 64, VIRTQ_DESC_F_WRITE };
	uint16_t head = fz_vq_add(&txq, s, n);
	last_tx_head = head;
	if (!(shape & 0x80))
		fz_vq_publish(&txq, head);
}

/* The guest sends its last packet again, up to 1020 times, a ring's worth
 * per kick (a flood of REQUESTs to a refused port fills the device's queue
 * of control packets when the guest takes none). */
static void op_tx_burst(struct fuzz_in *in)
{
	unsigned int n = 4u * fuzz_u8(in);
	fz_aliased = true;
	while (n && txq.size) {
		unsigned int k = n < txq.size ? n : txq.size;
		for (unsigned int i = 0; i < k; i++)
			fz_vq_publish(&txq, last_tx_head);
		virtio_mmio_notify(&v.transport, VSOCK_TX_QUEUE);
		check();
		n -= k;
	}
}

/* 1-16 buffers of one size (none to more than a packet) on @q, each in
 * one to three descriptors. */
static void op_buffers(struct fz_vq *q, struct fuzz_in *in)
{
	static const uint32_t sizes[] = { 0, 1, 4, 8, 43, 44, 45, 100, 4096, 4140, 65580, 65581 };
	uint8_t shape = fuzz_u8(in), sel = fuzz_u8(in);
	uint32_t len = sel < sizeof(sizes) / sizeof(sizes[0]) ? sizes[sel] : sel * 8u;
	fz_post_writable(q, len, 1 + (shape & 15), 1 + ((shape >> 4) % 3), !(shape & 0x80));
}

/* A host process connects to uds_path and says CONNECT <port> (or not). */
static void op_host_connect(struct fuzz_in *in)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char line[64];
	int len;
	uint8_t kind = fuzz_u8(in);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	switch (kind & 3) {
	case 0:
		len = snprintf(line, sizeof(line), "CONNECT %u\n", port(in));
		break;
	case 1: /* cut short */
		len = snprintf(line, sizeof(line), "CONNECT %u", port(in));
		break;
	case 2: /* whatever the input says */
		len = fuzz_u8(in) % sizeof(line);
		fuzz_take(in, line, (size_t)len);
		break;
	default:
		len = 0;
		break;
	}
	if (len > 0 && send(fd, line, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		close(fd);
		return;
	}
	add_peer(fd);
}

/* A host peer writes: a few bytes from the input, or a lot. */
static void op_host_write(struct fuzz_in *in)
{
	static uint8_t buf[256 * 1024];
	uint8_t sel = fuzz_u8(in), k = fuzz_u8(in);
	size_t len = k;
	if (!nr_peers)
		return;
	if (sel & 0x80)
		len = (sel & 0x40) ? sizeof(buf) : 4096u * (1 + (k & 15));
	else
		fuzz_take(in, buf, len);
	send(peers[sel % nr_peers], buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void op_host_read(struct fuzz_in *in)
{
	static uint8_t buf[64 * 1024];
	uint8_t sel = fuzz_u8(in);
	if (!nr_peers)
		return;
	for (unsigned int i = 0; i < 8; i++)
		if (recv(peers[sel % nr_peers], buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

/* A host peer shuts down its sending side, or closes. */
static void op_host_close(struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in);
	if (!nr_peers)
		return;
	unsigned int i = sel % nr_peers;
	if (sel & 0x80) {
		shutdown(peers[i], SHUT_WR);
		return;
	}
	close(peers[i]);
	peers[i] = peers[--nr_peers];
}

/* Time passes: every set-up (and closing) deadline is due; the timer fires. */
static void op_expire(void)
{
	bool due = false;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		if (v.conns[i].deadline_us) {
			v.conns[i].deadline_us = 1;
			due = true;
		}
	}
	if (!due)
		return; /* nothing waits for a deadline: spare the timer (costly in a VM) */
	struct itimerspec its = { .it_value = { 0, 1 } };
	timerfd_settime(v.timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
	event_loop_run_once(&loop, 0);
}

/* Everything the input made goes: connections (driver reset), host peers,
 * connections not yet accepted, the timer; freed handlers reaped. */
static void teardown(void)
{
	fq_reg_write(&v.transport, 0x070, 0);
	while (nr_peers)
		close(peers[--nr_peers]);
	accept_all(v.listen_fd, false);
	for (unsigned int i = 0; i < NR_LISTENERS; i++)
		accept_all(listeners[i], false);
	fz_timer_off(v.timer_fd);
	event_loop_run_once(&loop, 0);
	v.next_host_port = HOST_PORT_FIRST;
	v.ctrl_head = 0;
	v.transport.config_generation = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		setup_once();
		ready = true;
	}
	struct fuzz_in in = { data, size };
	fz_mem_reset();
	op_reset(&in);

	for (unsigned int i = 0; i < MAX_OPS && in.left; i++) {
		uint8_t op = fuzz_u8(&in);
		struct fz_vq *qs[] = { &rxq, &txq, &evq, &rxq };
		struct fz_vq *q = qs[op >> 6];
		switch (op % 24) {
		case 0:
		case 1:
			op_tx(&in);
			break;
		case 2:
			op_tx_burst(&in);
			break;
		case 3:
		case 4:
			op_buffers(&rxq, &in);
			break;
		case 5:
			op_buffers(&evq, &in);
			break;
		case 6:
		case 7:
			virtio_mmio_notify(&v.transport, q->qi);
			check();
			break;
		case 8:
		case 9:
			event_loop_run_once(&loop, 0);
			check();
			break;
		case 10:
			op_host_connect(&in);
			break;
		case 11:
			op_host_write(&in);
			break;
		case 12:
			op_host_read(&in);
			break;
		case 13:
			op_host_close(&in);
			break;
		case 14:
			for (unsigned int l = 0; l < NR_LISTENERS; l++)
				accept_all(listeners[l], true);
			break;
		case 15:
			op_expire();
			check();
			break;
		case 16:
			virtio_vsock_transport_reset(&v);
			check();
			break;
		case 17:
			fz_op_desc(q, &in);
			break;
		case 18:
			fz_op_chain(q, &in);
			break;
		case 19:
			fz_op_publish(q, &in);
			break;
		case 20:
			fz_op_avail_idx(q, &in);
			break;
		case 21:
			fz_op_ring_flags(q, &in);
			break;
		case 22:
			fz_op_recycle(q, &in);
			break;
		default:
			if (op & 0x80)
				op_reset(&in);
			else
				fz_op_poke(&in);
			break;
		}
	}
	virtio_mmio_notify(&v.transport, VSOCK_TX_QUEUE);
	event_loop_run_once(&loop, 0);
	check();
	teardown();
	return 0;
}
