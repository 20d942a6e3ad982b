/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The snapshot state file: a header, self-describing sections, a CRC.
 *
 *   header   "EMBERSNP" magic (8), architecture (u32, SNAP_ARCH_X86_64),
 *            format version (u32), section count (u32), reserved (u32)
 *   section  tag (u32), instance (u32: vCPU or device index), length (u32),
 *            reserved (u32), then length bytes, padded to 8
 *   trailer  CRC-32 (zlib's) of everything before it (u32), then 4 zero bytes
 *
 * All integers little-endian. The reader checks everything (size cap,
 * magic, architecture, version, CRC, each section inside the file) before a
 * caller sees any section, and each section's length against what the caller
 * expects. Pure code: no KVM, no I/O besides reading and writing the file.
 */
#ifndef EMBER_SNAPSHOT_FORMAT_H
#define EMBER_SNAPSHOT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "rate_limiter.h"

#define SNAP_MAGIC "EMBERSNP"
#define SNAP_ARCH_X86_64 0x8664
/*
 * Version 2 added the rate limiters' bucket state and the wall-clock time of
 * the snapshot (SNAP_RATE_LIMITER, SNAP_CLOCK). Version 1 files still load:
 * their configuration has no rate limiters, so nothing is lost. An older
 * ember refuses version 2 rather than drop what it cannot read. Version 3
 * added optional sections (SNAP_BALLOON) that a VM without the device
 * does not write.
 */
/*
 * Version 3 added the guest's CPUID (SNAP_CPUID), so that a restore on a
 * host that cannot offer what the guest already saw is refused.
 */
#define SNAP_VERSION 3
#define SNAP_VERSION_MIN 1
#define SNAP_MAX_FILE (16u << 20) /* state files are kilobytes; refuse anything huge */
#define SNAP_MAX_SECTIONS 1024

enum snap_tag {
	SNAP_CONFIG = 1, /* JSON: the VM configuration (as GET /vm/config) */
	SNAP_MEMORY, /* struct snap_memory */
	SNAP_VCPU, /* one per vCPU, instance = vCPU index */
	SNAP_VM, /* struct snap_vm_state: PIC, IOAPIC, PIT, kvmclock */
	SNAP_SERIAL, /* struct snap_serial */
	SNAP_VIRTIO, /* one per virtio-mmio device, instance = its index */
	SNAP_VMGENID, /* struct snap_vmgenid, when the VM has ACPI tables */
	/* Version 2 on: */
	SNAP_RATE_LIMITER, /* struct snap_rate_limiters, instance = its SNAP_VIRTIO's */
	SNAP_CLOCK, /* struct snap_clock */
	/* Version 3 on: */
	SNAP_CPUID, /* vCPU 0's CPUID: struct kvm_cpuid_entry2[], at most SNAP_MAX_CPUID */
	SNAP_BALLOON, /* struct balloon_state, when the VM has a balloon (optional) */
};

#define SNAP_MAX_CPUID 256

/*
 * The rate limiters of one block, network or entropy device: one limiter
 * (block, entropy) or two (network: RX, TX). The configuration JSON holds
 * the limits as configured; this, the buckets as they were.
 */
struct snap_rate_limiters {
	uint32_t count;
	uint32_t reserved;
	struct rate_limiter_state rl[2];
};

/* CLOCK_REALTIME read just after KVM_GET_CLOCK, for clock_realtime on hosts
 * whose KVM cannot pair the two itself (KVM_CLOCK_REALTIME). */
struct snap_clock {
	uint64_t realtime_ns;
	uint64_t reserved;
};

/* Where the VM's generation ID lives and which GSI announces a new one. */
struct snap_vmgenid {
	uint64_t addr;
	uint32_t gsi;
	uint32_t reserved;
};

struct snap_section {
	uint32_t tag, instance, len;
	const uint8_t *data;
};

struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	uint32_t count;
	int failed; /* an allocation failed: snap_writer_finish() says so */
};

void snap_writer_init(struct snap_writer *w);
void snap_writer_add(struct snap_writer *w, uint32_t tag, uint32_t instance, const void *data,
		     uint32_t len);
/* Seal the file (count, CRC). 0, or -ENOMEM if any add failed. */
int snap_writer_finish(struct snap_writer *w) __attribute__((warn_unused_result));
void snap_writer_free(struct snap_writer *w);

struct snap_reader {
	const uint8_t *buf;
	size_t len;
	uint32_t version;
	uint32_t count;
	struct snap_section *sections;
};

/*
 * Check @len bytes at @buf as a whole state file and index its sections.
 * 0, or a negative errno with @why set: -EFBIG (over SNAP_MAX_FILE),
 * -EINVAL (truncated, bad magic, bad section, a section newer than the
 * file's version), -ENOEXEC (other architecture), -EPROTO (a version
 * outside SNAP_VERSION_MIN..SNAP_VERSION), -EBADMSG (CRC mismatch).
 */
int snap_reader_init(struct snap_reader *r, const uint8_t *buf, size_t len, const char **why)
    __attribute__((warn_unused_result));
void snap_reader_free(struct snap_reader *r);
/* The section with @tag and @instance, or NULL. */
const struct snap_section *snap_find(const struct snap_reader *r, uint32_t tag, uint32_t instance);
/* Copy a section of exactly @len bytes into @out. 0 or -EINVAL (missing, other size). */
int snap_get(const struct snap_reader *r, uint32_t tag, uint32_t instance, void *out, uint32_t len);

#endif
