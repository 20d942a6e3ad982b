// SPDX-License-Identifier: Apache-2.0
/* Synchronous engine: preadv/pwritev/fdatasync inline on the VMM thread. */
#include <errno.h>
#include <unistd.h>

#include "engine.h"

static int sync_init(struct virtio_blk *b, char *err, size_t err_len)
{
	(void)b;
	(void)err;
	(void)err_len;
	return 0;
}

static int sync_completion_fd(struct virtio_blk *b)
{
	(void)b;
	return -1;
}

int64_t blk_rw_sync(int fd, struct blk_req *req, uint64_t done)
{
	bool write = req->type == VIRTIO_BLK_T_OUT;
	struct iovec *iov = req->iov;
	uint32_t n = req->nr_iov;
	uint64_t off = req->sector * BLK_SECTOR_SIZE, skip = done;
	while (done < req->data_len) {
		/* Skip the iovecs fully done; trim the partly done one. */
		while (n && skip >= iov->iov_len) {
			skip -= iov->iov_len;
			iov++;
			n--;
		}
		iov->iov_base = (uint8_t *)iov->iov_base + skip;
		iov->iov_len -= skip;
		ssize_t r = write ? pwritev(fd, iov, (int)n, (off_t)(off + done))
				  : preadv(fd, iov, (int)n, (off_t)(off + done));
		if (r < 0 && errno == EINTR) {
			skip = 0;
			continue;
		}
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (uint64_t)r;
		skip = (uint64_t)r;
	}
	return (int64_t)done;
}

static int sync_submit(struct virtio_blk *b, struct blk_req *req)
{
	int64_t r;
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		r = blk_rw_sync(b->fd, req, 0);
		break;
	default: /* FLUSH: only reaches an engine in writeback mode */
		r = fdatasync(b->fd) < 0 ? -errno : 0;
		break;
	}
	blk_complete(b, req, r);
	return 1;
}

static void sync_nop(struct virtio_blk *b)
{
	(void)b;
}

const struct blk_engine blk_engine_sync = {
	.name = "sync",
	.init = sync_init,
	.completion_fd = sync_completion_fd,
	.submit = sync_submit,
	.kick = sync_nop,
	.reap = sync_nop,
	.destroy = sync_nop,
};
