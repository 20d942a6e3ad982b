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
 * in-process), then checks the used ring (fz_vq_check_used) and what came
 * back for the well-formed requests op_request() made: used length, GET_ID
 * serial, and data read equal to a copy of the disk kept up to date with
 * the writes (sectors written in the same kick aside: requests in flight
 * together may run in any order). The disk and guest RAM are put back
 * before each input.
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

/* A well-formed request op_request() made (header, data the right way,
 * one status byte), as it was written. */
struct req_rec {
	bool valid;
	uint32_t type;
	uint64_t sector, hdr, status;
	unsigned int nr_descs, nr_data;
	struct fz_seg data[3];
	struct virtq_desc descs[FZ_MAX_SEGS];
};
static struct req_rec recs[VIRTQ_MAX_SIZE];
/* The disk as the requests that came back OK left it, while that is known. */
static uint8_t shadow[sizeof(disk)];
static bool shadow_ok;
/* The used elements of one kick, checked together. */
static struct virtq_used_elem batch[2 * VIRTQ_MAX_SIZE];
static unsigned int nr_batch;

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

static void batch_add(struct fz_vq *q, uint16_t head, uint32_t len)
{
	(void)q;
	if (nr_batch < sizeof(batch) / sizeof(batch[0]))
		batch[nr_batch++] = (struct virtq_used_elem){ head, len };
}

/* The request @r still reads as recorded (descriptors and header)? */
static bool rec_intact(const struct fz_vq *q, const struct req_rec *r, uint16_t head)
{
	uint32_t type;
	uint64_t sector;
	for (unsigned int i = 0; i < r->nr_descs; i++) {
		struct virtq_desc d;
		if (!fz_get(q->desc, 16ull * ((head + i) % q->size), &d, sizeof(d)) ||
		    memcmp(&d, &r->descs[i], sizeof(d)))
			return false;
	}
	return fz_get(r->hdr, 0, &type, 4) && fz_get(r->hdr, 8, &sector, 8) && type == r->type &&
	    sector == r->sector;
}

/* Byte @at of @r's data buffers. */
static uint8_t *rec_byte(const struct req_rec *r, uint64_t at)
{
	for (unsigned int i = 0; i < r->nr_data; at -= r->data[i++].len)
		if (at < r->data[i].len)
			return guest_mem_ptr(&fz_mem, r->data[i].addr + at, 1);
	return NULL;
}

static uint64_t rec_data_len(const struct req_rec *r)
{
	uint64_t n = 0;
	for (unsigned int i = 0; i < r->nr_data; i++)
		n += r->data[i].len;
	return n;
}

static void bad_answer(uint16_t head, const char *what)
{
	fprintf(stderr, "fuzz_virtio_blk: request at head %u: %s\n", head, what);
	abort();
}

/* What one kick brought back for recorded requests: used length, GET_ID's
 * serial, read data against the shadow disk; then the writes go into it. */
static void check_batch(struct virtio_blk *b, struct fz_vq *q, uint64_t writes_before)
{
	char serial[VIRTIO_BLK_ID_BYTES] = { 0 };
	uint64_t dirty = 0, outs = 0; /* sectors written OK in this kick; writes seen */
	bool trust = shadow_ok;
	memcpy(serial, b->id, strnlen(b->id, sizeof(serial)));
	if (fz_aliased || fz_forged || fz_wild) {
		/* Another chain may have written over a request's data or
		 * status: nothing read back can be trusted from now on. */
		shadow_ok = false;
		nr_batch = 0;
		return;
	}
	for (unsigned int i = 0; i < nr_batch; i++) {
		struct req_rec *r = &recs[batch[i].id % VIRTQ_MAX_SIZE];
		uint8_t st;
		if (r->valid && !rec_intact(q, r, (uint16_t)batch[i].id))
			r->valid = false;
		if (!r->valid || r->type != VIRTIO_BLK_T_OUT)
			continue;
		outs++;
		if (fz_get(r->status, 0, &st, 1) && st == VIRTIO_BLK_S_OK) {
			uint64_t bits = 0;
			for (uint64_t k = 0; k < rec_data_len(r) / BLK_SECTOR_SIZE; k++)
				bits |= 1ull << ((r->sector + k) % DISK_SECTORS);
			/* Two writes to a sector in one kick: either may have won. */
			if (dirty & bits)
				trust = shadow_ok = false;
			dirty |= bits;
		}
	}
	/* Writes the device did that no record accounts for changed the disk
	 * too (maybe under this kick's reads). */
	if (b->m.writes - writes_before != outs)
		trust = shadow_ok = false;
	for (unsigned int i = 0; i < nr_batch; i++) {
		uint16_t head = (uint16_t)batch[i].id;
		struct req_rec *r = &recs[head % VIRTQ_MAX_SIZE];
		uint64_t n = rec_data_len(r);
		uint8_t st;
		if (!r->valid || !fz_get(r->status, 0, &st, 1) || st != VIRTIO_BLK_S_OK)
			continue;
		r->valid = false;
		if (r->type == VIRTIO_BLK_T_GET_ID) {
			n = n < sizeof(serial) ? n : sizeof(serial);
			if (batch[i].len != n + 1)
				bad_answer(head, "GET_ID used length");
			for (uint64_t k = 0; trust && k < n; k++)
				if (*rec_byte(r, k) != (uint8_t)serial[k])
					bad_answer(head, "GET_ID is not the serial");
		} else if (r->type == VIRTIO_BLK_T_IN) {
			uint64_t first = r->sector * BLK_SECTOR_SIZE;
			if (batch[i].len != n + 1)
				bad_answer(head, "read's used length");
			for (uint64_t k = 0; trust && k < n; k++)
				if (!(dirty >> ((first + k) / BLK_SECTOR_SIZE) & 1) &&
				    *rec_byte(r, k) != shadow[first + k])
					bad_answer(head, "read data differ from the disk");
		} else {
			if (batch[i].len != 1)
				bad_answer(head, "write's used length");
			for (uint64_t k = 0; shadow_ok && k < n; k++)
				shadow[r->sector * BLK_SECTOR_SIZE + k] = *rec_byte(r, k);
		}
	}
	nr_batch = 0;
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
	uint64_t writes = b->m.writes;
	limits_reset(b);
	timerfd_settime(b->timer_fd, TFD_TIMER_ABSTIME, &now, NULL);
	event_loop_run_once(&loop, 0);
	fz_vq_check_used(q);
	check_batch(b, q, writes);
}

/* The backing file shrinks under the drive: reads past its end fail. */
static void op_shrink(struct fuzz_in *in)
{
	if (ftruncate(disk_fd, fuzz_u16(in) % sizeof(disk)) < 0)
		abort();
	shadow_ok = false;
}

/* The queue's notification, then (with @wait) every request to its end.
 * What the device returned is checked at once, before the driver touches
 * the table again; a request still in flight without @wait is dropped by
 * the reset that follows (blk_complete: an older generation). */
static void kick(struct virtio_blk *b, struct fz_vq *q, bool wait)
{
	uint64_t writes = b->m.writes;
	virtio_mmio_notify(&b->transport, 0);
	if (wait && virtio_blk_drain(b) < 0) {
		fprintf(stderr, "fuzz_virtio_blk: requests never completed\n");
		abort();
	}
	fz_vq_check_used(q);
	check_batch(b, q, writes);
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
	bool publish = !(shape & 0x10) || (kind & 0x80);
	/* Recorded when well-formed: then the answer can be checked. */
	struct req_rec *r = &recs[head % VIRTQ_MAX_SIZE];
	r->valid = publish && (shape & 3) != 3 && !(shape & 0x60) && !(shape & 0x80) &&
	    !(kind & 4) && h.type != VIRTIO_BLK_T_FLUSH && n <= q->size;
	if (r->valid) {
		r->type = h.type;
		r->sector = h.sector;
		r->hdr = hdr;
		r->status = s[n - 1].addr;
		r->nr_descs = n;
		r->nr_data = 0;
		for (unsigned int i = 0; i < n; i++) {
			if (!fz_get(q->desc, 16ull * ((head + i) % q->size), &r->descs[i], 16))
				r->valid = false;
			if (i >= ((shape & 3) == 2 ? 2u : 1u) && i < n - 1)
				r->data[r->nr_data++] = s[i];
		}
	}
	if (publish)
		fz_vq_publish(q, head);
}

/* The driver resets the device and sets it up again (requests may be in flight). */
static void op_reset(struct virtio_blk *b, struct fz_vq *q, struct fuzz_in *in)
{
	fz_negotiate(&b->transport, in);
	fz_vq_setup(q, &b->transport, 0, in);
	q->on_used = batch_add;
	memset(recs, 0, sizeof(recs));
	nr_batch = 0;
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
	memcpy(shadow, disk, sizeof(disk));
	shadow_ok = true;
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
				shadow_ok = false; /* writes may still land */
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
