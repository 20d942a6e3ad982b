// SPDX-License-Identifier: Apache-2.0
/* virtio-blk request parsing: from a validated chain to a struct blk_req. */
#include <string.h>

#include "block.h"

#define BLK_HDR_BYTES 16

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* The iovecs of @iov[0..n) from byte @off for @len bytes, into @out. */
static uint32_t iov_slice(const struct iovec *iov, unsigned int n, uint64_t off, uint64_t len,
			  struct iovec *out)
{
	uint32_t k = 0;
	for (unsigned int i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		uint64_t take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		out[k++] =
		    (struct iovec){ .iov_base = (uint8_t *)iov[i].iov_base + off, .iov_len = take };
		len -= take;
		off = 0;
	}
	return k;
}

/* Copy @len bytes starting @off bytes into @iov[0..n) to @dst; false if short. */
static bool iov_copy_out(const struct iovec *iov, unsigned int n, uint64_t off, void *dst,
			 uint64_t len)
{
	struct iovec part[VIRTQ_MAX_SIZE];
	uint32_t k = iov_slice(iov, n, off, len, part);
	uint8_t *d = dst;
	for (uint32_t i = 0; i < k; i++) {
		memcpy(d, part[i].iov_base, part[i].iov_len);
		d += part[i].iov_len;
	}
	return (uint64_t)(d - (uint8_t *)dst) == len;
}

uint8_t blk_req_parse(const struct virtq_chain *c, uint64_t capacity, bool read_only,
		      struct blk_req *req)
{
	const struct iovec *out = c->iov;
	const struct iovec *in = c->iov + c->nr_out;
	req->head = c->head;
	req->status = NULL;
	req->nr_iov = 0;
	req->data_len = 0;

	/* The status byte is the last byte the device writes. */
	if (c->nr_in == 0 || c->in_len == 0)
		return VIRTIO_BLK_S_IOERR;
	const struct iovec *last = &in[c->nr_in - 1];
	if (last->iov_len == 0) {
		/* Find the last non-empty writable buffer. */
		int i = (int)c->nr_in - 1;
		while (i >= 0 && in[i].iov_len == 0)
			i--;
		last = &in[i];
	}
	req->status = (uint8_t *)last->iov_base + last->iov_len - 1;

	struct blk_hdr h;
	if (c->out_len < BLK_HDR_BYTES || !iov_copy_out(out, c->nr_out, 0, &h, sizeof(h)))
		return VIRTIO_BLK_S_IOERR;
	req->type = h.type;
	req->sector = h.sector;

	uint64_t in_data = c->in_len - 1;
	uint64_t out_data = c->out_len - BLK_HDR_BYTES;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		if (out_data != 0)
			return VIRTIO_BLK_S_IOERR;
		req->data_len = in_data;
		req->nr_iov = iov_slice(in, c->nr_in, 0, in_data, req->iov);
		break;
	case VIRTIO_BLK_T_OUT:
		if (read_only)
			return VIRTIO_BLK_S_IOERR;
		if (in_data != 0)
			return VIRTIO_BLK_S_IOERR;
		req->data_len = out_data;
		req->nr_iov = iov_slice(out, c->nr_out, BLK_HDR_BYTES, out_data, req->iov);
		break;
	case VIRTIO_BLK_T_FLUSH:
		return out_data == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	case VIRTIO_BLK_T_GET_ID:
		if (in_data == 0)
			return VIRTIO_BLK_S_IOERR;
		req->data_len = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;
		req->nr_iov = iov_slice(in, c->nr_in, 0, req->data_len, req->iov);
		return VIRTIO_BLK_S_OK;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
	/* Whole sectors, inside the disk, and small enough to report in a u32. */
	if (req->data_len % BLK_SECTOR_SIZE || req->data_len > UINT32_MAX - 1)
		return VIRTIO_BLK_S_IOERR;
	uint64_t end;
	if (__builtin_add_overflow(req->sector, req->data_len / BLK_SECTOR_SIZE, &end) ||
	    end > capacity)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}
