// SPDX-License-Identifier: Apache-2.0
/*
 * vsock benchmark harness: ember's real virtio-vsock device (transport,
 * queues, packet checks, credit, the Unix-socket muxer) driven from the
 * host through fake guest memory, or a plain AF_UNIX socketpair as the
 * baseline. The host peer runs in its own thread in both cases.
 *
 * usage: vsock-harness tx|rx|rtt ember|base SECONDS
 *   tx:  the guest side streams 64 KiB packets to a host reader
 *   rx:  a host writer streams to the guest side, which posts 4 KiB
 *        buffers (as Linux guests do) and returns credit
 *   rtt: 64-byte messages echoed by the host peer, one at a time
 * prints: mbps=N (tx, rx) or rtt_us=MEDIAN (rtt)
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../tests/unit/fake_vsock.h"
#include "clock.h"

#define PORT 52
#define GPORT 1000
#define CHUNK 65536
#define MSG 64

static volatile int stop;
static uint8_t chunk[CHUNK];

enum mode { TX, RX, RTT };

/* ---- host peers ------------------------------------------------------------ */

static void *host_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static uint8_t buf[CHUNK];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static void *host_writer(void *arg)
{
	int fd = (int)(intptr_t)arg;
	while (!stop && write(fd, chunk, sizeof(chunk)) > 0)
		;
	shutdown(fd, SHUT_WR);
	return NULL;
}

static void *host_echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t buf[MSG];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			break;
	return NULL;
}

static void *(*const peers[])(void *) = {
	[TX] = host_reader, [RX] = host_writer, [RTT] = host_echo
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void report_rtt(uint64_t *ns, size_t n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	printf("rtt_us=%.2f n=%zu\n", n ? ns[n / 2] / 1000.0 : 0.0, n);
}

/* ---- baseline: a socketpair --------------------------------------------------- */

static int run_base(enum mode mode, double secs)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		return -1;
	pthread_t t;
	pthread_create(&t, NULL, peers[mode], (void *)(intptr_t)sp[1]);
	uint64_t t0 = clock_now_ns(), end = t0 + (uint64_t)(secs * 1e9), bytes = 0;
	static uint64_t rtts[1 << 22];
	size_t nrtt = 0;
	static uint8_t buf[CHUNK];
	while (clock_now_ns() < end) {
		if (mode == TX) {
			ssize_t w = write(sp[0], chunk, sizeof(chunk));
			bytes += w > 0 ? (uint64_t)w : 0;
		} else if (mode == RX) {
			ssize_t r = read(sp[0], buf, FVS_RXLEN - VSOCK_HDR_LEN);
			bytes += r > 0 ? (uint64_t)r : 0;
		} else if (nrtt < sizeof(rtts) / sizeof(rtts[0])) {
			uint64_t s = clock_now_ns();
			if (write(sp[0], chunk, MSG) != MSG)
				return -1;
			size_t got = 0;
			while (got < MSG) {
				ssize_t r = read(sp[0], buf, MSG - got);
				if (r <= 0)
					return -1;
				got += (size_t)r;
			}
			rtts[nrtt++] = clock_now_ns() - s;
		}
	}
	uint64_t dt = clock_now_ns() - t0;
	stop = 1;
	shutdown(sp[0], SHUT_RDWR);
	pthread_join(t, NULL);
	if (mode == RTT)
		report_rtt(rtts, nrtt);
	else
		printf("mbps=%.1f\n", bytes / (dt / 1e9) / 1e6);
	return 0;
}

/* ---- ember: the device, the guest's side played here --------------------------- */

struct credit {
	uint32_t peer_alloc, peer_fwd, tx_cnt; /* the device's room for our bytes */
	uint32_t fwd_cnt, fwd_sent; /* what we consumed of its bytes */
};

/* A packet from the guest side, carrying its receive counters as every one must. */
static int guest_send(struct fake_vsock *e, struct credit *c, uint16_t op, uint32_t len,
		      const void *data)
{
	struct virtio_vsock_hdr h = fvs_hdr(GPORT, PORT, op, len);
	h.fwd_cnt = c->fwd_cnt;
	c->fwd_sent = c->fwd_cnt;
	c->tx_cnt += len;
	return fvs_tx(e, h, data);
}

/* Take what the device delivered; returns payload bytes, -1 on a reset. */
static int64_t drain(struct fake_vsock *e, struct credit *c, uint8_t *out, size_t *out_len)
{
	struct virtio_vsock_hdr h;
	int64_t bytes = 0;
	unsigned int taken = 0;
	int r;
	while ((r = fvs_rx_take(e, &h, out ? out + *out_len : NULL)) == 0) {
		taken++;
		if (h.op == VIRTIO_VSOCK_OP_RST || h.op == VIRTIO_VSOCK_OP_SHUTDOWN)
			return -1;
		c->peer_alloc = h.buf_alloc;
		c->peer_fwd = h.fwd_cnt;
		bytes += h.len;
		c->fwd_cnt += h.len;
		if (out)
			*out_len += h.len;
	}
	if (r == -2)
		return -1;
	if (taken)
		fvs_post_rx(e, taken);
	/* Return credit the way Linux does: once half the buffer is consumed. */
	if (c->fwd_cnt - c->fwd_sent >= FVS_ALLOC / 2 &&
	    guest_send(e, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL) < 0)
		return -1;
	return bytes;
}

static int run_ember(enum mode mode, double secs)
{
	struct fake_vsock *e = fvs_new();
	if (!e)
		return -1;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", e->uds, PORT);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0)
		return -1;
	fvs_post_rx(e, FVS_QSIZE);
	struct credit c = { 0 };
	if (guest_send(e, &c, VIRTIO_VSOCK_OP_REQUEST, 0, NULL) < 0 ||
	    drain(e, &c, NULL, NULL) < 0 || !c.peer_alloc)
		return -1;
	int fd = accept(lfd, NULL, NULL);
	pthread_t t;
	pthread_create(&t, NULL, peers[mode], (void *)(intptr_t)fd);
	uint64_t t0 = clock_now_ns(), end = t0 + (uint64_t)(secs * 1e9), bytes = 0;
	static uint64_t rtts[1 << 22];
	static uint8_t echo[FVS_QSIZE * FVS_RXLEN];
	size_t nrtt = 0;
	while (clock_now_ns() < end) {
		if (mode == TX) {
			/* As Linux does: as much as the credit allows, up to 64 KiB. */
			uint32_t credit = c.peer_alloc - (c.tx_cnt - c.peer_fwd);
			uint32_t n = credit < CHUNK ? credit : CHUNK;
			if (n) {
				if (guest_send(e, &c, VIRTIO_VSOCK_OP_RW, n, chunk) < 0)
					return -1;
				bytes += n;
			} else {
				/* Out of credit: let the device flush to the host and say so. */
				event_loop_run_once(&e->loop, 100);
			}
			if (drain(e, &c, NULL, NULL) < 0)
				return -1;
		} else if (mode == RX) {
			event_loop_run_once(&e->loop, 100);
			int64_t got = drain(e, &c, NULL, NULL);
			if (got < 0)
				return -1;
			bytes += (uint64_t)got;
		} else if (nrtt < sizeof(rtts) / sizeof(rtts[0])) {
			uint64_t s = clock_now_ns();
			if (guest_send(e, &c, VIRTIO_VSOCK_OP_RW, MSG, chunk) < 0)
				return -1;
			size_t got = 0;
			while (got < MSG) {
				event_loop_run_once(&e->loop, 100);
				if (drain(e, &c, echo, &got) < 0)
					return -1;
			}
			rtts[nrtt++] = clock_now_ns() - s;
		}
	}
	uint64_t dt = clock_now_ns() - t0;
	stop = 1;
	fvs_free(e); /* closes the device's end: the peer sees EOF or EPIPE */
	shutdown(fd, SHUT_RDWR);
	pthread_join(t, NULL);
	close(fd);
	close(lfd);
	if (mode == RTT)
		report_rtt(rtts, nrtt);
	else
		printf("mbps=%.1f\n", bytes / (dt / 1e9) / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s tx|rx|rtt ember|base SECONDS\n", argv[0]);
		return 2;
	}
	enum mode mode = !strcmp(argv[1], "tx") ? TX : !strcmp(argv[1], "rx") ? RX : RTT;
	double secs = atof(argv[3]);
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7);
	int r = !strcmp(argv[2], "ember") ? run_ember(mode, secs) : run_base(mode, secs);
	if (r < 0)
		fprintf(stderr, "vsock-harness: %s %s failed\n", argv[1], argv[2]);
	return r < 0;
}
