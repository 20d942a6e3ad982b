/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KVM and legacy-device state a snapshot holds: each vCPU's registers,
 * FPU/XSAVE, LAPIC, events, debug registers, MP state and MSRs; the VM's
 * PIC, IOAPIC, PIT and kvmclock; the serial port. Fixed-layout sections of
 * the state file (format.h). VMM thread, VM paused or not yet started.
 */
#ifndef EMBER_SNAPSHOT_KVM_STATE_H
#define EMBER_SNAPSHOT_KVM_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/legacy/legacy.h"

#define SNAP_MAX_MSRS 256

struct snap_vcpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp_state;
	uint32_t nr_msrs, pad;
	struct kvm_msr_entry msrs[SNAP_MAX_MSRS];
};

struct snap_vm {
	struct kvm_irqchip pic_master, pic_slave, ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

struct snap_serial {
	uint8_t ier, iir_thre_pending, lcr, mcr, lsr_extra, msr, scr, dll, dlm, fcr, pad[6];
	uint8_t rx[SERIAL_RX_FIFO];
	uint32_t rx_head, rx_len;
};

struct vcpu;
struct vm;

/* Read @v's state (every MSR KVM lists and this host can read). 0 or -errno. */
int snap_save_vcpu(struct vcpu *v, struct snap_vcpu *s) __attribute__((warn_unused_result));
/* Put it back, in the order KVM needs. 0, or -errno with @why naming the ioctl. */
int snap_restore_vcpu(struct vcpu *v, const struct snap_vcpu *s, const char **why)
    __attribute__((warn_unused_result));
int snap_save_vm(struct vm *vm, struct snap_vm *s) __attribute__((warn_unused_result));
/*
 * Put the VM state back. kvmclock resumes where it stopped, as Firecracker
 * does by default; with @clock_realtime it advances by the wall-clock time
 * since the snapshot: by KVM (KVM_CLOCK_REALTIME, Linux 5.16 on, when the
 * saved clock carries it: a host whose clocksource is the TSC), else from
 * @saved_realtime_ns, ember's own CLOCK_REALTIME reading at snapshot time
 * (0: none, and then -EINVAL). *@how says which, for the log.
 */
int snap_restore_vm(struct vm *vm, const struct snap_vm *s, bool clock_realtime,
		    uint64_t saved_realtime_ns, const char **how, const char **why)
    __attribute__((warn_unused_result));
/* Wall-clock time now (CLOCK_REALTIME), in ns. */
uint64_t snap_realtime_ns(void);
void snap_save_serial(struct serial *sp, struct snap_serial *s);
/* -EINVAL when the FIFO indices are out of range. */
int snap_restore_serial(struct serial *sp, const struct snap_serial *s)
    __attribute__((warn_unused_result));

#endif
