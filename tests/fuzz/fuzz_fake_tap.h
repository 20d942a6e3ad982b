/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in for /dev/net/tun, for targets that build a real virtio-net
 * device without a real TAP (which needs root, a network namespace and a
 * few milliseconds per frame).
 *
 * virtio_net_init() opens its TAP itself (tap_open(): open("/dev/net/tun"),
 * TUNSETIFF, TUNSETVNETHDRSZ; TUNSETOFFLOAD at activation), so this file
 * defines open(), ioctl() and writev() for the whole program. Opening
 * /dev/net/tun gives one end of a socketpair(AF_UNIX, SOCK_SEQPACKET): one
 * record per frame, as a TAP reads and writes them; the other end,
 * fz_tap_peer(), is the host's side of the wire. The TUN ioctls succeed on
 * it. A frame written to it goes through the checks a Linux TAP makes
 * (tun_get_user(), virtio_net_hdr_to_skb()) and is refused with EINVAL
 * when a TAP would refuse it; each rule below was checked against a real
 * TAP on Linux 6.18. Everything else goes straight to the kernel.
 */
#ifndef EMBER_FUZZ_FAKE_TAP_H
#define EMBER_FUZZ_FAKE_TAP_H

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define FZ_TAP_MAX 4
#define FZ_TAP_HDR_LEN 12 /* the device's TUNSETVNETHDRSZ */
#define FZ_TAP_FRAME_MAX (65535 + 14 + 4 + FZ_TAP_HDR_LEN)

static int fz_tap_dev[FZ_TAP_MAX], fz_tap_host[FZ_TAP_MAX];
static unsigned int fz_nr_taps;

static int fz_tap_find(int fd)
{
	for (unsigned int i = 0; i < fz_nr_taps; i++)
		if (fz_tap_dev[i] == fd)
			return (int)i;
	return -1;
}

/* The host's end of the wire behind the device's TAP fd @dev_fd, or -1. */
static inline int fz_tap_peer(int dev_fd)
{
	int i = fz_tap_find(dev_fd);
	return i < 0 ? -1 : fz_tap_host[i];
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	bool has_mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
	mode_t mode = has_mode ? va_arg(ap, mode_t) : 0;
	va_end(ap);
	if (strcmp(path, "/dev/net/tun") != 0)
		return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	int sv[2], type = SOCK_SEQPACKET | (flags & O_CLOEXEC ? SOCK_CLOEXEC : 0);
	if (fz_nr_taps == FZ_TAP_MAX) {
		errno = EMFILE;
		return -1;
	}
	if (socketpair(AF_UNIX, type, 0, sv) < 0)
		return -1;
	/* Room for a few of the largest frames either way before EAGAIN. */
	int buf = 4 * FZ_TAP_FRAME_MAX;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (flags & O_NONBLOCK)
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	fz_tap_dev[fz_nr_taps] = sv[0];
	fz_tap_host[fz_nr_taps++] = sv[1];
	return sv[0];
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (fz_tap_find(fd) < 0)
		return (int)syscall(SYS_ioctl, fd, req, arg);
	if (req == TUNSETIFF || req == TUNSETVNETHDRSZ || req == TUNSETOFFLOAD)
		return 0;
	errno = ENOTTY;
	return -1;
}

/* Would a Linux TAP with a 12-byte virtio-net header refuse this write? */
static inline bool fz_tap_refuses(const uint8_t *p, size_t n)
{
	struct virtio_net_hdr_v1 h;
	if (n < FZ_TAP_HDR_LEN)
		return true;
	memcpy(&h, p, FZ_TAP_HDR_LEN);
	uint32_t len = (uint32_t)(n - FZ_TAP_HDR_LEN);
	uint32_t hdr_len = h.hdr_len, start = h.csum_start, off = h.csum_offset;
	bool csum = h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
	/* tun_get_user(): the header length, raised to cover the checksum */
	if (csum && start + off + 2 > hdr_len)
		hdr_len = start + off + 2;
	if (hdr_len > len || len < 14 || (hdr_len && hdr_len < 14))
		return true;
	/* virtio_net_hdr_to_skb() */
	uint32_t thlen = 0, nh_min = 20;
	uint8_t gso = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		if (gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_TCPV6)
			thlen = 20;
		else if (gso == VIRTIO_NET_HDR_GSO_UDP || gso == 5 /* UDP_L4 */)
			thlen = 8;
		else
			return true;
		if (gso == VIRTIO_NET_HDR_GSO_TCPV6)
			nh_min = 40;
		if (!h.gso_size || h.gso_size == 0xffff /* GSO_BY_FRAGS */)
			return true;
	}
	if (csum) {
		uint32_t need = start + (thlen > off + 2 ? thlen : off + 2);
		if (need > len || start < nh_min || start + thlen > len)
			return true;
		if (thlen == 20 && off != 16) /* TCP: the checksum is at 16 */
			return true;
	}
	return false;
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	if (fz_tap_find(fd) < 0)
		return syscall(SYS_writev, fd, iov, n);
	/* One record, as the TAP takes it; memcpy lets ASan check the buffers. */
	static uint8_t frame[FZ_TAP_FRAME_MAX];
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		if (iov[i].iov_len > sizeof(frame) - len) {
			errno = EINVAL;
			return -1;
		}
		memcpy(frame + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	if (fz_tap_refuses(frame, len)) {
		errno = EINVAL;
		return -1;
	}
	return send(fd, frame, len, MSG_DONTWAIT);
}

#endif
