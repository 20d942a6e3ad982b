/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The monitor process: one VM, its devices, its configuration and state,
 * the API server and metrics, and the VMM thread's event loop.
 *
 * Lifecycle (Firecracker's): "Not started" while configuration is accepted;
 * vmm_start() builds the VM and starts the vCPUs ("Running"); vmm_pause()
 * and vmm_resume() move between "Running" and "Paused". The process ends
 * when the guest stops, on SIGTERM, or on SendCtrlAltDel's reset.
 * Everything here runs on the VMM thread.
 */
#ifndef EMBER_VMM_H
#define EMBER_VMM_H

#include <jansson.h>

#include "../api/api.h"
#include "arch/x86_64/layout.h"
#include "config.h"
#include "devices/legacy/legacy.h"
#include "devices/virtio/balloon/balloon.h"
#include "devices/virtio/block/block.h"
#include "devices/virtio/net/net.h"
#include "devices/virtio/rng/rng.h"
#include "devices/virtio/vsock/vsock.h"
#include "devtree.h"
#include "event_loop.h"
#include "vm.h"

struct uffd_server;

enum vmm_state { VMM_NOT_STARTED, VMM_RUNNING, VMM_PAUSED, VMM_START_FAILED };

/* Firecracker's put/patch/get_api_requests counters: one per row of
 * metrics.c's endpoint table (count, then fails). */
#define METRICS_API_ROWS 24
/* Firecracker's latencies_us: API-level then VMM-level (handler) times. */
enum metrics_latency {
	LAT_FULL_CREATE_SNAPSHOT,
	LAT_DIFF_CREATE_SNAPSHOT,
	LAT_LOAD_SNAPSHOT,
	LAT_PAUSE_VM,
	LAT_RESUME_VM,
	LAT_KINDS,
};

struct metrics_slot;

struct vmm_metrics {
	int fd; /* -1 when not configured */
	bool fifo; /* fd is a pipe: a line is written only when it fits whole */
	bool periodic; /* the VM started: a line now and every 60 s */
	struct event_handler *timer_h;
	int timer_fd;
	bool emit_id; /* PUT /metrics emit_id: the instance id at the top level */
	json_t *properties; /* PUT /metrics properties (strings), or NULL */
	uint64_t api_requests, api_errors;
	uint64_t api_latency_us_total, api_latency_us_max;
	uint32_t api_latency_us[1024]; /* last requests, for p50/p99 */
	unsigned int api_latency_n;
	uint64_t api_count[METRICS_API_ROWS], api_fails[METRICS_API_ROWS];
	uint64_t deprecated_api_calls;
	uint64_t latency_us[LAT_KINDS], vmm_latency_us[LAT_KINDS]; /* last of each */
	uint64_t missed_metrics, metrics_fails; /* lines dropped; of those, write errors */
	uint64_t start_us; /* process start to vmm_start() */
	uint64_t build_us; /* vmm_start(): VM built and running */
	/* Firecracker's api_server.process_startup_time_us and _cpu_us: from
	 * the launcher's --start-time-us / --start-time-cpu-us (plus
	 * --parent-cpu-time-us) to the API socket accepting; 0 until then. */
	uint64_t startup_us, startup_cpu_us;
	/* What each section showed at the last line written: counters are
	 * reported as the change since then (Firecracker's SharedIncMetric). */
	struct metrics_slot *slots;
	unsigned int nr_slots;
};

struct vmm {
	struct vm vm;
	struct vmm_config cfg;
	enum vmm_state state;
	struct serial serial;
	struct i8042 *i8042;
	struct event_loop loop;
	int signal_fd;
	struct virtio_blk *blks;
	unsigned int nr_blks;
	struct virtio_net *nets;
	unsigned int nr_nets;
	struct virtio_vsock *vsock;
	struct virtio_rng *rng; /* the entropy device, if configured */
	struct mmds mmds; /* the metadata store (PUT/PATCH/GET /mmds) */
	struct virtio_balloon *balloon; /* the balloon, if configured */
	/* Every virtio-mmio device, in the order the guest is told about them. */
	struct fdt_mmio_device mmio_devs[VIRTIO_MAX_DEVICES];
	unsigned int nr_mmio_devs;
	struct api_server api;
	bool api_on;
	struct vmm_metrics metrics;
	/* A snapshot this VM's memory can be diffed against exists: a Full one
	 * was taken, or the VM was loaded from one. */
	bool has_snapshot_base;
	/* The guest has ACPI tables with a VMGenID device (at VMGENID_ADDR,
	 * notified on GED_IRQ): a restore gives it a new generation ID. */
	bool vmgenid;
	struct uffd_server *uffd; /* memory served by userfaultfd, after a Uffd load */
	/* The CPU template the vCPUs get, resolved from cfg at start or load
	 * (vmm_cpu_template_resolve); the VM points at it. */
	struct cpu_template cpu_tpl;
	bool cpu_tpl_on;
};

/* Build the VM from vmm->cfg. Returns 0 or an ember exit code, error logged. */
int vmm_build(struct vmm *vmm) __attribute__((warn_unused_result));
/* The VM and devices of vmm->cfg over a snapshot's memory file; no guest is
 * loaded (snapshot_load() puts the state back). Same returns. */
int vmm_build_restored(struct vmm *vmm, int mem_fd) __attribute__((warn_unused_result));
/*
 * The guest's command line: @user (may be NULL), then "root=/dev/vda rw|ro"
 * (or root=PARTUUID=) when a drive is the root device (it is attached
 * first), then one virtio_mmio.device= entry per device in vmm->mmio_devs.
 * A new string for free(), not bounded here: the boot protocol's limit is
 * checked when it is written to the guest. NULL only when out of memory.
 */
char *vmm_guest_cmdline(const struct vmm *vmm, const char *user);

/*
 * Turn cfg's CPU template into vmm->cpu_tpl for this host: 0, or -1 with
 * @err set (Firecracker's words for a template of the other CPU vendor).
 * vmm_start() and snapshot_load() call it before building anything.
 */
int vmm_cpu_template_resolve(struct vmm *vmm, char *err, size_t err_len)
    __attribute__((warn_unused_result));

/*
 * Build and start the VM (InstanceStart). On failure returns an exit code
 * and writes why into @err; the state becomes VMM_START_FAILED.
 */
int vmm_start(struct vmm *vmm, char *err, size_t err_len);
/* Park every vCPU outside KVM_RUN / let them run again. 0 or -errno. */
int vmm_pause(struct vmm *vmm);
int vmm_resume(struct vmm *vmm);
/* Press Ctrl+Alt+Del on the guest's keyboard controller. */
int vmm_send_ctrl_alt_del(struct vmm *vmm);
/* Flush what must reach disk (writeback drives) before the process exits. */
void vmm_shutdown(struct vmm *vmm);

/* Apply a Firecracker-style JSON config file to vmm->cfg. 0 or -1 with @err. */
int vmm_load_config_file(struct vmm *vmm, const char *path, char *err, size_t err_len);
/* The same from a parsed JSON object. */
int vmm_load_config_json(struct vmm *vmm, json_t *root, char *err, size_t err_len);
/* The configuration as GET /vm/config shows it (a new reference). */
json_t *vmm_config_json(const struct vmm *vmm);

/*
 * Metrics (vmm/metrics.c), Firecracker's schema: one JSON line per flush,
 * counters as the change since the last line written.
 *
 * metrics_start() opens @path as Firecracker does (read-write, non-blocking,
 * created if missing), so a FIFO with no reader yet works. 0 or -errno.
 */
int metrics_start(struct vmm *vmm, const char *path) __attribute__((warn_unused_result));
/* The VM runs (booted or restored): write a line now and every 60 s from
 * here, as Firecracker does. Idempotent; nothing without metrics. */
void metrics_vm_started(struct vmm *vmm);
/*
 * Write one line (FlushMetrics, the timer, exit). A line that does not fit
 * whole in a FIFO's free space is dropped, never cut, and counted in
 * logger.missed_metrics_count; its counts go into the next line written.
 * 0, -ENODEV without metrics, -EAGAIN when dropped, or -errno.
 */
int metrics_flush(struct vmm *vmm);
/*
 * Count an API request: @method and @path as received, @body its JSON (or
 * NULL), @status the answer, @us its time from arrival to answer and
 * @handler_us the part spent in the handler.
 */
void metrics_api_request(struct vmm *vmm, const char *method, const char *path, const json_t *body,
			 unsigned int status, uint64_t us, uint64_t handler_us);

const char *vmm_state_name(enum vmm_state s);

#endif
