// SPDX-License-Identifier: Apache-2.0
/* The MMDS network side with real lwIP and raw frames, no device: ARP for
 * the MMDS address, frames for others left alone, and HTTP over TCP (V1,
 * V2 tokens, keep-alive, garbage) answered as the guest would see it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mmds_frames.h"

static struct mmds store;
static struct mmds_net *net;
static uint8_t frame[2048];

/* Feed a frame the guest sent; gather the TCP payload lwIP sends back to
 * @port into @out (NUL-terminated), and the last segment's seq/ack/flags. */
static size_t feed_on(struct mmds_net *n, size_t len, uint16_t port, char *out, size_t cap,
		      struct mf_seg *last)
{
	if (mmds_net_wants(n, frame, len))
		mmds_net_input(n, frame, len);
	size_t got = 0, flen;
	const uint8_t *f;
	while ((f = mmds_net_peek(n, &flen))) {
		struct mf_seg s;
		if (mf_parse_tcp(f, flen, &s) && s.port == port) {
			if (out && got + s.len < cap) {
				memcpy(out + got, s.data, s.len);
				got += s.len;
			}
			if (last)
				*last = s;
		}
		mmds_net_pop(n);
	}
	if (out)
		out[got] = 0;
	return got;
}

static size_t feed(size_t len, uint16_t port, char *out, size_t cap, struct mf_seg *last)
{
	return feed_on(net, len, port, out, cap, last);
}

/* The TCP window a segment built by mf_tcp() advertises. */
static void set_window(uint16_t win)
{
	mf_put16(frame + 14 + 20 + 14, win);
}

struct tcp_conn {
	uint16_t port;
	uint32_t seq, ack; /* ours, and what we acknowledge */
};

/* The handshake on @n; returns the flags of the last segment lwIP sent
 * back to the final ACK (MF_RST when the connection was refused). */
static uint8_t tcp_open_on(struct mmds_net *n, struct tcp_conn *c, uint16_t port)
{
	struct mf_seg s = { 0 };
	c->port = port;
	c->seq = 1000;
	feed_on(n, mf_tcp(frame, port, c->seq, 0, MF_SYN, NULL, 0), port, NULL, 0, &s);
	assert_int_equal(s.flags & (MF_SYN | MF_ACK), MF_SYN | MF_ACK);
	assert_int_equal(s.ack, c->seq + 1);
	c->seq++;
	c->ack = s.seq + 1;
	s.flags = 0;
	feed_on(n, mf_tcp(frame, port, c->seq, c->ack, MF_ACK, NULL, 0), port, NULL, 0, &s);
	return s.flags;
}

static void tcp_open(struct tcp_conn *c, uint16_t port)
{
	assert_int_equal(tcp_open_on(net, c, port), 0);
}

/* The guest resets its side. */
static void tcp_reset_on(struct mmds_net *n, struct tcp_conn *c)
{
	feed_on(n, mf_tcp(frame, c->port, c->seq, c->ack, MF_RST | MF_ACK, NULL, 0), c->port, NULL,
		0, NULL);
}

/* Send @req; returns what came back (acknowledging it as it comes). */
static char *tcp_ask_on(struct mmds_net *nt, struct tcp_conn *c, const char *req)
{
	static char out[65536];
	struct mf_seg s = { 0 };
	size_t n =
	    feed_on(nt, mf_tcp(frame, c->port, c->seq, c->ack, MF_ACK | MF_PSH, req, strlen(req)),
		    c->port, out, sizeof(out), &s);
	c->seq += (uint32_t)strlen(req);
	c->ack += (uint32_t)n + ((s.flags & MF_FIN) ? 1 : 0);
	feed_on(nt, mf_tcp(frame, c->port, c->seq, c->ack, MF_ACK, NULL, 0), c->port, NULL, 0,
		NULL);
	return out;
}

static char *tcp_ask(struct tcp_conn *c, const char *req)
{
	return tcp_ask_on(net, c, req);
}

static int setup(void **state)
{
	(void)state;
	json_t *d =
	    json_loads("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"n\":3}}}", 0, NULL);
	assert_int_equal(mmds_put(&store, d), 0);
	json_decref(d);
	assert_int_equal(mmds_net_attach(&net, &store, MMDS_DEFAULT_IPV4, NULL, NULL, NULL), 0);
	/* lwIP announces the address (a gratuitous ARP) as the interface comes up. */
	size_t len;
	const uint8_t *f = mmds_net_peek(net, &len);
	assert_non_null(f);
	assert_int_equal(f[12] << 8 | f[13], 0x0806);
	while (mmds_net_peek(net, &len))
		mmds_net_pop(net);
	return 0;
}

static void arp(void **state)
{
	(void)state;
	size_t len = mf_arp_request(frame), flen;
	assert_true(mmds_net_wants(net, frame, len));
	mmds_net_input(net, frame, len);
	const uint8_t *f = mmds_net_peek(net, &flen);
	assert_non_null(f);
	assert_true(flen >= 42);
	assert_int_equal(f[12] << 8 | f[13], 0x0806);
	assert_int_equal(f[20] << 8 | f[21], 2); /* reply */
	assert_memory_equal(f + 22, mmds_mac, 6);
	assert_memory_equal(f + 28, mf_mmds_ip, 4);
	assert_memory_equal(f, mf_guest_mac, 6);
	mmds_net_pop(net);
	assert_null(mmds_net_peek(net, &flen));
	/* ARP for someone else, IPv4 to someone else, short frames: not ours. */
	frame[41] = 1;
	assert_false(mmds_net_wants(net, frame, len));
	len = mf_tcp(frame, 5000, 1, 0, MF_SYN, NULL, 0);
	frame[14 + 19] = 253;
	assert_false(mmds_net_wants(net, frame, len));
	assert_false(mmds_net_wants(net, frame, 13));
	mf_arp_request(frame);
	assert_false(mmds_net_wants(net, frame, 41));
}

static void http_v1_and_v2(void **state)
{
	(void)state;
	struct tcp_conn c;
	tcp_open(&c, 40001);
	char *r = tcp_ask(&c, "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(r, "\r\n\r\nami-1"));
	/* Keep-alive: a second request on the same connection. */
	r = tcp_ask(&c, "GET /latest/meta-data/ HTTP/1.1\r\nAccept: application/json\r\n\r\n");
	assert_non_null(strstr(r, "{\"ami-id\":\"ami-1\",\"n\":3}"));
	r = tcp_ask(&c, "GET /nope HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 404"));
	assert_non_null(strstr(r, "Resource not found: /nope."));
	r = tcp_ask(&c, "DELETE / HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 405"));
	assert_non_null(strstr(r, "Allow: GET, PUT\r\n"));

	store.version = MMDS_V2;
	r = tcp_ask(&c, "GET /latest HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 401"));
	r = tcp_ask(&c,
		    "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	char *token = strstr(r, "\r\n\r\n");
	assert_non_null(token);
	token += 4;
	assert_int_equal(strlen(token), MMDS_TOKEN_LEN);
	char req[256];
	snprintf(req, sizeof(req),
		 "GET /latest/meta-data/ami-id HTTP/1.1\r\nx-METADATA-token: %s\r\n\r\n", token);
	r = tcp_ask(&c, req);
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	assert_non_null(strstr(r, "\r\n\r\nami-1"));
	store.version = MMDS_V1;

	/* Not HTTP: a 400 and the connection closes (FIN). */
	r = tcp_ask(&c, "\x01\x02garbage\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 400"));
	assert_non_null(strstr(r, "Connection: close"));
}

static void many_syns_do_not_break_it(void **state)
{
	(void)state;
	/* More half-open connections than lwIP has room for: the oldest go;
	 * a real connection still works afterwards. */
	for (uint16_t p = 1; p <= 200; p++)
		feed(mf_tcp(frame, (uint16_t)(50000 + p), 7, 0, MF_SYN, NULL, 0), 0, NULL, 0, NULL);
	struct tcp_conn c;
	tcp_open(&c, 40002);
	char *r = tcp_ask(&c, "GET /latest/meta-data/ami-id HTTP/1.0\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.0 200"));
	assert_non_null(strstr(r, "Connection: close"));
}

/* One interface's abuse leaves another alone: a SYN flood, then every
 * connection one interface may hold (the next is reset), while a second
 * interface, same guest addresses, is answered throughout. */
static void abuse_of_one_interface_spares_another(void **state)
{
	(void)state;
	struct mmds_net *other;
	assert_int_equal(mmds_net_attach(&other, &store, MMDS_DEFAULT_IPV4, NULL, NULL, NULL), 0);
	size_t len;
	while (mmds_net_peek(other, &len))
		mmds_net_pop(other);
	/* The guest asks the new interface for the MMDS's address first. */
	feed_on(other, mf_arp_request(frame), 0, NULL, 0, NULL);
	for (uint16_t p = 1; p <= 200; p++)
		feed(mf_tcp(frame, (uint16_t)(52000 + p), 7, 0, MF_SYN, NULL, 0), 0, NULL, 0, NULL);
	struct tcp_conn held[8], extra, calm;
	assert_int_equal(tcp_open_on(other, &calm, 43000), 0);
	for (uint16_t i = 0; i < 8; i++)
		assert_int_equal(tcp_open_on(net, &held[i], (uint16_t)(43100 + i)), 0);
	assert_true(tcp_open_on(net, &extra, 43200) & MF_RST);
	char *r = tcp_ask_on(other, &calm, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	/* The held ones still work; once they go, the interface takes more. */
	r = tcp_ask_on(net, &held[7], "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "\r\n\r\nami-1"));
	for (int i = 0; i < 8; i++)
		tcp_reset_on(net, &held[i]);
	tcp_reset_on(other, &calm);
	assert_int_equal(tcp_open_on(net, &extra, 43201), 0);
	tcp_reset_on(net, &extra);
	mmds_net_detach(other);
}

/* A guest that closes its window gets no data past it; the answer comes
 * once it opens again, and the stack serves others meanwhile. (A window
 * shrinks only on a newer segment, RFC 793's rule, hence two pieces.) */
static void closed_window_holds_the_answer(void **state)
{
	(void)state;
	struct tcp_conn c, other;
	tcp_open(&c, 44000);
	const char *head = "GET /latest/meta-data/ami-id HTTP/1.1\r\n", *end = "\r\n";
	char out[4096];
	feed(mf_tcp(frame, c.port, c.seq, c.ack, MF_ACK, head, strlen(head)), c.port, out,
	     sizeof(out), NULL);
	c.seq += (uint32_t)strlen(head);
	size_t len = mf_tcp(frame, c.port, c.seq, c.ack, MF_ACK | MF_PSH, end, strlen(end));
	set_window(0);
	assert_int_equal(feed(len, c.port, out, sizeof(out), NULL), 0);
	c.seq += (uint32_t)strlen(end);
	tcp_open(&other, 44001);
	char *r = tcp_ask(&other, "GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "\r\n\r\nami-1"));
	/* The window opens: the whole answer. */
	size_t got = feed(mf_tcp(frame, c.port, c.seq, c.ack, MF_ACK, NULL, 0), c.port, out,
			  sizeof(out), NULL);
	assert_true(got > 0);
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nami-1"));
	c.ack += (uint32_t)got;
	tcp_reset_on(net, &c);
	tcp_reset_on(net, &other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arp),
		cmocka_unit_test(http_v1_and_v2),
		cmocka_unit_test(many_syns_do_not_break_it),
		cmocka_unit_test(abuse_of_one_interface_spares_another),
		cmocka_unit_test(closed_window_holds_the_answer),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
