// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk as a guest drives it: the real transport, queue (virtq_pop's
 * chain walk), request parser and both engines, over fake guest RAM and a
 * 64-sector disk in a memfd. The input's first byte picks one of nine
 * drives (io_uring or sync engine, read-only or not, unsafe or writeback
 * cache; the ninth rate-limited); then come the features, the queue's
 * geometry, and up to MAX_OPS driver moves: raw descriptors, chains, block
 * requests (reads, writes, flushes, GET_ID, unknown types, odd headers,
 * data and status buffers), avail ring entries and indices, kicks, a
 * reset; and on the host's side the backing file shrinking under the
 * drive (I/O errors) and time passing (the rate limiter's timer fires).
 *
 * The rate limits refill over days: within an input the buckets only
 * drain, so throttling is deterministic, and the limiter is set afresh for
 * each input.
 *
 * Every kick runs the queue and waits for the engine (io_uring completes
 * in-process), then checks the used ring (fz_vq_check_used). The disk and
 * guest RAM are put back before each input.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "devices/virtio/block/engine.h"
#include "event_loop.h"
#include "fuzz_virtio.h"
#include "log.h"

#define DISK_SECTORS 64
#define NR_DRIVES 9
#define LIMITED 8 /* the rate-limited drive */
#define MAX_OPS 128

static const struct blk_drive_config limits = {
	.ops_size = 3, .ops_refill_ms = 1000000000, .bw_size = 8192, .bw_refill_ms = 1000000000
};
static struct event_loop loop;
static struct virtio_blk drives[NR_DRIVES];
static int disk_fd = -1;
static uint8_t disk[DISK_SECTORS * BLK_SECTOR_SIZE];

static void setup_once(void)
{
	char path[64], err[200] = "";
	log_init(LOG_OFF, STDERR_FILENO);
	fz_mem_init();
	for (unsigned int i = 0; i < sizeof(disk); i++)
		disk[i] = (uint8_t)(i / BLK_SECTOR_SIZE + i);
	disk_fd = memfd_create("ember-fuzz-disk", MFD_CLOEXEC);
	if (disk_fd < 0 || pwrite(disk_fd, disk, sizeof(disk), 0) != (ssize_t)sizeof(disk))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", disk_fd);
	for (unsigned int i = 0; i < NR_DRIVES; i++) {
		/* a serial longer than GET_ID's 20 bytes, and a short one */
		const char *id = i & 4 ? "d" : "fuzz-drive-serial-0123456789";
		struct blk_drive_config cfg = { .id = id, .path = path };
		cfg.engine = i & 1 ? BLK_ENGINE_SYNC : BLK_ENGINE_URING;
		cfg.read_only = i & 2;
		cfg.cache = i & 4 ? BLK_CACHE_WRITEBACK : BLK_CACHE_UNSAFE;
		if (i == LIMITED) {
			cfg.engine = BLK_ENGINE_SYNC;
			cfg.read_only = false;
			cfg.cache = BLK_CACHE_UNSAFE;
		}
		if (virtio_blk_init(&drives[i], &fz_mem, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz_virtio_blk: %s\n", err);
			abort();
		}
	}
	/* The limited drive's timer goes on a loop (the others need none:
	 * kick() reaps io_uring completions itself). */
	if (event_loop_init(&loop) < 0 || virtio_blk_add_to_loop(&drives[LIMITED], &loop) < 0)
		abort();
}

/* The limiter as configured, buckets full, its timer off. */
static void limits_reset(struct virtio_blk *b)
{
	char err[200];
	if (b != &drives[LIMITED])
		return;
	if (virtio_blk_update(b, NULL, &limits, err, sizeof(err)) < 0)
		abort();
	fz_timer_off(b->timer_fd);
}

/* Time passes: the buckets are full again and the limiter's timer fires. */
static void op_time_passes(struct virtio_blk *b, struct fz_vq *q)
{
	struct itimerspec now = { .it_value = { 0, 1 } };
	if (b != &drives[LIMITED])
		return;
	limits_reset(b);
	timerfd_settime(b->timer_fd, TFD_TIMER_ABSTIME, &now, NULL);
	event_loop_run_once(&loop, 0);
	fz_vq_check_used(q);
}

/* The backing file shrinks under the drive: reads past its end fail. */
static void op_shrink(struct fuzz_in *in)
{
	if (ftruncate(disk_fd, fuzz_u16(in) % sizeof(disk)) < 0)
		abort();
}

/* The queue's notification, then (with @wait) every request to its end.
 * What the device returned is checked at once, before the driver touches
 * the table again; a request still in flight without @wait is dropped by
 * the reset that follows (blk_complete: an older generation). */
static void kick(struct virtio_blk *b, struct fz_vq *q, bool wait)
{
	virtio_mmio_notify(&b->transport, 0);
	if (wait && virtio_blk_drain(b) < 0) {
		fprintf(stderr, "fuzz_virtio_blk: requests never completed\n");
		abort();
	}
	fz_vq_check_used(q);
}

/* A block request the usual way (header, data, status) with every part
 * open to the input: type, sector, header split or short, data buffers
 * of whole sectors or not and of either direction, a status buffer of
 * 0-3 bytes or none. */
static void op_request(struct fz_vq *q, struct fuzz_in *in)
{
	static const uint32_t types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
					  VIRTIO_BLK_T_GET_ID };
	uint8_t shape = fuzz_u8(in), kind = fuzz_u8(in);
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} h = { .type = kind & 4 ? fuzz_u32(in) : types[kind & 3] };
	h.sector = kind & 8 ? fuzz_u64(in) : fuzz_u8(in) % (DISK_SECTORS + 2);
	struct fz_seg s[FZ_MAX_SEGS];
	unsigned int n = 0;

	uint64_t hdr = fz_alloc(sizeof(h));
	fz_write(hdr, &h, sizeof(h));
	switch (shape & 3) {
	case 2:
		s[n++] = (struct fz_seg){ hdr, 8, 0 };
		s[n++] = (struct fz_seg){ hdr + 8, 8, 0 };
		break;
	case 3:
		s[n++] = (struct fz_seg){ hdr, fuzz_u8(in) % 24, 0 };
		break;
	default:
		s[n++] = (struct fz_seg){ hdr, sizeof(h), 0 };
		break;
	}
	bool dev_writes = h.type == VIRTIO_BLK_T_IN || h.type == VIRTIO_BLK_T_GET_ID;
	if (shape & 0x40)
		dev_writes = !dev_writes;
	for (unsigned int i = 0, nd = (shape >> 2) & 3; i < nd; i++) {
		uint8_t l = fuzz_u8(in);
		uint32_t len = l & 0x80 ? l & 0x7f : (l % 17) * BLK_SECTOR_SIZE;
		uint64_t gpa = fz_alloc(len);
		if (!dev_writes)
			fz_fill(in, gpa, len);
		s[n++] = (struct fz_seg){ gpa, len, dev_writes ? VIRTQ_DESC_F_WRITE : 0 };
	}
	if (!(shape & 0x80)) {
		uint32_t len = shape & 0x20 ? fuzz_u8(in) % 4 : 1;
		s[n++] = (struct fz_seg){ fz_alloc(len), len, VIRTQ_DESC_F_WRITE };
	}
	uint16_t head = fz_vq_add(q, s, n);
	if (!(shape & 0x10) || (kind & 0x80))
		fz_vq_publish(q, head);
}

/* The driver resets the device and sets it up again (requests may be in flight). */
static void op_reset(struct virtio_blk *b, struct fz_vq *q, struct fuzz_in *in)
{
	fz_negotiate(&b->transport, in);
	fz_vq_setup(q, &b->transport, 0, in);
	fq_driver_ok(&b->transport);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		setup_once();
		ready = true;
	}
	struct fuzz_in in = { data, size };
	struct virtio_blk *b = &drives[fuzz_u8(&in) % NR_DRIVES];
	struct fz_vq q;

	fz_mem_reset();
	if (ftruncate(disk_fd, sizeof(disk)) < 0 ||
	    pwrite(disk_fd, disk, sizeof(disk), 0) != (ssize_t)sizeof(disk))
		abort();
	limits_reset(b);
	b->logged_bad_chain = false;
	b->transport.config_generation = 0;
	op_reset(b, &q, &in);

	for (unsigned int n = 0; n < MAX_OPS && in.left; n++) {
		uint8_t op = fuzz_u8(&in);
		switch (op % 12) {
		case 0:
			fz_op_desc(&q, &in);
			break;
		case 1:
			fz_op_chain(&q, &in);
			break;
		case 2:
		case 3:
		case 4:
			op_request(&q, &in);
			break;
		case 5:
			fz_op_publish(&q, &in);
			break;
		case 6:
			fz_op_avail_idx(&q, &in);
			break;
		case 7:
			fz_op_ring_flags(&q, &in);
			break;
		case 8:
			fz_op_recycle(&q, &in);
			break;
		case 9:
			if (op & 0x80)
				op_shrink(&in);
			else if (op & 0x40)
				op_time_passes(b, &q);
			else
				fz_op_poke(&in);
			break;
		case 10:
			kick(b, &q, true);
			break;
		default:
			if (op & 0x80) {
				kick(b, &q, false);
				op_reset(b, &q, &in);
			} else {
				kick(b, &q, true);
			}
			break;
		}
	}
	kick(b, &q, true);
	limits_reset(b);
	return 0;
}
