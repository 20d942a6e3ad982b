// SPDX-License-Identifier: Apache-2.0
/*
 * Net benchmark harness: frames per second through ember's real virtio-net
 * device (transport, queues, header checks, TAP I/O) driven from the host
 * through fake guest memory, or through a plain TAP fd as the baseline.
 *
 * usage: net-harness TAP tx|rx ember|base FRAME_BYTES SECONDS
 *   tx: frames the guest side sends, written to the TAP
 *   rx: frames injected into the TAP's interface by an AF_PACKET sender
 *       thread, read into guest buffers (ember) or by read(2) (base)
 * prints: pps=N
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../../tests/unit/fake_mem.h"
#include "../../tests/unit/fake_virtq.h"
#include "clock.h"
#include "devices/virtio/net/net.h"
#include "event_loop.h"

#define NBUF 128
#define BUF_BYTES 2048
#define RXQ_DESC 0x10000ull
#define RXQ_AVAIL 0x20000ull
#define RXQ_USED 0x30000ull
#define TXQ_DESC 0x40000ull
#define TXQ_AVAIL 0x50000ull
#define TXQ_USED 0x60000ull
#define BUFS 0x200000ull

static uint8_t frame[BUF_BYTES];
static volatile int stop_inject;
static const char *tap_name;
static int frame_len;

static void make_frame(void)
{
	memset(frame, 0, sizeof(frame));
	memset(frame, 0x02, 6); /* a unicast MAC nobody has */
	memcpy(frame + 6, "\x06\x00\x00\x00\x00\x01", 6);
	frame[12] = 0x88, frame[13] = 0xb5; /* local experimental ethertype */
	for (int i = 14; i < frame_len; i++)
		frame[i] = (uint8_t)i;
}

static void *inject(void *arg)
{
	(void)arg;
	int s = socket(AF_PACKET, SOCK_RAW, 0);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_ifindex = (int)if_nametoindex(tap_name),
				   .sll_halen = 6 };
	while (!stop_inject)
		sendto(s, frame, (size_t)frame_len, 0, (struct sockaddr *)&sll, sizeof(sll));
	close(s);
	return NULL;
}

static double seconds_since(uint64_t t0)
{
	return (double)(clock_now_ns() - t0) / 1e9;
}

/* ---- baseline: the TAP fd by itself ---- */
static double run_base(bool tx, double secs)
{
	char err[200];
	int fd = tap_open(tap_name, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "net-harness: %s\n", err);
		exit(1);
	}
	static uint8_t buf[NET_HDR_LEN + BUF_BYTES];
	memcpy(buf + NET_HDR_LEN, frame, (size_t)frame_len);
	uint64_t n = 0, t0 = clock_now_ns();
	pthread_t th;
	if (!tx)
		pthread_create(&th, NULL, inject, NULL);
	while (seconds_since(t0) < secs) {
		if (tx) {
			if (write(fd, buf, NET_HDR_LEN + (size_t)frame_len) > 0)
				n++;
			else
				poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, 10);
		} else {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r > 0)
				n++;
			else
				poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 10);
		}
	}
	double el = seconds_since(t0);
	stop_inject = 1;
	if (!tx)
		pthread_join(th, NULL);
	close(fd);
	return (double)n / el;
}

/* ---- ember: the real device, fake guest memory ---- */
static struct guest_mem mem;
static struct virtio_net net;
static struct fake_vq rxq, txq;
static struct event_loop loop;
static uint64_t frames;
static bool tx_mode;

static void post_all(struct fake_vq *q, uint64_t base, bool writable, uint32_t len)
{
	for (unsigned int i = 0; i < NBUF; i++) {
		struct fake_desc d = { base + (uint64_t)i * BUF_BYTES, len,
				       writable ? VIRTQ_DESC_F_WRITE : 0 };
		fq_publish(q, fq_add(q, &d, 1));
	}
}

/* The device raised its interrupt: take what it used, hand it back. */
static void on_irq(void *opaque, uint32_t events)
{
	(void)opaque, (void)events;
	uint64_t v;
	ssize_t r = read(net.transport.irq_fd, &v, sizeof(v));
	(void)r;
	struct fake_vq *q = tx_mode ? &txq : &rxq;
	struct virtq_used_elem u;
	unsigned int n = 0;
	while (fq_take_used(q, &u) == 0) {
		fq_publish(q, (uint16_t)u.id);
		n++;
	}
	frames += n;
	/* EVENT_IDX: ask for the next interrupt after what we have seen. */
	__atomic_store_n(&fq_avail(q)->ring[q->size], q->used_seen, __ATOMIC_RELEASE);
	if (n)
		fq_kick(q);
}

static void on_stop(void *opaque, uint32_t events)
{
	(void)opaque, (void)events;
	loop.stop = true;
}

static double run_ember(bool tx, double secs)
{
	char err[200];
	tx_mode = tx;
	if (fake_mem_init(&mem, 16ull << 20) < 0)
		exit(1);
	struct net_device_config cfg = { .id = "bench", .tap_name = tap_name };
	if (virtio_net_init(&net, &mem, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "net-harness: %s\n", err);
		exit(1);
	}
	if (event_loop_init(&loop) < 0 || virtio_net_add_to_loop(&net, &loop) < 0)
		exit(1);
	uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX) |
	    (1ull << VIRTIO_NET_F_MRG_RXBUF);
	fq_begin(&net.transport, features);
	fq_queue(&rxq, &net.transport, &mem, NET_RX_QUEUE, 256, RXQ_DESC, RXQ_AVAIL, RXQ_USED);
	fq_queue(&txq, &net.transport, &mem, NET_TX_QUEUE, 256, TXQ_DESC, TXQ_AVAIL, TXQ_USED);
	if (!(fq_driver_ok(&net.transport) & VIRTIO_STATUS_DRIVER_OK))
		exit(1);
	/* TX chains carry header + frame; RX chains are empty buffers. */
	for (unsigned int i = 0; i < NBUF; i++) {
		uint8_t *b = guest_mem_ptr(&mem, BUFS + (uint64_t)i * BUF_BYTES, BUF_BYTES);
		memset(b, 0, NET_HDR_LEN);
		memcpy(b + NET_HDR_LEN, frame, (size_t)frame_len);
	}
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	struct itimerspec its = { .it_value = { (time_t)secs,
						(long)((secs - (double)(time_t)secs) * 1e9) } };
	timerfd_settime(tfd, 0, &its, NULL);
	if (!event_loop_add(&loop, net.transport.irq_fd, EPOLLIN, on_irq, NULL) ||
	    !event_loop_add(&loop, tfd, EPOLLIN, on_stop, NULL))
		exit(1);
	pthread_t th;
	uint64_t t0 = clock_now_ns();
	if (tx) {
		post_all(&txq, BUFS, false, NET_HDR_LEN + (uint32_t)frame_len);
		fq_kick(&txq);
	} else {
		post_all(&rxq, BUFS, true, BUF_BYTES);
		fq_kick(&rxq);
		pthread_create(&th, NULL, inject, NULL);
	}
	event_loop_run(&loop);
	double el = seconds_since(t0);
	stop_inject = 1;
	if (!tx)
		pthread_join(th, NULL);
	if (net.m.tx_malformed || net.m.bad_chains || net.m.tap_errors)
		fprintf(stderr, "net-harness: device counted errors\n");
	return (double)frames / el;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: %s TAP tx|rx ember|base FRAME_BYTES SECONDS\n", argv[0]);
		return 2;
	}
	tap_name = argv[1];
	bool tx = strcmp(argv[2], "tx") == 0;
	bool ember = strcmp(argv[3], "ember") == 0;
	frame_len = atoi(argv[4]);
	double secs = strtod(argv[5], NULL);
	if (frame_len < 60 || frame_len > 1514)
		return 2;
	clock_init();
	make_frame();
	double pps = ember ? run_ember(tx, secs) : run_base(tx, secs);
	printf("pps=%.0f\n", pps);
	return 0;
}
