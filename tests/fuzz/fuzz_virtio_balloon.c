// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-balloon as a guest drives it: the real transport, queues and
 * device over fake guest RAM (with a hole and guard pages), every feature
 * offered (statistics, deflate on OOM, free page reporting). Two copies:
 * the second takes the first's place when the input snapshots and
 * restores (virtio_balloon_save/restore, then the transport's).
 *
 * The input negotiates features and lays out four queues, then up to
 * MAX_OPS moves on a queue it picks: raw descriptors, chains, PFN arrays
 * (PFNs in RAM, in the hole, past the end, any 32 bits), statistics
 * buffers, avail ring entries and indices, ring flags, kicks; and on the
 * device: the statistics tick, configuration-space reads and writes at any
 * offset and width, a new target, a reset, a snapshot and restore.
 *
 * What the device must hold to: every range it releases (the madvise
 * stand-in) lies wholly inside guest RAM and is page-aligned; each used
 * ring is checked (fz_vq_check_used: the device writes nothing into a
 * balloon chain, so every used length is 0); the counters agree.
 */
#include <errno.h>

#include "devices/virtio/balloon/balloon.h"
#include "fuzz_virtio.h"
#include "log.h"

#define MAX_OPS 128

static const struct balloon_config cfg = {
	.amount_mib = 1,
	.deflate_on_oom = true,
	.stats_polling_interval_s = 1,
	.free_page_reporting = true,
};

static struct virtio_balloon devs[2];
static struct virtio_balloon *cur;
static unsigned int cur_copy;
static uint64_t released_bytes;

/* The madvise stand-in: the range must be guest RAM, whole pages. */
static int check_discard(void *addr, uint64_t len)
{
	bool inside = false;
	for (unsigned int i = 0; i < fz_mem.nr_regions && !inside; i++) {
		const struct guest_region *r = &fz_mem.regions[i];
		uint8_t *p = addr;
		inside = p >= r->host && len <= r->size && (uint64_t)(p - r->host) <= r->size - len;
	}
	if (!inside || !len || ((uintptr_t)addr | len) & (FZ_PAGE - 1)) {
		fprintf(stderr, "fuzz_virtio_balloon: released %p + %llu outside guest RAM\n", addr,
			(unsigned long long)len);
		abort();
	}
	released_bytes += len;
	return 0;
}

static void no_used_bytes(struct fz_vq *q, uint16_t head, uint32_t len)
{
	if (len) {
		fprintf(stderr, "fuzz_virtio_balloon: queue %u head %u used with %u bytes\n", q->qi,
			head, len);
		abort();
	}
}

static void setup_once(void)
{
	char err[200] = "";
	log_init(LOG_OFF, STDERR_FILENO);
	fz_mem_init();
	for (unsigned int c = 0; c < 2; c++) {
		if (virtio_balloon_init(&devs[c], &fz_mem, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz_virtio_balloon: %s\n", err);
			abort();
		}
		devs[c].discard = check_discard;
	}
}

/* The device as a fresh process has it. */
static void dev_fresh(struct virtio_balloon *b)
{
	fq_reg_write(&b->transport, 0x070, 0);
	fz_timer_off(b->timer_fd);
	for (unsigned int i = 0; i < 4; i++) {
		uint64_t v;
		if (read(b->transport.notify_fds[i], &v, sizeof(v)) < 0)
			v = 0;
	}
	b->num_pages = balloon_mib_to_pages(cfg.amount_mib);
	b->cfg = cfg;
	memset(&b->m, 0, sizeof(b->m));
	memset(&b->stats, 0, sizeof(b->stats));
	b->transport.needs_reset_events = 0;
	b->transport.config_generation = 0;
	b->logged_bad = false;
}

static void check_rings(struct fz_vq *q)
{
	for (unsigned int i = 0; i < 4; i++)
		fz_vq_check_used(&q[i]);
}

static void kick(struct fz_vq *q, unsigned int qi)
{
	virtio_mmio_notify(&cur->transport, qi);
	check_rings(q);
}

/* A PFN array of 0-300 entries: pages in RAM, runs, the hole, past the
 * end, or any 32 bits. */
static void op_pfns(struct fz_vq *q, struct fuzz_in *in)
{
	static uint32_t pfns[300];
	uint8_t shape = fuzz_u8(in);
	unsigned int n = fuzz_u8(in) + (shape & 1 ? 44u : 0u);
	uint32_t base = fuzz_u16(in) % (uint32_t)(FZ_RAM_END / FZ_PAGE + 4);
	for (unsigned int i = 0; i < n; i++) {
		switch ((shape >> 1) & 3) {
		case 0:
			pfns[i] = base + i; /* one run */
			break;
		case 1:
			pfns[i] = base + (fuzz_u8(in) & 7u); /* repeats, small gaps */
			break;
		case 2:
			pfns[i] = (uint32_t)(FZ_LOW_END / FZ_PAGE) + (fuzz_u8(in) % 24u) - 4;
			break;
		default:
			pfns[i] = fuzz_u32(in);
			break;
		}
	}
	uint32_t len = 4 * n + (shape & 0x40 ? fuzz_u8(in) % 4u : 0u);
	uint64_t at = fz_alloc(len);
	fz_write(at, pfns, len < sizeof(pfns) ? len : sizeof(pfns));
	struct fz_seg s = { at, len, shape & 0x20 ? VIRTQ_DESC_F_WRITE : 0 };
	uint16_t head = fz_vq_add(q, &s, 1);
	if (!(shape & 0x80))
		fz_vq_publish(q, head);
}

/* A statistics buffer: 0-20 entries of any tag and value, maybe cut. */
static void op_stats(struct fz_vq *q, struct fuzz_in *in)
{
	uint8_t n = fuzz_u8(in) % 21;
	uint32_t len = 10u * n + (n & 1 ? fuzz_u8(in) % 10u : 0u);
	uint64_t at = fz_alloc(len);
	fz_fill(in, at, len);
	struct fz_seg s = { at, len, 0 };
	fz_vq_publish(q, fz_vq_add(q, &s, 1));
}

/* The configuration space at any offset and width, read or written. */
static void op_config(struct fuzz_in *in)
{
	uint8_t how = fuzz_u8(in);
	uint64_t off = 0x100 + (fuzz_u8(in) & 0x1f);
	uint8_t buf[8];
	uint32_t len = 1u << (how & 3);
	fuzz_take(in, buf, len);
	if (how & 4)
		virtio_mmio_write(&cur->transport, off, buf, len);
	else
		virtio_mmio_read(&cur->transport, off, buf, len);
}

static void op_reset(struct fz_vq *q, struct fuzz_in *in)
{
	fz_negotiate(&cur->transport, in);
	for (unsigned int i = 0; i < 4; i++) {
		fz_vq_setup(&q[i], &cur->transport, i, in);
		q[i].on_used = no_used_bytes;
	}
	fq_driver_ok(&cur->transport);
	check_rings(q);
}

static void op_restore(struct fz_vq *q)
{
	struct virtio_mmio_state st;
	struct balloon_state bs;
	const char *why = "";
	struct virtio_balloon *next = &devs[!cur_copy];
	virtio_balloon_save(cur, &bs);
	virtio_mmio_save(&cur->transport, &st);
	dev_fresh(cur);
	dev_fresh(next);
	next->num_pages = bs.num_pages; /* the configuration carries the target */
	cur_copy = !cur_copy;
	cur = next;
	for (unsigned int i = 0; i < 4; i++)
		q[i].t = &cur->transport;
	if (virtio_balloon_restore(cur, &bs, &why) < 0) {
		fprintf(stderr, "fuzz_virtio_balloon: own state refused: %s\n", why);
		abort();
	}
	if (virtio_mmio_restore(&cur->transport, &st, &why) < 0)
		return;
	for (unsigned int i = 0; i < 4; i++)
		kick(q, i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		setup_once();
		ready = true;
	}
	struct fuzz_in in = { data, size };
	struct fz_vq q[4];
	fz_mem_reset();
	cur_copy = 0;
	cur = &devs[0];
	dev_fresh(&devs[0]);
	dev_fresh(&devs[1]);
	released_bytes = 0;
	op_reset(q, &in);

	for (unsigned int n = 0; n < MAX_OPS && in.left; n++) {
		uint8_t op = fuzz_u8(&in);
		struct fz_vq *vq = &q[(op >> 4) & 3];
		switch (op % 14) {
		case 0:
			fz_op_desc(vq, &in);
			break;
		case 1:
			fz_op_chain(vq, &in);
			break;
		case 2:
		case 3:
			op_pfns(vq, &in);
			break;
		case 4:
			op_stats(vq, &in);
			break;
		case 5:
			fz_op_publish(vq, &in);
			break;
		case 6:
			fz_op_avail_idx(vq, &in);
			break;
		case 7:
			fz_op_ring_flags(vq, &in);
			break;
		case 8:
			fz_op_recycle(vq, &in);
			break;
		case 9:
			op_config(&in);
			break;
		case 10:
			virtio_balloon_stats_tick(cur);
			check_rings(q);
			break;
		case 11:
			virtio_balloon_set_target(cur, fuzz_u8(&in));
			break;
		case 12:
			kick(q, vq->qi);
			break;
		default:
			if (op & 0x80)
				op_reset(q, &in);
			else if (op & 0x40)
				op_restore(q);
			else
				fz_op_poke(&in);
			break;
		}
	}
	for (unsigned int i = 0; i < 4; i++)
		kick(q, i);
	const struct balloon_metrics *m = &cur->m;
	if (m->bad_pfns > m->event_fails ||
	    m->inflated_pages > m->inflate_count * BALLOON_MAX_PFNS) {
		fprintf(stderr, "fuzz_virtio_balloon: metrics disagree\n");
		abort();
	}
	return 0;
}
