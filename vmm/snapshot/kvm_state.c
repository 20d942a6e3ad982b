// SPDX-License-Identifier: Apache-2.0
/* Snapshot sections for KVM and legacy-device state: see kvm_state.h. */
#include "kvm_state.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "kvm.h"
#include "vcpu.h"
#include "vm.h"

static int msr_list(int kvm_fd, struct kvm_msr_entry *out, uint32_t *n)
{
	struct {
		struct kvm_msr_list l;
		uint32_t idx[SNAP_MAX_MSRS];
	} list = { .l.nmsrs = SNAP_MAX_MSRS };
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &list) < 0)
		return -errno;
	*n = list.l.nmsrs;
	for (uint32_t i = 0; i < *n; i++)
		out[i] = (struct kvm_msr_entry){ .index = list.idx[i] };
	return 0;
}

/* Read every MSR KVM lists, dropping the few this host cannot read. */
static int save_msrs(struct vcpu *v, struct snap_vcpu *s)
{
	static struct kvm_msr_entry all[SNAP_MAX_MSRS];
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[SNAP_MAX_MSRS];
	} m;
	uint32_t n = 0;
	int r = msr_list(v->vm->kvm_fd, all, &n);
	if (r < 0)
		return r;
	/* KVM_GET_MSRS stops at the first MSR it cannot read: skip it, go on. */
	for (uint32_t start = 0; start < n;) {
		m.hdr.nmsrs = n - start;
		memcpy(m.e, all + start, (n - start) * sizeof(m.e[0]));
		int got = ioctl(v->fd, KVM_GET_MSRS, &m);
		if (got < 0)
			return -errno;
		for (int i = 0; i < got; i++)
			s->msrs[s->nr_msrs++] = m.e[i];
		start += (uint32_t)got + 1;
	}
	return 0;
}

int snap_save_vcpu(struct vcpu *v, struct snap_vcpu *s)
{
	memset(s, 0, sizeof(*s));
	if (ioctl(v->fd, KVM_GET_MP_STATE, &s->mp_state) < 0 ||
	    ioctl(v->fd, KVM_GET_REGS, &s->regs) < 0 ||
	    ioctl(v->fd, KVM_GET_SREGS, &s->sregs) < 0 ||
	    ioctl(v->fd, KVM_GET_XSAVE, &s->xsave) < 0 ||
	    ioctl(v->fd, KVM_GET_XCRS, &s->xcrs) < 0 ||
	    ioctl(v->fd, KVM_GET_LAPIC, &s->lapic) < 0 ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &s->events) < 0 ||
	    ioctl(v->fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0)
		return -errno;
	return save_msrs(v, s);
}

int snap_restore_vcpu(struct vcpu *v, const struct snap_vcpu *s, const char **why)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[SNAP_MAX_MSRS];
	} m = { .hdr.nmsrs = s->nr_msrs };
	memcpy(m.e, s->msrs, s->nr_msrs * sizeof(m.e[0]));
	/* The order KVM needs: MP state and registers, then the LAPIC, then the
	 * MSRs (TSC deadline after the LAPIC), then pending events. */
	struct kvm_vcpu_events ev = s->events;
	ev.flags &= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
	    KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	if ((*why = "KVM_SET_MP_STATE", ioctl(v->fd, KVM_SET_MP_STATE, &s->mp_state) < 0) ||
	    (*why = "KVM_SET_REGS", ioctl(v->fd, KVM_SET_REGS, &s->regs) < 0) ||
	    (*why = "KVM_SET_SREGS", ioctl(v->fd, KVM_SET_SREGS, &s->sregs) < 0) ||
	    (*why = "KVM_SET_XSAVE", ioctl(v->fd, KVM_SET_XSAVE, &s->xsave) < 0) ||
	    (*why = "KVM_SET_XCRS", ioctl(v->fd, KVM_SET_XCRS, &s->xcrs) < 0) ||
	    (*why = "KVM_SET_DEBUGREGS", ioctl(v->fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0) ||
	    (*why = "KVM_SET_LAPIC", ioctl(v->fd, KVM_SET_LAPIC, &s->lapic) < 0) ||
	    (*why = "KVM_SET_VCPU_EVENTS", ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0))
		return -errno;
	int set = ioctl(v->fd, KVM_SET_MSRS, &m);
	if (set != (int)s->nr_msrs) {
		*why = "KVM_SET_MSRS refused an MSR";
		return set < 0 ? -errno : -EINVAL;
	}
	return 0;
}

int snap_save_vm(struct vm *vm, struct snap_vm *s)
{
	memset(s, 0, sizeof(*s));
	s->pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	s->pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s->ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s->pic_master) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s->pic_slave) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s->ioapic) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_PIT2, &s->pit) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_CLOCK, &s->clock) < 0)
		return -errno;
	return 0;
}

uint64_t snap_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* kvmclock as KVM_SET_CLOCK should set it: see snap_restore_vm(). */
static int restored_clock(struct vm *vm, const struct snap_vm *s, bool clock_realtime,
			  uint64_t saved_realtime_ns, struct kvm_clock_data *clock,
			  const char **how, const char **why)
{
	*clock = (struct kvm_clock_data){ .clock = s->clock.clock };
	*how = "from where it stopped";
	if (!clock_realtime)
		return 0;
	int caps = kvm_check_cap(vm->vm_fd, KVM_CAP_ADJUST_CLOCK);
	if (caps > 0 && (caps & KVM_CLOCK_REALTIME) && (s->clock.flags & KVM_CLOCK_REALTIME)) {
		/* KVM adds the wall-clock time since its own paired reading. */
		clock->flags = KVM_CLOCK_REALTIME;
		clock->realtime = s->clock.realtime;
		*how = "advanced by the wall-clock time since the snapshot (KVM_CLOCK_REALTIME)";
		return 0;
	}
	if (!saved_realtime_ns) {
		*why =
		    "clock_realtime: the snapshot's kvmclock has no wall-clock time (KVM did not "
		    "give KVM_CLOCK_REALTIME and the state file is version 1)";
		return -EINVAL;
	}
	uint64_t now = snap_realtime_ns();
	if (now > saved_realtime_ns)
		clock->clock += now - saved_realtime_ns;
	*how = "advanced by the wall-clock time since the snapshot (ember's reading: this "
	       "KVM gave no KVM_CLOCK_REALTIME)";
	return 0;
}

int snap_restore_vm(struct vm *vm, const struct snap_vm *s, bool clock_realtime,
		    uint64_t saved_realtime_ns, const char **how, const char **why)
{
	if (s->pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER ||
	    s->pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
	    s->ioapic.chip_id != KVM_IRQCHIP_IOAPIC) {
		*why = "interrupt controller state is mislabelled";
		return -EINVAL;
	}
	struct kvm_clock_data clock;
	if (restored_clock(vm, s, clock_realtime, saved_realtime_ns, &clock, how, why) < 0) {
		errno = EINVAL;
		return -EINVAL;
	}
	if ((*why = "KVM_SET_IRQCHIP", ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s->pic_master) < 0) ||
	    ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s->pic_slave) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &s->ioapic) < 0 ||
	    (*why = "KVM_SET_PIT2", ioctl(vm->vm_fd, KVM_SET_PIT2, &s->pit) < 0) ||
	    (*why = "KVM_SET_CLOCK", ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0))
		return -errno;
	return 0;
}

void snap_save_serial(struct serial *sp, struct snap_serial *s)
{
	pthread_mutex_lock(&sp->lock);
	*s = (struct snap_serial){ .ier = sp->ier,
				   .iir_thre_pending = sp->iir_thre_pending,
				   .lcr = sp->lcr,
				   .mcr = sp->mcr,
				   .lsr_extra = sp->lsr_extra,
				   .msr = sp->msr,
				   .scr = sp->scr,
				   .dll = sp->dll,
				   .dlm = sp->dlm,
				   .fcr = sp->fcr,
				   .rx_head = sp->rx_head,
				   .rx_len = sp->rx_len };
	memcpy(s->rx, sp->rx, sizeof(s->rx));
	pthread_mutex_unlock(&sp->lock);
}

int snap_restore_serial(struct serial *sp, const struct snap_serial *s)
{
	if (s->rx_head >= SERIAL_RX_FIFO || s->rx_len > SERIAL_RX_FIFO)
		return -EINVAL;
	pthread_mutex_lock(&sp->lock);
	sp->ier = s->ier, sp->iir_thre_pending = s->iir_thre_pending, sp->lcr = s->lcr;
	sp->mcr = s->mcr, sp->lsr_extra = s->lsr_extra, sp->msr = s->msr, sp->scr = s->scr;
	sp->dll = s->dll, sp->dlm = s->dlm, sp->fcr = s->fcr;
	memcpy(sp->rx, s->rx, sizeof(sp->rx));
	sp->rx_head = s->rx_head, sp->rx_len = s->rx_len;
	pthread_mutex_unlock(&sp->lock);
	return 0;
}
