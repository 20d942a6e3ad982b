// SPDX-License-Identifier: Apache-2.0
/*
 * The MMDS network side: lwIP (Debian's source, built with
 * vmm/mmds/lwip/lwipopts.h) on the VMM thread, one lwIP netif per
 * MMDS-enabled interface, all with the MMDS address, and an HTTP server on
 * port 80 of each, parsed by http-parser (as the API's). Frames the guest
 * sends to the MMDS go into lwIP; what lwIP sends back waits in the
 * interface's fixed ring for the virtio-net device to put into the guest's
 * receive queue. lwIP's timers run from one timerfd on the event loop.
 *
 * Bounds: lwIP's pools and heap (lwipopts.h), MMDS_MAX_CONNS connections,
 * RING_SLOTS frames waiting per interface (more are dropped: TCP resends),
 * requests of at most REQ_MAX bytes of URL and headers, idle connections
 * closed after IDLE_POLLS of lwIP's 500 ms polls.
 */
#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#include "clock.h"
#include "event_loop.h"
#include "log.h"
#include "mmds/mmds.h"

#define RING_SLOTS 64
#define FRAME_MAX 1514 /* lwIP's MTU is 1500 */
#define MMDS_MAX_CONNS 64
#define MMDS_IFACE_CONNS 8 /* connections one interface may hold */
#define MMDS_HALF_OPEN 4 /* half-open connections one interface may hold */
#define REQ_MAX 4096
#define FIELD_MAX 64
#define VALUE_MAX 256
#define IDLE_POLLS 20 /* 10 s */
#define OUT_MAX (4 * 1024 * 1024)

const uint8_t mmds_mac[6] = { 0x06, 0x01, 0x23, 0x45, 0x67, 0x01 };

struct frame {
	uint16_t len;
	uint8_t data[FRAME_MAX];
};

struct mmds_net {
	struct netif netif;
	struct mmds *m;
	uint32_t ipv4; /* network order, as in the frames */
	struct frame *ring; /* RING_SLOTS */
	unsigned int head, count;
	uint64_t dropped;
	void (*kick)(void *opaque);
	void *opaque;
};

struct conn {
	bool used;
	struct tcp_pcb *pcb;
	struct mmds_net *n;
	http_parser parser;
	size_t req_bytes; /* URL and headers of the current request */
	char url[REQ_MAX];
	size_t url_len;
	char field[FIELD_MAX + 1], value[VALUE_MAX + 1];
	size_t field_len, value_len;
	bool in_value, field_long, value_long;
	char token[VALUE_MAX + 1], ttl[VALUE_MAX + 1];
	bool has_token, has_ttl, forwarded, accept_json;
	char *out; /* answers not yet handed to lwIP */
	size_t out_len, out_off;
	bool closing; /* close once out is sent */
	unsigned int idle;
};

static struct {
	bool started;
	struct tcp_pcb *listener; /* port 80 on every MMDS interface */
	int timer_fd;
	struct event_handler *timer_h;
	struct mmds_net *nets[8];
	struct conn conns[MMDS_MAX_CONNS];
} stack = { .timer_fd = -1 };

/*
 * lwIP's LWIP_HOOK_IP4_ROUTE_SRC for answers sent outside input handling
 * (a timer's resend, a SYN-ACK again): the interface whose ARP table holds
 * the guest's address. Connections have their interface already.
 */
struct netif *mmds_lwip_route(const ip4_addr_t *dest)
{
	for (size_t i = 0; i < sizeof(stack.nets) / sizeof(stack.nets[0]); i++) {
		struct netif *netif = stack.nets[i] ? &stack.nets[i]->netif : NULL;
		struct eth_addr *eth;
		const ip4_addr_t *ip;
		if (netif && etharp_find_addr(netif, dest, &eth, &ip) >= 0)
			return netif;
	}
	return NULL;
}

/* lwIP's LWIP_HOOK_TCP_INPACKET_PCB: before the listener takes a SYN,
 * make room among the input interface's half-open connections. */
signed char mmds_lwip_inpacket(struct tcp_pcb *pcb)
{
	struct netif *in = ip_current_input_netif();
	if (pcb->state != LISTEN || !in)
		return ERR_OK;
	u8_t idx = netif_get_index(in);
	struct tcp_pcb *oldest = NULL;
	unsigned int half_open = 0;
	/* New connections go to the list's front: the last one seen is the oldest. */
	for (struct tcp_pcb *p = tcp_active_pcbs; p; p = p->next) {
		if (p->state != SYN_RCVD)
			continue;
		struct netif *out = mmds_lwip_route(&p->remote_ip);
		if (p->netif_idx != idx && !(p->netif_idx == NETIF_NO_INDEX && out == in))
			continue;
		half_open++;
		oldest = p;
	}
	if (half_open >= MMDS_HALF_OPEN && oldest)
		tcp_abort(oldest);
	return ERR_OK;
}

u32_t sys_now(void)
{
	return (u32_t)(clock_now_ns() / 1000000);
}

/* ---- frames ------------------------------------------------------------------ */

static err_t link_output(struct netif *netif, struct pbuf *p)
{
	struct mmds_net *n = netif->state;
	if (n->count == RING_SLOTS || p->tot_len > FRAME_MAX) {
		n->dropped++;
		n->m->tx_errors++;
		return ERR_OK; /* lost on the wire: TCP sends it again */
	}
	struct frame *f = &n->ring[(n->head + n->count) % RING_SLOTS];
	f->len = (uint16_t)pbuf_copy_partial(p, f->data, p->tot_len, 0);
	n->count++;
	n->m->tx_frames++;
	return ERR_OK;
}

static err_t netif_setup(struct netif *netif)
{
	netif->name[0] = 'm';
	netif->name[1] = 'd';
	netif->output = etharp_output;
	netif->linkoutput = link_output;
	netif->mtu = 1500;
	netif->hwaddr_len = 6;
	memcpy(netif->hwaddr, mmds_mac, 6);
	netif->flags =
	    NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
	return ERR_OK;
}

bool mmds_net_wants(const struct mmds_net *n, const uint8_t *f, size_t len)
{
	if (len < 14)
		return false;
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	/* ARP: its target protocol address; IPv4: its destination. */
	if (type == 0x0806)
		return len >= 42 && memcmp(f + 38, &n->ipv4, 4) == 0;
	if (type == 0x0800)
		return len >= 34 && memcmp(f + 30, &n->ipv4, 4) == 0;
	return false;
}

const uint8_t *mmds_net_peek(const struct mmds_net *n, size_t *len)
{
	if (!n->count)
		return NULL;
	const struct frame *f = &n->ring[n->head];
	*len = f->len;
	return f->data;
}

void mmds_net_pop(struct mmds_net *n)
{
	if (!n->count)
		return;
	n->head = (n->head + 1) % RING_SLOTS;
	n->count--;
}

/* ---- lwIP's timers --------------------------------------------------------------- */

static void timer_arm(void)
{
	u32_t ms = sys_timeouts_sleeptime();
	if (ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE)
		ms = 1000;
	if (!ms)
		ms = 1;
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (long)(ms % 1000) * 1000000 } };
	timerfd_settime(stack.timer_fd, 0, &its, NULL);
}

static void on_timer(void *opaque, uint32_t events)
{
	(void)opaque;
	(void)events;
	uint64_t ticks;
	if (read(stack.timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_warn("mmds: timer read failed: %s", strerror(errno));
	mmds_net_run_timers();
	timer_arm();
}

void mmds_net_run_timers(void)
{
	sys_check_timeouts();
	for (size_t i = 0; i < sizeof(stack.nets) / sizeof(stack.nets[0]); i++) {
		struct mmds_net *n = stack.nets[i];
		if (n && n->count && n->kick)
			n->kick(n->opaque);
	}
}

void mmds_net_input(struct mmds_net *n, const uint8_t *frame, size_t len)
{
	n->m->rx_accepted++;
	struct pbuf *p = len <= 0xffff ? pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL) : NULL;
	if (!p) {
		n->m->rx_bad++;
		return;
	}
	pbuf_take(p, frame, (u16_t)len);
	if (n->netif.input(p, &n->netif) != ERR_OK)
		pbuf_free(p);
	timer_arm(); /* a connection may have started the TCP timer */
}

/* ---- HTTP over lwIP's raw TCP ----------------------------------------------------- */

static void conn_free(struct conn *c)
{
	free(c->out);
	c->out = NULL;
	c->used = false;
	c->n->m->conn_destroyed++;
}

/* Detach from the pcb; abort it (RST) or close it (FIN). */
static err_t conn_end(struct conn *c, bool abort_it)
{
	struct tcp_pcb *pcb = c->pcb;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
	conn_free(c);
	if (!abort_it && tcp_close(pcb) == ERR_OK)
		return ERR_OK;
	tcp_abort(pcb);
	return ERR_ABRT;
}

/* Hand lwIP as much of c->out as its send buffer takes. */
static err_t conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		u16_t room = tcp_sndbuf(c->pcb);
		size_t left = c->out_len - c->out_off;
		u16_t take = (u16_t)(left < room ? left : room);
		if (!take)
			break;
		err_t e = tcp_write(c->pcb, c->out + c->out_off, take, TCP_WRITE_FLAG_COPY);
		if (e == ERR_MEM)
			break; /* lwIP's queue is full: tcp_sent() brings us back */
		if (e != ERR_OK)
			return conn_end(c, true);
		c->out_off += take;
	}
	tcp_output(c->pcb);
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->closing)
			return conn_end(c, false);
	}
	return ERR_OK;
}

static const char *reason(unsigned int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 501:
		return "Not Implemented";
	default:
		return "Internal Server Error";
	}
}

/* Append one response to c->out; false when out of memory or over OUT_MAX. */
static bool conn_respond(struct conn *c, const struct mmds_response *rs, bool keep_alive)
{
	const char *body = rs->body ? rs->body : "";
	size_t blen = strlen(body);
	char head[512];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/%u.%u %u %s\r\nServer: Firecracker API\r\nConnection: %s\r\n"
			  "Content-Type: %s\r\nContent-Length: %zu\r\n%s%s%s\r\n",
			  c->parser.http_major, c->parser.http_minor, rs->status,
			  reason(rs->status), keep_alive ? "keep-alive" : "close",
			  rs->type ? rs->type : "text/plain", blen, rs->allow ? "Allow: " : "",
			  rs->allow ? rs->allow : "", rs->allow ? "\r\n" : "");
	size_t need = c->out_len + (size_t)hl + blen;
	if (hl < 0 || need > OUT_MAX)
		return false;
	char *out = realloc(c->out, need);
	if (!out)
		return false;
	memcpy(out + c->out_len, head, (size_t)hl);
	memcpy(out + c->out_len + hl, body, blen);
	c->out = out;
	c->out_len = need;
	return true;
}

static struct conn *conn_of(http_parser *p)
{
	return p->data;
}

static int count(struct conn *c, size_t len)
{
	c->req_bytes += len;
	return c->req_bytes > REQ_MAX ? -1 : 0;
}

static int on_begin(http_parser *p)
{
	struct conn *c = conn_of(p);
	c->req_bytes = c->url_len = c->field_len = c->value_len = 0;
	c->in_value = c->has_token = c->has_ttl = c->forwarded = c->accept_json = false;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	if (count(c, len) < 0 || c->url_len + len >= sizeof(c->url))
		return -1;
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	return 0;
}

/* A header is complete: keep the ones the MMDS reads (names in any case). */
static void header_done(struct conn *c)
{
	if (!c->in_value)
		return;
	c->field[c->field_len] = 0;
	c->value[c->value_len] = 0;
	const char *f = c->field_long ? "" : c->field;
	if (strcasecmp(f, "X-Forwarded-For") == 0)
		c->forwarded = true;
	if (c->value_long)
		c->value[0] = 0; /* too long to be a token or a number: invalid */
	if (strcasecmp(f, "X-metadata-token") == 0 ||
	    strcasecmp(f, "X-aws-ec2-metadata-token") == 0) {
		memcpy(c->token, c->value, sizeof(c->token));
		c->has_token = true;
	} else if (strcasecmp(f, "X-metadata-token-ttl-seconds") == 0 ||
		   strcasecmp(f, "X-aws-ec2-metadata-token-ttl-seconds") == 0) {
		memcpy(c->ttl, c->value, sizeof(c->ttl));
		c->has_ttl = true;
	} else if (strcasecmp(f, "Accept") == 0) {
		c->accept_json = strcasecmp(c->value, "application/json") == 0;
	}
	c->in_value = false;
	c->field_len = c->value_len = 0;
	c->field_long = c->value_long = false;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	if (count(c, len) < 0)
		return -1;
	header_done(c);
	if (c->field_len + len > FIELD_MAX)
		c->field_long = true;
	else
		memcpy(c->field + c->field_len, at, len);
	c->field_len += c->field_long ? 0 : len;
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	if (count(c, len) < 0)
		return -1;
	c->in_value = true;
	if (c->value_len + len > VALUE_MAX)
		c->value_long = true;
	else
		memcpy(c->value + c->value_len, at, len);
	c->value_len += c->value_long ? 0 : len;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	header_done(conn_of(p));
	return 0;
}

static int on_complete(http_parser *p)
{
	struct conn *c = conn_of(p);
	c->url[c->url_len] = 0;
	char *q = strchr(c->url, '?');
	if (q)
		*q = 0;
	/* An absolute URI ("http://169.254.169.254/x"): its path. */
	const char *path = c->url;
	if (strncmp(path, "http://", 7) == 0) {
		path = strchr(path + 7, '/');
		if (!path)
			path = "";
	}
	struct mmds_request rq = {
		.method = http_method_str((enum http_method)p->method),
		.path = path,
		.accept_json = c->accept_json,
		.token = c->has_token ? c->token : NULL,
		.ttl = c->has_ttl ? c->ttl : NULL,
		.forwarded_for = c->forwarded,
	};
	struct mmds_response rs;
	mmds_answer(c->n->m, &rq, clock_now_ns(), &rs);
	bool keep = http_should_keep_alive(p);
	bool ok = conn_respond(c, &rs, keep);
	free(rs.body);
	if (!ok || !keep)
		c->closing = true;
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_begin,
	.on_url = on_url,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_complete,
};

/* A request that is not HTTP or too large: a 400, then the connection ends. */
static void conn_bad_request(struct conn *c)
{
	struct mmds_response rs = { .status = 400, .type = "text/plain" };
	rs.body = strdup("Invalid request.");
	c->parser.http_major = 1;
	c->parser.http_minor = 1;
	conn_respond(c, &rs, false);
	free(rs.body);
	c->closing = true;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct conn *c = arg;
	(void)pcb;
	if (!p || err != ERR_OK) { /* the guest closed its side */
		if (p)
			pbuf_free(p);
		c->closing = true;
		return conn_flush(c);
	}
	c->idle = 0;
	tcp_recved(pcb, p->tot_len);
	for (struct pbuf *q = p; q && !c->closing; q = q->next) {
		size_t done = http_parser_execute(&c->parser, &settings, q->payload, q->len);
		if (c->parser.http_errno != HPE_OK || done != q->len)
			conn_bad_request(c);
	}
	pbuf_free(p);
	return conn_flush(c);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)pcb;
	(void)len;
	return conn_flush(arg);
}

static void on_err(void *arg, err_t err)
{
	(void)err;
	/* lwIP has already freed the pcb. */
	if (arg)
		conn_free(arg);
}

static err_t on_poll(void *arg, struct tcp_pcb *pcb)
{
	(void)pcb;
	struct conn *c = arg;
	if (++c->idle > IDLE_POLLS)
		return conn_end(c, true);
	return conn_flush(c);
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	/* Called while lwIP handles the guest's ACK: the interface it came
	 * in on is the connection's from now on. */
	struct netif *in = ip_current_input_netif();
	if (err != ERR_OK || !pcb || !in)
		return ERR_VAL;
	struct mmds_net *n = in->state;
	tcp_bind_netif(pcb, in);
	struct conn *c = NULL;
	unsigned int mine = 0;
	for (size_t i = 0; i < MMDS_MAX_CONNS; i++) {
		if (!stack.conns[i].used && !c)
			c = &stack.conns[i];
		mine += stack.conns[i].used && stack.conns[i].n == n;
	}
	if (!c || mine >= MMDS_IFACE_CONNS) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	memset(c, 0, sizeof(*c));
	c->used = true;
	c->pcb = pcb;
	c->n = n;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	n->m->conn_created++;
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	tcp_poll(pcb, on_poll, 1);
	return ERR_OK;
}

/* ---- attach / detach ------------------------------------------------------------- */

static int stack_start(struct event_loop *loop)
{
	if (stack.started)
		return 0;
	lwip_init();
	struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
	if (!pcb)
		return -ENOMEM;
	if (tcp_bind(pcb, IP4_ADDR_ANY, 80) != ERR_OK ||
	    !(stack.listener = tcp_listen_with_backlog(pcb, 16))) {
		tcp_abort(pcb);
		return -ENOMEM;
	}
	tcp_accept(stack.listener, on_accept);
	stack.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (stack.timer_fd < 0)
		return -errno;
	if (loop) {
		stack.timer_h = event_loop_add(loop, stack.timer_fd, EPOLLIN, on_timer, NULL);
		if (!stack.timer_h) {
			int e = -errno;
			close(stack.timer_fd);
			stack.timer_fd = -1;
			return e;
		}
	}
	stack.started = true;
	timer_arm();
	return 0;
}

int mmds_net_attach(struct mmds_net **out, struct mmds *m, uint32_t ipv4, struct event_loop *loop,
		    void (*kick)(void *opaque), void *opaque)
{
	size_t slot = 0;
	while (slot < sizeof(stack.nets) / sizeof(stack.nets[0]) && stack.nets[slot])
		slot++;
	if (slot == sizeof(stack.nets) / sizeof(stack.nets[0]))
		return -ENOSPC;
	int r = stack_start(loop);
	if (r < 0)
		return r;
	struct mmds_net *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->ring = calloc(RING_SLOTS, sizeof(*n->ring));
	if (!n->ring) {
		free(n);
		return -ENOMEM;
	}
	n->m = m;
	n->ipv4 = htonl(ipv4);
	n->kick = kick;
	n->opaque = opaque;
	ip4_addr_t addr, any;
	addr.addr = n->ipv4;
	ip4_addr_set_any(&any);
	if (!netif_add(&n->netif, &addr, &any, &any, n, netif_setup, netif_input))
		goto err_ring;
	netif_set_up(&n->netif);
	stack.nets[slot] = n;
	*out = n;
	return 0;
err_ring:
	free(n->ring);
	free(n);
	return -ENOMEM;
}

void mmds_net_detach(struct mmds_net *n)
{
	for (size_t i = 0; i < MMDS_MAX_CONNS; i++) {
		struct conn *c = &stack.conns[i];
		if (c->used && c->n == n)
			conn_end(c, true);
	}
	netif_remove(&n->netif);
	for (size_t i = 0; i < sizeof(stack.nets) / sizeof(stack.nets[0]); i++)
		if (stack.nets[i] == n)
			stack.nets[i] = NULL;
	free(n->ring);
	free(n);
}
