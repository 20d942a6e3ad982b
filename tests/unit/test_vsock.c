// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-vsock: header checks, and the device driven through fake guest
 * memory against real Unix sockets: connection set-up both ways, data and
 * credit, and every malformed packet or chain a guest can write.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "count_fds.h"
#include "fake_vsock.h"

#define MiB (1024ull * 1024)
#define CID FVS_CID
#define QSIZE FVS_QSIZE
#define RXBUF FVS_RXBUF
#define RXLEN FVS_RXLEN

#define env fake_vsock

static struct env *env_new(void)
{
	struct env *e = fvs_new();
	assert_non_null(e);
	return e;
}

#define env_free fvs_free
#define guest_hdr fvs_hdr
#define post_rx fvs_post_rx

static void tx_raw(struct env *e, const void *h, uint32_t hlen, const void *data, uint32_t len,
		   uint32_t chain_len, uint16_t flags)
{
	/* Every TX chain is consumed at once. */
	assert_int_equal(fvs_tx_raw(e, h, hlen, data, len, chain_len, flags), 0);
}

static void tx(struct env *e, struct virtio_vsock_hdr h, const void *data)
{
	tx_raw(e, &h, sizeof(h), data, h.len, 0, 0);
}

static int rx_take(struct env *e, struct virtio_vsock_hdr *h, uint8_t *data)
{
	int r = fvs_rx_take(e, h, data);
	assert_int_not_equal(r, -2);
	return r;
}

static void expect_rx(struct env *e, uint16_t op, uint32_t guest_port, uint32_t host_port)
{
	struct virtio_vsock_hdr h;
	assert_int_equal(rx_take(e, &h, NULL), 0);
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(h.dst_cid, CID);
	assert_int_equal(h.dst_port, guest_port);
	assert_int_equal(h.src_port, host_port);
}

static int host_listen(struct env *e, unsigned int port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", e->uds, port);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 512), 0);
	return fd;
}

static unsigned int open_conns(struct env *e)
{
	unsigned int n = 0;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		n += e->v.conns[i].state != VSOCK_FREE;
	return n;
}

/* A guest-initiated connection from @gport to host port @port; the host's end. */
static int connect_guest(struct env *e, int lfd, uint32_t gport, uint32_t port)
{
	tx(e, guest_hdr(gport, port, VIRTIO_VSOCK_OP_REQUEST, 0), NULL);
	expect_rx(e, VIRTIO_VSOCK_OP_RESPONSE, gport, port);
	int fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	return fd;
}

/* ---- header checks --------------------------------------------------------- */

struct hcase {
	const char *name;
	struct virtio_vsock_hdr h;
	uint64_t avail;
	int want;
};

#define HDR(...)                                                                                   \
	{                                                                                          \
		.src_cid = CID, .dst_cid = 2, .type = VIRTIO_VSOCK_TYPE_STREAM, __VA_ARGS__        \
	}

/* clang-format off: one case per line reads as a table */
static const struct hcase hcases[] = {
	{ "request", HDR(.op = VIRTIO_VSOCK_OP_REQUEST), 0, 0 },
	{ "data", HDR(.op = VIRTIO_VSOCK_OP_RW, .len = 100), 100, 0 },
	{ "largest data", HDR(.op = VIRTIO_VSOCK_OP_RW, .len = VSOCK_MAX_PKT), VSOCK_MAX_PKT, 0 },
	{ "credit request", HDR(.op = VIRTIO_VSOCK_OP_CREDIT_REQUEST), 0, 0 },
	{ "spoofed source CID", { .src_cid = 4, .dst_cid = 2, .type = 1, .op = 1 }, 0, -EINVAL },
	{ "to another guest", { .src_cid = CID, .dst_cid = 5, .type = 1, .op = 1 }, 0, -EINVAL },
	{ "to the hypervisor CID",
	  { .src_cid = CID, .dst_cid = 0, .type = 1, .op = 1 },
	  0,
	  -EINVAL },
	{ "datagram type", { .src_cid = CID, .dst_cid = 2, .type = 3, .op = 5 }, 0, -EINVAL },
	{ "op 0", HDR(.op = 0), 0, -EINVAL },
	{ "op 8", HDR(.op = 8), 0, -EINVAL },
	{ "op 0xffff", HDR(.op = 0xffff), 0, -EINVAL },
	{ "len past the chain", HDR(.op = VIRTIO_VSOCK_OP_RW, .len = 101), 100, -EINVAL },
	{ "len past the packet limit", HDR(.op = VIRTIO_VSOCK_OP_RW, .len = VSOCK_MAX_PKT + 1),
	  1 << 20, -EINVAL },
	{ "len 4 GiB - 1", HDR(.op = VIRTIO_VSOCK_OP_RW, .len = 0xffffffff), 1 << 20, -EINVAL },
	{ "payload on a request", HDR(.op = VIRTIO_VSOCK_OP_REQUEST, .len = 10), 10, -EINVAL },
	{ "payload on a reset", HDR(.op = VIRTIO_VSOCK_OP_RST, .len = 1), 10, -EINVAL },
};
/* clang-format on */

static void header_checks(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++) {
		const struct hcase *c = &hcases[i];
		struct vsock_pkt_check pc = { .guest_cid = CID, .payload_avail = c->avail };
		const char *why = "";
		int r = vsock_hdr_check(&c->h, &pc, &why);
		print_message("  %-28s -> %d %s\n", c->name, r, r ? why : "");
		assert_int_equal(r, c->want);
	}
}

/* ---- the device -------------------------------------------------------------- */

static void guest_connect_nobody_listening(void **state)
{
	(void)state;
	struct env *e = env_new();
	post_rx(e, 4);
	tx(e, guest_hdr(1000, 9, VIRTIO_VSOCK_OP_REQUEST, 0), NULL);
	expect_rx(e, VIRTIO_VSOCK_OP_RST, 1000, 9);
	assert_int_equal(e->v.m.conns_refused, 1);
	assert_int_equal(open_conns(e), 0);
	env_free(e);
}

static void guest_connect_data_and_host_close(void **state)
{
	(void)state;
	struct env *e = env_new();
	int lfd = host_listen(e, 52);
	post_rx(e, 8);
	int fd = connect_guest(e, lfd, 1000, 52);
	tx(e, guest_hdr(1000, 52, VIRTIO_VSOCK_OP_RW, 5), "hello");
	char buf[64] = "";
	assert_int_equal(read(fd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(write(fd, "world!", 6), 6);
	assert_true(event_loop_run_once(&e->loop, 1000) > 0);
	struct virtio_vsock_hdr h;
	uint8_t data[RXLEN];
	assert_int_equal(rx_take(e, &h, data), 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(h.len, 6);
	assert_memory_equal(data, "world!", 6);
	/* The host closes: the guest hears SHUTDOWN (both ways); the host
	 * socket is gone, the slot waits for the guest's RST. */
	unsigned int fds = count_fds();
	close(fd);
	assert_true(event_loop_run_once(&e->loop, 1000) > 0);
	assert_int_equal(rx_take(e, &h, NULL), 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	assert_int_equal(count_fds(), fds - 2);
	assert_int_equal(open_conns(e), 1);
	/* What the guest still sends meanwhile (its half-close, a credit
	 * update, late data) is not answered with RST. */
	tx(e, guest_hdr(1000, 52, VIRTIO_VSOCK_OP_SHUTDOWN, 0), NULL);
	tx(e, guest_hdr(1000, 52, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0), NULL);
	tx(e, guest_hdr(1000, 52, VIRTIO_VSOCK_OP_RW, 3), "bye");
	assert_int_equal(rx_take(e, &h, NULL), -1);
	assert_int_equal(open_conns(e), 1);
	/* The guest's RST frees the slot, quietly. */
	tx(e, guest_hdr(1000, 52, VIRTIO_VSOCK_OP_RST, 0), NULL);
	assert_int_equal(rx_take(e, &h, NULL), -1);
	assert_int_equal(open_conns(e), 0);
	close(lfd);
	env_free(e);
}

/* A guest that never sends its RST after the host closed: the slot is given
 * up after the set-up timeout, with an RST. A full SHUTDOWN from the guest
 * ends it at once, with the RST the spec asks for. */
static void closing_connection_ends(void **state)
{
	(void)state;
	struct env *e = env_new();
	int lfd = host_listen(e, 53);
	post_rx(e, 8);
	int fd = connect_guest(e, lfd, 1001, 53);
	int fd2 = connect_guest(e, lfd, 1002, 53);
	close(fd);
	close(fd2);
	for (int i = 0; i < 10 &&
	     (e->v.conns[0].state != VSOCK_CLOSING || e->v.conns[1].state != VSOCK_CLOSING);
	     i++)
		event_loop_run_once(&e->loop, 100);
	expect_rx(e, VIRTIO_VSOCK_OP_SHUTDOWN, 1001, 53);
	expect_rx(e, VIRTIO_VSOCK_OP_SHUTDOWN, 1002, 53);
	struct virtio_vsock_hdr shut = guest_hdr(1002, 53, VIRTIO_VSOCK_OP_SHUTDOWN, 0);
	shut.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
	tx(e, shut, NULL);
	expect_rx(e, VIRTIO_VSOCK_OP_RST, 1002, 53);
	assert_int_equal(open_conns(e), 1);
	uint64_t t0 = clock_now_us();
	while (open_conns(e) && clock_now_us() - t0 < 3 * VSOCK_CONNECT_TIMEOUT_MS * 1000ull)
		event_loop_run_once(&e->loop, 100);
	assert_int_equal(open_conns(e), 0);
	assert_true(clock_now_us() - t0 >= (VSOCK_CONNECT_TIMEOUT_MS - 200) * 1000ull);
	expect_rx(e, VIRTIO_VSOCK_OP_RST, 1001, 53);
	close(lfd);
	env_free(e);
}

static void host_to_guest_respects_guest_credit(void **state)
{
	(void)state;
	struct env *e = env_new();
	int lfd = host_listen(e, 52);
	post_rx(e, 8);
	struct virtio_vsock_hdr req = guest_hdr(1000, 52, VIRTIO_VSOCK_OP_REQUEST, 0);
	req.buf_alloc = 100; /* the guest has room for 100 bytes */
	tx(e, req, NULL);
	expect_rx(e, VIRTIO_VSOCK_OP_RESPONSE, 1000, 52);
	int fd = accept(lfd, NULL, NULL);
	char out[1000];
	memset(out, 'x', sizeof(out));
	assert_int_equal(write(fd, out, sizeof(out)), (ssize_t)sizeof(out));
	assert_true(event_loop_run_once(&e->loop, 1000) > 0);
	struct virtio_vsock_hdr h;
	uint32_t got = 0;
	while (rx_take(e, &h, NULL) == 0)
		got += h.len;
	assert_int_equal(got, 100);
	/* The guest consumed them: 100 more. */
	struct virtio_vsock_hdr up = guest_hdr(1000, 52, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
	up.buf_alloc = 100;
	up.fwd_cnt = 100;
	post_rx(e, 4);
	tx(e, up, NULL);
	while (rx_take(e, &h, NULL) == 0)
		got += h.len;
	assert_int_equal(got, 200);
	/* A credit request is answered with our counters. */
	tx(e, guest_hdr(1000, 52, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0), NULL);
	expect_rx(e, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1000, 52);
	close(fd);
	close(lfd);
	env_free(e);
}

static void guest_overrunning_its_credit_is_reset(void **state)
{
	(void)state;
	struct env *e = env_new();
	int lfd = host_listen(e, 52);
	post_rx(e, 8);
	int fd = connect_guest(e, lfd, 1000, 52);
	/* A host that does not read, behind a small socket buffer. */
	int small = 4096;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		if (e->v.conns[i].state == VSOCK_ESTABLISHED)
			setsockopt(e->v.conns[i].fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	static uint8_t chunk[VSOCK_MAX_PKT];
	struct virtio_vsock_hdr h;
	int sent = 0;
	for (; sent < 8; sent++) {
		tx(e, guest_hdr(1000, 52, VIRTIO_VSOCK_OP_RW, sizeof(chunk)), chunk);
		if (rx_take(e, &h, NULL) == 0)
			break;
	}
	/* Bounded: after at most the socket buffers plus VSOCK_BUF_ALLOC, RST. */
	assert_true(sent < 8);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_int_equal(open_conns(e), 0);
	print_message("  reset after %d packets of %d bytes\n", sent + 1, VSOCK_MAX_PKT);
	close(fd);
	close(lfd);
	env_free(e);
}

static void malformed_tx_packets(void **state)
{
	(void)state;
	struct env *e = env_new();
	int lfd = host_listen(e, 52);
	post_rx(e, 16);
	struct virtio_vsock_hdr h;
	/* A header cut short. */
	struct virtio_vsock_hdr good = guest_hdr(1000, 52, VIRTIO_VSOCK_OP_REQUEST, 0);
	tx_raw(e, &good, 20, NULL, 0, 0, 0);
	assert_int_equal(e->v.m.bad_chains, 1);
	/* A device-writable buffer on the TX queue. */
	tx_raw(e, &good, sizeof(good), NULL, 0, 0, VIRTQ_DESC_F_WRITE);
	assert_int_equal(e->v.m.bad_chains, 2);
	/* A spoofed source CID: dropped, and nobody answers it. */
	struct virtio_vsock_hdr bad = good;
	bad.src_cid = 7;
	tx(e, bad, NULL);
	assert_int_equal(e->v.m.bad_packets, 1);
	assert_int_equal(rx_take(e, &h, NULL), -1);
	/* Garbage in every field. */
	uint8_t junk[sizeof(h)];
	memset(junk, 0xa5, sizeof(junk));
	tx_raw(e, junk, sizeof(junk), NULL, 0, 0, 0);
	assert_int_equal(e->v.m.bad_packets, 2);
	/* A length past the chain: reset. */
	bad = guest_hdr(1000, 52, VIRTIO_VSOCK_OP_RW, 5000);
	tx_raw(e, &bad, sizeof(bad), "abc", 3, 0, 0);
	expect_rx(e, VIRTIO_VSOCK_OP_RST, 1000, 52);
	/* Data for a connection that does not exist: reset. */
	tx(e, guest_hdr(1001, 52, VIRTIO_VSOCK_OP_RW, 3), "abc");
	expect_rx(e, VIRTIO_VSOCK_OP_RST, 1001, 52);
	/* A descriptor outside guest memory. */
	struct fake_desc d = { 15 * MiB + 0x1000000000ull, 64, 0 };
	fq_publish(&e->tx, fq_add(&e->tx, &d, 1));
	fq_kick(&e->tx);
	struct virtq_used_elem u;
	fq_take_used(&e->tx, &u);
	assert_true(e->v.m.bad_chains == 3 || e->v.transport.needs_reset_events == 1);
	/* A connection made now still works (unless the transport needs a reset). */
	if (!e->v.transport.needs_reset_events) {
		int fd = connect_guest(e, lfd, 1002, 52);
		tx(e, guest_hdr(1002, 52, VIRTIO_VSOCK_OP_RW, 2), "ok");
		char buf[4];
		assert_int_equal(read(fd, buf, sizeof(buf)), 2);
		/* A second REQUEST on an open connection resets it. */
		tx(e, guest_hdr(1002, 52, VIRTIO_VSOCK_OP_REQUEST, 0), NULL);
		expect_rx(e, VIRTIO_VSOCK_OP_RST, 1002, 52);
		assert_int_equal(read(fd, buf, sizeof(buf)), 0);
		close(fd);
	}
	assert_int_equal(open_conns(e), 0);
	close(lfd);
	env_free(e);
}

static void rx_buffer_too_small(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct fake_desc d = { RXBUF, 20, VIRTQ_DESC_F_WRITE };
	fq_publish(&e->rx, fq_add(&e->rx, &d, 1));
	fq_kick(&e->rx);
	tx(e, guest_hdr(1000, 9, VIRTIO_VSOCK_OP_REQUEST, 0), NULL);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->rx, &u), 0);
	assert_int_equal(u.len, 0);
	assert_int_equal(e->v.m.bad_chains, 1);
	/* The RST waits for a proper buffer. */
	post_rx(e, 1);
	expect_rx(e, VIRTIO_VSOCK_OP_RST, 1000, 9);
	env_free(e);
}

/* A receive buffer with room for the header only is not an end of stream:
 * it goes back empty, counted, and the data waits for a real buffer. */
static void rx_buffer_header_only(void **state)
{
	(void)state;
	struct env *e = env_new();
	int lfd = host_listen(e, 54);
	post_rx(e, 1);
	int fd = connect_guest(e, lfd, 1003, 54);
	assert_int_equal(write(fd, "data!", 5), 5);
	struct fake_desc d = { RXBUF, VSOCK_HDR_LEN, VIRTQ_DESC_F_WRITE };
	fq_publish(&e->rx, fq_add(&e->rx, &d, 1));
	fq_kick(&e->rx);
	event_loop_run_once(&e->loop, 1000);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->rx, &u), 0);
	assert_int_equal(u.len, 0);
	assert_int_equal(e->v.m.bad_chains, 1);
	assert_int_equal(open_conns(e), 1);
	post_rx(e, 1);
	struct virtio_vsock_hdr h;
	uint8_t data[RXLEN];
	assert_int_equal(rx_take(e, &h, data), 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(h.len, 5);
	assert_memory_equal(data, "data!", 5);
	close(fd);
	close(lfd);
	env_free(e);
}

static int host_connect(struct env *e, const char *line)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, e->uds);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct timeval tv = { .tv_sec = 2 }; /* a failing test must not hang */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	for (int i = 0; i < 3; i++)
		event_loop_run_once(&e->loop, 100); /* accept, then read the line */
	return fd;
}

static void host_connect_handshake(void **state)
{
	(void)state;
	struct env *e = env_new();
	post_rx(e, 8);
	int fd = host_connect(e, "CONNECT 77\n");
	struct virtio_vsock_hdr h;
	assert_int_equal(rx_take(e, &h, NULL), 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 77);
	assert_true(h.src_port >= 1u << 30);
	struct virtio_vsock_hdr resp = guest_hdr(77, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, 0);
	tx(e, resp, NULL);
	char line[32] = "", want[32];
	snprintf(want, sizeof(want), "OK %u\n", h.src_port);
	assert_int_equal(read(fd, line, sizeof(line) - 1), (ssize_t)strlen(want));
	assert_string_equal(line, want);
	close(fd);
	assert_true(event_loop_run_once(&e->loop, 1000) > 0);
	expect_rx(e, VIRTIO_VSOCK_OP_SHUTDOWN, 77, h.src_port);
	tx(e, guest_hdr(77, h.src_port, VIRTIO_VSOCK_OP_RST, 0), NULL); /* the guest's answer */

	/* Refused by the guest: the host sees the connection close. */
	fd = host_connect(e, "CONNECT 78\n");
	assert_int_equal(rx_take(e, &h, NULL), 0);
	tx(e, guest_hdr(78, h.src_port, VIRTIO_VSOCK_OP_RST, 0), NULL);
	assert_int_equal(read(fd, line, sizeof(line)), 0);
	close(fd);

	/* Handshakes that are not one. */
	static const char *const bad[] = {
		"GET / HTTP/1.1\n",	"CONNECT\n",	 "CONNECT -1\n",
		"CONNECT 4294967296\n", "CONNECT 12 \n", "CONNECT 1234567890123456789012345"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = host_connect(e, bad[i]);
		ssize_t r = read(fd, line, sizeof(line));
		print_message("  %-36.*s -> %s\n", (int)strcspn(bad[i], "\n"), bad[i],
			      r == 0 ? "closed" : strerror(errno));
		assert_true(r <= 0);
		close(fd);
	}
	assert_int_equal(e->v.m.bad_packets, sizeof(bad) / sizeof(bad[0]));
	assert_int_equal(open_conns(e), 0);
	env_free(e);
}

static void stalled_set_up_times_out(void **state)
{
	(void)state;
	struct env *e = env_new();
	post_rx(e, 8);
	/* A host peer that never says CONNECT, and a guest that never answers. */
	int silent = host_connect(e, "");
	int asked = host_connect(e, "CONNECT 9\n");
	struct virtio_vsock_hdr h;
	assert_int_equal(rx_take(e, &h, NULL), 0);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(open_conns(e), 2);
	uint64_t t0 = clock_now_us();
	while (open_conns(e) && clock_now_us() - t0 < 5000000)
		event_loop_run_once(&e->loop, 500);
	uint64_t waited = clock_now_us() - t0;
	print_message("  given up after %llu ms\n", (unsigned long long)(waited / 1000));
	assert_int_equal(open_conns(e), 0);
	assert_true(waited >= (VSOCK_CONNECT_TIMEOUT_MS - 200) * 1000ull);
	assert_int_equal(e->v.m.conns_timed_out, 2);
	expect_rx(e, VIRTIO_VSOCK_OP_RST, 9, h.src_port); /* the guest hears it was dropped */
	char c;
	assert_int_equal(read(silent, &c, 1), 0);
	assert_int_equal(read(asked, &c, 1), 0);
	close(silent);
	close(asked);
	env_free(e);
}

static void connection_limit(void **state)
{
	(void)state;
	struct env *e = env_new();
	int lfd = host_listen(e, 52);
	post_rx(e, QSIZE);
	struct virtio_vsock_hdr h;
	unsigned int responses = 0, resets = 0;
	for (uint32_t i = 0; i <= VSOCK_MAX_CONNS; i++) {
		tx(e, guest_hdr(2000 + i, 52, VIRTIO_VSOCK_OP_REQUEST, 0), NULL);
		while (rx_take(e, &h, NULL) == 0) {
			responses += h.op == VIRTIO_VSOCK_OP_RESPONSE;
			resets += h.op == VIRTIO_VSOCK_OP_RST;
			post_rx(e, 1);
		}
	}
	assert_int_equal(responses, VSOCK_MAX_CONNS);
	assert_int_equal(resets, 1);
	assert_int_equal(open_conns(e), VSOCK_MAX_CONNS);
	/* A transport reset drops them all and tells the guest. */
	struct fake_desc d = { 0x400000, 8, VIRTQ_DESC_F_WRITE };
	fq_publish(&e->ev, fq_add(&e->ev, &d, 1));
	virtio_vsock_transport_reset(&e->v);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->ev, &u), 0);
	assert_int_equal(u.len, 4);
	uint32_t *id = guest_mem_ptr(&e->mem, 0x400000, 4);
	assert_int_equal(*id, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
	assert_int_equal(open_conns(e), 0);
	close(lfd);
	env_free(e);
}

/* A muxer that cannot listen keeps no socket and no copy of the path
 * (issue 12, defect 11): a path in a directory that does not exist, and
 * one too long for a Unix socket. */
static void init_failure_keeps_no_descriptor(void **state)
{
	(void)state;
	struct guest_mem mem;
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	char err[200] = "", longpath[200];
	assert_non_null(v);
	assert_int_equal(fake_mem_init(&mem, 16ull << 20), 0);
	unsigned int before = count_fds();
	assert_true(virtio_vsock_init(v, &mem, 3, "/nonexistent/dir/v.sock", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot listen"));
	assert_int_equal(count_fds(), before);
	assert_null(v->uds_path);
	assert_int_equal(v->listen_fd, -1);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(virtio_vsock_init(v, &mem, 3, longpath, err, sizeof(err)), -ENAMETOOLONG);
	assert_null(v->uds_path);
	assert_int_equal(count_fds(), before);
	fake_mem_free(&mem);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_checks),
		cmocka_unit_test(guest_connect_nobody_listening),
		cmocka_unit_test(guest_connect_data_and_host_close),
		cmocka_unit_test(closing_connection_ends),
		cmocka_unit_test(host_to_guest_respects_guest_credit),
		cmocka_unit_test(guest_overrunning_its_credit_is_reset),
		cmocka_unit_test(malformed_tx_packets),
		cmocka_unit_test(rx_buffer_too_small),
		cmocka_unit_test(rx_buffer_header_only),
		cmocka_unit_test(host_connect_handshake),
		cmocka_unit_test(stalled_set_up_times_out),
		cmocka_unit_test(connection_limit),
		cmocka_unit_test(init_failure_keeps_no_descriptor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
