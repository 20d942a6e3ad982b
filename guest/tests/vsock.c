// SPDX-License-Identifier: Apache-2.0
/*
 * vsock: exercises virtio-vsock at ring 3, with credit-based flow control
 * on the guest side too. Command line:
 *   mode=1 port=P  connect to host port P, send 1 B to 200 KiB messages and
 *                  check each comes back (the host side echoes), shut down
 *   mode=2 port=P  accept one connection from the host on port P and echo
 *                  everything until the host closes it
 *   mode=3 port=P  open 100 connections to port P at once, one message each
 *   mode=4 port=P  stream to port P until the host end dies (RST), then
 *                  connect to port P+1, echo a message, and linger a while
 *                  before exiting (so the host can inspect ember meanwhile)
 * Exit status: 0 all good, 1 a check failed, 2 no device, 3 refused (RST).
 */
#include "kit.h"
#include "virtio.h"

/* The virtio-vsock packet header and the values used here (virtio 1.2, 5.10.6). */
struct virtio_vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
#define VIRTIO_VSOCK_TYPE_STREAM 1
#define VIRTIO_VSOCK_OP_REQUEST 1
#define VIRTIO_VSOCK_OP_RESPONSE 2
#define VIRTIO_VSOCK_OP_RST 3
#define VIRTIO_VSOCK_OP_SHUTDOWN 4
#define VIRTIO_VSOCK_OP_RW 5
#define VIRTIO_VSOCK_OP_CREDIT_UPDATE 6
#define VIRTIO_VSOCK_SHUTDOWN_RCV 1
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2

#define HDR 44
#define NRX 16
#define RXSZ 4096
#define HOST_CID 2
#define BUF_ALLOC (64 * 1024)
#define NCONN 100
#define WAIT_CYCLES 20000000000ull

struct conn {
	uint32_t lport, pport;
	uint32_t peer_alloc, peer_fwd, tx_cnt; /* the device's credit for us */
	uint32_t fwd_cnt, fwd_sent; /* what we consumed */
	int state; /* 0 none, 1 requested, 2 open, 3 closed */
	uint64_t got;
};

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue_mem qmem[3];
static uint8_t rxbuf[NRX][RXSZ] __attribute__((aligned(4096)));
static uint8_t txbuf[HDR + RXSZ] __attribute__((aligned(64)));
static uint8_t evbuf[8];
static uint8_t big[200 * 1024];
static uint8_t user_stack[16384] __attribute__((aligned(16)));
static struct conn conns[NCONN];
static struct gv_device *d;
static uint64_t cid;

static void send_pkt(struct conn *c, uint16_t op, uint32_t flags, const uint8_t *data, uint32_t len)
{
	struct virtio_vsock_hdr h = { .src_cid = cid,
				      .dst_cid = HOST_CID,
				      .src_port = c->lport,
				      .dst_port = c->pport,
				      .len = len,
				      .type = VIRTIO_VSOCK_TYPE_STREAM,
				      .op = op,
				      .flags = flags,
				      .buf_alloc = BUF_ALLOC,
				      .fwd_cnt = c->fwd_cnt };
	memcpy(txbuf, &h, HDR);
	if (len)
		memcpy(txbuf + HDR, data, len);
	c->fwd_sent = c->fwd_cnt;
	struct gv_buf b = { txbuf, HDR + len, false };
	gv_transfer(d, 1, &b, 1);
}

static struct conn *find(uint32_t lport, uint32_t pport)
{
	for (int i = 0; i < NCONN; i++)
		if (conns[i].state && conns[i].lport == lport && conns[i].pport == pport)
			return &conns[i];
	return NULL;
}

/* One packet from the device, or 0 when none came within the wait. */
typedef void (*on_pkt)(const struct virtio_vsock_hdr *h, const uint8_t *data);

static int poll_rx(on_pkt fn)
{
	uint16_t head;
	uint32_t len;
	if (gv_wait_used(d, 0, &head, &len, WAIT_CYCLES) == 0) {
		if (head < NRX && len >= HDR) {
			struct virtio_vsock_hdr h;
			memcpy(&h, rxbuf[head], HDR);
			if (h.len <= len - HDR)
				fn(&h, rxbuf[head] + HDR);
		}
		struct gv_buf b = { rxbuf[head % NRX], RXSZ, true };
		gv_post(d, 0, head % NRX, &b, 1);
		return 1;
	}
	return 0;
}

static uint64_t echo_errors;

static void on_echo(const struct virtio_vsock_hdr *h, const uint8_t *data)
{
	struct conn *c = find(h->dst_port, h->src_port);
	if (!c)
		return;
	c->peer_alloc = h->buf_alloc;
	c->peer_fwd = h->fwd_cnt;
	if (h->op == VIRTIO_VSOCK_OP_RESPONSE)
		c->state = 2;
	else if (h->op == VIRTIO_VSOCK_OP_RST || h->op == VIRTIO_VSOCK_OP_SHUTDOWN)
		c->state = 3;
	else if (h->op == VIRTIO_VSOCK_OP_RW) {
		for (uint32_t i = 0; i < h->len; i++)
			if (c->got + i < sizeof(big) && data[i] != big[c->got + i])
				echo_errors++;
		c->got += h->len;
		c->fwd_cnt += h->len;
		if (c->fwd_cnt - c->fwd_sent >= BUF_ALLOC / 2)
			send_pkt(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	}
}

/* Send @len bytes of big[] on @c within the device's credit, reading echoes meanwhile. */
static int send_all(struct conn *c, uint64_t len)
{
	uint64_t sent = 0;
	c->got = 0;
	while (c->got < len && c->state == 2) {
		uint32_t credit = c->peer_alloc - (c->tx_cnt - c->peer_fwd);
		uint64_t chunk = len - sent < RXSZ - HDR ? len - sent : RXSZ - HDR;
		if (sent < len && chunk <= credit) {
			send_pkt(c, VIRTIO_VSOCK_OP_RW, 0, big + sent, (uint32_t)chunk);
			sent += chunk;
			c->tx_cnt += (uint32_t)chunk;
			continue;
		}
		if (!poll_rx(on_echo))
			return -1;
	}
	return c->got == len && c->state == 2 ? 0 : -1;
}

static int connect_to(struct conn *c, uint32_t lport, uint32_t port)
{
	*c = (struct conn){ .lport = lport, .pport = port, .state = 1 };
	send_pkt(c, VIRTIO_VSOCK_OP_REQUEST, 0, NULL, 0);
	while (c->state == 1)
		if (!poll_rx(on_echo))
			return -1;
	return c->state == 2 ? 0 : -3;
}

static void close_conn(struct conn *c)
{
	send_pkt(c, VIRTIO_VSOCK_OP_SHUTDOWN,
		 VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND, NULL, 0);
	while (c->state == 2)
		if (!poll_rx(on_echo))
			return;
}

static struct conn *accepted;
static uint32_t accept_port;
static uint64_t echoed;

static void on_host(const struct virtio_vsock_hdr *h, const uint8_t *data)
{
	if (h->op == VIRTIO_VSOCK_OP_REQUEST) {
		struct conn *c = &conns[accepted ? 1 : 0];
		*c = (struct conn){ .lport = h->dst_port,
				    .pport = h->src_port,
				    .state = 2,
				    .peer_alloc = h->buf_alloc,
				    .peer_fwd = h->fwd_cnt };
		if (accepted || h->dst_port != accept_port) {
			/* Nobody listens there (or we take one connection only). */
			send_pkt(c, VIRTIO_VSOCK_OP_RST, 0, NULL, 0);
			c->state = 0;
			kit_puts("vsock: refused a connection\n");
			return;
		}
		accepted = c;
		send_pkt(accepted, VIRTIO_VSOCK_OP_RESPONSE, 0, NULL, 0);
		return;
	}
	struct conn *c = find(h->dst_port, h->src_port);
	if (!c)
		return;
	c->peer_alloc = h->buf_alloc;
	c->peer_fwd = h->fwd_cnt;
	if (h->op == VIRTIO_VSOCK_OP_RST || h->op == VIRTIO_VSOCK_OP_SHUTDOWN)
		c->state = 3;
	if (h->op == VIRTIO_VSOCK_OP_RW) {
		/* Echo: the host's echo client reads as fast as it writes. */
		c->fwd_cnt += h->len;
		c->tx_cnt += h->len;
		send_pkt(c, VIRTIO_VSOCK_OP_RW, 0, data, h->len);
		echoed += h->len;
	}
}

static void user_main(void)
{
	uint64_t mode = 1, port = 52;
	kit_cmdline_u64("mode=", &mode);
	kit_cmdline_u64("port=", &port);
	int n = gv_discover(kit_dtb(), devs, GV_MAX_DEVICES);
	for (int i = 0; i < n; i++)
		if (devs[i].device_id == 19)
			d = &devs[i];
	if (!d) {
		kit_puts("vsock: no device\n");
		kit_exit(2);
	}
	struct gv_queue_mem *qs[3] = { &qmem[0], &qmem[1], &qmem[2] };
	if (gv_start(d, 0, qs, 3) < 0)
		kit_exit(1);
	cid = gv_config32(d, 0) | (uint64_t)gv_config32(d, 4) << 32;
	for (uint16_t i = 0; i < NRX; i++) {
		struct gv_buf b = { rxbuf[i], RXSZ, true };
		gv_post(d, 0, i, &b, 1);
	}
	struct gv_buf ev = { evbuf, sizeof(evbuf), true };
	gv_post(d, 2, 0, &ev, 1);
	for (uint64_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 131 + (i >> 8));
	kit_puts("vsock: guest cid ");
	kit_put_dec(cid);
	kit_putc('\n');

	if (mode == 2) {
		accept_port = (uint32_t)port;
		while (!accepted || accepted->state == 2)
			if (!poll_rx(on_host))
				break;
		kit_puts("vsock: echoed ");
		kit_put_dec(echoed);
		kit_puts(" bytes\n");
		kit_exit(accepted ? 0 : 1);
	}
	if (mode == 3) {
		int open = 0, ok = 0;
		for (int i = 0; i < NCONN; i++)
			open += connect_to(&conns[i], 5000 + (uint32_t)i, (uint32_t)port) == 0;
		for (int i = 0; i < NCONN; i++)
			ok += conns[i].state == 2 && send_all(&conns[i], 64 + (uint64_t)i) == 0;
		for (int i = 0; i < NCONN; i++)
			close_conn(&conns[i]);
		kit_puts("vsock: ");
		kit_put_dec((uint64_t)open);
		kit_puts(" connections, ");
		kit_put_dec((uint64_t)ok);
		kit_puts(" echoed\n");
		kit_exit(open == NCONN && ok == NCONN && !echo_errors ? 0 : 1);
	}
	if (mode == 4) {
		/* Stream until the host side dies; count it as reset. */
		struct conn *c = &conns[0];
		if (connect_to(c, 1234, (uint32_t)port) < 0)
			kit_exit(1);
		kit_puts("vsock: streaming\n");
		uint64_t sent = 0;
		while (c->state == 2) {
			uint32_t credit = c->peer_alloc - (c->tx_cnt - c->peer_fwd);
			if (credit >= RXSZ - HDR) {
				send_pkt(c, VIRTIO_VSOCK_OP_RW, 0, big, RXSZ - HDR);
				c->tx_cnt += RXSZ - HDR;
				sent += RXSZ - HDR;
			} else if (!poll_rx(on_echo)) {
				kit_exit(1);
			}
		}
		kit_puts("vsock: peer reset after ");
		kit_put_dec(sent);
		kit_puts(" bytes\n");
		if (connect_to(&conns[1], 1235, (uint32_t)port + 1) < 0 ||
		    send_all(&conns[1], 4000) < 0)
			kit_exit(1);
		close_conn(&conns[1]);
		kit_puts("vsock: recovered\n");
		poll_rx(on_echo); /* nothing comes: linger one wait */
		kit_exit(0);
	}
	int r = connect_to(&conns[0], 1234, (uint32_t)port);
	if (r == -3) {
		kit_puts("vsock: connection refused (RST)\n");
		kit_exit(3);
	}
	if (r < 0)
		kit_exit(1);
	kit_puts("vsock: connected\n");
	static const uint64_t sizes[] = { 1, 100, 4000, 60000, 200 * 1024 };
	int failed = 0;
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int ok = send_all(&conns[0], sizes[i]) == 0 && !echo_errors;
		kit_puts("vsock: echo ");
		kit_put_dec(sizes[i]);
		kit_puts(ok ? " ok\n" : " FAILED\n");
		failed |= !ok;
	}
	close_conn(&conns[0]);
	kit_puts(conns[0].state == 3 ? "vsock: closed\n" : "vsock: close FAILED\n");
	kit_exit(failed || conns[0].state != 3);
}

int guest_main(void)
{
	kit_enter_user(user_main, user_stack + sizeof(user_stack));
}
