// SPDX-License-Identifier: Apache-2.0
/*
 * io_uring engine. The ring is created disabled; the backing file is
 * registered as fixed file 0, the completion eventfd registered, and a
 * restriction list allows only READV, WRITEV and FSYNC on that fixed file
 * before the ring is enabled. Requests point straight into guest memory.
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine.h"

struct uring_state {
	struct io_uring ring;
	int efd;
	unsigned int queued; /* SQEs prepared but not yet submitted */
};

static int uring_init(struct virtio_blk *b, char *err, size_t err_len)
{
	struct uring_state *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	/* COOP_TASKRUN and SINGLE_ISSUER (Linux 5.19/6.0) spare the kernel work
	 * on every completion: only the VMM thread ever touches this ring. */
	struct io_uring_params p = { .flags = IORING_SETUP_R_DISABLED | IORING_SETUP_COOP_TASKRUN |
					 IORING_SETUP_SINGLE_ISSUER };
	int r = io_uring_queue_init_params(BLK_QUEUE_SIZE, &u->ring, &p);
	if (r == -EINVAL) { /* older kernel: plain ring */
		p = (struct io_uring_params){ .flags = IORING_SETUP_R_DISABLED };
		r = io_uring_queue_init_params(BLK_QUEUE_SIZE, &u->ring, &p);
	}
	if (r < 0) {
		snprintf(err, err_len, "io_uring set-up failed: %s", strerror(-r));
		free(u);
		return r;
	}
	struct io_uring_restriction res[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = IOSQE_FIXED_FILE },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED, .sqe_flags = IOSQE_FIXED_FILE },
	};
	const char *step = "register the backing file";
	u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = u->efd < 0 ? -errno : io_uring_register_files(&u->ring, &b->fd, 1);
	if (!r) {
		step = "register the completion eventfd";
		r = io_uring_register_eventfd(&u->ring, u->efd);
	}
	if (!r) {
		step = "register restrictions";
		r = io_uring_register_restrictions(&u->ring, res, sizeof(res) / sizeof(res[0]));
	}
	if (!r) {
		step = "enable the ring";
		r = io_uring_enable_rings(&u->ring);
	}
	if (r < 0) {
		snprintf(err, err_len, "io_uring: cannot %s: %s", step, strerror(-r));
		io_uring_queue_exit(&u->ring);
		if (u->efd >= 0)
			close(u->efd);
		free(u);
		return r;
	}
	b->engine_state = u;
	return 0;
}

static int uring_completion_fd(struct virtio_blk *b)
{
	return ((struct uring_state *)b->engine_state)->efd;
}

static int uring_submit(struct virtio_blk *b, struct blk_req *req)
{
	struct uring_state *u = b->engine_state;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		/* The SQ is full of prepared entries: push them and try once more. */
		io_uring_submit(&u->ring);
		u->queued = 0;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EAGAIN;
	}
	uint64_t off = req->sector * BLK_SECTOR_SIZE;
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
		io_uring_prep_readv(sqe, 0, req->iov, req->nr_iov, off);
		break;
	case VIRTIO_BLK_T_OUT:
		io_uring_prep_writev(sqe, 0, req->iov, req->nr_iov, off);
		break;
	default:
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	u->queued++;
	return 0;
}

/* Complete every CQE already posted. Memory reads only: no syscall. */
static void uring_drain_cq(struct virtio_blk *b)
{
	struct uring_state *u = b->engine_state;
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct blk_req *req = io_uring_cqe_get_data(cqe);
		int64_t res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		/* A short transfer (a file system filling up, a FUSE file, a
		 * file cut short under us): the rest is done here, so the guest
		 * gets all of it or the error that stopped it, not a made-up EIO. */
		if (req->type != VIRTIO_BLK_T_FLUSH && res >= 0 && (uint64_t)res != req->data_len)
			res = blk_rw_sync(b->fd, req, (uint64_t)res);
		blk_complete(b, req, res);
	}
}

static void uring_kick(struct virtio_blk *b)
{
	struct uring_state *u = b->engine_state;
	if (!u->queued)
		return;
	/* Page-cache hits complete inside io_uring_enter(): take them now and
	 * keep the eventfd quiet meanwhile, sparing the VMM loop a wake-up. */
	io_uring_cq_eventfd_toggle(&u->ring, false);
	io_uring_submit(&u->ring);
	u->queued = 0;
	io_uring_cq_eventfd_toggle(&u->ring, true);
	/* Anything posted after the toggle also signals the eventfd: no loss. */
	uring_drain_cq(b);
}

static void uring_reap(struct virtio_blk *b)
{
	struct uring_state *u = b->engine_state;
	uint64_t v;
	ssize_t r = read(u->efd, &v, sizeof(v));
	(void)r;
	uring_drain_cq(b);
}

static void uring_destroy(struct virtio_blk *b)
{
	struct uring_state *u = b->engine_state;
	uring_kick(b);
	while (b->inflight) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&u->ring, &cqe) < 0)
			break;
		uring_drain_cq(b);
	}
	io_uring_queue_exit(&u->ring);
	close(u->efd);
	free(u);
	b->engine_state = NULL;
}

const struct blk_engine blk_engine_uring = {
	.name = "io_uring",
	.init = uring_init,
	.completion_fd = uring_completion_fd,
	.submit = uring_submit,
	.kick = uring_kick,
	.reap = uring_reap,
	.destroy = uring_destroy,
};
