// SPDX-License-Identifier: Apache-2.0
/*
 * The host side of virtio-vsock: Unix sockets. The listening socket at
 * uds_path takes host-initiated connections ("CONNECT <port>\n", answered
 * "OK <host_port>\n" once the guest accepts); guest-initiated connections go
 * to "<uds_path>_<port>". Each connection's socket is on the VMM loop,
 * edge-triggered.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "devices/virtio/iov.h"
#include "event_loop.h"
#include "log.h"
#include "util.h"
#include "vsock.h"

#define HOST_PORT_FIRST (1u << 30) /* host ports ember hands out for host-initiated connections */

struct vsock_conn *vsock_conn_find(struct virtio_vsock *v, uint32_t guest_port, uint32_t host_port)
{
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (c->state >= VSOCK_REQUESTED && c->guest_port == guest_port &&
		    c->host_port == host_port)
			return c;
	}
	return NULL;
}

/* Let go of @c's host side: its socket, its handler, its backlog. Counted
 * closed here, once, whether the slot goes now or waits in VSOCK_CLOSING. */
static void conn_release_host(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->state != VSOCK_CLOSING)
		v->m.conns_closed++;
	if (c->h)
		event_loop_del(v->loop, c->h);
	c->h = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->txbuf);
	c->txbuf = NULL;
	c->tx_len = 0;
}

void vsock_conn_close(struct virtio_vsock *v, struct vsock_conn *c)
{
	conn_release_host(v, c);
	*c = (struct vsock_conn){ .state = VSOCK_FREE, .fd = -1 };
}

/* The states that end at a deadline: set-up, and waiting for the guest's RST. */
static bool conn_has_deadline(const struct vsock_conn *c)
{
	return c->state == VSOCK_HANDSHAKE || c->state == VSOCK_REQUESTED ||
	    c->state == VSOCK_CLOSING;
}

static void vsock_sock_ready(void *opaque, uint32_t events);

/* Arm the set-up timer for the earliest pending deadline (or disarm). */
static void timer_rearm(struct virtio_vsock *v)
{
	uint64_t first = 0;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		const struct vsock_conn *c = &v->conns[i];
		if (conn_has_deadline(c) && (!first || c->deadline_us < first))
			first = c->deadline_us;
	}
	struct itimerspec its = { 0 };
	if (first) {
		uint64_t now = clock_now_us(), in = first > now ? first - now : 1;
		its.it_value =
		    (struct timespec){ (time_t)(in / 1000000), (long)(in % 1000000) * 1000 };
	}
	timerfd_settime(v->timer_fd, 0, &its, NULL);
}

static void set_deadline(struct virtio_vsock *v, struct vsock_conn *c)
{
	c->deadline_us = clock_now_us() + VSOCK_CONNECT_TIMEOUT_MS * 1000ull;
	timer_rearm(v);
}

/* Give up connections stuck in set-up (the host peer is closed, a guest
 * that was asked is told RST) and closing connections whose guest never
 * sent its RST (it is told RST). */
static void vsock_timer(void *opaque, uint32_t events)
{
	struct virtio_vsock *v = opaque;
	uint64_t n;
	(void)events;
	if (read(v->timer_fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&v->transport.lock);
	uint64_t now = clock_now_us();
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (!conn_has_deadline(c) || c->deadline_us > now)
			continue;
		if (c->state != VSOCK_CLOSING)
			v->m.conns_timed_out++;
		if (c->state == VSOCK_REQUESTED || c->state == VSOCK_CLOSING)
			vsock_send_ctrl(v, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_RST, 0, 0);
		vsock_conn_close(v, c);
	}
	timer_rearm(v);
	vsock_rx(v);
	pthread_mutex_unlock(&v->transport.lock);
}

void vsock_conn_host_closed(struct virtio_vsock *v, struct vsock_conn *c)
{
	vsock_send_ctrl(v, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_SHUTDOWN,
			VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND, c->fwd_cnt);
	conn_release_host(v, c);
	c->readable = false;
	c->state = VSOCK_CLOSING;
	set_deadline(v, c);
}

void vsock_conn_reset(struct virtio_vsock *v, struct vsock_conn *c)
{
	vsock_send_ctrl(v, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_RST, 0, 0);
	vsock_conn_close(v, c);
}

/* Take a free slot for @fd and watch it. NULL when at the connection limit. */
static struct vsock_conn *conn_new(struct virtio_vsock *v, int fd, enum vsock_conn_state state)
{
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conns[i];
		if (c->state != VSOCK_FREE)
			continue;
		*c = (struct vsock_conn){ .owner = v, .state = state, .fd = fd };
		c->h =
		    event_loop_add(v->loop, fd, EPOLLIN | EPOLLOUT | EPOLLET, vsock_sock_ready, c);
		if (!c->h) {
			*c = (struct vsock_conn){ .state = VSOCK_FREE, .fd = -1 };
			return NULL;
		}
		v->m.conns_opened++;
		return c;
	}
	return NULL;
}

void vsock_guest_connect(struct virtio_vsock *v, uint32_t guest_port, uint32_t port,
			 const struct virtio_vsock_hdr *h)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", v->uds_path, port);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct vsock_conn *c = NULL;
	/* A local connect either succeeds at once or nobody listens. */
	if (fd >= 0 && n < (int)sizeof(addr.sun_path) &&
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		c = conn_new(v, fd, VSOCK_ESTABLISHED);
	if (!c) {
		if (fd >= 0)
			close(fd);
		v->m.conns_refused++;
		vsock_send_ctrl(v, port, guest_port, VIRTIO_VSOCK_OP_RST, 0, 0);
		return;
	}
	c->guest_port = guest_port;
	c->host_port = port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->readable = true;
	vsock_send_ctrl(v, port, guest_port, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
}

void vsock_conn_established(struct virtio_vsock *v, struct vsock_conn *c)
{
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
	c->state = VSOCK_ESTABLISHED;
	c->readable = true;
	/* A few bytes on a fresh socket: if even this does not go, the peer is gone. */
	if (write(c->fd, ok, (size_t)n) != n)
		vsock_conn_reset(v, c);
}

/* Tell the guest how much it may send: after half the buffer's worth, or
 * when a backlog has drained (a guest waiting for room must hear of it). */
static void credit_update(struct virtio_vsock *v, struct vsock_conn *c, bool drained)
{
	uint32_t freed = c->fwd_cnt - c->fwd_cnt_sent;
	if (freed >= VSOCK_BUF_ALLOC / 2 || (drained && freed)) {
		vsock_send_ctrl(v, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0,
				c->fwd_cnt);
		c->fwd_cnt_sent = c->fwd_cnt;
	}
}

void vsock_conn_flush(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (!c->tx_len)
		return;
	while (c->tx_len) {
		uint32_t first = VSOCK_BUF_ALLOC - c->tx_head;
		if (first > c->tx_len)
			first = c->tx_len;
		struct iovec iov[2] = { { c->txbuf + c->tx_head, first },
					{ c->txbuf, c->tx_len - first } };
		ssize_t w = writev(c->fd, iov, c->tx_len > first ? 2 : 1);
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			vsock_conn_reset(v, c);
			return;
		}
		c->tx_head = (c->tx_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
		c->tx_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	credit_update(v, c, c->tx_len == 0);
}

/* Append @len bytes at @iov, from @skip on, to the backlog (room is checked). */
static void backlog_add(struct vsock_conn *c, const struct iovec *iov, unsigned int n, size_t skip)
{
	for (unsigned int i = 0; i < n; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		const uint8_t *p = (const uint8_t *)iov[i].iov_base + skip;
		uint32_t left = (uint32_t)(iov[i].iov_len - skip);
		skip = 0;
		while (left) {
			uint32_t tail = (c->tx_head + c->tx_len) % VSOCK_BUF_ALLOC;
			uint32_t run = VSOCK_BUF_ALLOC - tail;
			if (run > left)
				run = left;
			memcpy(c->txbuf + tail, p, run);
			c->tx_len += run;
			p += run;
			left -= run;
		}
	}
}

int vsock_conn_write(struct virtio_vsock *v, struct vsock_conn *c, const struct iovec *iov,
		     unsigned int n, uint32_t len)
{
	/* The guest may have at most VSOCK_BUF_ALLOC bytes outstanding. */
	if (len > VSOCK_BUF_ALLOC - c->tx_len)
		return -1;
	if (!len)
		return 0;
	size_t done = 0;
	if (!c->tx_len) {
		/* Nothing queued: straight from guest memory to the socket. */
		ssize_t w = writev(c->fd, iov, (int)n);
		if (w < 0 && errno != EAGAIN) {
			vsock_conn_reset(v, c);
			return 0;
		}
		done = w > 0 ? (size_t)w : 0;
		c->fwd_cnt += (uint32_t)done;
		if (done == len) {
			credit_update(v, c, false);
			return 0;
		}
	}
	/* The socket is full: keep the rest, bounded by the guest's credit. */
	if (!c->txbuf && !(c->txbuf = malloc(VSOCK_BUF_ALLOC))) {
		vsock_conn_reset(v, c);
		return 0;
	}
	backlog_add(c, iov, n, done);
	credit_update(v, c, false);
	return 0;
}

/* "CONNECT <port>\n" from a host peer: ask the guest. */
static void vsock_handshake(struct virtio_vsock *v, struct vsock_conn *c)
{
	while (c->line_len < sizeof(c->line) - 1) {
		ssize_t r = read(c->fd, c->line + c->line_len, 1);
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0)
			break;
		if (c->line[c->line_len++] != '\n')
			continue;
		c->line[c->line_len] = 0;
		unsigned long port;
		char *end;
		if (strncmp(c->line, "CONNECT ", 8) != 0)
			break;
		port = strtoul(c->line + 8, &end, 10);
		if (end == c->line + 8 || *end != '\n' || port > UINT32_MAX)
			break;
		c->guest_port = (uint32_t)port;
		c->host_port = v->next_host_port++;
		if (v->next_host_port < HOST_PORT_FIRST)
			v->next_host_port = HOST_PORT_FIRST;
		c->state = VSOCK_REQUESTED;
		set_deadline(v, c);
		vsock_send_ctrl(v, c->host_port, c->guest_port, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
		return;
	}
	/* A malformed or abandoned handshake: drop the host peer. */
	v->m.bad_packets++;
	vsock_conn_close(v, c);
}

static void vsock_sock_ready(void *opaque, uint32_t events)
{
	struct vsock_conn *c = opaque;
	struct virtio_vsock *v = c->owner;
	pthread_mutex_lock(&v->transport.lock);
	if (c->state == VSOCK_HANDSHAKE) {
		vsock_handshake(v, c);
	} else if (c->state == VSOCK_ESTABLISHED) {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			c->readable = true; /* read (or find the hang-up) when the guest has room */
		if (events & EPOLLOUT)
			vsock_conn_flush(v, c);
	} else if (c->state == VSOCK_REQUESTED && (events & (EPOLLHUP | EPOLLERR))) {
		vsock_conn_reset(v, c);
	}
	vsock_rx(v);
	pthread_mutex_unlock(&v->transport.lock);
}

static void vsock_accept(void *opaque, uint32_t events)
{
	struct virtio_vsock *v = opaque;
	(void)events;
	for (;;) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		pthread_mutex_lock(&v->transport.lock);
		struct vsock_conn *c = conn_new(v, fd, VSOCK_HANDSHAKE);
		if (!c) {
			v->m.conns_refused++;
			close(fd); /* at the connection limit */
		} else {
			set_deadline(v, c);
		}
		pthread_mutex_unlock(&v->transport.lock);
	}
}

int virtio_vsock_init(struct virtio_vsock *v, const struct guest_mem *mem, uint64_t guest_cid,
		      const char *uds_path, char *err, size_t err_len)
{
	memset(v, 0, sizeof(*v));
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		v->conns[i].fd = -1;
	v->tops = &virtio_mmio_transport_ops;
	v->timer_fd = -1;
	v->guest_cid = guest_cid;
	v->next_host_port = HOST_PORT_FIRST;
	v->listen_fd = -1;
	v->uds_path = strdup(uds_path);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int r;
	if (!v->uds_path || strlen(uds_path) > VSOCK_UDS_PATH_MAX) {
		snprintf(err, err_len, "uds_path '%s' is too long for a Unix socket", uds_path);
		r = -ENAMETOOLONG;
		goto fail;
	}
	strcpy(addr.sun_path, uds_path);
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	r = v->listen_fd < 0 ? -errno : bind_unix_replacing_stale(v->listen_fd, &addr);
	if (r == 0 && listen(v->listen_fd, 128) < 0) {
		r = -errno;
		unlink(uds_path);
	}
	if (r < 0) {
		snprintf(err, err_len, "cannot listen on '%s': %s%s", uds_path, strerror(-r),
			 bind_unix_why(r));
		goto fail;
	}
	v->bound = true;
	r = virtio_mmio_init(&v->transport, "vsock", mem, &vsock_device_ops, v, v->queues);
	if (r == 0)
		return 0;
	snprintf(err, err_len, "cannot set up the device: %s", strerror(-r));
	unlink(uds_path);
	v->bound = false;
fail:
	/* A device that did not start leaves no descriptor and no socket file. */
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	v->listen_fd = -1;
	free(v->uds_path);
	v->uds_path = NULL;
	return r;
}

int virtio_vsock_add_to_loop(struct virtio_vsock *v, struct event_loop *loop)
{
	v->loop = loop;
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (v->timer_fd < 0)
		return -errno;
	v->timer_h = event_loop_add(loop, v->timer_fd, EPOLLIN, vsock_timer, v);
	v->listen_h =
	    v->timer_h ? event_loop_add(loop, v->listen_fd, EPOLLIN, vsock_accept, v) : NULL;
	return v->listen_h ? 0 : -errno;
}

void virtio_vsock_shutdown(struct virtio_vsock *v)
{
	/* Only a socket we made: never a file that was there before us. */
	if (v->bound)
		unlink(v->uds_path);
}
