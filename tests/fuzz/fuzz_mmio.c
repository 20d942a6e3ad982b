// SPDX-License-Identifier: Apache-2.0
/*
 * The virtio-mmio transport as a guest's vCPUs see it: register reads and
 * writes (any offset in or past the page, widths 1/2/4/8, any value)
 * through a real MMIO bus, against each kind of device: virtio-blk (sync
 * engine, memfd disk), virtio-net (fake TAP, fuzz_fake_tap.h) and
 * virtio-vsock (a listening socket in a private directory), all set up
 * once on fake guest RAM and one event loop.
 *
 * A 4-byte write of N to QueueNotify is what KVM's ioeventfd (datamatch N)
 * catches, so it notifies queue N when the device has one; any other write
 * there reaches the transport. Besides raw accesses the input can bring the
 * device up the usual way (features, every queue, DRIVER_OK), post chains,
 * write guest RAM and turn the event loop, so that register writes land on
 * a running device too: status bits in any order, queue layout with hostile
 * sizes and addresses before and after DRIVER_OK, feature selectors out of
 * range, config space out of range, interrupt acknowledgements, resets.
 *
 * Checked after every step: the transport's rules (DRIVER_OK only with
 * FEATURES_OK, acked features within those offered, a running device's
 * ready queues exactly where the driver put them, inside guest RAM) and,
 * after the usual bring-up, the used rings.
 */
#include <signal.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "bus.h"
#include "devices/virtio/block/block.h"
#include "devices/virtio/net/net.h"
#include "devices/virtio/vsock/vsock.h"
#include "event_loop.h"
#include "fuzz_fake_tap.h"
#include "fuzz_virtio.h"
#include "log.h"

#define MAX_OPS 256
#define MMIO_BASE 0xd0000000ull
#define REG_QUEUE_NOTIFY 0x050
#define DISK_BYTES 4096

enum { DEV_BLK, DEV_NET, DEV_VSOCK, NR_DEVS };

static struct event_loop loop;
static struct virtio_blk blk;
static struct virtio_net net;
static struct virtio_vsock vsock;
static struct virtio_mmio *transports[NR_DEVS];
static struct bus bus;
static int disk_fd;
static char dir[64], uds[96];
static struct fz_vq queues[VIRTIO_MMIO_MAX_QUEUES];
static bool queues_set_up;

static void remove_files(void)
{
	virtio_vsock_shutdown(&vsock);
	rmdir(dir);
}

static void bus_read_fn(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	virtio_mmio_read(opaque, off, data, len);
}

/* KVM_IOEVENTFD with DATAMATCH: a 4-byte write of N to QueueNotify
 * signals queue N's eventfd instead of exiting to the transport. */
static void bus_write_fn(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	uint32_t v = 0;
	memcpy(&v, data, len < 4 ? len : 4);
	if (off == REG_QUEUE_NOTIFY && len == 4 && v < t->ops->num_queues)
		virtio_mmio_notify(t, v);
	else
		virtio_mmio_write(t, off, data, len);
}

static void setup_once(void)
{
	static uint8_t disk[DISK_BYTES];
	char path[64], err[200] = "";
	signal(SIGPIPE, SIG_IGN); /* as main() does */
	log_init(LOG_OFF, STDERR_FILENO);
	fz_mem_init();
	strcpy(dir, "/tmp/ember-fuzz-mmio-XXXXXX");
	if (event_loop_init(&loop) < 0 || !mkdtemp(dir))
		abort();
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	disk_fd = memfd_create("ember-fuzz-disk", MFD_CLOEXEC);
	if (disk_fd < 0 || pwrite(disk_fd, disk, sizeof(disk), 0) != (ssize_t)sizeof(disk))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", disk_fd);
	struct blk_drive_config bc = { .id = "mmio", .path = path, .engine = BLK_ENGINE_SYNC };
	struct net_device_config nc = { .id = "eth0", .tap_name = "fz0", .has_mac = true };
	if (virtio_blk_init(&blk, &fz_mem, &bc, err, sizeof(err)) < 0 ||
	    virtio_net_init(&net, &fz_mem, &nc, err, sizeof(err)) < 0 ||
	    virtio_net_add_to_loop(&net, &loop) < 0 ||
	    virtio_vsock_init(&vsock, &fz_mem, 3, uds, err, sizeof(err)) < 0 ||
	    virtio_vsock_add_to_loop(&vsock, &loop) < 0) {
		fprintf(stderr, "fuzz_mmio: %s\n", err);
		abort();
	}
	atexit(remove_files);
	transports[DEV_BLK] = &blk.transport;
	transports[DEV_NET] = &net.transport;
	transports[DEV_VSOCK] = &vsock.transport;
	for (unsigned int i = 0; i < NR_DEVS; i++) {
		struct bus_device d = { .name = "virtio",
					.base = MMIO_BASE + i * VIRTIO_MMIO_SIZE,
					.len = VIRTIO_MMIO_SIZE,
					.opaque = transports[i],
					.read = bus_read_fn,
					.write = bus_write_fn };
		if (bus_register(&bus, &d) < 0)
			abort();
	}
}

/* The transport's rules, whatever was written to it. */
static void check(struct virtio_mmio *t)
{
	uint32_t s = t->status;
	if ((s & VIRTIO_STATUS_DRIVER_OK) && !(s & VIRTIO_STATUS_FEATURES_OK)) {
		fprintf(stderr, "fuzz_mmio: %s: DRIVER_OK without FEATURES_OK\n", t->name);
		abort();
	}
	if ((s & VIRTIO_STATUS_FEATURES_OK) && (t->driver_features & ~t->ops->features(t->dev))) {
		fprintf(stderr, "fuzz_mmio: %s: features acked that were not offered\n", t->name);
		abort();
	}
	for (unsigned int i = 0; virtio_mmio_active(t) && i < t->ops->num_queues; i++) {
		const struct virtq *q = &t->queues[i];
		uint16_t n = q->cfg.size;
		if (!q->cfg.ready)
			continue;
		if (!n || n > t->ops->queue_max || (n & (n - 1)) ||
		    q->desc != guest_mem_ptr(&fz_mem, q->cfg.desc_gpa, 16ull * n) ||
		    q->avail != guest_mem_ptr(&fz_mem, q->cfg.avail_gpa, 6ull + 2ull * n) ||
		    q->used != guest_mem_ptr(&fz_mem, q->cfg.used_gpa, 6ull + 8ull * n)) {
			fprintf(stderr,
				"fuzz_mmio: %s: queue %u runs where the driver did not put it\n",
				t->name, i);
			abort();
		}
	}
	for (unsigned int i = 0; queues_set_up && i < t->ops->num_queues; i++)
		fz_vq_check_used(&queues[i]);
}

/* A register offset: one of the 64 register slots, the first 64 bytes of
 * config space, or any 16-bit offset from the device's base. */
static uint64_t reg_offset(struct fuzz_in *in)
{
	uint8_t sel = fuzz_u8(in);
	if (sel < 0x40)
		return sel * 4u;
	if (sel < 0x80)
		return 0x100u + (sel - 0x40u);
	return fuzz_u16(in);
}

static uint32_t width(uint8_t sel)
{
	static const uint32_t widths[] = { 4, 4, 4, 4, 1, 2, 8, 4 };
	return widths[sel & 7];
}

static void op_write(unsigned int dev, struct fuzz_in *in)
{
	uint8_t w = fuzz_u8(in);
	uint64_t off = reg_offset(in);
	uint64_t v = (w & 0x80) ? fuzz_u64(in) : fuzz_u32(in);
	uint32_t len = width(w);
	/* Queue layout or status written by hand: the device's rings may no
	 * longer be where fz_vq_setup() put them. */
	if ((off >= 0x030 && off < 0x0a8) || (off >= 0x070 && off < 0x074))
		fz_wild = true;
	bus_write(&bus, MMIO_BASE + dev * VIRTIO_MMIO_SIZE + off, (const uint8_t *)&v, len);
}

static void op_read(unsigned int dev, struct fuzz_in *in)
{
	uint8_t w = fuzz_u8(in), data[8];
	uint64_t off = reg_offset(in);
	bus_read(&bus, MMIO_BASE + dev * VIRTIO_MMIO_SIZE + off, data, width(w));
}

/* The usual bring-up: features, every queue, DRIVER_OK. */
static void op_bring_up(struct virtio_mmio *t, struct fuzz_in *in)
{
	fz_negotiate(t, in);
	for (unsigned int i = 0; i < t->ops->num_queues; i++)
		fz_vq_setup(&queues[i], t, i, in);
	fq_driver_ok(t);
	queues_set_up = true;
}

/* Everything the input did goes: the device reset, the disk as it was,
 * the wire and the event loop quiet, handlers freed, timers off. */
static void teardown(void)
{
	static uint8_t zeros[DISK_BYTES];
	static uint8_t frame[FZ_TAP_FRAME_MAX];
	int peer = fz_tap_peer(net.tap_fd);
	for (unsigned int i = 0; i < NR_DEVS; i++)
		fq_reg_write(transports[i], 0x070, 0);
	if (pwrite(disk_fd, zeros, sizeof(zeros), 0) != (ssize_t)sizeof(zeros))
		abort();
	while (recv(net.tap_fd, frame, sizeof(frame), MSG_DONTWAIT) >= 0)
		;
	while (recv(peer, frame, sizeof(frame), MSG_DONTWAIT) >= 0)
		;
	fz_timer_off(vsock.timer_fd);
	event_loop_run_once(&loop, 0);
	net.rx_pending = true;
	net.tx_blocked = false;
	vsock.next_host_port = 1u << 30;
	vsock.ctrl_head = 0;
	for (unsigned int i = 0; i < NR_DEVS; i++)
		transports[i]->config_generation = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		setup_once();
		ready = true;
	}
	struct fuzz_in in = { data, size };
	unsigned int dev = fuzz_u8(&in) % NR_DEVS;
	struct virtio_mmio *t = transports[dev];
	fz_mem_reset();
	queues_set_up = false;

	for (unsigned int i = 0; i < MAX_OPS && in.left; i++) {
		uint8_t op = fuzz_u8(&in);
		unsigned int qi = (op >> 6) % t->ops->num_queues;
		switch (op % 12) {
		case 0:
		case 1:
		case 2:
		case 3:
			op_write(dev, &in);
			break;
		case 4:
		case 5:
			op_read(dev, &in);
			break;
		case 6:
			op_bring_up(t, &in);
			break;
		case 7:
			if (queues_set_up)
				fz_op_chain(&queues[qi], &in);
			break;
		case 8:
			fz_op_poke(&in);
			break;
		case 9:
			event_loop_run_once(&loop, 0);
			break;
		case 10:
			/* Writes to QueueNotify (ioeventfd or not) are in op_write;
			 * this one names a queue the device has. */
			virtio_mmio_notify(t, qi);
			break;
		default:
			fz_wild = true;
			fq_reg_write(t, 0x070, fuzz_u8(&in));
			break;
		}
		check(t);
	}
	teardown();
	return 0;
}
