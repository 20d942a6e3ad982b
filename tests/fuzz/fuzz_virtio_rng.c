// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-rng as a guest drives it: the real transport, queue (virtq_pop's
 * chain walk) and device over fake guest RAM. Two devices, one unlimited
 * and one rate-limited (bytes and chains; the buckets refill over days, so
 * within an input they only drain until the input says time passes), each
 * twice: the second takes the first's place when the input snapshots and
 * restores (virtio_mmio_save/restore, chains left on the ring served by
 * the restored device without a new notification).
 *
 * The host's entropy is a stand-in for getrandom(): a fixed byte stream,
 * so runs are reproducible and what the device wrote can be checked, and
 * one the input makes fail every Nth call, return short, or return EINTR.
 *
 * The input picks the device and the source's behaviour, the features and
 * the queue's geometry, then up to MAX_OPS moves: raw descriptors, chains,
 * entropy requests (1-4 buffers of 0 bytes to 127 KiB, now and then one of
 * them device-readable), avail ring entries and indices, ring flags, kicks,
 * time passing, a reset, a snapshot and restore.
 *
 * After every kick the used ring is checked (fz_vq_check_used), and each
 * chain returned against its shape: a chain with a device-readable buffer
 * or no writable byte comes back with 0 bytes; any other with all its
 * writable bytes up to 64 KiB, or with 0 when the source failed on it;
 * and (unless buffers may overlap) the bytes are the stream's next ones.
 */
#include <errno.h>
#include <sys/timerfd.h>

#include "clock.h"
#include "devices/virtio/rng/rng.h"
#include "event_loop.h"
#include "fuzz_virtio.h"
#include "log.h"

#define MAX_OPS 128
#define DAYS_MS 1000000000 /* a refill time no input outlasts */
#define LIMITED 1
#define MAX_FAILS 1024

static const struct rng_config cfgs[2] = {
	{ 0 },
	{ .bw_size = 96 * 1024,
	  .bw_burst = 4096,
	  .bw_refill_ms = DAYS_MS,
	  .ops_size = 6,
	  .ops_refill_ms = DAYS_MS },
};
static struct event_loop loop;
static struct virtio_rng devs[2][2]; /* [kind][copy] */
static struct virtio_rng *cur;
static unsigned int cur_kind, cur_copy;

/* The stand-in source: stream byte i is stream_byte(i). */
static uint64_t src_pos, src_calls;
static unsigned int src_fail_every, src_short, src_eintr;
/* Stream positions where the source failed, in order, for the checks. */
static uint64_t fails[MAX_FAILS];
static unsigned int nr_fails, fails_seen;

/* What the checks know: the stream position of the next chain returned
 * (off once chains may have been returned unseen), and the next used
 * element to look at. */
static uint64_t check_pos;
static bool checking;
static uint16_t used_next;

static uint8_t stream_byte(uint64_t i)
{
	return (uint8_t)((i * 0x9e3779b97f4a7c15ull) >> 56);
}

static ssize_t fake_source(void *buf, size_t len, unsigned int flags)
{
	(void)flags;
	src_calls++;
	if (src_eintr && src_calls % 2) {
		errno = EINTR;
		return -1;
	}
	if (src_fail_every && src_calls % src_fail_every == 0) {
		if (nr_fails < MAX_FAILS)
			fails[nr_fails++] = src_pos;
		errno = EIO;
		return -1;
	}
	size_t n = src_short && len > src_short ? src_short : len;
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++)
		p[i] = stream_byte(src_pos + i);
	src_pos += n;
	return (ssize_t)n;
}

static void setup_once(void)
{
	char err[200] = "";
	log_init(LOG_OFF, STDERR_FILENO);
	fz_mem_init();
	if (event_loop_init(&loop) < 0)
		abort();
	for (unsigned int k = 0; k < 2; k++)
		for (unsigned int c = 0; c < 2; c++) {
			struct virtio_rng *r = &devs[k][c];
			if (virtio_rng_init(r, &fz_mem, &cfgs[k], err, sizeof(err)) < 0 ||
			    virtio_rng_add_to_loop(r, &loop) < 0) {
				fprintf(stderr, "fuzz_virtio_rng: %s\n", err);
				abort();
			}
			r->source = fake_source;
		}
}

/* The device as a fresh process has it: reset, limiter full, timer off,
 * counters zero. */
static void dev_fresh(struct virtio_rng *r)
{
	uint64_t now = clock_now_ns();
	const struct rng_config *c = &r->cfg;
	fq_reg_write(&r->transport, 0x070, 0);
	if (token_bucket_init(&r->rl.bytes, c->bw_size, c->bw_burst, c->bw_refill_ms, now) < 0 ||
	    token_bucket_init(&r->rl.ops, c->ops_size, c->ops_burst, c->ops_refill_ms, now) < 0)
		abort();
	fz_timer_off(r->timer_fd);
	uint64_t v;
	if (read(r->transport.notify_fds[0], &v, sizeof(v)) < 0)
		v = 0;
	memset(&r->m, 0, sizeof(r->m));
	r->transport.needs_reset_events = 0;
	r->transport.config_generation = 0;
	r->logged_bad_chain = r->logged_source_error = false;
}

/* The chain at @head as the device sees it: its writable bytes, or -1
 * when virtq_pop() refuses it; *@readable when it has a readable buffer. */
static int64_t chain_shape(const struct fz_vq *q, uint16_t head, bool *readable)
{
	*readable = false;
	int64_t in = fz_vq_in_len(q, head);
	uint16_t idx = head;
	for (unsigned int n = 0; in >= 0 && n < q->size; n++) {
		struct virtq_desc d;
		if (!fz_get(q->desc, 16ull * idx, &d, sizeof(d)))
			break;
		if (!(d.flags & VIRTQ_DESC_F_WRITE))
			*readable = true;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		idx = d.next;
	}
	return in;
}

static void bad_answer(uint16_t head, uint32_t len, const char *what)
{
	fprintf(stderr, "fuzz_virtio_rng: chain %u returned with %u bytes: %s\n", head, len, what);
	abort();
}

/* One used element, in the order the device returned it. */
static void check_used(struct fz_vq *q, uint16_t head, uint32_t len)
{
	static uint8_t got[RNG_MAX_CHAIN_BYTES];
	bool readable;
	int64_t in = chain_shape(q, head, &readable);
	if (in < 0) {
		/* virtq_pop refused it: the source never saw it. */
		if (len)
			bad_answer(head, len, "a chain virtq_pop refuses");
		return;
	}
	uint64_t want = (uint64_t)in < RNG_MAX_CHAIN_BYTES ? (uint64_t)in : RNG_MAX_CHAIN_BYTES;
	if (readable || in == 0) {
		if (len)
			bad_answer(head, len, "a chain the device must refuse");
		return;
	}
	if (len == 0) {
		/* Only when the source failed on this chain. */
		if (fails_seen == nr_fails)
			bad_answer(head, len, "empty, yet the source did not fail");
		check_pos = fails[fails_seen++];
		return;
	}
	if (len != want)
		bad_answer(head, len, "not all its writable bytes up to 64 KiB");
	if (!fz_aliased && !fz_wild && fz_vq_read_in(q, head, got, len)) {
		for (uint32_t i = 0; i < len; i++)
			if (got[i] != stream_byte(check_pos + i))
				bad_answer(head, len, "bytes that are not the source's");
	}
	check_pos += len;
}

/* The used ring since the last look: the generic checks, then each
 * element against its chain. A wild input (the device may have written
 * over the rings) or a ring the driver let wrap hides chains returned:
 * from then on the stream position is unknown and only the generic
 * checks go on. */
static void check_ring(struct fz_vq *q)
{
	uint16_t idx;
	fz_vq_check_used(q);
	if (!checking || !q->size || !fz_get(q->used, 2, &idx, 2))
		return;
	unsigned int n = (uint16_t)(idx - used_next);
	if (fz_wild || n > q->size) {
		checking = false;
		return;
	}
	for (unsigned int i = 0; i < n; i++, used_next++) {
		struct virtq_used_elem e;
		if (!fz_get(q->used, 4 + 8ull * (used_next % q->size), &e, sizeof(e)) ||
		    e.id >= q->size) {
			checking = false;
			return;
		}
		check_used(q, (uint16_t)e.id, e.len);
	}
}

/* The queue's notification, then the used ring checked at once. */
static void kick(struct fz_vq *q)
{
	virtio_mmio_notify(&cur->transport, 0);
	check_ring(q);
}

/* Time passes: the buckets fill again and the limiter's timer fires. */
static void op_time_passes(struct fz_vq *q)
{
	struct itimerspec now = { .it_value = { 0, 1 } };
	if (cur_kind != LIMITED)
		return;
	uint64_t t = clock_now_ns();
	if (token_bucket_init(&cur->rl.bytes, cur->cfg.bw_size, 0, DAYS_MS, t) < 0 ||
	    token_bucket_init(&cur->rl.ops, cur->cfg.ops_size, 0, DAYS_MS, t) < 0)
		abort();
	timerfd_settime(cur->timer_fd, TFD_TIMER_ABSTIME, &now, NULL);
	event_loop_run_once(&loop, 0);
	check_ring(q);
}

/* An entropy request: 1-4 buffers of 0 bytes to 127 KiB, writable unless
 * the input says one is readable; published unless it says not to. */
static void op_request(struct fz_vq *q, struct fuzz_in *in)
{
	uint8_t shape = fuzz_u8(in);
	unsigned int n = 1 + (shape & 3);
	struct fz_seg s[4];
	for (unsigned int i = 0; i < n; i++) {
		uint8_t l = fuzz_u8(in);
		uint32_t len = l & 0x80 ? (l & 0x7fu) * 1024u + (shape & 0x40 ? 1 : 0) : l;
		bool readable = (shape & 4) && i == ((shape >> 4) & 3) % n;
		s[i] = (struct fz_seg){ fz_alloc(len), len, readable ? 0 : VIRTQ_DESC_F_WRITE };
	}
	uint16_t head = fz_vq_add(q, s, n);
	if (!(shape & 8))
		fz_vq_publish(q, head);
}

/* The source from now on: fail every Nth call, return at most M bytes,
 * EINTR every other call. */
static void op_source(struct fuzz_in *in)
{
	uint8_t mode = fuzz_u8(in);
	src_fail_every = mode & 7;
	src_short = mode & 0x08 ? 1u + fuzz_u8(in) * 7u : 0;
	src_eintr = (mode & 0x10) != 0;
}

/* The driver resets the device and sets it up again. */
static void op_reset(struct fz_vq *q, struct fuzz_in *in)
{
	fz_negotiate(&cur->transport, in);
	fz_vq_setup(q, &cur->transport, 0, in);
	used_next = 0;
	fq_driver_ok(&cur->transport);
}

/* Snapshot and restore: the state goes to the other copy (a fresh
 * process), the old one stops. A refused restore leaves the new device
 * reset, as a new process would be; the driver then finds it so. */
static void op_restore(struct fz_vq *q)
{
	struct virtio_mmio_state st;
	const char *why = "";
	struct virtio_rng *next = &devs[cur_kind][!cur_copy];
	virtio_mmio_save(&cur->transport, &st);
	dev_fresh(cur);
	dev_fresh(next);
	cur_copy = !cur_copy;
	cur = next;
	q->t = &cur->transport;
	if (virtio_mmio_restore(&cur->transport, &st, &why) < 0)
		return;
	/* Chains left on the ring: the restored device asked for a notify. */
	kick(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		setup_once();
		ready = true;
	}
	struct fuzz_in in = { data, size };
	uint8_t first = fuzz_u8(&in);
	struct fz_vq q;

	fz_mem_reset();
	cur_kind = first & 1;
	cur_copy = 0;
	cur = &devs[cur_kind][0];
	for (unsigned int k = 0; k < 2; k++)
		for (unsigned int c = 0; c < 2; c++)
			dev_fresh(&devs[k][c]);
	src_pos = src_calls = 0;
	src_fail_every = src_short = src_eintr = 0;
	nr_fails = fails_seen = 0;
	check_pos = 0;
	checking = true;
	if (first & 2)
		op_source(&in);
	op_reset(&q, &in);

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
				op_source(&in);
			else if (op & 0x40)
				op_time_passes(&q);
			else
				fz_op_poke(&in);
			break;
		case 10:
			kick(&q);
			break;
		default:
			if (op & 0x80)
				op_reset(&q, &in);
			else if (op & 0x40)
				op_restore(&q);
			else
				kick(&q);
			break;
		}
	}
	kick(&q);
	/* The device's counters agree with what it returned. */
	if (cur->m.bytes > cur->m.event_count * (uint64_t)RNG_MAX_CHAIN_BYTES ||
	    cur->m.host_rng_fails > cur->m.event_fails) {
		fprintf(stderr, "fuzz_virtio_rng: metrics disagree\n");
		abort();
	}
	return 0;
}
