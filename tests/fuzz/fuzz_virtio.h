/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the virtio targets (fuzz_virtio_blk, fuzz_virtio_net, fuzz_vsock,
 * fuzz_mmio): guest RAM with a hole and guard pages, and a guest driver whose
 * every move comes from the fuzzer's input: descriptor table entries (loops,
 * a next outside the table, INDIRECT, buffers outside RAM or across the
 * hole), whole chains, avail ring entries and indices, ring flags and event
 * indices. After each kick, fz_vq_check_used() holds the device to what it
 * may return: a head inside the table, each head no more often than it was
 * made available, and no more bytes written than the chain's writable
 * buffers hold.
 *
 * Everything here is set up once; fz_mem_reset() and fz_vq_setup() put it
 * back to the same state for every input, so a run is reproducible.
 *
 * (The Makefile's fuzz rule tracks fuzz.h only: after editing this file,
 * remove build/fuzz/tests/fuzz/ before make fuzz-build.)
 */
#ifndef EMBER_FUZZ_VIRTIO_H
#define EMBER_FUZZ_VIRTIO_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "fake_virtq.h"
#include "fuzz.h"

/* Guest RAM: 1 MiB at 0, a 64 KiB hole, 1 MiB from FZ_HIGH. */
#define FZ_LOW_END 0x100000ull
#define FZ_HIGH 0x110000ull
#define FZ_RAM_END 0x210000ull
#define FZ_PAGE 4096ull
/* Queue @i at its usual place: descriptors, avail ring at +4 KiB, used ring
 * at +8 KiB (room for 256 entries each). */
#define FZ_QUEUE(i) (0x10000ull * ((i) + 1))
#define FZ_RINGS_START FZ_QUEUE(0)
#define FZ_RINGS_END FZ_QUEUE(VIRTIO_MMIO_MAX_QUEUES)
/* Buffers come from here to the end of low RAM, big ones from FZ_HIGH. */
#define FZ_BUF 0x80000ull
#define FZ_MAX_SEGS 8

static struct guest_mem fz_mem;
static uint64_t fz_next_buf;
/* The input put a buffer over some ring, or a ring somewhere odd: the
 * device may then scribble over rings, and the used-ring check is off. */
static bool fz_wild;
/* Buffers the device writes may overlap, so what it wrote into one may
 * since have been overwritten: the input placed a buffer or a descriptor
 * itself, named heads itself, reused descriptors still posted (the table
 * wrapped), or the buffer area wrapped. */
static bool fz_aliased;
/* The input wrote an avail index or ring entry itself: the device may
 * take a head more often than fz_vq_publish() posted it. */
static bool fz_forged;

/* Map guest RAM, each region between two inaccessible pages, so that a host
 * access past a region's end faults instead of reading the next mapping. */
static inline void fz_mem_init(void)
{
	if (guest_mem_layout(&fz_mem, FZ_RAM_END - FZ_HIGH + FZ_LOW_END, FZ_LOW_END, FZ_HIGH) < 0)
		abort();
	for (unsigned int i = 0; i < fz_mem.nr_regions; i++) {
		struct guest_region *r = &fz_mem.regions[i];
		uint8_t *p = mmap(NULL, r->size + 2 * FZ_PAGE, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED || mprotect(p + FZ_PAGE, r->size, PROT_READ | PROT_WRITE) < 0)
			abort();
		r->host = p + FZ_PAGE;
	}
}

/* All of guest RAM back to zeros (only the pages touched cost anything). */
static inline void fz_mem_reset(void)
{
	for (unsigned int i = 0; i < fz_mem.nr_regions; i++)
		madvise(fz_mem.regions[i].host, fz_mem.regions[i].size, MADV_DONTNEED);
	fz_next_buf = FZ_BUF;
	fz_wild = false;
	fz_aliased = false;
	fz_forged = false;
}

static inline bool fz_overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	uint64_t aend, bend;
	if (__builtin_add_overflow(a, alen, &aend))
		aend = UINT64_MAX;
	if (__builtin_add_overflow(b, blen, &bend))
		bend = UINT64_MAX;
	return a < bend && b < aend;
}

/* Note a buffer the device may be handed: over the rings, it makes the input wild. */
static inline void fz_note_buffer(uint64_t gpa, uint64_t len)
{
	if (fz_overlaps(gpa, len ? len : 1, FZ_RINGS_START, FZ_RINGS_END - FZ_RINGS_START))
		fz_wild = true;
}

/* A fresh buffer of @len bytes: low RAM from FZ_BUF, then high RAM, then
 * round again (the input is then aliased). */
static inline uint64_t fz_alloc(uint64_t len)
{
	uint64_t end = fz_next_buf < FZ_HIGH ? FZ_LOW_END : FZ_RAM_END;
	if (fz_next_buf + len > end) {
		if (fz_next_buf < FZ_HIGH && len <= FZ_RAM_END - FZ_HIGH) {
			fz_next_buf = FZ_HIGH;
		} else {
			fz_next_buf = len <= FZ_LOW_END - FZ_BUF ? FZ_BUF : FZ_HIGH;
			fz_aliased = true;
		}
	}
	uint64_t gpa = fz_next_buf;
	fz_next_buf = (fz_next_buf + len + 7) & ~7ull;
	return gpa;
}

/* A guest-physical address for a buffer of @len bytes: mostly a fresh
 * buffer, else anywhere in or around RAM, by a region's edge, inside the
 * rings, or any 64-bit value. */
static inline uint64_t fz_gpa(struct fuzz_in *in, uint64_t len)
{
	static const uint64_t edges[] = { 0, FZ_LOW_END, FZ_HIGH, FZ_RAM_END };
	uint8_t mode = fuzz_u8(in);
	if ((mode & 7) >= 4)
		fz_aliased = true;
	switch (mode & 7) {
	case 4:
		return fuzz_u32(in) % (FZ_RAM_END + FZ_PAGE);
	case 5:
		return edges[(mode >> 3) & 3] + (uint64_t)(int64_t)(int8_t)fuzz_u8(in);
	case 6:
		return FZ_QUEUE((mode >> 3) & 3) + fuzz_u16(in) % 0x3000;
	case 7:
		return fuzz_u64(in);
	default:
		return fz_alloc(len);
	}
}

/* A buffer length: small, whole sectors, 16 or 32 bits. */
static inline uint32_t fz_len(struct fuzz_in *in)
{
	uint8_t mode = fuzz_u8(in);
	switch (mode & 3) {
	case 0:
		return mode >> 2;
	case 1:
		return (mode >> 2) * 512u;
	case 2:
		return fuzz_u16(in);
	default:
		return fuzz_u32(in);
	}
}

/* Copy up to @len bytes into guest memory at @gpa; never into a used ring,
 * which only the device writes (the check reads it). */
static inline void fz_write(uint64_t gpa, const void *src, uint64_t len)
{
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		if (fz_overlaps(gpa, len, FZ_QUEUE(i) + 0x2000, 0x1000))
			return;
	void *p = guest_mem_ptr(&fz_mem, gpa, len);
	if (p)
		memcpy(p, src, len);
}

/* The guest fills a readable buffer: a count, then that many input bytes. */
static inline void fz_fill(struct fuzz_in *in, uint64_t gpa, uint64_t len)
{
	uint8_t buf[256];
	uint64_t n = fuzz_u8(in);
	if (n > len)
		n = len;
	fuzz_take(in, buf, n);
	fz_write(gpa, buf, n);
}

/* Disarm timerfd @fd and drop an expiry it counted. Only an armed one is
 * disarmed: that costs far more than a look (hrtimer cancel in a VM). */
static inline void fz_timer_off(int fd)
{
	struct itimerspec cur, off = { 0 };
	uint64_t n;
	if (timerfd_gettime(fd, &cur) == 0 && (cur.it_value.tv_sec || cur.it_value.tv_nsec))
		timerfd_settime(fd, 0, &off, NULL);
	if (read(fd, &n, sizeof(n)) < 0)
		n = 0;
}

/* ---- the driver's side of one split virtqueue --------------------------------- */

struct fz_seg {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
};

struct fz_vq {
	struct virtio_mmio *t;
	unsigned int qi;
	uint16_t size; /* as written to QueueNum: may be one the device refuses */
	uint64_t desc, avail, used;
	uint16_t next_desc, avail_idx, used_seen;
	unsigned int nr_written; /* descriptors fz_vq_add() wrote */
	uint32_t posted[VIRTQ_MAX_SIZE]; /* times each head was made available, less returns */
	/* Heads the device gave back, for the driver to post again. */
	uint16_t returned[64];
	unsigned int nr_returned;
	/* A target's own check of each used element (not when fz_wild). */
	void (*on_used)(struct fz_vq *q, uint16_t head, uint32_t len);
};

static inline void *fz_ring(uint64_t base, uint64_t off, uint64_t len)
{
	uint64_t gpa;
	if (__builtin_add_overflow(base, off, &gpa))
		return NULL;
	return guest_mem_ptr(&fz_mem, gpa, len);
}

/* Ring fields through memcpy: a hostile placement may misalign them (the
 * device refuses such a queue; the driver still writes it). One thread
 * runs both sides, so no barriers are needed. */
static inline bool fz_get(uint64_t base, uint64_t off, void *dst, uint64_t len)
{
	const void *p = fz_ring(base, off, len);
	if (p)
		memcpy(dst, p, len);
	return p;
}

static inline void fz_put(uint64_t base, uint64_t off, const void *src, uint64_t len)
{
	void *p = fz_ring(base, off, len);
	if (p)
		memcpy(p, src, len);
}

/*
 * Lay out queue @qi of @t: its size (a power of 2 up to 256 mostly; any
 * 16-bit value otherwise) and, now and then, rings wherever the input says.
 * Leaves the queue ready (unless the input says otherwise).
 */
static inline void fz_vq_setup(struct fz_vq *q, struct virtio_mmio *t, unsigned int qi,
			       struct fuzz_in *in)
{
	uint8_t s = fuzz_u8(in);
	memset(q, 0, sizeof(*q));
	q->t = t;
	q->qi = qi;
	q->size = (s & 0x80) && (s & 0x40) ? fuzz_u16(in) : (uint16_t)(1u << (s % 9));
	q->desc = FZ_QUEUE(qi);
	q->avail = FZ_QUEUE(qi) + 0x1000;
	q->used = FZ_QUEUE(qi) + 0x2000;
	if (q->size > 256)
		fz_wild = true; /* the usual places overlap: the device refuses it anyway */
	if ((s & 0xc0) == 0x80) {
		/* Hostile placement: misaligned, outside RAM, over each other. */
		q->desc = fz_gpa(in, 16ull * q->size);
		q->avail = fz_gpa(in, 6ull + 2ull * q->size);
		q->used = fz_gpa(in, 6ull + 8ull * q->size);
		fz_wild = true;
	}
	/* Fresh rings, as a driver sets them up (a reset's leftovers go). */
	uint8_t *d = fz_ring(q->desc, 0, 16ull * q->size),
		*a = fz_ring(q->avail, 0, 6ull + 2ull * q->size),
		*u = fz_ring(q->used, 0, 6ull + 8ull * q->size);
	if (d)
		memset(d, 0, 16ull * q->size);
	if (a)
		memset(a, 0, 6ull + 2ull * q->size);
	if (u)
		memset(u, 0, 6ull + 8ull * q->size);
	fq_reg_write(t, 0x030, qi);
	fq_reg_write(t, 0x038, q->size);
	fq_reg_write(t, 0x080, (uint32_t)q->desc);
	fq_reg_write(t, 0x084, (uint32_t)(q->desc >> 32));
	fq_reg_write(t, 0x090, (uint32_t)q->avail);
	fq_reg_write(t, 0x094, (uint32_t)(q->avail >> 32));
	fq_reg_write(t, 0x0a0, (uint32_t)q->used);
	fq_reg_write(t, 0x0a4, (uint32_t)(q->used >> 32));
	fq_reg_write(t, 0x044, (s & 0xe0) != 0xe0);
}

/* Write descriptor @slot. */
static inline void fz_vq_desc(struct fz_vq *q, uint16_t slot, uint64_t addr, uint32_t len,
			      uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };
	fz_note_buffer(addr, len);
	fz_put(q->desc, 16ull * slot, &d, sizeof(d));
}

/* Write @n segments as a chain in the next free slots; returns its head. */
static inline uint16_t fz_vq_add(struct fz_vq *q, const struct fz_seg *s, unsigned int n)
{
	if (!q->size)
		return 0;
	uint16_t head = q->next_desc % q->size;
	q->nr_written += n;
	if (q->nr_written > q->size)
		fz_aliased = true; /* over descriptors that may still be posted */
	for (unsigned int i = 0; i < n; i++) {
		uint16_t slot = (uint16_t)((head + i) % q->size);
		uint16_t flags = (uint16_t)(s[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		fz_vq_desc(q, slot, s[i].addr, s[i].len, flags, (uint16_t)((slot + 1) % q->size));
	}
	q->next_desc = (uint16_t)((head + n) % q->size);
	return head;
}

/* Make @head available (no notification). */
static inline void fz_vq_publish(struct fz_vq *q, uint16_t head)
{
	if (q->size)
		fz_put(q->avail, 4 + 2ull * (q->avail_idx % q->size), &head, 2);
	if (head < VIRTQ_MAX_SIZE)
		q->posted[head]++;
	q->avail_idx++;
	fz_put(q->avail, 2, &q->avail_idx, 2);
}

/* @nr device-writable chains of @len bytes each, every one split into @segs
 * (1-4) descriptors of about equal size; made available unless !@publish. */
static inline void fz_post_writable(struct fz_vq *q, uint32_t len, unsigned int nr,
				    unsigned int segs, bool publish)
{
	for (unsigned int c = 0; c < nr; c++) {
		struct fz_seg s[4];
		uint64_t gpa = fz_alloc(len);
		for (unsigned int i = 0; i < segs; i++) {
			uint32_t part = len / segs, from = i * part;
			if (i == segs - 1)
				part = len - from;
			s[i] = (struct fz_seg){ gpa + from, part, VIRTQ_DESC_F_WRITE };
		}
		uint16_t head = fz_vq_add(q, s, segs);
		if (publish)
			fz_vq_publish(q, head);
	}
}

/* The writable bytes of the chain at @head as virtq_pop() would take it,
 * or -1 when it would refuse the chain. */
static inline int64_t fz_vq_in_len(const struct fz_vq *q, uint16_t head)
{
	uint64_t in = 0;
	bool in_part = false;
	uint16_t idx = head;
	for (unsigned int count = 0; count < q->size; count++) {
		struct virtq_desc d;
		if (!fz_get(q->desc, 16ull * idx, &d, sizeof(d)) ||
		    (d.flags & VIRTQ_DESC_F_INDIRECT) || !guest_mem_ptr(&fz_mem, d.addr, d.len))
			return -1;
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			in += d.len;
			in_part = true;
		} else if (in_part) {
			return -1;
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return (int64_t)in;
		if (d.next >= q->size)
			return -1;
		idx = d.next;
	}
	return -1;
}

/* Copy the first @len bytes of the writable buffers of the chain at @head
 * (what the device wrote there); false if they hold fewer. Only for a
 * chain fz_vq_in_len() accepts. */
static inline bool fz_vq_read_in(const struct fz_vq *q, uint16_t head, void *dst, uint64_t len)
{
	uint8_t *out = dst;
	uint16_t idx = head;
	for (unsigned int count = 0; len && count < q->size; count++) {
		struct virtq_desc d;
		if (!fz_get(q->desc, 16ull * idx, &d, sizeof(d)))
			return false;
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			uint64_t k = d.len < len ? d.len : len;
			const void *p = guest_mem_ptr(&fz_mem, d.addr, k);
			if (!p)
				return false;
			memcpy(out, p, k);
			out += k;
			len -= k;
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT) || d.next >= q->size)
			break;
		idx = d.next;
	}
	return len == 0;
}

/*
 * Take what the device put on the used ring since the last call and check
 * it: every head inside the table, and no used length beyond the bytes the
 * chain lets the device write. A violation aborts (a finding).
 */
static inline void fz_vq_check_used(struct fz_vq *q)
{
	uint16_t idx;
	if (!q->size || !fz_get(q->used, 2, &idx, 2))
		return;
	unsigned int n = (uint16_t)(idx - q->used_seen);
	if (n > q->size) {
		/* The driver let the ring wrap without reading it. */
		q->used_seen = (uint16_t)(idx - q->size);
		n = q->size;
	}
	for (unsigned int i = 0; i < n; i++, q->used_seen++) {
		struct virtq_used_elem e;
		if (!fz_get(q->used, 4 + 8ull * (q->used_seen % q->size), &e, sizeof(e)))
			return;
		q->returned[q->nr_returned++ % 64] = (uint16_t)e.id;
		if (fz_wild)
			continue;
		if (e.id >= q->size) {
			fprintf(stderr, "queue %u: used head %u outside a table of %u\n", q->qi,
				e.id, q->size);
			abort();
		}
		if (!fz_forged && !q->posted[e.id]) {
			fprintf(stderr,
				"queue %u: head %u returned more often than it was posted\n", q->qi,
				e.id);
			abort();
		}
		if (q->posted[e.id])
			q->posted[e.id]--;
		int64_t in_len = fz_vq_in_len(q, (uint16_t)e.id);
		if (in_len >= 0 && e.len > (uint64_t)in_len) {
			fprintf(stderr,
				"queue %u: head %u used with %u bytes, its chain holds %lld\n",
				q->qi, e.id, e.len, (long long)in_len);
			abort();
		}
		if (q->on_used && in_len >= 0)
			q->on_used(q, (uint16_t)e.id, e.len);
	}
}

/* ---- operations every virtio target takes from its input -------------------------- */

/* One descriptor, every field from the input. */
static inline void fz_op_desc(struct fz_vq *q, struct fuzz_in *in)
{
	uint16_t slot = fuzz_u8(in), flags = fuzz_u8(in), next = fuzz_u8(in);
	uint32_t len = fz_len(in);
	uint64_t addr = fz_gpa(in, len);
	fz_aliased = true;
	if (q->size)
		fz_vq_desc(q, slot % q->size, addr, len, flags, next);
}

/* A chain of 1-8 segments: lengths, directions, places and the readable
 * bytes from the input; published unless the input says not to. */
static inline void fz_op_chain(struct fz_vq *q, struct fuzz_in *in)
{
	struct fz_seg s[FZ_MAX_SEGS];
	uint8_t shape = fuzz_u8(in);
	unsigned int n = 1 + (shape & 7);
	for (unsigned int i = 0; i < n; i++) {
		uint8_t f = fuzz_u8(in);
		s[i].len = fz_len(in);
		s[i].addr = fz_gpa(in, s[i].len);
		s[i].flags = f & 0x80 ? (uint16_t)(f & 7) : (f & 1 ? VIRTQ_DESC_F_WRITE : 0);
		if (!(s[i].flags & VIRTQ_DESC_F_WRITE))
			fz_fill(in, s[i].addr, s[i].len);
	}
	uint16_t head = fz_vq_add(q, s, n);
	if (!(shape & 0x80))
		fz_vq_publish(q, head);
}

/* An avail ring entry naming any head at all. */
static inline void fz_op_publish(struct fz_vq *q, struct fuzz_in *in)
{
	fz_aliased = true;
	fz_vq_publish(q, fuzz_u16(in));
}

/* The avail index moved by any amount (past the ring, backwards). */
static inline void fz_op_avail_idx(struct fz_vq *q, struct fuzz_in *in)
{
	fz_aliased = true;
	fz_forged = true;
	q->avail_idx = (uint16_t)(q->avail_idx + fuzz_u16(in));
	fz_put(q->avail, 2, &q->avail_idx, 2);
}

/* NO_INTERRUPT and used_event (EVENT_IDX). */
static inline void fz_op_ring_flags(struct fz_vq *q, struct fuzz_in *in)
{
	uint16_t flags = fuzz_u8(in), event = fuzz_u16(in);
	fz_put(q->avail, 0, &flags, 2);
	fz_put(q->avail, 4 + 2ull * q->size, &event, 2);
}

/* Post again chains the device returned (a driver refilling its RX ring). */
static inline void fz_op_recycle(struct fz_vq *q, struct fuzz_in *in)
{
	unsigned int n = fuzz_u8(in) % 16;
	unsigned int have = q->nr_returned < 64 ? q->nr_returned : 64;
	fz_aliased = true; /* a head returned twice is posted twice */
	for (unsigned int i = 0; i < n && i < have; i++)
		fz_vq_publish(q, q->returned[(q->nr_returned - 1 - i) % 64]);
}

/* The guest writes bytes anywhere in its RAM (a header after publishing it). */
static inline void fz_op_poke(struct fuzz_in *in)
{
	uint8_t buf[64];
	uint8_t n = fuzz_u8(in) % sizeof(buf);
	uint64_t gpa = fz_gpa(in, n);
	fuzz_take(in, buf, n);
	if (fz_overlaps(gpa, n, FZ_RINGS_START, FZ_RINGS_END - FZ_RINGS_START))
		fz_forged = true;
	fz_write(gpa, buf, n);
}

/*
 * Negotiate features: what the device offers, less the bits the input
 * clears, or (now and then) any 64 bits. Then status up to FEATURES_OK.
 */
static inline void fz_negotiate(struct virtio_mmio *t, struct fuzz_in *in)
{
	uint8_t mode = fuzz_u8(in);
	fq_reg_write(t, 0x014, 0);
	uint64_t offered = fq_reg_read(t, 0x010);
	fq_reg_write(t, 0x014, 1);
	offered |= (uint64_t)fq_reg_read(t, 0x010) << 32;
	uint64_t f = offered & ~fuzz_u64(in);
	if (mode & 1)
		f |= 1ull << VIRTIO_F_VERSION_1;
	if ((mode & 0xf0) == 0xf0)
		f = fuzz_u64(in);
	fq_begin(t, f);
}

#endif
