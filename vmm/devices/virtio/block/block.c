// SPDX-License-Identifier: Apache-2.0
/* virtio-blk device: features, config space, the queue loop and completions. */
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"
#include "engine.h"
#include "event_loop.h"
#include "log.h"

struct __attribute__((packed)) blk_config_space {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
};

static uint64_t blk_features(void *dev)
{
	struct virtio_blk *b = dev;
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX) |
	    (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_SEG_MAX);
	if (b->cfg.read_only)
		f |= 1ull << VIRTIO_BLK_F_RO;
	return f;
}

static void blk_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = dev;
	struct blk_config_space c = { .capacity = b->capacity, .seg_max = BLK_QUEUE_SIZE - 2 };
	if (off < sizeof(c) && len <= sizeof(c) - off)
		memcpy(data, (const uint8_t *)&c + off, len);
	else
		b->m.cfg_fails++;
}

static void blk_config_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	/* Nothing in our config space is writable (no CONFIG_WCE). */
	struct virtio_blk *b = dev;
	b->m.cfg_fails++;
	(void)off;
	(void)data;
	(void)len;
}

static int blk_activate(void *dev, uint64_t acked)
{
	struct virtio_blk *b = dev;
	b->acked = acked;
	return 0;
}

static void blk_reset(void *dev)
{
	struct virtio_blk *b = dev;
	/* Requests still in the engine complete later and are then dropped. */
	b->generation++;
	b->throttled = false;
	b->acked = 0;
}

static void blk_queue_notify(void *dev, unsigned int q)
{
	(void)q;
	virtio_blk_process(dev);
}

static const struct virtio_device_ops blk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = 1,
	.queue_max = BLK_QUEUE_SIZE,
	.features = blk_features,
	.config_read = blk_config_read,
	.config_write = blk_config_write,
	.activate = blk_activate,
	.reset = blk_reset,
	.queue_notify = blk_queue_notify,
};

static struct blk_req *blk_slot_get(struct virtio_blk *b)
{
	if (!b->nr_free)
		return NULL;
	struct blk_req *r = &b->reqs[b->free_slots[--b->nr_free]];
	r->in_use = true;
	return r;
}

static void blk_slot_put(struct virtio_blk *b, struct blk_req *r)
{
	r->in_use = false;
	b->free_slots[b->nr_free++] = (uint32_t)(r - b->reqs);
}

/* Finish a request that never reached the engine. */
static void blk_finish_now(struct virtio_blk *b, struct blk_req *r, uint8_t status, uint32_t len)
{
	if (r->status)
		*r->status = status;
	virtq_push(&b->queue, r->head, r->status ? len : 0);
	if (status != VIRTIO_BLK_S_OK)
		b->m.errors++;
	blk_slot_put(b, r);
}

/* The backing file failed a request: the guest gets IOERR, the metrics
 * count it, and the log says why once for each new kind of error. */
static void blk_io_error(struct virtio_blk *b, const struct blk_req *req, int err)
{
	b->m.io_errors++;
	if (err == b->logged_io_errno) {
		log_debug("%s: I/O error on sector %llu: %s", b->id,
			  (unsigned long long)req->sector, strerror(err));
		return;
	}
	b->logged_io_errno = err;
	const char *what = req->type == VIRTIO_BLK_T_IN ? "read" : "write";
	if (req->type == VIRTIO_BLK_T_FLUSH)
		what = "flush";
	log_warn("%s: %s of %llu bytes at sector %llu failed: %s; the guest gets IOERR "
		 "(io_errors counts every such request)",
		 b->id, what, (unsigned long long)req->data_len, (unsigned long long)req->sector,
		 strerror(err));
}

static void blk_time_add(struct blk_time *t, uint64_t ns)
{
	if (!t->min_ns || ns < t->min_ns)
		t->min_ns = ns;
	if (ns > t->max_ns)
		t->max_ns = ns;
	t->sum_ns += ns;
}

void blk_complete(struct virtio_blk *b, struct blk_req *req, int64_t result)
{
	b->inflight--;
	if (req->generation != b->generation) {
		/* The driver reset the device meanwhile: the ring is no longer ours. */
		blk_slot_put(b, req);
		return;
	}
	uint8_t status = result < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	uint64_t ns = clock_now_ns() - req->submit_ns;
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
		blk_time_add(&b->m.read_time, ns);
		b->m.reads++;
		b->m.read_bytes += result > 0 ? (uint64_t)result : 0;
		break;
	case VIRTIO_BLK_T_OUT:
		blk_time_add(&b->m.write_time, ns);
		b->m.writes++;
		b->m.write_bytes += result > 0 ? (uint64_t)result : 0;
		break;
	default:
		b->m.flushes++;
		break;
	}
	if (result < 0)
		blk_io_error(b, req, (int)-result);
	uint32_t len =
	    1 + (req->type == VIRTIO_BLK_T_IN && result >= 0 ? (uint32_t)req->data_len : 0);
	blk_finish_now(b, req, status, len);
}

static void blk_throttle(struct virtio_blk *b, uint64_t ops, uint64_t bytes)
{
	rate_limiter_arm_timer(&b->rl, b->timer_fd, ops, bytes, clock_now_ns());
	b->throttled = true;
	b->m.throttled++;
}

static bool blk_ready(void *dev)
{
	const struct virtio_blk *b = dev;
	return !b->throttled && b->nr_free; /* a chain is taken only with a slot for it */
}

/* One request: refused, finished now, or in the engine. */
static int64_t blk_handle(void *dev, struct virtq *q, const struct virtq_chain *chain,
			  const char *bad)
{
	struct virtio_blk *b = dev;
	if (bad) {
		if (!b->logged_bad_chain) {
			log_warn("%s: refusing malformed descriptor chain: %s", b->id, bad);
			b->logged_bad_chain = true;
		}
		b->m.bad_chains++;
		b->m.errors++; /* IOERR, with no status byte to say it */
		return 0;
	}
	struct blk_req *req = blk_slot_get(b); /* blk_ready() saw a free one */
	uint8_t status = blk_req_parse(chain, b->capacity, b->cfg.read_only, req);
	if (status != VIRTIO_BLK_S_OK) {
		b->m.invalid_reqs++;
		blk_finish_now(b, req, status, 1);
		return VIRTQ_TAKEN;
	}
	if (req->type == VIRTIO_BLK_T_GET_ID) {
		/* The serial, NUL-padded to 20 bytes, cut to what the driver gave. */
		char serial[VIRTIO_BLK_ID_BYTES] = { 0 };
		memcpy(serial, b->id, strnlen(b->id, sizeof(serial)));
		const char *src = serial;
		for (uint32_t i = 0; i < req->nr_iov; i++) {
			memcpy(req->iov[i].iov_base, src, req->iov[i].iov_len);
			src += req->iov[i].iov_len;
		}
		b->m.get_ids++;
		blk_finish_now(b, req, VIRTIO_BLK_S_OK, (uint32_t)req->data_len + 1);
		return VIRTQ_TAKEN;
	}
	if (req->type == VIRTIO_BLK_T_FLUSH && b->cfg.cache == BLK_CACHE_UNSAFE) {
		b->m.flushes++;
		blk_finish_now(b, req, VIRTIO_BLK_S_OK, 1);
		return VIRTQ_TAKEN;
	}
	if (rate_limiter_enabled(&b->rl) &&
	    !rate_limiter_consume(&b->rl, 1, req->data_len, clock_now_ns())) {
		blk_throttle(b, 1, req->data_len);
		/* What waits on the ring, this request (given back) included. */
		b->m.remaining_reqs += virtq_pending(q) + 1u;
		blk_slot_put(b, req);
		return VIRTQ_UNPOP;
	}
	req->generation = b->generation;
	req->submit_ns = clock_now_ns();
	b->inflight++;
	if (b->engine->submit(b, req) == -EAGAIN) {
		/* The engine is full: the batch ends, flush submits it, and the
		 * request is taken again. */
		b->inflight--;
		b->m.backpressure++;
		blk_slot_put(b, req);
		return VIRTQ_UNPOP;
	}
	return VIRTQ_TAKEN;
}

static void blk_flush(void *dev)
{
	struct virtio_blk *b = dev;
	b->engine->kick(b);
}

static const struct virtq_drain_ops blk_drain_ops = {
	.ready = blk_ready,
	.handle = blk_handle,
	.flush = blk_flush,
};

void virtio_blk_process(struct virtio_blk *b)
{
	static struct virtq_chain chain;
	bool progress = virtq_drain(&b->queue, &chain, &blk_drain_ops, b, b->tops, &b->transport);
	b->m.no_avail_buffer += !progress;
}

void virtio_blk_complete_ready(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->transport.lock);
	uint32_t before = b->nr_free;
	b->engine->reap(b);
	bool active = virtio_mmio_active(&b->transport) && b->queue.avail;
	if (active && before == 0 && b->nr_free)
		virtio_blk_process(b); /* the engine was full: go on with the queue */
	else if (active && b->nr_free != before && virtq_should_signal(&b->queue))
		b->tops->signal_used(&b->transport);
	pthread_mutex_unlock(&b->transport.lock);
}

static void blk_completion_ready(void *opaque, uint32_t events)
{
	(void)events;
	virtio_blk_complete_ready(opaque);
}

static void blk_timer_ready(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;
	uint64_t v;
	(void)events;
	ssize_t r = read(b->timer_fd, &v, sizeof(v));
	(void)r;
	pthread_mutex_lock(&b->transport.lock);
	b->m.rate_limiter_events++;
	b->throttled = false;
	if (virtio_mmio_active(&b->transport) && b->queue.avail)
		virtio_blk_process(b);
	pthread_mutex_unlock(&b->transport.lock);
}

static int blk_open(struct virtio_blk *b, char *err, size_t err_len)
{
	int flags =
	    (b->cfg.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (b->cfg.direct ? O_DIRECT : 0);
	/* O_NONBLOCK: the path may have become a FIFO since it was checked,
	 * whose open would wait for a writer; it is cleared once the file is
	 * known to be a regular one. */
	b->fd = open(b->cfg.path, flags | O_NONBLOCK);
	if (b->fd < 0) {
		int e = errno;
		snprintf(err, err_len, "cannot open '%s': %s", b->cfg.path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(b->fd, &st) < 0 || !S_ISREG(st.st_mode) || fcntl(b->fd, F_SETFL, flags) < 0) {
		snprintf(err, err_len, "'%s' is not a regular file", b->cfg.path);
		close(b->fd);
		b->fd = -1;
		return -EINVAL;
	}
	if (st.st_size % BLK_SECTOR_SIZE)
		log_warn("%s: '%s' is not a whole number of sectors; the tail is not visible",
			 b->id, b->cfg.path);
	b->capacity = (uint64_t)st.st_size / BLK_SECTOR_SIZE;
	return 0;
}

int virtio_blk_init(struct virtio_blk *b, const struct guest_mem *mem,
		    const struct blk_drive_config *cfg, char *err, size_t err_len)
{
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	b->fd = b->timer_fd = -1;
	b->tops = &virtio_mmio_transport_ops;
	snprintf(b->id, sizeof(b->id), "%s", cfg->id ? cfg->id : "");
	int r = blk_open(b, err, err_len);
	if (r < 0)
		return r;

	b->reqs = calloc(BLK_QUEUE_SIZE, sizeof(*b->reqs));
	if (!b->reqs)
		return -ENOMEM;
	for (uint32_t i = 0; i < BLK_QUEUE_SIZE; i++)
		b->free_slots[i] = BLK_QUEUE_SIZE - 1 - i;
	b->nr_free = BLK_QUEUE_SIZE;

	uint64_t now = clock_now_ns();
	if (token_bucket_init(&b->rl.bytes, cfg->bw_size, cfg->bw_burst, cfg->bw_refill_ms, now) <
		0 ||
	    token_bucket_init(&b->rl.ops, cfg->ops_size, cfg->ops_burst, cfg->ops_refill_ms, now) <
		0) {
		snprintf(err, err_len, "rate limiter refill time must be more than 0 ms");
		return -EINVAL;
	}
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timer_fd < 0)
		return -errno;

	b->engine = cfg->engine == BLK_ENGINE_SYNC ? &blk_engine_sync : &blk_engine_uring;
	r = b->engine->init(b, err, err_len);
	if (r < 0 && b->engine == &blk_engine_uring) {
		log_warn("%s: %s; using the sync engine", b->id, err);
		b->engine = &blk_engine_sync;
		r = b->engine->init(b, err, err_len);
	}
	if (r < 0)
		return r;
	return virtio_mmio_init(&b->transport, b->id, mem, &blk_ops, b, &b->queue);
}

int virtio_blk_add_to_loop(struct virtio_blk *b, struct event_loop *loop)
{
	b->loop = loop;
	int cfd = b->engine->completion_fd(b);
	if (cfd >= 0) {
		b->completion_h = event_loop_add(loop, cfd, EPOLLIN, blk_completion_ready, b);
		if (!b->completion_h)
			return -errno;
	}
	if (!event_loop_add(loop, b->timer_fd, EPOLLIN, blk_timer_ready, b))
		return -errno;
	return 0;
}

/* Takes ownership of @path (a heap copy). */
static int blk_swap_backing(struct virtio_blk *b, char *path, char *err, size_t err_len)
{
	struct virtio_blk next = { .cfg = b->cfg };
	next.cfg.path = path;
	snprintf(next.id, sizeof(next.id), "%s", b->id);
	int r = blk_open(&next, err, err_len);
	if (r < 0) {
		free(path);
		return r;
	}
	/* Let the old engine finish what it has, then start one on the new file. */
	if (b->completion_h)
		event_loop_del(b->loop, b->completion_h);
	b->completion_h = NULL;
	b->engine->destroy(b);
	if (b->nr_free && virtio_mmio_active(&b->transport) && virtq_should_signal(&b->queue))
		b->tops->signal_used(&b->transport);
	close(b->fd);
	b->fd = next.fd;
	b->capacity = next.capacity;
	free(b->swapped_path);
	b->swapped_path = path;
	b->cfg.path = path;
	r = b->engine->init(b, err, err_len);
	if (r < 0 && b->engine == &blk_engine_uring) {
		b->engine = &blk_engine_sync;
		r = b->engine->init(b, err, err_len);
	}
	if (r < 0)
		return r;
	int cfd = b->engine->completion_fd(b);
	if (cfd >= 0) {
		b->completion_h = event_loop_add(b->loop, cfd, EPOLLIN, blk_completion_ready, b);
		if (!b->completion_h)
			return -errno;
	}
	/* The capacity may have changed: tell the driver to read the config again. */
	if (b->transport.status & VIRTIO_STATUS_DRIVER_OK)
		b->tops->signal_config(&b->transport);
	return 0;
}

void virtio_blk_save_limiter(struct virtio_blk *b, struct rate_limiter_state *s)
{
	pthread_mutex_lock(&b->transport.lock);
	rate_limiter_save(&b->rl, s, clock_now_ns());
	pthread_mutex_unlock(&b->transport.lock);
}

int virtio_blk_restore_limiter(struct virtio_blk *b, const struct rate_limiter_state *s,
			       const char **why)
{
	pthread_mutex_lock(&b->transport.lock);
	int r = rate_limiter_restore(&b->rl, s, clock_now_ns(), why);
	pthread_mutex_unlock(&b->transport.lock);
	return r;
}

int virtio_blk_update(struct virtio_blk *b, const char *path, const struct blk_drive_config *limits,
		      char *err, size_t err_len)
{
	int r = 0;
	pthread_mutex_lock(&b->transport.lock);
	if (limits) {
		uint64_t now = clock_now_ns();
		struct rate_limiter rl = { .throttled = b->rl.throttled };
		if (token_bucket_init(&rl.bytes, limits->bw_size, limits->bw_burst,
				      limits->bw_refill_ms, now) < 0 ||
		    token_bucket_init(&rl.ops, limits->ops_size, limits->ops_burst,
				      limits->ops_refill_ms, now) < 0) {
			snprintf(err, err_len, "rate limiter refill time must be more than 0 ms");
			r = -EINVAL;
		} else {
			b->rl = rl;
		}
	}
	if (!r && path) {
		char *copy = strdup(path);
		r = copy ? blk_swap_backing(b, copy, err, err_len) : -ENOMEM;
	}
	if (r < 0)
		b->m.update_fails++;
	else
		b->m.update_count++;
	pthread_mutex_unlock(&b->transport.lock);
	return r;
}

int virtio_blk_flush_backing(struct virtio_blk *b)
{
	if (b->fd < 0 || b->cfg.read_only || b->cfg.cache != BLK_CACHE_WRITEBACK)
		return 0;
	return fdatasync(b->fd) < 0 ? -errno : 0;
}

int virtio_blk_drain(struct virtio_blk *b)
{
	for (int i = 0; i < 5000; i++) {
		pthread_mutex_lock(&b->transport.lock);
		uint32_t n = b->inflight;
		pthread_mutex_unlock(&b->transport.lock);
		if (!n)
			return 0;
		int fd = b->engine->completion_fd(b);
		if (fd >= 0)
			poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 1);
		virtio_blk_complete_ready(b);
	}
	return -ETIMEDOUT;
}
