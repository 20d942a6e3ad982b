// SPDX-License-Identifier: Apache-2.0
/* virtio-net TX header checks: every malformed header the guest can write. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/virtio/net/net.h"

#define F(b) (1ull << (b))
#define ALL                                                                                        \
	(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |            \
	 F(VIRTIO_NET_F_HOST_UFO))

struct hcase {
	const char *name;
	struct virtio_net_hdr_v1 h;
	uint64_t len;
	bool vlan;
	uint64_t acked;
	int want;
};

/* clang-format off: one case per line reads as a table */
static const struct hcase cases[] = {
	{ "plain frame", { 0 }, 60, false, 0, 0 },
	{ "full MTU frame", { 0 }, 1514, false, 0, 0 },
	{ "one byte over the MTU", { 0 }, 1515, false, 0, -EINVAL },
	{ "VLAN-tagged full frame", { 0 }, 1518, true, 0, 0 },
	{ "VLAN-tagged, over", { 0 }, 1519, true, 0, -EINVAL },
	{ "shorter than Ethernet", { 0 }, 13, false, 0, -EINVAL },
	{ "64 KiB without TSO", { 0 }, 65549, false, 0, -EINVAL },
	{ "unknown flags", { .flags = 0x80 }, 60, false, ALL, -EINVAL },
	{ "checksum not negotiated",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 },
	  60,
	  false,
	  0,
	  -EINVAL },
	{ "checksum offload",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 },
	  60,
	  false,
	  ALL,
	  0 },
	{ "checksum past the end",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 58, .csum_offset = 6 },
	  60,
	  false,
	  ALL,
	  -EINVAL },
	{ "checksum position overflows",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 0xffff, .csum_offset = 0xffff },
	  60,
	  false,
	  ALL,
	  -EINVAL },
	{ "TSO4 frame",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
	    .hdr_len = 54,
	    .gso_size = 1448,
	    .csum_start = 34,
	    .csum_offset = 16 },
	  65000,
	  false,
	  ALL,
	  0 },
	{ "TSO4 not negotiated",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
	    .hdr_len = 54,
	    .gso_size = 1448,
	    .csum_start = 34,
	    .csum_offset = 16 },
	  1400,
	  false,
	  F(VIRTIO_NET_F_CSUM),
	  -EINVAL },
	{ "GSO without checksum offload",
	  { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54, .gso_size = 1448 },
	  9000,
	  false,
	  ALL,
	  -EINVAL },
	{ "GSO size 0",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = VIRTIO_NET_HDR_GSO_TCPV6,
	    .hdr_len = 74,
	    .csum_start = 54,
	    .csum_offset = 16 },
	  9000,
	  false,
	  ALL,
	  -EINVAL },
	{ "GSO header longer than the frame",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = VIRTIO_NET_HDR_GSO_UDP,
	    .hdr_len = 9000,
	    .gso_size = 1400,
	    .csum_start = 34,
	    .csum_offset = 6 },
	  8000,
	  false,
	  ALL,
	  -EINVAL },
	{ "unknown GSO type",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = 2,
	    .hdr_len = 54,
	    .gso_size = 1448,
	    .csum_start = 34,
	    .csum_offset = 16 },
	  9000,
	  false,
	  ALL,
	  -EINVAL },
	{ "ECN (not offered)",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
	    .hdr_len = 54,
	    .gso_size = 1448,
	    .csum_start = 34,
	    .csum_offset = 16 },
	  9000,
	  false,
	  ALL,
	  -EINVAL },
	{ "GSO frame over 64 KiB",
	  { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
	    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
	    .hdr_len = 54,
	    .gso_size = 1448,
	    .csum_start = 34,
	    .csum_offset = 16 },
	  65550,
	  false,
	  ALL,
	  -EINVAL },
};
/* clang-format on */

static void tx_headers(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct hcase *c = &cases[i];
		const char *why = "";
		int r = net_tx_hdr_check(&c->h, c->len, c->vlan, c->acked, 1500, &why);
		print_message("  %-34s -> %d %s\n", c->name, r, r ? why : "");
		assert_int_equal(r, c->want);
		if (r)
			assert_true(strlen(why) > 0);
	}
}

static void rx_buffers_must_fit_any_frame(void **state)
{
	(void)state;
	assert_int_equal(net_max_frame(0, 1500, true, true), 1518);
	assert_int_equal(net_max_frame(F(VIRTIO_NET_F_GUEST_TSO4), 1500, true, false),
			 NET_MAX_GSO_FRAME);
	/* Host-side offloads do not enlarge what the guest receives. */
	assert_int_equal(net_max_frame(F(VIRTIO_NET_F_HOST_TSO4), 9000, true, false), 9014);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tx_headers),
		cmocka_unit_test(rx_buffers_must_fit_any_frame),
	};
	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
