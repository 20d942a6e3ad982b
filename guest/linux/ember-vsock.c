// SPDX-License-Identifier: Apache-2.0
/*
 * ember-vsock: AF_VSOCK from inside an ember Linux guest, for tests.
 *
 *   ember-vsock connect PORT [CID]      connect to CID:PORT (CID 2, the host,
 *                                       by default) and pump stdin/stdout
 *   ember-vsock listen PORT             accept one connection, same pump
 *   ember-vsock echo PORT [N]           echo server for N connections (default
 *                                       forever), up to 256 at once
 *   ember-vsock multi CID PORT N SIZE   N connections at once, SIZE pattern
 *                                       bytes each, check what comes back
 *
 * Exit status: 0 success, 1 failure (said on stderr), 2 bad arguments.
 *
 * On ember's test machines the guest kernel is emulated and one system call
 * costs about 0.2 ms, while user code runs at native speed. So each command
 * is one process with one poll() loop over all its fds, moves 64 KiB per
 * call, and asks for non-blocking I/O per call (MSG_DONTWAIT, SOCK_NONBLOCK)
 * rather than with extra fcntl() calls.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

#define BUF_SIZE (64 * 1024)
#define ECHO_MAX_CONN 256
/* Leaves room under the usual RLIMIT_NOFILE of 1024. */
#define MULTI_MAX_CONN 1000
#define MULTI_MAX_SIZE (1ull << 40)

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
		"usage: ember-vsock connect PORT [CID]\n"
		"       ember-vsock listen PORT\n"
		"       ember-vsock echo PORT [N]\n"
		"       ember-vsock multi CID PORT N SIZE\n"
		"CID defaults to 2 (the host); echo serves N connections, default forever.\n");
	exit(2);
}

/* Prints "ember-vsock: <what>: <error>", with a hint where vsock itself is missing. */
static int fail(const char *what, int err)
{
	const char *hint = "";

	if (err == EAFNOSUPPORT || err == ENODEV)
		hint = " (no vsock transport in this kernel?)";
	fprintf(stderr, "ember-vsock: %s: %s%s\n", what, strerror(err), hint);
	return 1;
}

/* Parses a decimal number in [min, max] or exits with the usage. */
static uint64_t parse_num(const char *s, const char *name, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v < min || v > max) {
		fprintf(stderr, "ember-vsock: bad %s '%s' (want %" PRIu64 "..%" PRIu64 ")\n", name,
			s, min, max);
		usage();
	}
	return v;
}

static void vsock_addr(struct sockaddr_vm *sa, uint32_t cid, uint32_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->svm_family = AF_VSOCK;
	sa->svm_cid = cid;
	sa->svm_port = port;
}

/*
 * Returns a stream socket connected to cid:port, or -errno. With
 * SOCK_NONBLOCK in flags the connection may still be in progress: poll for
 * POLLOUT and read SO_ERROR.
 */
static int vsock_connect(uint32_t cid, uint32_t port, int flags)
{
	struct sockaddr_vm sa;
	int fd, err;

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -errno;
	vsock_addr(&sa, cid, port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Returns a socket listening on VMADDR_CID_ANY:port, or -errno. */
static int vsock_listen(uint32_t port, int backlog, int flags)
{
	struct sockaddr_vm sa;
	int fd, err;

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -errno;
	vsock_addr(&sa, VMADDR_CID_ANY, port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static bool again(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/*
 * Copies stdin to sock and sock to stdout at the same time. stdin EOF shuts
 * down the socket's write side; the socket's EOF ends the pump once all it
 * sent is on stdout, even if stdin has more (it may be the console, which
 * never ends). stdin and stdout stay blocking: O_NONBLOCK on the console
 * would leak into the shell that shares it.
 */
static int pump(int sock)
{
	static char up[BUF_SIZE], down[BUF_SIZE];
	size_t up_off = 0, up_len = 0, down_off = 0, down_len = 0;
	bool in_eof = false, sock_eof = false, shut = false, lost = false;
	struct pollfd pfd[3];
	ssize_t n;

	for (;;) {
		if (in_eof && up_len == 0 && !shut) {
			if (!lost && shutdown(sock, SHUT_WR) < 0 && errno != ENOTCONN)
				return fail("shutdown", errno);
			shut = true;
		}
		if (sock_eof && down_len == 0)
			break;

		/* An fd with nothing to wait for is left out: its POLLHUP would spin. */
		pfd[0].fd = !in_eof && up_len == 0 ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].events = (up_len ? POLLOUT : 0) | (!sock_eof && down_len == 0 ? POLLIN : 0);
		pfd[1].fd = pfd[1].events ? sock : -1;
		pfd[2].fd = down_len ? STDOUT_FILENO : -1;
		pfd[2].events = POLLOUT;
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("poll", errno);
		}

		if (pfd[0].revents & POLLNVAL) {
			in_eof = true;
		} else if (pfd[0].revents) {
			n = read(STDIN_FILENO, up, sizeof(up));
			if (n > 0) {
				up_off = 0;
				up_len = n;
				pfd[1].revents |= POLLOUT; /* most likely there is room: try now */
			} else if (n == 0) {
				in_eof = true;
			} else if (!again(errno)) {
				return fail("read stdin", errno);
			}
		}

		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR) && !sock_eof && down_len == 0) {
			n = recv(sock, down, sizeof(down), MSG_DONTWAIT);
			if (n > 0) {
				down_off = 0;
				down_len = n;
				pfd[2].revents |= POLLOUT;
			} else if (n == 0) {
				sock_eof = true;
			} else if (!again(errno)) {
				return fail("recv", errno);
			}
		}

		if (pfd[1].revents & (POLLOUT | POLLHUP | POLLERR) && up_len) {
			n = send(sock, up + up_off, up_len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				up_off += n;
				up_len -= n;
			} else if (n < 0 && errno == EPIPE) {
				/* The peer stopped reading: keep taking what it sends. */
				lost = true;
				in_eof = true;
				up_len = 0;
			} else if (n < 0 && !again(errno)) {
				return fail("send", errno);
			}
		}

		if (pfd[2].revents && down_len) {
			n = write(STDOUT_FILENO, down + down_off, down_len);
			if (n > 0) {
				down_off += n;
				down_len -= n;
			} else if (n < 0 && !again(errno)) {
				return fail("write stdout", errno);
			}
		}
	}
	if (lost) {
		fprintf(stderr,
			"ember-vsock: peer closed the connection before all input was sent\n");
		return 1;
	}
	return 0;
}

static int cmd_connect(uint32_t port, uint32_t cid)
{
	char what[64];
	int fd, ret;

	fd = vsock_connect(cid, port, 0);
	if (fd < 0) {
		snprintf(what, sizeof(what), "connect to %" PRIu32 ":%" PRIu32, cid, port);
		return fail(what, -fd);
	}
	ret = pump(fd);
	close(fd);
	return ret;
}

static int cmd_listen(uint32_t port)
{
	char what[64];
	int lfd, fd, ret;

	snprintf(what, sizeof(what), "listen on port %" PRIu32, port);
	lfd = vsock_listen(port, 1, 0);
	if (lfd < 0)
		return fail(what, -lfd);
	fprintf(stderr, "ember-vsock: listening on port %" PRIu32 "\n", port);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return fail("accept", errno);
	close(lfd);
	ret = pump(fd);
	close(fd);
	return ret;
}

/* One connection of the echo server: bytes [off, len) of buf are owed back. */
struct echo_conn {
	int fd;
	bool eof; /* the peer shut down its write side */
	size_t off, len;
	char *buf;
};

/* Moves what poll reported; returns 1 when the connection is done, -1 on error, else 0. */
static int echo_conn_io(struct echo_conn *c, short revents)
{
	bool try_send = revents & (POLLOUT | POLLHUP | POLLERR);
	ssize_t n;

	if (revents & (POLLIN | POLLHUP | POLLERR) && !c->eof && c->len < BUF_SIZE) {
		n = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, MSG_DONTWAIT);
		if (n > 0) {
			c->len += n;
			try_send = true;
		} else if (n == 0) {
			c->eof = true;
		} else if (!again(errno)) {
			fail("echo: recv", errno);
			return -1;
		}
	}
	if (try_send && c->len > c->off) {
		n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && !again(errno)) {
			fail("echo: send", errno);
			return -1;
		}
		if (n > 0)
			c->off += n;
		if (c->off == c->len)
			c->off = c->len = 0;
	}
	if (c->eof && c->len == c->off) {
		/* All echoed: tell the peer with our own EOF before closing. */
		if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
			fail("echo: shutdown", errno);
			return -1;
		}
		return 1;
	}
	return 0;
}

/* Takes the connections waiting on lfd; returns -1 once the limit is reached, else 0. */
static int echo_accept(int lfd, struct echo_conn *conn, int *nconn, uint64_t *accepted,
		       uint64_t limit)
{
	struct echo_conn *c;
	int fd;

	while (*nconn < ECHO_MAX_CONN) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (!again(errno) && errno != ECONNABORTED)
				fail("echo: accept", errno);
			return 0;
		}
		c = &conn[(*nconn)++];
		c->fd = fd;
		c->eof = false;
		c->off = c->len = 0;
		c->buf = malloc(BUF_SIZE);
		if (!c->buf) {
			fail("echo: connection buffer", ENOMEM);
			close(fd);
			(*nconn)--;
		}
		if (limit && ++*accepted == limit)
			return -1;
	}
	return 0;
}

static int cmd_echo(uint32_t port, uint64_t limit)
{
	static struct echo_conn conn[ECHO_MAX_CONN];
	static struct pollfd pfd[1 + ECHO_MAX_CONN];
	uint64_t accepted = 0;
	int lfd, nconn = 0, errors = 0, i, ret;
	char what[64];

	snprintf(what, sizeof(what), "echo: listen on port %" PRIu32, port);
	lfd = vsock_listen(port, ECHO_MAX_CONN, SOCK_NONBLOCK);
	if (lfd < 0)
		return fail(what, -lfd);
	printf("echo: ready\n");
	fflush(stdout);

	while (lfd >= 0 || nconn > 0) {
		pfd[0].fd = nconn < ECHO_MAX_CONN ? lfd : -1;
		pfd[0].events = POLLIN;
		for (i = 0; i < nconn; i++) {
			struct echo_conn *c = &conn[i];

			pfd[1 + i].fd = c->fd;
			pfd[1 + i].events = (c->len > c->off ? POLLOUT : 0) |
			    (!c->eof && c->len < BUF_SIZE ? POLLIN : 0);
		}
		if (poll(pfd, 1 + nconn, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("echo: poll", errno);
		}

		for (i = 0; i < nconn;) {
			ret = pfd[1 + i].revents ? echo_conn_io(&conn[i], pfd[1 + i].revents) : 0;
			if (ret == 0) {
				i++;
				continue;
			}
			errors += ret < 0;
			close(conn[i].fd);
			free(conn[i].buf);
			/* The last connection takes this slot, with its poll result. */
			conn[i] = conn[--nconn];
			pfd[1 + i] = pfd[1 + nconn];
		}

		/* New connections join after the loop above: they have no poll result yet. */
		if (pfd[0].fd >= 0 && pfd[0].revents &&
		    echo_accept(lfd, conn, &nconn, &accepted, limit) < 0) {
			close(lfd);
			lfd = -1;
		}
	}
	if (errors) {
		fprintf(stderr, "ember-vsock: echo: %d of %" PRIu64 " connections failed\n", errors,
			accepted);
		return 1;
	}
	return 0;
}

/*
 * Byte i of connection c is (i*31 + c*7) & 0xff. As 31 is odd, c*7 = s*31
 * (mod 256) for s = c*7*223 (31*223 = 6913 = 1 mod 256), so connection c's
 * stream is this table, whose period is 256, read from offset s: any 64 KiB
 * of any stream is one pointer into it, to send from or compare against.
 */
static unsigned char pattern[BUF_SIZE + 256];

static const unsigned char *multi_pattern(uint32_t c, uint64_t i)
{
	return pattern + ((i + (uint64_t)c * 7 * 223) & 0xff);
}

struct multi_conn {
	int fd;
	bool connected;
	uint64_t sent, rcvd;
};

static int multi_fail(const struct multi_conn *m, uint32_t c, const char *what, int err)
{
	fprintf(stderr,
		"multi: connection %" PRIu32 ": %s: %s (%" PRIu64 " bytes sent, %" PRIu64
		" came back)\n",
		c, what, strerror(err), m->sent, m->rcvd);
	return -1;
}

/* Moves what poll reported; returns 1 once all SIZE bytes came back intact, -1 on error, else 0. */
static int multi_conn_io(struct multi_conn *m, uint32_t c, short revents, uint64_t size)
{
	static unsigned char buf[BUF_SIZE];
	const unsigned char *want;
	socklen_t len = sizeof(int);
	ssize_t n, i;
	int err = 0;

	if (!m->connected) {
		if (revents & (POLLERR | POLLHUP) || !(revents & POLLOUT)) {
			if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				return multi_fail(m, c, "getsockopt", errno);
			if (err)
				return multi_fail(m, c, "connect", err);
		}
		m->connected = true;
		revents |= POLLOUT;
	}

	if (revents & (POLLOUT | POLLHUP | POLLERR) && m->sent < size) {
		n = size - m->sent < BUF_SIZE ? size - m->sent : BUF_SIZE;
		n = send(m->fd, multi_pattern(c, m->sent), n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && !again(errno))
			return multi_fail(m, c, "send", errno);
		if (n > 0)
			m->sent += n;
	}

	if (revents & (POLLIN | POLLHUP | POLLERR) && m->rcvd < size) {
		n = size - m->rcvd < BUF_SIZE ? size - m->rcvd : BUF_SIZE;
		n = recv(m->fd, buf, n, MSG_DONTWAIT);
		if (n == 0) {
			fprintf(stderr,
				"multi: connection %" PRIu32 ": EOF after %" PRIu64 " of %" PRIu64
				" bytes came back (%" PRIu64 " sent)\n",
				c, m->rcvd, size, m->sent);
			return -1;
		}
		if (n < 0 && !again(errno))
			return multi_fail(m, c, "recv", errno);
		want = multi_pattern(c, m->rcvd);
		if (n > 0 && memcmp(buf, want, n)) {
			for (i = 0; buf[i] == want[i]; i++)
				;
			fprintf(stderr,
				"multi: connection %" PRIu32 ": byte %" PRIu64
				": got 0x%02x, want 0x%02x\n",
				c, m->rcvd + i, buf[i], want[i]);
			return -1;
		}
		if (n > 0)
			m->rcvd += n;
	}
	return m->rcvd == size;
}

static int cmd_multi(uint32_t cid, uint32_t port, uint32_t nconn, uint64_t size)
{
	static struct multi_conn conn[MULTI_MAX_CONN];
	static struct pollfd pfd[MULTI_MAX_CONN];
	uint32_t c, done = 0;
	char what[64];
	int ret;

	for (c = 0; c < sizeof(pattern); c++)
		pattern[c] = c * 31;
	for (c = 0; c < nconn; c++) {
		conn[c].fd = vsock_connect(cid, port, SOCK_NONBLOCK);
		if (conn[c].fd < 0) {
			snprintf(what, sizeof(what), "connect to %" PRIu32 ":%" PRIu32, cid, port);
			multi_fail(&conn[c], c, what, -conn[c].fd);
			return 1;
		}
		pfd[c].fd = conn[c].fd;
	}

	while (done < nconn) {
		for (c = 0; c < nconn; c++) {
			struct multi_conn *m = &conn[c];

			if (!m->connected)
				pfd[c].events = POLLOUT;
			else
				pfd[c].events =
				    (m->sent < size ? POLLOUT : 0) | (m->rcvd < size ? POLLIN : 0);
		}
		if (poll(pfd, nconn, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("multi: poll", errno);
		}
		for (c = 0; c < nconn; c++) {
			if (!pfd[c].revents || pfd[c].fd < 0)
				continue;
			ret = multi_conn_io(&conn[c], c, pfd[c].revents, size);
			if (ret < 0)
				return 1;
			if (ret > 0) {
				close(conn[c].fd);
				pfd[c].fd = -1;
				done++;
			}
		}
	}
	printf("multi: ok %" PRIu32 " %" PRIu64 "\n", nconn, size);
	return 0;
}

int main(int argc, char **argv)
{
	const uint64_t port_max = VMADDR_PORT_ANY - 1, cid_max = UINT32_MAX;
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "connect") && (argc == 3 || argc == 4))
		return cmd_connect(parse_num(argv[2], "PORT", 0, port_max),
				   argc == 4 ? parse_num(argv[3], "CID", 0, cid_max)
					     : VMADDR_CID_HOST);
	if (!strcmp(cmd, "listen") && argc == 3)
		return cmd_listen(parse_num(argv[2], "PORT", 0, port_max));
	if (!strcmp(cmd, "echo") && (argc == 3 || argc == 4))
		return cmd_echo(parse_num(argv[2], "PORT", 0, port_max),
				argc == 4 ? parse_num(argv[3], "N", 1, UINT64_MAX) : 0);
	if (!strcmp(cmd, "multi") && argc == 6)
		return cmd_multi(parse_num(argv[2], "CID", 0, cid_max),
				 parse_num(argv[3], "PORT", 0, port_max),
				 parse_num(argv[4], "N", 1, MULTI_MAX_CONN),
				 parse_num(argv[5], "SIZE", 0, MULTI_MAX_SIZE));
	usage();
}
