// SPDX-License-Identifier: Apache-2.0
/*
 * net: exercises the first virtio-net device, at ring 3. Sends an ARP
 * request for the peer and waits for the reply, then UDP datagrams of
 * several sizes to the peer's echo port and checks each echo; then one
 * datagram one byte over the MTU, which the monitor must drop (no echo).
 * Command line: ip=0x0a000202 peer=0x0a000201 port=7777 (hex IPv4 in host order).
 * flood=N size=S: after the ARP, send N datagrams of S bytes to port+1 as
 * fast as the device takes them (no echoes), for rate-limiter tests.
 * sink=N: after the ARP, receive N datagrams for port+2, printing
 * "net: sink first" at the first and "net: sink done" after the last.
 * tiny_rx=1: post a single 100-byte receive buffer (MRG_RXBUF negotiated:
 * less than any frame needs), print "net: tiny rx posted" and idle; the
 * monitor must wait for more buffers without spinning.
 * Exit status: 0 when all checks passed, 1 otherwise, 2 with no NIC.
 */
#include "kit.h"
#include "virtio.h"

#define NET_F_MTU (1ull << 3)
#define NET_F_MAC (1ull << 5)
#define NET_F_MRG_RXBUF (1ull << 15)
#define HDR 12
#define RXBUFS 8
#define BUFSZ 2048
#define WAIT_CYCLES 6000000000ull

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_queue_mem qmem[2];
static uint8_t rxbuf[RXBUFS][BUFSZ] __attribute__((aligned(4096)));
static uint8_t txbuf[BUFSZ + 64] __attribute__((aligned(64)));
static uint8_t user_stack[16384] __attribute__((aligned(16)));
static uint8_t mac[6], peer_mac[6];
static uint32_t my_ip = 0x0a000202, peer_ip = 0x0a000201;
static uint16_t port = 7777, mtu = 1500;

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint16_t ip_csum(const uint8_t *p, int len)
{
	uint32_t sum = 0;
	for (int i = 0; i < len; i += 2)
		sum += get16(p + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void send_frame(struct gv_device *d, int len)
{
	memset(txbuf, 0, HDR); /* no offloads: plain frame */
	struct gv_buf b = { txbuf, (uint32_t)(HDR + len), false };
	gv_transfer(d, 1, &b, 1);
}

static void post_rx(struct gv_device *d, uint16_t slot)
{
	struct gv_buf b = { rxbuf[slot], BUFSZ, true };
	gv_post(d, 0, slot, &b, 1);
}

/* Wait for a frame @match accepts; returns its length or -1 on timeout. */
static int wait_frame(struct gv_device *d, int (*match)(const uint8_t *f, int len, void *arg),
		      void *arg, uint8_t *out)
{
	uint64_t t0 = rdtsc();
	for (;;) {
		uint16_t head;
		uint32_t len;
		uint64_t spent = rdtsc() - t0;
		if (spent >= WAIT_CYCLES ||
		    gv_wait_used(d, 0, &head, &len, WAIT_CYCLES - spent) < 0)
			break;
		int flen = (int)len - HDR;
		int ok = head < RXBUFS && flen > 0 && match(rxbuf[head] + HDR, flen, arg);
		if (ok)
			memcpy(out, rxbuf[head] + HDR, (size_t)flen);
		if (head < RXBUFS)
			post_rx(d, head);
		if (ok)
			return flen;
	}
	return -1;
}

static int is_arp_reply(const uint8_t *f, int len, void *arg)
{
	(void)arg;
	return len >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 2 &&
	    get32(f + 28) == peer_ip;
}

static int is_udp_echo(const uint8_t *f, int len, void *arg)
{
	int want = *(int *)arg;
	return len >= 42 && get16(f + 12) == 0x0800 && f[23] == 17 && get32(f + 26) == peer_ip &&
	    get16(f + 34) == port && get16(f + 38) == want + 8;
}

/* Build a UDP datagram of @size bytes to @dport in txbuf; returns the frame length. */
static int build_udp(int size, uint16_t dport)
{
	uint8_t *f = txbuf + HDR;
	memcpy(f, peer_mac, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + 8 + size));
	put16(ip + 4, (uint16_t)size);
	put16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, my_ip);
	put32(ip + 16, peer_ip);
	put16(ip + 10, ip_csum(ip, 20));
	uint8_t *udp = ip + 20;
	put16(udp, 40000);
	put16(udp + 2, dport);
	put16(udp + 4, (uint16_t)(8 + size));
	put16(udp + 6, 0); /* no UDP checksum (allowed on IPv4) */
	for (int i = 0; i < size; i++)
		udp[8 + i] = (uint8_t)(i * 7 + size);
	return 14 + 20 + 8 + size;
}

static int udp_roundtrip(struct gv_device *d, int size, uint8_t *reply)
{
	const uint8_t *udp = txbuf + HDR + 14 + 20;
	send_frame(d, build_udp(size, port));
	int len = wait_frame(d, is_udp_echo, &size, reply);
	if (len < 0)
		return 0;
	return memcmp(reply + 42, udp + 8, (size_t)size) == 0;
}

static int is_sink_datagram(const uint8_t *f, int len, void *arg)
{
	(void)arg;
	return len >= 42 && get16(f + 12) == 0x0800 && f[23] == 17 && get32(f + 30) == my_ip &&
	    get16(f + 36) == port + 2;
}

static void user_main(void)
{
	static uint8_t reply[BUFSZ];
	uint64_t v;
	if (kit_cmdline_u64("ip=", &v) == 0)
		my_ip = (uint32_t)v;
	if (kit_cmdline_u64("peer=", &v) == 0)
		peer_ip = (uint32_t)v;
	if (kit_cmdline_u64("port=", &v) == 0)
		port = (uint16_t)v;
	int n = gv_discover(kit_dtb(), devs, GV_MAX_DEVICES);
	struct gv_device *d = NULL;
	for (int i = 0; i < n; i++)
		if (devs[i].device_id == 1)
			d = &devs[i];
	if (!d) {
		kit_puts("net: no virtio-net device\n");
		kit_exit(2);
	}
	struct gv_queue_mem *qs[2] = { &qmem[0], &qmem[1] };
	int r = gv_start(d, NET_F_MAC | NET_F_MTU | NET_F_MRG_RXBUF, qs, 2);
	if (r < 0) {
		kit_puts("net: device start failed\n");
		kit_exit(1);
	}
	uint32_t w0 = gv_config32(d, 0), w1 = gv_config32(d, 4), w2 = gv_config32(d, 8);
	for (int i = 0; i < 4; i++)
		mac[i] = (uint8_t)(w0 >> (8 * i));
	mac[4] = (uint8_t)w1;
	mac[5] = (uint8_t)(w1 >> 8);
	if (d->features & NET_F_MTU)
		mtu = (uint16_t)(w2 >> 16);
	uint64_t tiny = 0;
	if (kit_cmdline_u64("tiny_rx=", &tiny) == 0 && tiny) {
		struct gv_buf b = { rxbuf[0], 100, true };
		gv_post(d, 0, 0, &b, 1);
		kit_puts("net: tiny rx posted\n");
		for (;;)
			__asm__ volatile("pause");
	}
	for (uint16_t i = 0; i < RXBUFS; i++)
		post_rx(d, i);
	kit_puts("net: mac ");
	for (int i = 0; i < 6; i++) {
		kit_put_hex(mac[i]);
		kit_putc(i < 5 ? ':' : ' ');
	}
	kit_puts("mtu ");
	kit_put_dec(mtu);
	kit_putc('\n');

	/* ARP: who has peer_ip? */
	uint8_t *f = txbuf + HDR;
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 1);
	memcpy(f + 22, mac, 6);
	put32(f + 28, my_ip);
	memset(f + 32, 0, 6);
	put32(f + 38, peer_ip);
	send_frame(d, 42);
	if (wait_frame(d, is_arp_reply, NULL, reply) < 0) {
		kit_puts("net: no ARP reply\n");
		kit_exit(1);
	}
	memcpy(peer_mac, reply + 22, 6);
	kit_puts("net: arp reply ok\n");

	uint64_t sink = 0;
	if (kit_cmdline_u64("sink=", &sink) == 0) {
		kit_puts("net: sink ready\n");
		for (uint64_t i = 0; i < sink; i++) {
			if (wait_frame(d, is_sink_datagram, NULL, reply) < 0) {
				kit_puts("net: sink timed out after ");
				kit_put_dec(i);
				kit_puts(" datagrams\n");
				kit_exit(1);
			}
			if (i == 0)
				kit_puts("net: sink first\n");
		}
		kit_puts("net: sink done\n");
		kit_exit(0);
	}
	uint64_t flood = 0, fsize = 1000;
	if (kit_cmdline_u64("flood=", &flood) == 0) {
		kit_cmdline_u64("size=", &fsize);
		int len = build_udp((int)fsize, (uint16_t)(port + 1));
		for (uint64_t i = 0; i < flood; i++)
			send_frame(d, len);
		kit_puts("net: flood done\n");
		kit_exit(0);
	}
	int failed = 0;
	int max_payload = mtu - 20 - 8;
	int sizes[] = { 1, 64, 1000, max_payload };
	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int ok = udp_roundtrip(d, sizes[i], reply);
		kit_puts("net: udp ");
		kit_put_dec((uint64_t)sizes[i]);
		kit_puts(ok ? " echo ok\n" : " echo FAILED\n");
		failed |= !ok;
	}
	/* One byte over the MTU: the monitor must drop it, so no echo comes. */
	int over = udp_roundtrip(d, max_payload + 1, reply);
	kit_puts(over ? "net: oversize frame was forwarded\n" : "net: oversize frame dropped\n");
	failed |= over;
	kit_exit((unsigned int)failed);
}

int guest_main(void)
{
	kit_enter_user(user_main, user_stack + sizeof(user_stack));
}
