/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A guest's side of a conversation with the MMDS, in raw Ethernet frames,
 * for the unit test and the fuzz target: ARP for the MMDS address, and a
 * TCP connection to its port 80 (handshake, data, FIN) tracked from the
 * frames lwIP sends back. Checksums are left zero: ember's lwIP does not
 * check them (the guest may leave them to offload).
 */
#ifndef EMBER_MMDS_FRAMES_H
#define EMBER_MMDS_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mmds/mmds.h"

static const uint8_t mf_guest_mac[6] = { 0x06, 0x00, 0x0a, 0x00, 0x02, 0x02 };
static const uint8_t mf_guest_ip[4] = { 10, 0, 2, 2 };
static const uint8_t mf_mmds_ip[4] = { 169, 254, 169, 254 };

static inline void mf_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void mf_put32(uint8_t *p, uint32_t v)
{
	mf_put16(p, (uint16_t)(v >> 16));
	mf_put16(p + 2, (uint16_t)v);
}

static inline uint32_t mf_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* "Who has 169.254.169.254? Tell 10.0.2.2." Returns the length. */
static inline size_t mf_arp_request(uint8_t *f)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, mf_guest_mac, 6);
	mf_put16(f + 12, 0x0806);
	mf_put16(f + 14, 1); /* Ethernet */
	mf_put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	mf_put16(f + 20, 1); /* request */
	memcpy(f + 22, mf_guest_mac, 6);
	memcpy(f + 28, mf_guest_ip, 4);
	memset(f + 32, 0, 6);
	memcpy(f + 38, mf_mmds_ip, 4);
	return 42;
}

/* An ARP reply from the guest to the MMDS (lwIP asks before it answers). */
static inline size_t mf_arp_reply(uint8_t *f)
{
	mf_arp_request(f);
	memcpy(f, mmds_mac, 6);
	mf_put16(f + 20, 2);
	memcpy(f + 32, mmds_mac, 6);
	return 42;
}

#define MF_SYN 0x02
#define MF_ACK 0x10
#define MF_PSH 0x08
#define MF_FIN 0x01
#define MF_RST 0x04

/* A TCP segment from the guest's @port to the MMDS's port 80. */
static inline size_t mf_tcp(uint8_t *f, uint16_t port, uint32_t seq, uint32_t ack, uint8_t flags,
			    const void *data, size_t len)
{
	memcpy(f, mmds_mac, 6);
	memcpy(f + 6, mf_guest_mac, 6);
	mf_put16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	mf_put16(ip + 2, (uint16_t)(20 + 20 + len));
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, mf_guest_ip, 4);
	memcpy(ip + 16, mf_mmds_ip, 4);
	uint8_t *t = ip + 20;
	memset(t, 0, 20);
	mf_put16(t, port);
	mf_put16(t + 2, 80);
	mf_put32(t + 4, seq);
	mf_put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	mf_put16(t + 14, 65535);
	if (len)
		memcpy(t + 20, data, len);
	return 14 + 40 + len;
}

/* A frame lwIP sent, read as TCP to the guest; false if it is not. */
struct mf_seg {
	uint16_t port;
	uint32_t seq, ack;
	uint8_t flags;
	const uint8_t *data;
	size_t len;
};

static inline bool mf_parse_tcp(const uint8_t *f, size_t len, struct mf_seg *s)
{
	if (len < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6)
		return false;
	size_t ihl = (size_t)(f[14] & 0xf) * 4, tot = (size_t)(f[16] << 8 | f[17]);
	if (ihl < 20 || tot > len - 14 || tot < ihl + 20)
		return false;
	const uint8_t *t = f + 14 + ihl;
	size_t thl = (size_t)(t[12] >> 4) * 4;
	if (thl < 20 || ihl + thl > tot)
		return false;
	s->port = (uint16_t)(t[2] << 8 | t[3]);
	s->seq = mf_get32(t + 4);
	s->ack = mf_get32(t + 8);
	s->flags = t[13];
	s->data = t + thl;
	s->len = tot - ihl - thl;
	return true;
}

#endif
