// SPDX-License-Identifier: Apache-2.0
/*
 * The virtio-net device against a real TAP, in a network namespace of the
 * test's own (unshare(CLONE_NEWNET): needs root, as the rest of the suite).
 * Frames reach the device through an AF_PACKET socket on the TAP's
 * interface; fake guest memory and queues stand for the guest.
 */
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "count_fds.h"
#include "devices/virtio/net/net.h"
#include "event_loop.h"
#include "fake_mem.h"
#include "fake_virtq.h"

#define TAP "embt0"
#define RXQ_DESC 0x10000ull
#define RXQ_AVAIL 0x20000ull
#define RXQ_USED 0x30000ull
#define TXQ_DESC 0x40000ull
#define TXQ_AVAIL 0x50000ull
#define TXQ_USED 0x60000ull
#define BUFS 0x200000ull
#define QSIZE 64

struct env {
	struct guest_mem mem;
	struct virtio_net net;
	struct fake_vq rxq, txq;
	struct event_loop loop;
	int pkt; /* AF_PACKET socket on the TAP's interface */
};

static void link_up(const char *name)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

static struct env *env_new(void)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[200] = "";
	assert_int_equal(fake_mem_init(&e->mem, 16ull << 20), 0);
	struct net_device_config cfg = { .id = "eth0", .tap_name = TAP, .mtu = 1500 };
	if (virtio_net_init(&e->net, &e->mem, &cfg, err, sizeof(err)) < 0)
		fail_msg("virtio_net_init: %s", err);
	assert_int_equal(event_loop_init(&e->loop), 0);
	assert_int_equal(virtio_net_add_to_loop(&e->net, &e->loop), 0);
	uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX) |
	    (1ull << VIRTIO_NET_F_MRG_RXBUF);
	fq_begin(&e->net.transport, features);
	fq_queue(&e->rxq, &e->net.transport, &e->mem, NET_RX_QUEUE, QSIZE, RXQ_DESC, RXQ_AVAIL,
		 RXQ_USED);
	fq_queue(&e->txq, &e->net.transport, &e->mem, NET_TX_QUEUE, QSIZE, TXQ_DESC, TXQ_AVAIL,
		 TXQ_USED);
	assert_true(fq_driver_ok(&e->net.transport) & VIRTIO_STATUS_DRIVER_OK);
	link_up(TAP);
	e->pkt = socket(AF_PACKET, SOCK_RAW, 0);
	assert_true(e->pkt >= 0);
	return e;
}

static void env_free(struct env *e)
{
	close(e->pkt);
	close(e->net.tap_fd); /* the TAP goes with its last fd */
	free(e->net.overflow);
	fake_mem_free(&e->mem);
	free(e);
}

/* A 60-byte Ethernet frame the TAP's interface "sends": the device reads it. */
static void inject(struct env *e, uint8_t tag)
{
	uint8_t f[60] = { 0 };
	memset(f, 0x02, 6);
	memcpy(f + 6, "\x06\x00\x00\x00\x00\x01", 6);
	f[12] = 0x88, f[13] = 0xb5; /* local experimental ethertype */
	memset(f + 14, tag, sizeof(f) - 14);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_ifindex = (int)if_nametoindex(TAP),
				   .sll_halen = 6 };
	assert_int_equal(sendto(e->pkt, f, sizeof(f), 0, (struct sockaddr *)&sll, sizeof(sll)),
			 (ssize_t)sizeof(f));
}

/* Run the loop until @n used elements arrived on @q (or a second passed). */
static unsigned int collect(struct env *e, struct fake_vq *q, struct virtq_used_elem *out,
			    unsigned int n)
{
	unsigned int got = 0;
	uint64_t t0 = clock_now_ns();
	while (got < n && clock_now_ns() - t0 < 1000000000ull) {
		event_loop_run_once(&e->loop, 50);
		while (got < n && fq_take_used(q, &out[got]) == 0)
			got++;
	}
	return got;
}

static uint16_t rx_chain(struct env *e, unsigned int slot, uint32_t len, bool writable)
{
	struct fake_desc d = { BUFS + slot * 4096ull, len, writable ? VIRTQ_DESC_F_WRITE : 0 };
	uint16_t head = fq_add(&e->rxq, &d, 1);
	fq_publish(&e->rxq, head);
	return head;
}

/*
 * Merged buffers A (64 B), B (64 B), a malformed chain M (device-readable),
 * then C (2 KiB). A frame fills A and part of B. Every chain must come back
 * exactly once: M empty, C with the second frame. (The device once rewound
 * over M when it gave C back, returning M twice and never returning B's
 * neighbour.)
 */
static void rx_malformed_chain_between_buffers(void **state)
{
	(void)state;
	struct env *e = env_new();
	uint16_t a = rx_chain(e, 0, 64, true), b = rx_chain(e, 1, 64, true);
	uint16_t m = rx_chain(e, 2, 64, false), c = rx_chain(e, 3, 2048, true);
	fq_kick(&e->rxq);
	inject(e, 0x11);
	inject(e, 0x22);
	struct virtq_used_elem u[8];
	unsigned int n = collect(e, &e->rxq, u, 8);
	unsigned int seen[QSIZE] = { 0 };
	for (unsigned int i = 0; i < n; i++) {
		print_message("  used id %u len %u\n", u[i].id, u[i].len);
		assert_true(u[i].id < QSIZE);
		seen[u[i].id]++;
	}
	assert_int_equal(seen[a], 1);
	assert_int_equal(seen[b], 1);
	assert_int_equal(seen[m], 1);
	assert_int_equal(seen[c], 1);
	assert_int_equal(n, 4);
	assert_int_equal(e->net.m.rx_frames, 2);
	assert_int_equal(e->net.m.bad_chains, 1);
	env_free(e);
}

/* Merged buffers that hold less than a frame: held back, not spun on; the
 * frame waits until the guest adds a buffer. */
static void rx_short_buffers_wait(void **state)
{
	(void)state;
	struct env *e = env_new();
	rx_chain(e, 0, 100, true);
	fq_kick(&e->rxq);
	inject(e, 0x33);
	struct virtq_used_elem u[2];
	uint64_t t0 = clock_now_ns();
	assert_int_equal(collect(e, &e->rxq, u, 1), 0);
	assert_true(clock_now_ns() - t0 >= 900000000ull); /* the loop ran, and returned */
	assert_true(e->net.m.rx_short_buffers >= 1);
	assert_int_equal(e->net.m.rx_frames, 0);
	/* With a full frame's room in all, the frame lands in the first buffer. */
	rx_chain(e, 1, 2048, true);
	fq_kick(&e->rxq);
	assert_int_equal(collect(e, &e->rxq, u, 1), 1);
	assert_int_equal(u[0].id, 0);
	assert_int_equal(u[0].len, NET_HDR_LEN + 60);
	assert_int_equal(e->net.m.rx_frames, 1);
	env_free(e);
}

/* A guest thread that flips the gso_type of every TX header between none
 * and an invalid value while the device sends. */
static volatile int flipping;
static uint8_t *flip_hdrs[QSIZE];

static void *flip(void *arg)
{
	(void)arg;
	while (flipping)
		for (unsigned int i = 0; i < QSIZE / 2; i++)
			flip_hdrs[i][1] ^= 0x7f; /* gso_type: 0 <-> 0x7f */
	return NULL;
}

/*
 * The device must send the header it checked: a guest changing the header
 * between the check and the send must not get a header past the check (the
 * TAP refuses an unknown gso_type with EINVAL, which marks the TAP broken
 * for good). Every frame is either sent or counted malformed; the TAP
 * never fails.
 */
static void tx_header_changed_under_the_device(void **state)
{
	(void)state;
	struct env *e = env_new();
	uint8_t frame[60] = { 0 };
	memset(frame, 0x02, 6);
	frame[12] = 0x88, frame[13] = 0xb5;
	unsigned int n = QSIZE / 2;
	for (unsigned int i = 0; i < n; i++) {
		uint64_t gpa = BUFS + i * 4096ull;
		uint8_t *b = guest_mem_ptr(&e->mem, gpa, 4096);
		memset(b, 0, NET_HDR_LEN);
		memcpy(b + NET_HDR_LEN, frame, sizeof(frame));
		flip_hdrs[i] = b;
		struct fake_desc d = { gpa, NET_HDR_LEN + sizeof(frame), 0 };
		fq_publish(&e->txq, fq_add(&e->txq, &d, 1));
	}
	flipping = 1;
	pthread_t th;
	pthread_create(&th, NULL, flip, NULL);
	fq_kick(&e->txq);
	uint64_t t0 = clock_now_ns(), done = 0;
	while (clock_now_ns() - t0 < 500000000ull) {
		event_loop_run_once(&e->loop, 10);
		struct virtq_used_elem u;
		unsigned int back = 0;
		while (fq_take_used(&e->txq, &u) == 0) {
			fq_publish(&e->txq, (uint16_t)u.id);
			back++;
		}
		done += back;
		if (back)
			fq_kick(&e->txq);
	}
	flipping = 0;
	pthread_join(th, NULL);
	print_message("  %llu frames: %llu sent, %llu malformed, %llu TAP errors\n",
		      (unsigned long long)done, (unsigned long long)e->net.m.tx_frames,
		      (unsigned long long)e->net.m.tx_malformed,
		      (unsigned long long)e->net.m.tap_errors);
	assert_true(done > 1000);
	assert_int_equal(e->net.m.tap_errors, 0);
	assert_true(e->net.m.tx_frames > 0 && e->net.m.tx_malformed > 0);
	env_free(e);
}

/*
 * A frame whose header passes the device's check but not the TAP's (hdr_len
 * 5: Linux wants 0 or at least an Ethernet header) is refused with EINVAL.
 * That frame is dropped and counted; the TAP goes on working (it was given
 * up for good, so one frame cut the guest off the network; found by
 * fuzz_virtio_net).
 */
static void tx_frame_the_tap_refuses(void **state)
{
	(void)state;
	struct env *e = env_new();
	for (unsigned int i = 0; i < 2; i++) {
		uint64_t gpa = BUFS + i * 4096ull;
		uint8_t *b = guest_mem_ptr(&e->mem, gpa, 4096);
		struct virtio_net_hdr_v1 h = { .hdr_len = i == 0 ? 5 : 0 };
		memcpy(b, &h, NET_HDR_LEN);
		memset(b + NET_HDR_LEN, 0x02, 12);
		b[NET_HDR_LEN + 12] = 0x88, b[NET_HDR_LEN + 13] = 0xb5;
		struct fake_desc d = { gpa, NET_HDR_LEN + 60, 0 };
		fq_publish(&e->txq, fq_add(&e->txq, &d, 1));
	}
	fq_kick(&e->txq);
	struct virtq_used_elem u[2];
	assert_int_equal(collect(e, &e->txq, u, 2), 2);
	assert_false(e->net.tap_broken);
	assert_int_equal(e->net.m.tap_errors, 0);
	assert_int_equal(e->net.m.tx_malformed, 1);
	assert_int_equal(e->net.m.tx_frames, 1);
	env_free(e);
}

static int setup(void **state)
{
	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		print_error("test_net_device needs root for a network namespace of its own: %s\n",
			    strerror(errno));
		return -1;
	}
	/* No IPv6 chatter (router solicitations) from the interface. */
	static const char *const knobs[] = { "/proc/sys/net/ipv6/conf/all/disable_ipv6",
					     "/proc/sys/net/ipv6/conf/default/disable_ipv6" };
	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		FILE *f = fopen(knobs[i], "w");
		if (f) {
			fputs("1", f);
			fclose(f);
		}
	}
	return 0;
}

/* A device that fails to start (here: a rate limiter with no refill time)
 * keeps neither its TAP nor its timers (issue 12, defect 11). */
static void init_failure_keeps_no_descriptor(void **state)
{
	(void)state;
	struct guest_mem mem;
	struct virtio_net n;
	char err[200] = "";
	assert_int_equal(fake_mem_init(&mem, 16ull << 20), 0);
	unsigned int before = count_fds();
	struct net_device_config cfg = { .id = "eth0", .tap_name = TAP, .tx_bw_size = 1000 };
	assert_int_equal(virtio_net_init(&n, &mem, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "refill"));
	assert_int_equal(count_fds(), before);
	assert_null(n.overflow);
	fake_mem_free(&mem);
}

/* An event loop owns its handlers: destroying it frees them (LeakSanitizer
 * reported the ones kept only in epoll at exit) and closes its epoll fd. */
static void event_loop_destroy_frees_everything(void **state)
{
	(void)state;
	unsigned int before = count_fds();
	struct event_loop loop;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(event_loop_init(&loop), 0);
	struct event_handler *a = event_loop_add(&loop, p[0], EPOLLIN, NULL, NULL);
	struct event_handler *b = event_loop_add(&loop, p[1], EPOLLOUT, NULL, NULL);
	assert_non_null(a);
	assert_non_null(b);
	event_loop_del(&loop, a);
	assert_null(event_loop_add(&loop, -1, EPOLLIN, NULL, NULL));
	assert_int_equal(errno, EBADF);
	event_loop_destroy(&loop);
	close(p[0]);
	close(p[1]);
	assert_int_equal(count_fds(), before);
}

int main(void)
{
	clock_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_failure_keeps_no_descriptor),
		cmocka_unit_test(event_loop_destroy_frees_everything),
		cmocka_unit_test(rx_malformed_chain_between_buffers),
		cmocka_unit_test(rx_short_buffers_wait),
		cmocka_unit_test(tx_header_changed_under_the_device),
		cmocka_unit_test(tx_frame_the_tap_refuses),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
