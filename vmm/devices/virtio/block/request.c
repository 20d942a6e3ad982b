// SPDX-License-Identifier: Apache-2.0
/* virtio-blk request parsing: from a validated chain to a struct blk_req. */
#include <string.h>

#include "block.h"
#include "devices/virtio/iov.h"

#define BLK_HDR_BYTES 16

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

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
