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

/* Whole transfer or an error: short transfers are retried from where they stopped. */
static int64_t sync_rw(int fd, struct blk_req *req, bool write)
{
	struct iovec *iov = req->iov;
	uint32_t n = req->nr_iov;
	uint64_t off = req->sector * BLK_SECTOR_SIZE, done = 0;
	int64_t result = 0;
	while (done < req->data_len) {
		ssize_t r = write ? pwritev(fd, iov, (int)n, (off_t)(off + done))
				  : preadv(fd, iov, (int)n, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			result = r < 0 ? -errno : -EIO;
			break;
		}
		done += (uint64_t)r;
		/* Skip the iovecs fully done; trim the partly done one. */
		while (n && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n && r) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return result < 0 ? result : (int64_t)done;
}

static int sync_submit(struct virtio_blk *b, struct blk_req *req)
{
	int64_t r;
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
		r = sync_rw(b->fd, req, false);
		break;
	case VIRTIO_BLK_T_OUT:
		r = sync_rw(b->fd, req, true);
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
