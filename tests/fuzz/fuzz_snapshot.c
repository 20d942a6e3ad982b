// SPDX-License-Identifier: Apache-2.0
/*
 * Snapshot state files, as far as a load gets without KVM. The input is a
 * state file (the seeds are real ones, written by ember's snapshot_create).
 *  1. As it is: snap_reader_init() (size cap, magic, architecture, version,
 *     CRC, section table) and a lookup of every section.
 *  2. Resealed (padded to 8 bytes, its CRC trailer recomputed, so mutations
 *     get past the CRC): snapshot_load() as main() calls it for --restore,
 *     with the API's overrides (network_overrides, vsock_override,
 *     track_dirty_pages, Uffd) chosen by bits of the CRC. It reads the file,
 *     applies its configuration through the API's handlers and runs
 *     check_state() (memory layout, each vCPU section and its MSR count, the
 *     VM and serial sections, one device section per configured device;
 *     from format version 2 the clock section and one rate-limiter section
 *     per block, network and entropy device, every bucket checked).
 *     The memory file it names never exists, so every load ends where it
 *     would open it and go on to vmm_build_restored(), the first KVM call.
 *  3. Resealed, the state restored after KVM objects exist but checked by
 *     ember's own code: each virtio-mmio section into a real virtio-blk or
 *     virtio-vsock transport over fake guest memory (virtio_mmio_restore:
 *     device type, acked features, status, queue sizes, rings inside guest
 *     memory, indices against the used ring), the serial section into a
 *     serial port (snap_restore_serial), each rate-limiter section into the
 *     virtio-blk's limiter (rate_limiter_restore's checks), then used.
 * Left out: the vCPU and VM sections' contents (registers, LAPIC, MSRs,
 * irqchips, PIT, clock), which only KVM's KVM_SET_* ioctls check, and
 * virtio-net sections' restore (a TAP device would be needed; they are
 * refused here as another device type, which is checked first).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "devices/virtio/block/block.h"
#include "devices/virtio/vsock/vsock.h"
#include "fake_mem.h"
#include "fake_virtq.h"
#include "fuzz.h"
#include "fuzz_sandbox.h"
#include "fuzz_vmm.h"
#include "snapshot/format.h"
#include "snapshot/kvm_state.h"
#include "snapshot/snapshot.h"

#define STATE_FILE "state"
#define MEM_FILE "absent.mem" /* never made: loads stop before the VM is built */
/* Where the seeds' rings are. Only used-ring indices are ever written, and put back. */
#define DEV_MEM_SIZE (32ull << 20)

static char *ember_args[] = { "ember", "--restore", STATE_FILE, "--mem", MEM_FILE, NULL };
static struct guest_mem dev_mem;
static struct virtio_blk blk;
static struct virtio_vsock vsock;
static struct serial serial;
static int state_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char disk[1 << 16];
	char err[200] = "";
	fuzz_sandbox_init(argc, argv, "fuzz-snapshot");
	/* The seeds' drive is named relative to its VM's directory; this one
	 * stands in for it. */
	fuzz_sandbox_keep("disk.img", disk, sizeof(disk));
	fuzz_sandbox_keep(STATE_FILE, "", 0);
	state_fd = open(STATE_FILE, O_WRONLY | O_CLOEXEC);
	struct blk_drive_config dc = { .id = "d0", .path = "disk.img", .engine = BLK_ENGINE_SYNC };
	if (state_fd < 0 || fake_mem_init(&dev_mem, DEV_MEM_SIZE) < 0 ||
	    virtio_blk_init(&blk, &dev_mem, &dc, err, sizeof(err)) < 0 ||
	    virtio_vsock_init(&vsock, &dev_mem, 3, "dev-vsock.sock", err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_snapshot: set-up: %s\n", err);
		abort();
	}
	fuzz_sandbox_keep_made("dev-vsock.sock");
	pthread_mutex_init(&serial.lock, NULL);
	serial.out_fd = -1;
	fuzz_vmm_init();
	fuzz_sandbox_leave();
	return 0;
}

/* The input as a state file whose CRC is right: padded, trailer rewritten. */
static uint8_t *reseal(const uint8_t *data, size_t size, size_t *len)
{
	size_t n = (size + 7) & ~(size_t)7;
	if (n < 32)
		n = 32;
	uint8_t *b = calloc(1, n);
	if (!b)
		return NULL;
	memcpy(b, data, size < n - 8 ? size : n - 8);
	uint32_t crc = (uint32_t)crc32(0, b, (uInt)(n - 8));
	for (int i = 0; i < 4; i++)
		b[n - 8 + i] = (uint8_t)(crc >> (8 * i));
	*len = n;
	return b;
}

static void load(const uint8_t *state, size_t len, uint32_t crc)
{
	if (ftruncate(state_fd, 0) < 0 || pwrite(state_fd, state, len, 0) != (ssize_t)len)
		abort();
	if (fuzz_vmm_reset(5, ember_args) != 0)
		abort();
	/* As main()'s start_now() builds it, plus what only PUT /snapshot/load
	 * sets; each override a quarter of the time (one the snapshot cannot
	 * take ends the load early). */
	bool uffd = (crc & 0xc) == 0xc;
	struct snapshot_load a = {
		.state_path = fuzz_vmm.cfg.restore_path,
		.mem_path = fuzz_vmm.cfg.restore_mem,
		.track_dirty_pages = crc & 1,
		.resume = crc & 2,
		.uffd = uffd,
		.ws_prefetch = uffd && (crc & 0x10) ? "ws" : NULL,
		.vsock_uds_path = (crc & 0x60) == 0x60 ? "moved.sock" : NULL,
		.nr_net_overrides = (crc & 0x180) == 0x180 ? 1 : 0,
		.net_iface = { "eth0" },
		.net_host_dev = { "tap9" },
	};
	char err[600];
	fuzz_sandbox_enter();
	int r = snapshot_load(&fuzz_vmm, &a, err, sizeof(err));
	fuzz_sandbox_leave();
	if (r == 0 || fuzz_vmm.state != VMM_NOT_STARTED) {
		fprintf(stderr, "fuzz_snapshot: a load got past its memory file\n");
		abort();
	}
}

/* The used ring's index in guest memory, where @st says the ring is (when
 * that is inside the fake memory): its memory file's value, or 0 again. */
static void set_used_idx(const struct virtio_mmio_state *st, bool saved)
{
	for (unsigned int q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		uint64_t gpa = st->q[q].used_gpa;
		uint16_t *idx = gpa < DEV_MEM_SIZE ? guest_mem_ptr(&dev_mem, gpa + 2, 2) : NULL;
		if (idx && !(gpa & 3))
			*idx = saved ? st->q[q].used_idx : 0;
	}
}

/* A limiter section into the real virtio-blk, as restore_all() puts it:
 * refused, or buckets the limiter's arithmetic takes (no division by zero,
 * a budget within the size) at any time after. */
static void restore_limiter(const struct snap_section *s)
{
	struct snap_rate_limiters rl;
	const char *why = "";
	memcpy(&rl, s->data, sizeof(rl));
	for (uint32_t k = 0; k < 2; k++) {
		if (virtio_blk_restore_limiter(&blk, &rl.rl[k], &why) < 0)
			continue;
		const struct token_bucket *b[2] = { &blk.rl.bytes, &blk.rl.ops };
		for (int i = 0; i < 2; i++)
			if (b[i]->budget > b[i]->size || (b[i]->size && !b[i]->refill_time_ms))
				abort();
		uint64_t now = rl.rl[k].bytes.elapsed_ns ^ rl.rl[k].ops.budget;
		(void)rate_limiter_wait_ns(&blk.rl, 1, rl.rl[k].bytes.size + 1, now);
		(void)rate_limiter_consume(&blk.rl, rl.rl[k].ops.size, 4096, now);
		(void)rate_limiter_wait_ns(&blk.rl, 1, 4096, now + 1000);
	}
	struct rate_limiter_state none = { 0 };
	if (virtio_blk_restore_limiter(&blk, &none, &why) < 0)
		abort();
}

/* Device and serial state into real devices: what restore_all() checks.
 * With @mem_agrees, guest memory holds the used indices the state file
 * has, as the memory file of the same snapshot would. */
static void restore_devices(const struct snap_reader *rd, bool mem_agrees)
{
	for (uint32_t i = 0; i < rd->count; i++) {
		const struct snap_section *s = &rd->sections[i];
		if (s->tag == SNAP_SERIAL && s->len == sizeof(struct snap_serial)) {
			struct snap_serial ss;
			memcpy(&ss, s->data, sizeof(ss));
			if (snap_restore_serial(&serial, &ss) == 0 &&
			    (serial.rx_head >= SERIAL_RX_FIFO || serial.rx_len > SERIAL_RX_FIFO))
				abort();
			continue;
		}
		if (s->tag == SNAP_RATE_LIMITER && s->len == sizeof(struct snap_rate_limiters)) {
			restore_limiter(s);
			continue;
		}
		if (s->tag != SNAP_VIRTIO || s->len != sizeof(struct virtio_mmio_state))
			continue;
		struct virtio_mmio_state st;
		memcpy(&st, s->data, sizeof(st));
		struct virtio_mmio *t =
		    st.device_id == VIRTIO_ID_VSOCK ? &vsock.transport : &blk.transport;
		const char *why = "";
		fq_reg_write(t, 0x070, 0); /* fresh, as the restore path builds it */
		if (mem_agrees)
			set_used_idx(&st, true);
		if (virtio_mmio_restore(t, &st, &why) == 0 && virtio_mmio_active(t)) {
			for (unsigned int q = 0; q < t->ops->num_queues; q++)
				if (t->queues[q].cfg.ready &&
				    (!t->queues[q].desc || !t->queues[q].avail ||
				     !t->queues[q].used))
					abort(); /* a ready queue of a running device has its rings */
		}
		fq_reg_write(t, 0x070, 0);
		if (mem_agrees)
			set_used_idx(&st, false);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_reader rd;
	const char *why = "";
	if (snap_reader_init(&rd, data, size, &why) == 0) {
		for (uint32_t i = 0; i < rd.count; i++)
			if (snap_find(&rd, rd.sections[i].tag, rd.sections[i].instance) == NULL)
				abort();
		snap_reader_free(&rd);
	}

	size_t len = 0;
	uint8_t *sealed = reseal(data, size, &len);
	if (!sealed)
		return 0;
	uint32_t crc = (uint32_t)crc32(0, sealed, (uInt)(len - 8));
	load(sealed, len, crc);
	if (snap_reader_init(&rd, sealed, len, &why) == 0) {
		restore_devices(&rd, (crc & 0x600) != 0x600);
		snap_reader_free(&rd);
	}
	free(sealed);
	return 0;
}
