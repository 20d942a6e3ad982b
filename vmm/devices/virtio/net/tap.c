// SPDX-License-Identifier: Apache-2.0
/* The host side of virtio-net: a TAP device with virtio-net headers. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net.h"

int tap_open(const char *name, char *err, size_t err_len)
{
	struct ifreq ifr = { 0 };
	if (!name || !*name || strlen(name) >= IFNAMSIZ) {
		snprintf(err, err_len, "TAP name must be 1 to %d characters", IFNAMSIZ - 1);
		return -EINVAL;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot open /dev/net/tun: %s", strerror(e));
		return -e;
	}
	strcpy(ifr.ifr_name, name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	int hdr = NET_HDR_LEN;
	const char *step = "attach to";
	int r = ioctl(fd, TUNSETIFF, &ifr);
	if (r == 0) {
		step = "set the virtio-net header size of";
		r = ioctl(fd, TUNSETVNETHDRSZ, &hdr);
	}
	if (r < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot %s TAP '%s': %s", step, name, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int tap_set_offloads(int fd, uint64_t acked)
{
	unsigned int off = 0;
	/* What the guest can take on RX is what the TAP may hand us. */
	if (acked & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (acked & (1ull << VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (acked & (1ull << VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
		if (acked & (1ull << VIRTIO_NET_F_GUEST_UFO))
			off |= TUN_F_UFO;
	}
	return ioctl(fd, TUNSETOFFLOAD, off) < 0 ? -errno : 0;
}
