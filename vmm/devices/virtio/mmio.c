// SPDX-License-Identifier: Apache-2.0
#include "mmio.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "event_loop.h"
#include "log.h"
#include "vm.h"

#define MMIO_MAGIC 0x74726976u /* "virt" */
#define MMIO_VERSION 2
#define MMIO_VENDOR 0x52424d45u /* "EMBR" */

enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_SHM_SEL = 0x0ac,
	REG_SHM_LEN_LOW = 0x0b0,
	REG_SHM_LEN_HIGH = 0x0b4,
	REG_CONFIG_GENERATION = 0x0fc,
	REG_CONFIG = 0x100,
};

static void mmio_raise(struct virtio_mmio *t, uint32_t bits)
{
	t->interrupt_status |= bits;
	uint64_t one = 1;
	ssize_t w = write(t->irq_fd, &one, sizeof(one));
	t->irq_triggers++;
	t->event_fails += w != (ssize_t)sizeof(one);
}

static void mmio_signal_used(struct virtio_mmio *t)
{
	mmio_raise(t, VIRTIO_INT_USED);
}

static void mmio_signal_config(struct virtio_mmio *t)
{
	t->config_generation++;
	t->config_updates++;
	mmio_raise(t, VIRTIO_INT_CONFIG);
}

static void mmio_needs_reset(struct virtio_mmio *t, const char *why)
{
	if (t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return;
	/* Logged once per episode; the guest cannot flood the log. */
	log_warn("%s: device needs reset: %s", t->name, why);
	t->needs_reset_events++;
	t->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		mmio_signal_config(t);
}

const struct virtio_transport_ops virtio_mmio_transport_ops = {
	.signal_used = mmio_signal_used,
	.signal_config = mmio_signal_config,
	.needs_reset = mmio_needs_reset,
};

bool virtio_mmio_active(const struct virtio_mmio *t)
{
	return (t->status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(t->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static struct virtq *mmio_selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->ops->num_queues ? &t->queues[t->queue_sel] : NULL;
}

static void mmio_reset(struct virtio_mmio *t)
{
	t->ops->reset(t->dev);
	for (unsigned int i = 0; i < t->ops->num_queues; i++)
		virtq_reset(&t->queues[i]);
	t->status = 0;
	t->interrupt_status = 0;
	t->driver_features = 0;
	t->device_features_sel = t->driver_features_sel = t->queue_sel = 0;
}

static void mmio_activate(struct virtio_mmio *t)
{
	bool event_idx = t->driver_features & (1ull << VIRTIO_F_RING_EVENT_IDX);
	for (unsigned int i = 0; i < t->ops->num_queues; i++) {
		struct virtq *q = &t->queues[i];
		if (!q->cfg.ready)
			continue;
		const char *why = "";
		if (virtq_activate(q, t->mem, t->ops->queue_max, event_idx, &why) < 0) {
			t->activate_fails++;
			mmio_needs_reset(t, why);
			return;
		}
	}
	if (t->ops->activate(t->dev, t->driver_features) < 0) {
		t->activate_fails++;
		mmio_needs_reset(t, "device could not start");
	}
}

static void mmio_write_status(struct virtio_mmio *t, uint32_t v)
{
	if (v == 0) {
		mmio_reset(t);
		return;
	}
	uint32_t old = t->status;
	/* The driver may only add bits, and never the device-owned NEEDS_RESET. */
	v &= ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if ((v & old) != (old & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET))
		return;
	uint32_t added = v & ~old;
	if (added & VIRTIO_STATUS_FEATURES_OK) {
		uint64_t offered = t->ops->features(t->dev);
		/* Features must be a subset of what we offer, and modern (VERSION_1). */
		if ((t->driver_features & ~offered) ||
		    !(t->driver_features & (1ull << VIRTIO_F_VERSION_1)))
			v &= ~VIRTIO_STATUS_FEATURES_OK;
	}
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK))
		v &= ~VIRTIO_STATUS_DRIVER_OK;
	t->status = v | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	if ((v & ~old) & VIRTIO_STATUS_DRIVER_OK)
		mmio_activate(t);
}

static uint32_t mmio_read_reg(struct virtio_mmio *t, uint64_t off)
{
	struct virtq *q = mmio_selected_queue(t);
	switch (off) {
	case REG_MAGIC:
		return MMIO_MAGIC;
	case REG_VERSION:
		return MMIO_VERSION;
	case REG_DEVICE_ID:
		return t->ops->device_id;
	case REG_VENDOR_ID:
		return MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		if (t->device_features_sel > 1)
			return 0;
		return (uint32_t)(t->ops->features(t->dev) >> (32 * t->device_features_sel));
	case REG_QUEUE_NUM_MAX:
		return q ? t->ops->queue_max : 0;
	case REG_QUEUE_READY:
		return q ? q->cfg.ready : 0;
	case REG_INTERRUPT_STATUS:
		return t->interrupt_status;
	case REG_STATUS:
		return t->status;
	case REG_SHM_LEN_LOW:
	case REG_SHM_LEN_HIGH:
		return 0xffffffffu; /* no shared memory regions */
	case REG_CONFIG_GENERATION:
		return t->config_generation;
	default:
		return 0;
	}
}

static void set_low(uint64_t *v, uint32_t x)
{
	*v = (*v & 0xffffffff00000000ull) | x;
}

static void set_high(uint64_t *v, uint32_t x)
{
	*v = (*v & 0xffffffffull) | ((uint64_t)x << 32);
}

static void mmio_write_reg(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtq *q = mmio_selected_queue(t);
	/* Queue layout is frozen once the queue is ready or the device runs. */
	bool queue_writable = q && !q->cfg.ready && !(t->status & VIRTIO_STATUS_DRIVER_OK);
	bool features_writable =
	    (t->status & VIRTIO_STATUS_DRIVER) && !(t->status & VIRTIO_STATUS_FEATURES_OK);
	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		t->device_features_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		if (features_writable && t->driver_features_sel == 0)
			set_low(&t->driver_features, v);
		else if (features_writable && t->driver_features_sel == 1)
			set_high(&t->driver_features, v);
		break;
	case REG_DRIVER_FEATURES_SEL:
		t->driver_features_sel = v;
		break;
	case REG_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case REG_QUEUE_NUM:
		if (queue_writable)
			q->cfg.size = v > 0xffff ? 0 : (uint16_t)v; /* checked at activation */
		break;
	case REG_QUEUE_READY:
		if (q && !(t->status & VIRTIO_STATUS_DRIVER_OK))
			q->cfg.ready = v & 1;
		break;
	case REG_QUEUE_NOTIFY:
		/* Valid notifications are caught by the ioeventfds; anything
		 * reaching here names no queue of ours. */
		break;
	case REG_INTERRUPT_ACK:
		t->interrupt_status &= ~v;
		break;
	case REG_STATUS:
		mmio_write_status(t, v);
		break;
	case REG_QUEUE_DESC_LOW:
		if (queue_writable)
			set_low(&q->cfg.desc_gpa, v);
		break;
	case REG_QUEUE_DESC_HIGH:
		if (queue_writable)
			set_high(&q->cfg.desc_gpa, v);
		break;
	case REG_QUEUE_DRIVER_LOW:
		if (queue_writable)
			set_low(&q->cfg.avail_gpa, v);
		break;
	case REG_QUEUE_DRIVER_HIGH:
		if (queue_writable)
			set_high(&q->cfg.avail_gpa, v);
		break;
	case REG_QUEUE_DEVICE_LOW:
		if (queue_writable)
			set_low(&q->cfg.used_gpa, v);
		break;
	case REG_QUEUE_DEVICE_HIGH:
		if (queue_writable)
			set_high(&q->cfg.used_gpa, v);
		break;
	default:
		break;
	}
}

void virtio_mmio_read(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (off >= REG_CONFIG) {
		t->ops->config_read(t->dev, off - REG_CONFIG, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v = mmio_read_reg(t, off);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_write(struct virtio_mmio *t, uint64_t off, const uint8_t *data, uint32_t len)
{
	pthread_mutex_lock(&t->lock);
	if (off >= REG_CONFIG) {
		t->ops->config_write(t->dev, off - REG_CONFIG, data, len);
	} else if (len == 4 && !(off & 3)) {
		uint32_t v;
		memcpy(&v, data, 4);
		mmio_write_reg(t, off, v);
	}
	/* Other widths on the register block are ignored, as the spec allows. */
	pthread_mutex_unlock(&t->lock);
}

void virtio_mmio_notify(struct virtio_mmio *t, unsigned int q)
{
	uint64_t v;
	ssize_t r = read(t->notify_fds[q], &v, sizeof(v));
	pthread_mutex_lock(&t->lock);
	t->queue_events[q]++;
	t->event_fails += r < 0 && errno != EAGAIN; /* EAGAIN: a spurious wake-up */
	if (virtio_mmio_active(t) && t->queues[q].avail)
		t->ops->queue_notify(t->dev, q);
	pthread_mutex_unlock(&t->lock);
}

int virtio_mmio_init(struct virtio_mmio *t, const char *name, const struct guest_mem *mem,
		     const struct virtio_device_ops *ops, void *dev, struct virtq *queues)
{
	memset(t, 0, sizeof(*t));
	if (ops->num_queues > VIRTIO_MMIO_MAX_QUEUES || ops->queue_max > VIRTQ_MAX_SIZE)
		return -EINVAL;
	pthread_mutex_init(&t->lock, NULL);
	t->name = name;
	t->mem = mem;
	t->ops = ops;
	t->dev = dev;
	t->queues = queues;
	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_fd < 0)
		return -errno;
	for (unsigned int i = 0; i < ops->num_queues; i++) {
		t->notify_fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->notify_fds[i] < 0)
			return -errno;
	}
	return 0;
}

static void mmio_notify_ready(void *opaque, uint32_t events)
{
	struct virtio_mmio_notify *c = opaque;
	(void)events;
	virtio_mmio_notify(c->t, c->q);
}

static void mmio_bus_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	virtio_mmio_read(opaque, off, data, len);
}

static void mmio_bus_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	virtio_mmio_write(opaque, off, data, len);
}

int virtio_mmio_attach(struct virtio_mmio *t, struct vm *vm, struct event_loop *loop, uint64_t base,
		       uint32_t irq)
{
	t->base = base;
	t->irq = irq;
	struct kvm_irqfd irqfd = { .fd = (uint32_t)t->irq_fd, .gsi = irq };
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		log_err("%s: KVM_IRQFD: %s", t->name, strerror(errno));
		return -errno;
	}
	for (unsigned int i = 0; i < t->ops->num_queues; i++) {
		struct kvm_ioeventfd io = {
			.datamatch = i,
			.addr = base + REG_QUEUE_NOTIFY,
			.len = 4,
			.fd = t->notify_fds[i],
			.flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
		};
		if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
			log_err("%s: KVM_IOEVENTFD: %s", t->name, strerror(errno));
			return -errno;
		}
		struct virtio_mmio_notify *c = &t->notify_ctx[i];
		*c = (struct virtio_mmio_notify){ .t = t, .q = i };
		t->notify_h[i] =
		    event_loop_add(loop, t->notify_fds[i], EPOLLIN, mmio_notify_ready, c);
		if (!t->notify_h[i])
			return -errno;
	}
	struct bus_device dev = {
		.name = t->name,
		.base = base,
		.len = VIRTIO_MMIO_SIZE,
		.opaque = t,
		.read = mmio_bus_read,
		.write = mmio_bus_write,
	};
	return bus_register(&vm->mmio_bus, &dev);
}

void virtio_mmio_save(struct virtio_mmio *t, struct virtio_mmio_state *st)
{
	pthread_mutex_lock(&t->lock);
	memset(st, 0, sizeof(*st));
	st->device_id = t->ops->device_id;
	st->num_queues = t->ops->num_queues;
	st->device_features_sel = t->device_features_sel;
	st->driver_features_sel = t->driver_features_sel;
	st->queue_sel = t->queue_sel;
	st->status = t->status;
	st->interrupt_status = t->interrupt_status;
	st->config_generation = t->config_generation;
	st->driver_features = t->driver_features;
	for (unsigned int i = 0; i < t->ops->num_queues; i++) {
		const struct virtq *q = &t->queues[i];
		st->q[i] = (struct virtio_mmio_queue_state){
			.desc_gpa = q->cfg.desc_gpa,
			.avail_gpa = q->cfg.avail_gpa,
			.used_gpa = q->cfg.used_gpa,
			.size = q->cfg.size,
			.last_avail = q->last_avail,
			.used_idx = q->used_idx,
			.signalled_used = q->signalled_used,
			.ready = q->cfg.ready,
			.signalled_valid = q->signalled_valid,
			.broken = q->broken,
		};
	}
	pthread_mutex_unlock(&t->lock);
}

static int restore_check(struct virtio_mmio *t, const struct virtio_mmio_state *st,
			 const char **why)
{
	const uint32_t known = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET |
	    VIRTIO_STATUS_FAILED;
	if (st->device_id != t->ops->device_id || st->num_queues != t->ops->num_queues) {
		*why = "the device in the snapshot is of another type";
		return -EINVAL;
	}
	if (st->status & ~known) {
		*why = "unknown device status bits";
		return -EINVAL;
	}
	if (st->status & VIRTIO_STATUS_FEATURES_OK) {
		if ((st->driver_features & ~t->ops->features(t->dev)) ||
		    !(st->driver_features & (1ull << VIRTIO_F_VERSION_1))) {
			*why = "acked features are not a subset of those the device offers";
			return -EINVAL;
		}
	} else if (st->status & VIRTIO_STATUS_DRIVER_OK) {
		*why = "DRIVER_OK without FEATURES_OK";
		return -EINVAL;
	}
	for (unsigned int i = 0; i < st->num_queues; i++) {
		const struct virtio_mmio_queue_state *q = &st->q[i];
		if (q->size > t->ops->queue_max || q->ready > 1 || q->signalled_valid > 1 ||
		    q->broken > 1) {
			*why = "a queue's size or flags are out of range";
			return -EINVAL;
		}
	}
	return 0;
}

int virtio_mmio_restore(struct virtio_mmio *t, const struct virtio_mmio_state *st, const char **why)
{
	int r = restore_check(t, st, why);
	if (r < 0)
		return r;
	pthread_mutex_lock(&t->lock);
	t->device_features_sel = st->device_features_sel;
	t->driver_features_sel = st->driver_features_sel;
	t->queue_sel = st->queue_sel;
	t->interrupt_status = st->interrupt_status;
	t->config_generation = st->config_generation;
	t->driver_features = st->driver_features;
	t->status = st->status;
	bool event_idx = t->driver_features & (1ull << VIRTIO_F_RING_EVENT_IDX);
	bool running = virtio_mmio_active(t);
	for (unsigned int i = 0; i < t->ops->num_queues && r == 0; i++) {
		const struct virtio_mmio_queue_state *qs = &st->q[i];
		struct virtq *q = &t->queues[i];
		q->cfg = (struct virtq_config){ .size = qs->size,
						.ready = qs->ready,
						.desc_gpa = qs->desc_gpa,
						.avail_gpa = qs->avail_gpa,
						.used_gpa = qs->used_gpa };
		if (!running || !q->cfg.ready)
			continue;
		/* Ring placement is re-validated against this VM's memory. */
		if (virtq_activate(q, t->mem, t->ops->queue_max, event_idx, why) < 0) {
			r = -EINVAL;
			break;
		}
		uint16_t used_in_mem = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
		if (used_in_mem != qs->used_idx ||
		    (uint16_t)(qs->used_idx - qs->last_avail) != 0 /* nothing in flight */) {
			*why = "a queue's indices disagree with its ring in memory (requests in "
			       "flight?)";
			r = -EINVAL;
			break;
		}
		q->last_avail = qs->last_avail;
		q->used_idx = qs->used_idx;
		q->signalled_used = qs->signalled_used;
		q->signalled_valid = qs->signalled_valid;
		q->broken = qs->broken;
	}
	if (r == 0 && running && t->ops->activate(t->dev, t->driver_features) < 0) {
		*why = "the device could not start";
		r = -EIO;
	}
	/*
	 * Chains the driver published but the device never took (it was
	 * throttled, or their notification was still unread when the snapshot
	 * was taken) would wait for a notification the driver already sent to
	 * the old process: replay it, to be served on the VMM thread.
	 */
	for (unsigned int i = 0; i < t->ops->num_queues && r == 0 && running; i++) {
		if (t->queues[i].cfg.ready && virtq_pending(&t->queues[i]) &&
		    t->notify_fds[i] >= 0) {
			uint64_t one = 1;
			ssize_t w = write(t->notify_fds[i], &one, sizeof(one));
			(void)w; /* a full counter is a notification already */
		}
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}
