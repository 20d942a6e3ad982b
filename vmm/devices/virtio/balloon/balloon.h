/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-balloon, the traditional memory balloon (virtio 1.2, 5.5), device
 * ID 5. The host sets a target (num_pages, in 4 KiB pages); the driver
 * inflates towards it by giving pages on the inflate queue (arrays of le32
 * page frame numbers), which the device returns to the host with
 * madvise(MADV_DONTNEED), and deflates by naming pages it takes back on the
 * deflate queue (nothing to do: a dropped page refaults as a zero page). The
 * driver writes how many pages it holds into `actual`.
 *
 * Every PFN comes from the guest: each one is checked against guest memory
 * (guest_mem_ptr) before anything is released, and at most
 * BALLOON_MAX_PFNS per chain are looked at, so one chain costs the VMM
 * thread a bounded amount of work.
 *
 * Optional features, as Firecracker offers them: DEFLATE_ON_OOM, STATS_VQ
 * (stats_polling_interval_s > 0: the driver's statistics buffer is returned
 * every interval from a timerfd, and it comes back filled) and
 * PAGE_REPORTING (free ranges the guest reports are released as inflated
 * pages are). Queues are numbered as drivers number them: inflate, deflate,
 * then statistics and reporting only when negotiated.
 *
 * The statistics buffer is never held between updates: the device reads it
 * where it sits on the ring and takes it off only when it asks for new
 * values. Nothing is in flight, so a snapshot needs no special case.
 *
 * Threads: the queues, the timer and the configuration space run under the
 * transport lock; the API's calls below take it.
 */
#ifndef EMBER_VIRTIO_BALLOON_H
#define EMBER_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/mmio.h"

/* Feature bits (5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON 4
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

#define BALLOON_QUEUE_SIZE 256
#define BALLOON_PAGE_SHIFT 12 /* PFNs always count 4 KiB pages */
/* Linux's VIRTIO_BALLOON_ARRAY_PFNS_MAX: the most PFNs a driver sends at once. */
#define BALLOON_MAX_PFNS 256
/* Statistic tags 0..15 (VIRTIO_BALLOON_S_SWAP_IN .. S_DIRECT_RECLAIM). */
#define BALLOON_NR_STATS 16

enum balloon_queue_role { BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORTING, BQ_NONE };

/* What PUT /balloon configured. */
struct balloon_config {
	uint32_t amount_mib;
	bool deflate_on_oom;
	uint16_t stats_polling_interval_s; /* 0: no statistics queue */
	bool free_page_reporting;
};

/* Firecracker's balloon metrics, cumulative. */
struct balloon_metrics {
	uint64_t activate_fails;
	uint64_t inflate_count, deflate_count; /* chains handled */
	uint64_t stats_updates_count, stats_update_fails;
	uint64_t event_fails; /* refused chains and PFNs, failed madvise */
	uint64_t free_page_report_count, free_page_report_freed, free_page_report_fails;
	uint64_t inflated_pages, bad_pfns; /* ember's: pages released, PFNs refused */
};

/* The statistics as the driver last sent them; bit n of @mask: tag n seen. */
struct balloon_stats {
	uint32_t mask;
	uint64_t val[BALLOON_NR_STATS];
};

struct event_loop;

struct virtio_balloon {
	struct virtio_mmio transport;
	struct virtq queues[4];
	const struct virtio_transport_ops *tops;
	const struct guest_mem *mem;
	struct balloon_config cfg;
	uint32_t num_pages; /* the target, config space offset 0 */
	uint32_t actual; /* the driver's count, offset 4 */
	uint8_t role[4]; /* queue index -> enum balloon_queue_role, from the acked features */
	uint16_t stats_seen; /* avail index past the statistics buffer read last */
	bool stats_read; /* the buffer at stats_seen - 1 was read */
	struct balloon_stats stats;
	int timer_fd;
	/* Release [addr, addr + len) to the host: madvise(MADV_DONTNEED);
	 * unit tests put their own. 0 or -errno. */
	int (*discard)(void *addr, uint64_t len);
	bool logged_bad; /* logged once */
	struct balloon_metrics m;
};

/* MiB <-> 4 KiB pages. */
static inline uint32_t balloon_mib_to_pages(uint32_t mib)
{
	return mib << (20 - BALLOON_PAGE_SHIFT);
}

/* Set the device up (timer, transport). -errno with a message in @err. */
int virtio_balloon_init(struct virtio_balloon *b, const struct guest_mem *mem,
			const struct balloon_config *cfg, char *err, size_t err_len)
    __attribute__((warn_unused_result));

/* Put the statistics timer on @loop. 0 or -errno. */
int virtio_balloon_add_to_loop(struct virtio_balloon *b, struct event_loop *loop)
    __attribute__((warn_unused_result));

/* PATCH /balloon: a new target; tells a running driver (config interrupt). */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t amount_mib);

/* PATCH /balloon/statistics: a new interval (> 0; the caller checks the
 * statistics were enabled), with an update asked for now. 0 or -errno. */
int virtio_balloon_set_interval(struct virtio_balloon *b, uint16_t seconds);

/* Target, actual and the last statistics, consistently. */
void virtio_balloon_read(struct virtio_balloon *b, uint32_t *target, uint32_t *actual,
			 struct balloon_stats *stats);

/* The timer fired (or a test says it did): ask the driver for statistics. */
void virtio_balloon_stats_tick(struct virtio_balloon *b);

/* The device state a snapshot keeps beside its transport. */
struct balloon_state {
	uint32_t num_pages, actual;
	uint32_t stats_mask, reserved;
	uint64_t stats[BALLOON_NR_STATS];
};

void virtio_balloon_save(struct virtio_balloon *b, struct balloon_state *s);
/* Before the transport is restored. 0 or -EINVAL with @why. */
int virtio_balloon_restore(struct virtio_balloon *b, const struct balloon_state *s,
			   const char **why) __attribute__((warn_unused_result));

#endif
