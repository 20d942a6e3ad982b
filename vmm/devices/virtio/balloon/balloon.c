// SPDX-License-Identifier: Apache-2.0
/* virtio-balloon device: inflate, deflate, statistics and free page reporting. */
#include "balloon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "devices/virtio/iov.h"
#include "event_loop.h"
#include "log.h"

#define BALLOON_NAME "balloon"
#define PAGE_4K (1ull << BALLOON_PAGE_SHIFT)
#define STAT_BYTES 10 /* struct virtio_balloon_stat: le16 tag, le64 val, packed */
/* The statistics read from one buffer: Linux sends 16 at most. */
#define STATS_MAX_ENTRIES 64
#define CONFIG_BYTES 16 /* num_pages, actual, free_page_hint_cmd_id, poison_val */

static int discard_pages(void *addr, uint64_t len)
{
	return madvise(addr, len, MADV_DONTNEED) < 0 ? -errno : 0;
}

static uint64_t balloon_features(void *dev)
{
	const struct virtio_balloon *b = dev;
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX);
	/* No MUST_TELL_HOST: a deflated page needs nothing from the host first. */
	if (b->cfg.deflate_on_oom)
		f |= 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (b->cfg.stats_polling_interval_s)
		f |= 1ull << VIRTIO_BALLOON_F_STATS_VQ;
	if (b->cfg.free_page_reporting)
		f |= 1ull << VIRTIO_BALLOON_F_PAGE_REPORTING;
	return f;
}

static void balloon_config_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	const struct virtio_balloon *b = dev;
	uint32_t cfg[CONFIG_BYTES / 4] = { b->num_pages, b->actual, 0, 0 };
	if (off < CONFIG_BYTES && len <= CONFIG_BYTES - off)
		memcpy(data, (const uint8_t *)cfg + off, len);
}

static void balloon_config_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_balloon *b = dev;
	/* Only `actual` is the driver's; bytes of it may come one at a time. */
	if (off < 4 || off >= 8 || len > 8 - off)
		return;
	uint8_t bytes[4];
	memcpy(bytes, &b->actual, 4);
	memcpy(bytes + (off - 4), data, len);
	memcpy(&b->actual, bytes, 4);
}

/* Arm the statistics timer: first expiry after @first_ns, then every interval. */
static int timer_arm(struct virtio_balloon *b, uint64_t first_ns)
{
	uint64_t s = b->cfg.stats_polling_interval_s;
	struct itimerspec its = {
		.it_interval = { .tv_sec = (time_t)s },
		.it_value = { .tv_sec = (time_t)(first_ns / 1000000000ull),
			      .tv_nsec = (long)(first_ns % 1000000000ull) },
	};
	if (!s)
		its = (struct itimerspec){ 0 };
	return timerfd_settime(b->timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static void balloon_refuse(struct virtio_balloon *b, const char *why)
{
	b->m.event_fails++;
	if (!b->logged_bad)
		log_warn("%s: refusing descriptor chain: %s (logged once; balloon.event_fails "
			 "counts them)",
			 BALLOON_NAME, why);
	b->logged_bad = true;
}

/* Release a run of guest pages to the host. */
static void release(struct virtio_balloon *b, uint64_t gpa, uint8_t *host, uint64_t len)
{
	if (!len)
		return;
	int r = b->discard(host, len);
	if (r < 0) {
		b->m.event_fails++;
		if (!b->logged_bad)
			log_warn("%s: madvise(MADV_DONTNEED) of %llu bytes failed: %s (logged "
				 "once)",
				 BALLOON_NAME, (unsigned long long)len, strerror(-r));
		b->logged_bad = true;
		return;
	}
	/* The pages read as zeros now: a diff snapshot must carry them. */
	guest_mem_mark_dirty(b->mem, gpa, len);
	b->m.inflated_pages += len >> BALLOON_PAGE_SHIFT;
}

/*
 * The PFNs of one inflate chain: each checked against guest memory, runs
 * of consecutive pages released with one madvise.
 */
static void inflate_pages(struct virtio_balloon *b, const struct virtq_chain *c)
{
	uint64_t run_gpa = 0, run_len = 0;
	uint8_t *run_host = NULL;
	uint32_t n = (uint32_t)(c->out_len / 4);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t pfn;
		if (!iov_copy_out(c->iov, c->nr_out, 4ull * i, &pfn, 4))
			break;
		uint64_t gpa = (uint64_t)pfn << BALLOON_PAGE_SHIFT;
		uint8_t *host = guest_mem_ptr(b->mem, gpa, PAGE_4K);
		if (!host) {
			b->m.bad_pfns++;
			b->m.event_fails++;
			continue;
		}
		if (run_len && gpa == run_gpa + run_len && host == run_host + run_len) {
			run_len += PAGE_4K;
			continue;
		}
		release(b, run_gpa, run_host, run_len);
		run_gpa = gpa;
		run_host = host;
		run_len = PAGE_4K;
	}
	release(b, run_gpa, run_host, run_len);
}

/* Validate a PFN array chain: device-readable only, whole PFNs, bounded. */
static const char *pfn_chain_problem(const struct virtq_chain *c)
{
	if (c->nr_in)
		return "device-writable descriptor in a PFN array";
	if (c->out_len % 4)
		return "PFN array length is not a multiple of 4";
	if (c->out_len > 4ull * BALLOON_MAX_PFNS)
		return "more than 256 PFNs in one chain";
	return NULL;
}

/* Free page reporting: device-writable ranges of free guest pages. */
static void report_pages(struct virtio_balloon *b, const struct virtq_chain *c)
{
	const struct iovec *iov = &c->iov[c->nr_out];
	for (unsigned int i = 0; i < c->nr_in; i++) {
		uint8_t *p = iov[i].iov_base;
		uint64_t len = iov[i].iov_len;
		/* virtq_pop checked the range is guest RAM; madvise needs pages. */
		if (!len || (((uintptr_t)p | len) & (PAGE_4K - 1))) {
			b->m.free_page_report_fails++;
			continue;
		}
		if (b->discard(p, len) < 0) {
			b->m.free_page_report_fails++;
			continue;
		}
		b->m.free_page_report_freed += len;
	}
}

/* Take the statistics from a buffer the driver filled. */
static void stats_parse(struct virtio_balloon *b, const struct virtq_chain *c)
{
	if (c->nr_in || c->out_len % STAT_BYTES) {
		b->m.stats_update_fails++;
		return;
	}
	uint64_t n = c->out_len / STAT_BYTES;
	if (n > STATS_MAX_ENTRIES)
		n = STATS_MAX_ENTRIES;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t e[STAT_BYTES];
		if (!iov_copy_out(c->iov, c->nr_out, i * STAT_BYTES, e, STAT_BYTES))
			break;
		uint16_t tag;
		uint64_t val;
		memcpy(&tag, e, 2);
		memcpy(&val, e + 2, 8);
		/* Tags this device does not know are skipped, as the spec says. */
		if (tag < BALLOON_NR_STATS) {
			b->stats.val[tag] = val;
			b->stats.mask |= 1u << tag;
		}
	}
	b->m.stats_updates_count++;
}

/*
 * The statistics queue: read the buffer at the head of the ring and leave it
 * there (virtq_unpop); it is taken off only when new values are wanted.
 */
static void stats_read(struct virtio_balloon *b, struct virtq *q)
{
	static struct virtq_chain chain;
	const char *why = "";
	int r = virtq_pop(q, &chain, &why);
	if (r == -EIO) {
		b->tops->needs_reset(&b->transport, why);
		return;
	}
	if (r == 0) {
		virtq_enable_notify(q);
		return;
	}
	virtq_unpop(q);
	if (r < 0) {
		b->m.stats_update_fails++;
	} else if (!b->stats_read || b->stats_seen != (uint16_t)(q->last_avail + 1)) {
		stats_parse(b, &chain);
	}
	b->stats_read = true;
	b->stats_seen = (uint16_t)(q->last_avail + 1);
	/* Wake us for the next buffer, not this one again. */
	virtq_enable_notify_past(q, b->stats_seen);
}

static void stats_tick_locked(struct virtio_balloon *b)
{
	static struct virtq_chain chain;
	for (unsigned int i = 0; i < 4; i++) {
		struct virtq *q = &b->queues[i];
		if (b->role[i] != BQ_STATS || !q->avail)
			continue;
		const char *why = "";
		int r = virtq_pop(q, &chain, &why);
		if (r == -EIO) {
			b->tops->needs_reset(&b->transport, why);
			return;
		}
		if (r == 0)
			return; /* the driver has not given its buffer back yet */
		if (r > 0 && (!b->stats_read || b->stats_seen != q->last_avail))
			stats_parse(b, &chain); /* posted since the last read */
		b->stats_read = false;
		/* Used, length 0: the driver refills it and posts it again. */
		virtq_push(q, chain.head, 0);
		virtq_enable_notify(q);
		if (virtq_should_signal(q))
			b->tops->signal_used(&b->transport);
	}
}

/* An inflate, deflate or free page reporting chain; nothing is written back. */
static int64_t balloon_handle(void *dev, struct virtq *q, const struct virtq_chain *chain,
			      const char *bad)
{
	struct virtio_balloon *b = dev;
	uint8_t role = b->role[q - b->queues];
	if (role == BQ_REPORTING && bad) {
		b->m.free_page_report_fails++;
		balloon_refuse(b, bad);
		return 0;
	}
	if (role == BQ_REPORTING) {
		b->m.free_page_report_count++;
		report_pages(b, chain);
		return 0;
	}
	const char *problem = bad ? bad : pfn_chain_problem(chain);
	if (problem) {
		balloon_refuse(b, problem);
	} else if (role == BQ_INFLATE) {
		b->m.inflate_count++;
		inflate_pages(b, chain);
	} else {
		/* A deflated page refaults on its next touch. */
		b->m.deflate_count++;
	}
	return 0;
}

static const struct virtq_drain_ops balloon_drain_ops = { .handle = balloon_handle };

static void balloon_queue_notify(void *dev, unsigned int qi)
{
	static struct virtq_chain chain;
	struct virtio_balloon *b = dev;
	struct virtq *q = &b->queues[qi];
	if (b->role[qi] == BQ_STATS)
		stats_read(b, q);
	else if (b->role[qi] != BQ_NONE) /* none: no negotiated feature gives it a role */
		virtq_drain(q, &chain, &balloon_drain_ops, b, b->tops, &b->transport);
}

static int balloon_activate(void *dev, uint64_t acked)
{
	struct virtio_balloon *b = dev;
	/* Drivers number the queues they use densely, in this order. */
	unsigned int n = 0;
	memset(b->role, BQ_NONE, sizeof(b->role));
	b->role[n++] = BQ_INFLATE;
	b->role[n++] = BQ_DEFLATE;
	if (acked & (1ull << VIRTIO_BALLOON_F_STATS_VQ))
		b->role[n++] = BQ_STATS;
	if (acked & (1ull << VIRTIO_BALLOON_F_PAGE_REPORTING))
		b->role[n++] = BQ_REPORTING;
	for (unsigned int i = 0; i < n; i++) {
		if (!b->queues[i].avail) {
			b->m.activate_fails++;
			return -EINVAL;
		}
	}
	b->stats_read = false;
	/* Linux posts its first statistics before DRIVER_OK: read them now. */
	if (n > 2 && b->role[2] == BQ_STATS)
		stats_read(b, &b->queues[2]);
	return 0;
}

static void balloon_reset(void *dev)
{
	struct virtio_balloon *b = dev;
	memset(b->role, BQ_NONE, sizeof(b->role));
	b->stats_read = false;
	/* A new driver starts from nothing: it holds no pages. */
	b->actual = 0;
}

static const struct virtio_device_ops balloon_ops = {
	.device_id = VIRTIO_ID_BALLOON,
	.num_queues = 4,
	.queue_max = BALLOON_QUEUE_SIZE,
	.features = balloon_features,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.activate = balloon_activate,
	.reset = balloon_reset,
	.queue_notify = balloon_queue_notify,
};

void virtio_balloon_stats_tick(struct virtio_balloon *b)
{
	pthread_mutex_lock(&b->transport.lock);
	if (virtio_mmio_active(&b->transport))
		stats_tick_locked(b);
	pthread_mutex_unlock(&b->transport.lock);
}

static void balloon_timer_ready(void *opaque, uint32_t events)
{
	struct virtio_balloon *b = opaque;
	uint64_t v;
	(void)events;
	ssize_t n = read(b->timer_fd, &v, sizeof(v));
	(void)n;
	virtio_balloon_stats_tick(b);
}

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t amount_mib)
{
	pthread_mutex_lock(&b->transport.lock);
	b->cfg.amount_mib = amount_mib;
	b->num_pages = balloon_mib_to_pages(amount_mib);
	if (virtio_mmio_active(&b->transport))
		b->tops->signal_config(&b->transport);
	pthread_mutex_unlock(&b->transport.lock);
}

int virtio_balloon_set_interval(struct virtio_balloon *b, uint16_t seconds)
{
	pthread_mutex_lock(&b->transport.lock);
	b->cfg.stats_polling_interval_s = seconds;
	/* The first update now (1 ns: 0 would disarm), then every interval. */
	int r = timer_arm(b, 1);
	pthread_mutex_unlock(&b->transport.lock);
	return r;
}

void virtio_balloon_read(struct virtio_balloon *b, uint32_t *target, uint32_t *actual,
			 struct balloon_stats *stats)
{
	pthread_mutex_lock(&b->transport.lock);
	*target = b->num_pages;
	*actual = b->actual;
	*stats = b->stats;
	pthread_mutex_unlock(&b->transport.lock);
}

void virtio_balloon_save(struct virtio_balloon *b, struct balloon_state *s)
{
	pthread_mutex_lock(&b->transport.lock);
	memset(s, 0, sizeof(*s));
	s->num_pages = b->num_pages;
	s->actual = b->actual;
	s->stats_mask = b->stats.mask;
	memcpy(s->stats, b->stats.val, sizeof(s->stats));
	pthread_mutex_unlock(&b->transport.lock);
}

int virtio_balloon_restore(struct virtio_balloon *b, const struct balloon_state *s,
			   const char **why)
{
	if (s->reserved || s->stats_mask >> BALLOON_NR_STATS) {
		*why = "the balloon state has unknown bits set";
		return -EINVAL;
	}
	if (s->num_pages != b->num_pages) {
		*why = "the balloon's target disagrees with the snapshot's configuration";
		return -EINVAL;
	}
	pthread_mutex_lock(&b->transport.lock);
	b->actual = s->actual;
	b->stats.mask = s->stats_mask;
	memcpy(b->stats.val, s->stats, sizeof(b->stats.val));
	pthread_mutex_unlock(&b->transport.lock);
	return 0;
}

int virtio_balloon_init(struct virtio_balloon *b, const struct guest_mem *mem,
			const struct balloon_config *cfg, char *err, size_t err_len)
{
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	b->mem = mem;
	b->tops = &virtio_mmio_transport_ops;
	b->discard = discard_pages;
	b->num_pages = balloon_mib_to_pages(cfg->amount_mib);
	memset(b->role, BQ_NONE, sizeof(b->role));
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (b->timer_fd < 0) {
		int e = errno;
		snprintf(err, err_len, "timerfd_create: %s", strerror(e));
		return -e;
	}
	int ret = virtio_mmio_init(&b->transport, BALLOON_NAME, mem, &balloon_ops, b, b->queues);
	if (ret == 0 && cfg->stats_polling_interval_s)
		ret = timer_arm(b, (uint64_t)cfg->stats_polling_interval_s * 1000000000ull);
	if (ret < 0) {
		snprintf(err, err_len, "cannot set up the device: %s", strerror(-ret));
		close(b->timer_fd);
		b->timer_fd = -1;
	}
	return ret;
}

int virtio_balloon_add_to_loop(struct virtio_balloon *b, struct event_loop *loop)
{
	if (!event_loop_add(loop, b->timer_fd, EPOLLIN, balloon_timer_ready, b))
		return -errno;
	return 0;
}
