// SPDX-License-Identifier: Apache-2.0
/*
 * Block benchmark harness: drives ember's real virtio-blk device (transport,
 * queue, request parsing, engine) from the host through fake guest memory,
 * with no vCPU in the way, keeping @qd requests in flight.
 *
 * usage: blk-harness FILE uring|sync randread|read|write BS QD SECONDS DIRECT(0|1)
 * With EMBER_BENCH_SECCOMP=1 the thread doing the I/O runs under ember's
 * VMM-thread seccomp filter, as the device does in ember.
 * prints: iops=N mbps=N
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../tests/unit/fake_mem.h"
#include "../../tests/unit/fake_virtq.h"
#include "clock.h"
#include "devices/virtio/block/engine.h"
#include "log.h"
#include "seccomp/seccomp.h"

#define MAX_QD 64

struct slot {
	uint64_t hdr_gpa, status_gpa, data_gpa;
	uint16_t head;
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr,
			"usage: %s FILE uring|sync randread|read|write BS QD SECONDS DIRECT\n",
			argv[0]);
		return 2;
	}
	const char *path = argv[1];
	bool uring = strcmp(argv[2], "uring") == 0;
	const char *mode = argv[3];
	uint32_t bs = (uint32_t)strtoul(argv[4], NULL, 0);
	unsigned int qd = (unsigned int)strtoul(argv[5], NULL, 0);
	double seconds = strtod(argv[6], NULL);
	bool direct = atoi(argv[7]) != 0;
	bool write = strcmp(mode, "write") == 0;
	bool random = strcmp(mode, "randread") == 0;
	if (qd == 0 || qd > MAX_QD || bs % 512 || bs == 0)
		return 2;

	clock_init();
	struct guest_mem mem;
	if (fake_mem_init(&mem, 64ull << 20) < 0)
		return 1;
	static struct virtio_blk blk;
	struct blk_drive_config cfg = { .id = "bench",
					.path = path,
					.direct = direct,
					.engine = uring ? BLK_ENGINE_URING : BLK_ENGINE_SYNC };
	char err[200];
	if (virtio_blk_init(&blk, &mem, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "blk-harness: %s\n", err);
		return 1;
	}
	const char *sc = getenv("EMBER_BENCH_SECCOMP");
	if (sc && strcmp(sc, "1") == 0) {
		log_set_thread_name("bench");
		if (seccomp_setup(true, NULL) < 0 || seccomp_apply(SECCOMP_VMM) < 0)
			return 1;
	}
	struct fake_vq q;
	uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_EVENT_IDX);
	if (!(fq_setup(&q, &blk.transport, &mem, 256, features, 0, 0, 0) & VIRTIO_STATUS_DRIVER_OK))
		return 1;

	uint64_t blocks = blk.capacity * 512 / bs;
	struct slot slots[MAX_QD];
	for (unsigned int i = 0; i < qd; i++) {
		struct slot *s = &slots[i];
		s->hdr_gpa = FQ_BUF + i * 64;
		s->status_gpa = FQ_BUF + 0x8000 + i * 64;
		s->data_gpa = (8ull << 20) + (uint64_t)i * ((bs + 4095) & ~4095u);
		struct fake_desc d[3] = {
			{ s->hdr_gpa, 16, 0 },
			{ s->data_gpa, bs, write ? 0 : VIRTQ_DESC_F_WRITE },
			{ s->status_gpa, 1, VIRTQ_DESC_F_WRITE },
		};
		s->head = fq_add(&q, d, 3);
	}
	uint64_t seq = 0;
	uint32_t type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr = { type, 0, 0 };
	for (unsigned int i = 0; i < qd; i++) {
		uint64_t blockno = random ? next_rand() % blocks : seq++ % blocks;
		hdr.sector = blockno * (bs / 512);
		guest_mem_write(&mem, slots[i].hdr_gpa, &hdr, sizeof(hdr));
		fq_publish(&q, slots[i].head);
	}
	fq_kick(&q);

	uint64_t done = 0, errors = 0;
	uint64_t t0 = clock_now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	int cfd = blk.engine->completion_fd(&blk);
	for (;;) {
		/* Wait for the engine only when the used ring has nothing for us:
		 * completions may already have been reaped inline at submit time. */
		struct virtq_used_elem u;
		if (cfd >= 0 && fq_used(&q)->idx == q.used_seen) {
			struct pollfd p = { .fd = cfd, .events = POLLIN };
			poll(&p, 1, 1000);
			virtio_blk_complete_ready(&blk);
		}
		unsigned int republished = 0;
		bool stop = clock_now_ns() >= end;
		while (fq_take_used(&q, &u) == 0) {
			done++;
			unsigned int i = u.id / 3;
			if (*(uint8_t *)guest_mem_ptr(&mem, slots[i].status_gpa, 1) !=
			    VIRTIO_BLK_S_OK)
				errors++;
			if (stop)
				continue;
			uint64_t blockno = random ? next_rand() % blocks : seq++ % blocks;
			hdr.sector = blockno * (bs / 512);
			guest_mem_write(&mem, slots[i].hdr_gpa, &hdr, sizeof(hdr));
			fq_publish(&q, slots[i].head);
			republished++;
		}
		if (stop && blk.inflight == 0)
			break;
		if (republished)
			fq_kick(&q);
	}
	double elapsed = (double)(clock_now_ns() - t0) / 1e9;
	printf("iops=%.0f mbps=%.1f errors=%llu\n", (double)done / elapsed,
	       (double)done * bs / elapsed / 1e6, (unsigned long long)errors);
	return errors ? 1 : 0;
}
