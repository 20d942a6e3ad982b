// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk and its queue on fake guest memory, driven through the real
 * transport registers: good requests on both engines, every malformed chain
 * and request we know of, and the device still serving afterwards.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/stat.h>

#include "devices/virtio/block/engine.h"
#include "fake_mem.h"
#include "count_fds.h"
#include "fake_virtq.h"

#define MiB (1ull << 20)
#define DISK_SECTORS 2048
#define FEATURES                                                                                   \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX) |                        \
	 (1ull << VIRTIO_BLK_F_FLUSH))
#define HDR FQ_BUF
#define STATUS (FQ_BUF + 0x100)
#define DATA (FQ_BUF + 0x1000)

struct env {
	struct guest_mem mem;
	struct virtio_blk blk;
	struct fake_vq q;
	char path[64];
};

static struct env *env_new(enum blk_engine_kind engine, bool ro)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_int_equal(fake_mem_init(&e->mem, 16 * MiB), 0);
	strcpy(e->path, "/tmp/ember-blk-XXXXXX");
	int fd = mkstemp(e->path);
	assert_true(fd >= 0);
	uint8_t sector[512];
	for (int s = 0; s < DISK_SECTORS; s++) {
		memset(sector, s & 0xff, sizeof(sector));
		assert_int_equal(write(fd, sector, sizeof(sector)), 512);
	}
	close(fd);
	struct blk_drive_config cfg = { .id = "test-drive-serial-12345",
					.path = e->path,
					.read_only = ro,
					.engine = engine,
					.cache = BLK_CACHE_WRITEBACK };
	char err[200];
	assert_int_equal(virtio_blk_init(&e->blk, &e->mem, &cfg, err, sizeof(err)), 0);
	assert_int_equal(e->blk.capacity, DISK_SECTORS);
	uint32_t status = fq_setup(&e->q, &e->blk.transport, &e->mem, 16, FEATURES, 0, 0, 0);
	assert_true(status & VIRTIO_STATUS_DRIVER_OK);
	assert_false(status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	return e;
}

static void env_free(struct env *e)
{
	unlink(e->path);
	fake_mem_free(&e->mem);
	free(e->blk.reqs);
	free(e);
}

/* Kick and wait for one used element (reaping io_uring completions). */
static int wait_used(struct env *e, struct virtq_used_elem *u)
{
	fq_kick(&e->q);
	for (int i = 0; i < 1000; i++) {
		if (fq_take_used(&e->q, u) == 0)
			return 0;
		int cfd = e->blk.engine->completion_fd(&e->blk);
		if (cfd >= 0) {
			struct pollfd p = { .fd = cfd, .events = POLLIN };
			poll(&p, 1, 10);
		}
		virtio_blk_complete_ready(&e->blk);
	}
	return -1;
}

static void put_hdr(struct env *e, uint32_t type, uint64_t sector)
{
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} h = { type, 0, sector };
	assert_int_equal(guest_mem_write(&e->mem, HDR, &h, sizeof(h)), 0);
	*(uint8_t *)guest_mem_ptr(&e->mem, STATUS, 1) = 0xee;
}

static uint8_t status_byte(struct env *e)
{
	return *(uint8_t *)guest_mem_ptr(&e->mem, STATUS, 1);
}

/* A standard 3-descriptor request: header, data, status. */
static uint16_t add_rw(struct env *e, uint32_t type, uint64_t sector, uint32_t len)
{
	put_hdr(e, type, sector);
	struct fake_desc d[3] = {
		{ HDR, 16, 0 },
		{ DATA, len, type == VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0 },
		{ STATUS, 1, VIRTQ_DESC_F_WRITE },
	};
	uint16_t head = fq_add(&e->q, d, 3);
	fq_publish(&e->q, head);
	return head;
}

static void rw_roundtrip(enum blk_engine_kind engine)
{
	struct env *e = env_new(engine, false);
	struct virtq_used_elem u;
	uint8_t *data = guest_mem_ptr(&e->mem, DATA, 8192);

	/* Read sector 7: the disk holds 7s there. */
	uint16_t head = add_rw(e, VIRTIO_BLK_T_IN, 7, 512);
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, 513);
	assert_int_equal(status_byte(e), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 512; i++)
		assert_int_equal(data[i], 7);

	/* Write 8 KiB at sector 100, flush, read it back. */
	for (int i = 0; i < 8192; i++)
		data[i] = (uint8_t)(i * 13);
	add_rw(e, VIRTIO_BLK_T_OUT, 100, 8192);
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(u.len, 1);
	assert_int_equal(status_byte(e), VIRTIO_BLK_S_OK);
	put_hdr(e, VIRTIO_BLK_T_FLUSH, 0);
	struct fake_desc fl[2] = { { HDR, 16, 0 }, { STATUS, 1, VIRTQ_DESC_F_WRITE } };
	fq_publish(&e->q, fq_add(&e->q, fl, 2));
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(status_byte(e), VIRTIO_BLK_S_OK);
	memset(data, 0, 8192);
	add_rw(e, VIRTIO_BLK_T_IN, 100, 8192);
	assert_int_equal(wait_used(e, &u), 0);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(data[i], (uint8_t)(i * 13));
	assert_int_equal(e->blk.m.reads, 2);
	assert_int_equal(e->blk.m.writes, 1);
	assert_int_equal(e->blk.m.flushes, 1);
	env_free(e);
}

static void rw_roundtrip_uring(void **state)
{
	(void)state;
	rw_roundtrip(BLK_ENGINE_URING);
}

static void rw_roundtrip_sync(void **state)
{
	(void)state;
	rw_roundtrip(BLK_ENGINE_SYNC);
}

static void get_id_returns_the_serial(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_SYNC, false);
	struct virtq_used_elem u;
	put_hdr(e, VIRTIO_BLK_T_GET_ID, 0);
	struct fake_desc d[3] = { { HDR, 16, 0 },
				  { DATA, 64, VIRTQ_DESC_F_WRITE },
				  { STATUS, 1, VIRTQ_DESC_F_WRITE } };
	fq_publish(&e->q, fq_add(&e->q, d, 3));
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(status_byte(e), VIRTIO_BLK_S_OK);
	assert_int_equal(u.len, 21);
	assert_memory_equal(guest_mem_ptr(&e->mem, DATA, 20), "test-drive-serial-12", 20);
	env_free(e);
}

/* A well-formed read must still work after each bad thing. */
static void assert_still_serves(struct env *e)
{
	struct virtq_used_elem u;
	uint16_t head = add_rw(e, VIRTIO_BLK_T_IN, 3, 512);
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(u.id, head);
	assert_int_equal(status_byte(e), VIRTIO_BLK_S_OK);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&e->mem, DATA, 1), 3);
}

struct chain_case {
	const char *name;
	struct fake_desc d[4];
	unsigned int n;
	void (*mutate)(struct env *e, uint16_t head);
};

static void loop_to_self(struct env *e, uint16_t head)
{
	struct virtq_desc *t = fq_desc(&e->q);
	t[head + 1].flags |= VIRTQ_DESC_F_NEXT;
	t[head + 1].next = head; /* data -> header -> data ... */
}

static void next_out_of_table(struct env *e, uint16_t head)
{
	fq_desc(&e->q)[head].next = 999;
}

static void indirect(struct env *e, uint16_t head)
{
	fq_desc(&e->q)[head].flags |= VIRTQ_DESC_F_INDIRECT;
}

static const struct chain_case chain_cases[] = {
	{ "buffer outside guest memory",
	  { { HDR, 16, 0 },
	    { 0x7fff0000, 512, VIRTQ_DESC_F_WRITE },
	    { STATUS, 1, VIRTQ_DESC_F_WRITE } },
	  3,
	  NULL },
	{ "buffer crossing the end of memory",
	  { { HDR, 16, 0 },
	    { 16 * MiB - 256, 512, VIRTQ_DESC_F_WRITE },
	    { STATUS, 1, VIRTQ_DESC_F_WRITE } },
	  3,
	  NULL },
	{ "address + length overflows",
	  { { HDR, 16, 0 },
	    { UINT64_MAX - 100, 512, VIRTQ_DESC_F_WRITE },
	    { STATUS, 1, VIRTQ_DESC_F_WRITE } },
	  3,
	  NULL },
	{ "buffer in the MMIO gap",
	  { { HDR, 16, 0 },
	    { 0xd0001000, 512, VIRTQ_DESC_F_WRITE },
	    { STATUS, 1, VIRTQ_DESC_F_WRITE } },
	  3,
	  NULL },
	{ "readable after writable",
	  { { HDR, 16, 0 }, { STATUS, 1, VIRTQ_DESC_F_WRITE }, { DATA, 512, 0 } },
	  3,
	  NULL },
	{ "descriptor loop",
	  { { HDR, 16, 0 }, { DATA, 512, VIRTQ_DESC_F_WRITE } },
	  2,
	  loop_to_self },
	{ "next outside the table",
	  { { HDR, 16, 0 }, { DATA, 512, VIRTQ_DESC_F_WRITE }, { STATUS, 1, VIRTQ_DESC_F_WRITE } },
	  3,
	  next_out_of_table },
	{ "indirect descriptor",
	  { { HDR, 16, 0 }, { DATA, 512, VIRTQ_DESC_F_WRITE }, { STATUS, 1, VIRTQ_DESC_F_WRITE } },
	  3,
	  indirect },
};

static void malformed_chains_fail_and_the_device_goes_on(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_URING, false);
	for (size_t i = 0; i < sizeof(chain_cases) / sizeof(chain_cases[0]); i++) {
		const struct chain_case *c = &chain_cases[i];
		struct virtq_used_elem u;
		put_hdr(e, VIRTIO_BLK_T_IN, 0);
		uint16_t head = fq_add(&e->q, c->d, c->n);
		if (c->mutate)
			c->mutate(e, head);
		fq_publish(&e->q, head);
		uint64_t bad = e->blk.m.bad_chains;
		print_message("  %s\n", c->name);
		assert_int_equal(wait_used(e, &u), 0);
		assert_int_equal(u.id, head);
		assert_int_equal(u.len, 0); /* nothing written */
		assert_int_equal(status_byte(e), 0xee); /* status untouched */
		assert_int_equal(e->blk.m.bad_chains, bad + 1);
		assert_false(e->blk.transport.status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
		assert_still_serves(e);
	}
	env_free(e);
}

struct req_case {
	const char *name;
	uint32_t type;
	uint64_t sector;
	uint32_t len;
	uint8_t want;
};

static const struct req_case req_cases[] = {
	{ "read past the end", VIRTIO_BLK_T_IN, DISK_SECTORS - 1, 1024, VIRTIO_BLK_S_IOERR },
	{ "sector overflows", VIRTIO_BLK_T_IN, UINT64_MAX - 1, 1024, VIRTIO_BLK_S_IOERR },
	{ "write past the end", VIRTIO_BLK_T_OUT, DISK_SECTORS, 512, VIRTIO_BLK_S_IOERR },
	{ "partial sector", VIRTIO_BLK_T_IN, 0, 100, VIRTIO_BLK_S_IOERR },
	{ "unknown type", 77, 0, 512, VIRTIO_BLK_S_UNSUPP },
	{ "discard (not offered)", 11, 0, 512, VIRTIO_BLK_S_UNSUPP },
};

static void bad_requests_get_error_status(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_SYNC, false);
	for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];
		struct virtq_used_elem u;
		print_message("  %s\n", c->name);
		add_rw(e, c->type, c->sector, c->len);
		assert_int_equal(wait_used(e, &u), 0);
		assert_int_equal(status_byte(e), c->want);
		assert_int_equal(u.len, 1);
		assert_still_serves(e);
	}
	/* Header shorter than 16 bytes. */
	struct virtq_used_elem u;
	put_hdr(e, VIRTIO_BLK_T_IN, 0);
	struct fake_desc d[3] = { { HDR, 8, 0 },
				  { DATA, 512, VIRTQ_DESC_F_WRITE },
				  { STATUS, 1, VIRTQ_DESC_F_WRITE } };
	fq_publish(&e->q, fq_add(&e->q, d, 3));
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(status_byte(e), VIRTIO_BLK_S_IOERR);
	/* No writable byte for the status: returned with nothing written. */
	struct fake_desc nos[2] = { { HDR, 16, 0 }, { DATA, 512, 0 } };
	put_hdr(e, VIRTIO_BLK_T_OUT, 0);
	fq_publish(&e->q, fq_add(&e->q, nos, 2));
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(u.len, 0);
	assert_int_equal(status_byte(e), 0xee);
	assert_still_serves(e);
	env_free(e);
}

static void read_only_drive_refuses_writes(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_URING, true);
	struct virtq_used_elem u;
	assert_true(fq_reg_read(&e->blk.transport, 0x010) & (1u << VIRTIO_BLK_F_RO));
	memset(guest_mem_ptr(&e->mem, DATA, 512), 0xab, 512);
	add_rw(e, VIRTIO_BLK_T_OUT, 5, 512);
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(status_byte(e), VIRTIO_BLK_S_IOERR);
	assert_still_serves(e);
	add_rw(e, VIRTIO_BLK_T_IN, 5, 512);
	assert_int_equal(wait_used(e, &u), 0);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&e->mem, DATA, 1), 5); /* unchanged */
	env_free(e);
}

static void corrupt_rings_need_reset_then_recover(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_SYNC, false);
	struct virtq_used_elem u;
	/* The avail ring names descriptor 200 in a 16-entry table. */
	struct virtq_avail *a = fq_avail(&e->q);
	a->ring[e->q.avail_idx % 16] = 200;
	e->q.avail_idx++;
	a->idx = e->q.avail_idx;
	fq_kick(&e->q);
	assert_true(fq_reg_read(&e->blk.transport, 0x070) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(fq_reg_read(&e->blk.transport, 0x060) & VIRTIO_INT_CONFIG);
	assert_int_equal(fq_take_used(&e->q, &u), -1);

	/* The driver resets and starts over: the device works again. */
	assert_true(fq_setup(&e->q, &e->blk.transport, &e->mem, 16, FEATURES, 0, 0, 0) &
		    VIRTIO_STATUS_DRIVER_OK);
	assert_still_serves(e);

	/* The avail index jumps further than the ring is long. */
	a->idx = (uint16_t)(e->q.avail_idx + 40);
	fq_kick(&e->q);
	assert_true(fq_reg_read(&e->blk.transport, 0x070) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(fq_setup(&e->q, &e->blk.transport, &e->mem, 16, FEATURES, 0, 0, 0) &
		    VIRTIO_STATUS_DRIVER_OK);
	assert_still_serves(e);
	env_free(e);
}

static void bad_queue_geometry_is_refused_at_activation(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_SYNC, false);
	struct virtio_mmio *t = &e->blk.transport;
	struct {
		const char *name;
		uint16_t size;
		uint64_t desc, avail, used;
	} cases[] = {
		{ "size not a power of 2", 12, 0, 0, 0 },
		{ "size above the maximum", 512, 0, 0, 0 },
		{ "size 0", 0, 0, 0, 0 },
		{ "descriptor table outside memory", 16, 0x40000000, 0, 0 },
		{ "used ring across the end of memory", 16, 0, 0, 16 * MiB - 64 },
		{ "avail ring in the MMIO gap", 16, 0, 0xd0000000, 0 },
		{ "misaligned descriptor table", 16, FQ_DESC + 8, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("  %s\n", cases[i].name);
		uint32_t st = fq_setup(&e->q, t, &e->mem, cases[i].size, FEATURES, cases[i].desc,
				       cases[i].avail, cases[i].used);
		assert_true(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
		/* Notifications are ignored while the device needs a reset. */
		fq_kick(&e->q);
	}
	assert_true(fq_setup(&e->q, t, &e->mem, 16, FEATURES, 0, 0, 0) & VIRTIO_STATUS_DRIVER_OK);
	assert_still_serves(e);
	/* Features the device never offered keep FEATURES_OK clear. */
	fq_reg_write(t, 0x070, 0);
	fq_reg_write(t, 0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	fq_reg_write(t, 0x024, 0);
	fq_reg_write(t, 0x020, 1u << 28); /* INDIRECT_DESC: not offered */
	fq_reg_write(t, 0x024, 1);
	fq_reg_write(t, 0x020, 1);
	fq_reg_write(t, 0x070,
		     VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_false(fq_reg_read(t, 0x070) & VIRTIO_STATUS_FEATURES_OK);
	env_free(e);
}

/* An engine that keeps what it is given until the test completes it. */
static struct blk_req *held;
static int hold_init(struct virtio_blk *b, char *err, size_t len)
{
	(void)b, (void)err, (void)len;
	return 0;
}
static int hold_fd(struct virtio_blk *b)
{
	(void)b;
	return -1;
}
static int hold_submit(struct virtio_blk *b, struct blk_req *req)
{
	(void)b;
	held = req;
	return 0;
}
static void hold_nop(struct virtio_blk *b)
{
	(void)b;
}
static const struct blk_engine hold_engine = {
	.name = "hold",
	.init = hold_init,
	.completion_fd = hold_fd,
	.submit = hold_submit,
	.kick = hold_nop,
	.reap = hold_nop,
	.destroy = hold_nop,
};

static void reset_drops_inflight_completions(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_SYNC, false);
	e->blk.engine = &hold_engine;
	held = NULL;
	add_rw(e, VIRTIO_BLK_T_IN, 9, 4096);
	fq_kick(&e->q);
	assert_non_null(held);
	assert_int_equal(e->blk.inflight, 1);
	fq_reg_write(&e->blk.transport, 0x070, 0); /* driver reset while in flight */
	blk_complete(&e->blk, held, 4096); /* the engine finishes late */
	assert_int_equal(e->blk.inflight, 0);
	assert_int_equal(e->blk.nr_free, BLK_QUEUE_SIZE);
	assert_int_equal(fq_used(&e->q)->idx, 0); /* no write into the old ring */
	assert_int_equal(status_byte(e), 0xee);
	/* After the driver starts again, requests complete normally. */
	held = NULL;
	assert_true(fq_setup(&e->q, &e->blk.transport, &e->mem, 16, FEATURES, 0, 0, 0) &
		    VIRTIO_STATUS_DRIVER_OK);
	add_rw(e, VIRTIO_BLK_T_IN, 9, 512);
	fq_kick(&e->q);
	assert_non_null(held);
	blk_complete(&e->blk, held, 512);
	struct virtq_used_elem u;
	assert_int_equal(fq_take_used(&e->q, &u), 0);
	assert_int_equal(status_byte(e), VIRTIO_BLK_S_OK);
	env_free(e);
}

static void event_idx_suppresses_interrupts(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_SYNC, false);
	struct virtq_used_elem u;
	struct virtq_avail *a = fq_avail(&e->q);
	uint16_t *used_event = &a->ring[16];
	uint64_t irqs;
	ssize_t r = read(e->blk.transport.irq_fd, &irqs, sizeof(irqs)); /* drain */
	(void)r;
	/* Ask for an interrupt only after used index 3. */
	*used_event = 2;
	for (int i = 0; i < 3; i++) {
		add_rw(e, VIRTIO_BLK_T_IN, 1, 512);
		assert_int_equal(wait_used(e, &u), 0);
		irqs = 0;
		r = read(e->blk.transport.irq_fd, &irqs, sizeof(irqs));
		print_message("  request %d: %s\n", i, irqs ? "interrupt" : "no interrupt");
		assert_int_equal(irqs != 0, i == 0 || i == 2);
	}
	/* The device asks to be notified from the next avail index. */
	uint16_t avail_event;
	memcpy(&avail_event, guest_mem_ptr(&e->mem, FQ_USED + 4 + 8 * 16, 2), 2);
	assert_int_equal(avail_event, e->q.avail_idx);
	env_free(e);
}

/* PATCH /drives checks the path, then the device opens it: if it has been
 * swapped for something that is not a regular file in between, the swap
 * fails cleanly, leaks nothing, and a FIFO does not block the VMM thread
 * waiting for a writer (the drive is read-only: O_RDONLY). */
static void swap_to_a_non_regular_file(void **state)
{
	(void)state;
	struct env *e = env_new(BLK_ENGINE_SYNC, true);
	char fifo[] = "/tmp/ember-blk-fifo-XXXXXX";
	assert_non_null(mkdtemp(fifo));
	char path[64];
	snprintf(path, sizeof(path), "%s/f", fifo);
	assert_int_equal(mkfifo(path, 0600), 0);
	unsigned int fds = count_fds();
	char err[200] = "";
	assert_int_equal(virtio_blk_update(&e->blk, path, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a regular file"));
	assert_int_equal(virtio_blk_update(&e->blk, "/tmp", NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(e->blk.capacity, DISK_SECTORS); /* the old file stays */
	unlink(path);
	rmdir(fifo);
	close(e->blk.fd);
	env_free(e);
}

/* What a short io_uring completion leaves is finished by blk_rw_sync() from
 * that byte on, in the middle of an iovec: each byte lands once, in place. */
static void rw_sync_resumes_a_short_transfer(void **state)
{
	(void)state;
	char path[] = "/tmp/ember-blk-short-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8192), 0);
	uint8_t a[1000], b[3096], c[4096], back[8192];
	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	memset(c, 0xcc, sizeof(c));
	struct blk_req req = {
		.type = VIRTIO_BLK_T_OUT, .sector = 0, .data_len = 8192, .nr_iov = 3
	};
	req.iov[0] = (struct iovec){ a, sizeof(a) };
	req.iov[1] = (struct iovec){ b, sizeof(b) };
	req.iov[2] = (struct iovec){ c, sizeof(c) };
	/* "The kernel wrote 1500 bytes": the rest starts 500 bytes into b. */
	assert_int_equal(blk_rw_sync(fd, &req, 1500), 8192);
	assert_int_equal(pread(fd, back, sizeof(back), 0), 8192);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(back[i], i < 1500 ? 0 : i < 4096 ? 0xbb : 0xcc);
	/* A read past the end of the file is an I/O error, not a short success. */
	struct blk_req rd = {
		.type = VIRTIO_BLK_T_IN, .sector = 15, .data_len = 1024, .nr_iov = 1
	};
	rd.iov[0] = (struct iovec){ back, 1024 };
	assert_int_equal(blk_rw_sync(fd, &rd, 0), -EIO);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rw_roundtrip_uring),
		cmocka_unit_test(rw_roundtrip_sync),
		cmocka_unit_test(get_id_returns_the_serial),
		cmocka_unit_test(malformed_chains_fail_and_the_device_goes_on),
		cmocka_unit_test(bad_requests_get_error_status),
		cmocka_unit_test(read_only_drive_refuses_writes),
		cmocka_unit_test(corrupt_rings_need_reset_then_recover),
		cmocka_unit_test(bad_queue_geometry_is_refused_at_activation),
		cmocka_unit_test(reset_drops_inflight_completions),
		cmocka_unit_test(event_idx_suppresses_interrupts),
		cmocka_unit_test(swap_to_a_non_regular_file),
		cmocka_unit_test(rw_sync_resumes_a_short_transfer),
	};
	return cmocka_run_group_tests_name("virtio_blk", tests, NULL, NULL);
}
