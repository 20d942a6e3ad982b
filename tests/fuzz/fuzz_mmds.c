// SPDX-License-Identifier: Apache-2.0
/*
 * The MMDS frame path as a guest drives it: every byte of every frame a
 * guest sends to the MMDS goes through mmds_net_wants() and lwIP's input,
 * and through the HTTP server on top. Each input first opens a TCP
 * connection properly (so the fuzzer reaches HTTP without guessing lwIP's
 * sequence numbers), then plays moves: raw frames (made to be for the MMDS
 * or not), data segments on the connection, segments with any flags,
 * sequence and acknowledgement numbers (window games, resets), and lwIP's
 * timers. The store's version and imds_compat come from the input. What
 * lwIP sends back is read as TCP and acknowledged.
 */
#include <stdbool.h>
#include <stdint.h>

#include "fuzz.h"
#include "mmds_frames.h"

#define MAX_OPS 64

static struct mmds store;
static struct mmds_net *net;
static uint8_t frame[2048];

struct conn {
	uint16_t port;
	uint32_t seq, ack;
};

/* Take what lwIP sent; follow the connection's byte stream. */
static void drain(struct conn *c)
{
	size_t len;
	const uint8_t *f;
	while ((f = mmds_net_peek(net, &len))) {
		struct mf_seg s;
		if (c && mf_parse_tcp(f, len, &s) && s.port == c->port) {
			if (s.flags & MF_SYN)
				c->ack = s.seq + 1;
			else if (s.seq == c->ack)
				c->ack += (uint32_t)s.len + ((s.flags & MF_FIN) ? 1 : 0);
		}
		mmds_net_pop(net);
	}
}

static void send_frame(size_t len, struct conn *c)
{
	if (mmds_net_wants(net, frame, len))
		mmds_net_input(net, frame, len);
	drain(c);
}

static void init(void)
{
	json_t *d = json_loads("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"n\":1,"
			       "\"l\":[\"a\",{\"b\":null}],\"o\":{\"k\":\"v\"}}}}",
			       0, NULL);
	if (!d || mmds_put(&store, d) < 0 ||
	    mmds_net_attach(&net, &store, MMDS_DEFAULT_IPV4, NULL, NULL, NULL) < 0)
		abort();
	json_decref(d);
	drain(NULL);
	send_frame(mf_arp_request(frame), NULL); /* lwIP learns the guest's MAC */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint16_t next_port = 1024;
	if (!net)
		init();
	struct fuzz_in in = { data, size };
	uint8_t mode = fuzz_u8(&in);
	store.version = mode & 1 ? MMDS_V2 : MMDS_V1;
	store.imds_compat = mode & 2;
	struct conn c = { .port = next_port, .seq = 1000 };
	next_port = next_port == 65535 ? 1024 : (uint16_t)(next_port + 1);
	send_frame(mf_tcp(frame, c.port, c.seq, 0, MF_SYN, NULL, 0), &c);
	c.seq++;
	send_frame(mf_tcp(frame, c.port, c.seq, c.ack, MF_ACK, NULL, 0), &c);
	for (int op = 0; op < MAX_OPS && in.left; op++) {
		uint8_t kind = fuzz_u8(&in);
		uint8_t payload[1500];
		size_t n;
		switch (kind % 4) {
		case 0: { /* a raw frame, now and then addressed to the MMDS */
			n = fuzz_u16(&in) % sizeof(frame);
			fuzz_take(&in, frame, n);
			if ((kind & 0x10) && n >= 34)
				memcpy(frame + 30, mf_mmds_ip, 4);
			if ((kind & 0x20) && n >= 42)
				memcpy(frame + 38, mf_mmds_ip, 4);
			send_frame(n, &c);
			break;
		}
		case 1: /* data on the connection */
			n = fuzz_u8(&in) * 6u; /* up to 1530: a full segment's 1460 and more */
			n = n < sizeof(payload) ? n : sizeof(payload);
			n = n < in.left ? n : in.left;
			fuzz_take(&in, payload, n);
			send_frame(mf_tcp(frame, c.port, c.seq, c.ack, MF_ACK | MF_PSH, payload, n),
				   &c);
			c.seq += (uint32_t)n;
			break;
		case 2: { /* a segment with any header the input says */
			uint32_t dseq = fuzz_u32(&in), dack = fuzz_u32(&in);
			uint8_t flags = fuzz_u8(&in);
			n = fuzz_u8(&in) % 64;
			fuzz_take(&in, payload, n);
			send_frame(mf_tcp(frame, (kind & 0x40) ? fuzz_u16(&in) : c.port,
					  c.seq + dseq, c.ack + dack, flags, payload, n),
				   &c);
			break;
		}
		default:
			mmds_net_run_timers();
			drain(&c);
		}
	}
	/* Leave no connection behind for the next input. */
	send_frame(mf_tcp(frame, c.port, c.seq, c.ack, MF_RST | MF_ACK, NULL, 0), &c);
	return 0;
}
