/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots: save a paused VM to a state file plus a memory file, and build
 * a VM from them in a fresh process.
 *
 * The state file (format.h) holds the VM's configuration (as JSON), the
 * memory layout, every vCPU's KVM state, the PIC/IOAPIC/PIT/kvmclock, the
 * serial port and every virtio-mmio transport. The memory file is the guest
 * RAM, regions back to back; a Full snapshot writes all of it (all-zero
 * pages left as holes), a Diff snapshot only pages changed since the
 * previous snapshot or the load, at the same offsets, holes elsewhere:
 * with track_dirty_pages those in KVM's dirty log, else (as Firecracker)
 * those mincore(2) finds resident. scripts/snapshot-merge.py lays a diff
 * onto its base. A Diff is allowed whenever a Full one is (Firecracker's
 * rule); with no base (the first snapshot of a booted VM, or after a Diff
 * that failed once it had read the dirty log) it holds every page and
 * restores alone, as Firecracker's docs say of a booted VM's first Diff. Restore maps the memory file MAP_PRIVATE: pages load on first
 * touch, writes stay private, clones of one snapshot share the page cache.
 *
 * VMM thread only.
 */
#ifndef EMBER_SNAPSHOT_H
#define EMBER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm;

enum snapshot_type { SNAPSHOT_FULL, SNAPSHOT_DIFF };

/* Snapshot the paused VM. 0, or a negative errno with @err set. Both files
 * are written under temporary names, fsynced, then renamed into place
 * (memory first, state last, the older state file removed before): a
 * failure leaves the paths as they were, a crash leaves the older snapshot
 * whole, no state file, or the new snapshot whole. A Diff that failed after
 * reading the dirty log makes the next snapshot hold every page. */
int snapshot_create(struct vmm *vmm, const char *state_path, const char *mem_path,
		    enum snapshot_type type, char *err, size_t err_len)
    __attribute__((warn_unused_result));

#define SNAPSHOT_MAX_OVERRIDES 8

struct snapshot_load {
	const char *state_path, *mem_path;
	/* Memory through ember's userfaultfd handler instead of MAP_PRIVATE,
	 * recording the pages the guest touches into @ws_record, or copying in
	 * those listed in @ws_prefetch before it runs (either may be NULL). */
	bool uffd;
	const char *ws_record, *ws_prefetch;
	bool track_dirty_pages, resume;
	/* kvmclock advances by the wall-clock time since the snapshot
	 * (Firecracker's clock_realtime); else it resumes where it stopped. */
	bool clock_realtime;
	unsigned int nr_net_overrides;
	const char *net_iface[SNAPSHOT_MAX_OVERRIDES], *net_host_dev[SNAPSHOT_MAX_OVERRIDES];
	const char *vsock_uds_path; /* NULL: keep the snapshot's */
	/* clock_now_ns() when the API request arrived, or when the process
	 * started for --restore; the Debug breakdown counts from it (0: from
	 * the load's start). */
	uint64_t request_ns;
};

/*
 * Build and start (or leave paused) a VM from a snapshot, in a process that
 * has not started one. Everything in the state file is checked before any
 * KVM object is made; a failure after that leaves the process unable to
 * start another VM (state VMM_START_FAILED), as a failed InstanceStart does.
 * Returns 0, or an ember exit code with @err set.
 */
int snapshot_load(struct vmm *vmm, const struct snapshot_load *a, char *err, size_t err_len);

#endif
