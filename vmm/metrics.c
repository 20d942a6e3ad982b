// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics in Firecracker's schema: one JSON object per line, written when
 * the VM starts, every 60 s, on FlushMetrics and at exit. Firecracker's
 * sections and names first (docs/metrics.md), then ember's own counters
 * under "ember". Devices count cumulatively; a line shows a counter's change
 * since the last line written (Firecracker's SharedIncMetric) and a store
 * metric's current value (its SharedStoreMetric). A slot per section keeps
 * what the last written line was based on; a dropped line changes nothing,
 * so its counts show in the next line.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "util.h"
#include "vcpu.h"
#include "vmm.h"

#define METRICS_PERIOD_S 60
#define FIELDS_MAX 40
/* A FIFO takes a line only with this much room to spare: a write bigger
 * than PIPE_BUF may be cut, and the kernel's page-sized pipe buffers can
 * hold up to two pages less than their byte count suggests. */
#define FIFO_SLACK 8192

/* One metric of a section: a dotted name nests ("read_agg.min_us"). */
struct field {
	const char *name;
	bool store; /* a value shown as is, not a counter */
};

struct metrics_slot {
	char key[96];
	bool pending; /* snap holds what the line being written shows */
	uint64_t prev[FIELDS_MAX], snap[FIELDS_MAX];
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define AGG(p)                                                                                     \
	{ p ".min_us", true }, { p ".max_us", true },                                              \
	{                                                                                          \
		p ".sum_us", false                                                                 \
	}

/* ---- Firecracker's sections, in its order ------------------------------------ */

static const struct field api_server_f[] = {
	{ "process_startup_time_us", true },
	{ "process_startup_time_cpu_us", true },
};
static const struct field balloon_f[] = {
	{ "activate_fails", false },	     { "inflate_count", false },
	{ "stats_updates_count", false },    { "stats_update_fails", false },
	{ "deflate_count", false },	     { "event_fails", false },
	{ "free_page_report_count", false }, { "free_page_report_freed", false },
	{ "free_page_report_fails", false }, { "free_page_hint_count", false },
	{ "free_page_hint_freed", false },   { "free_page_hint_fails", false },
};
static const struct field block_f[] = {
	{ "activate_fails", false },
	{ "cfg_fails", false },
	{ "no_avail_buffer", false },
	{ "event_fails", false },
	{ "execute_fails", false },
	{ "invalid_reqs_count", false },
	{ "flush_count", false },
	{ "queue_event_count", false },
	{ "rate_limiter_event_count", false },
	{ "update_count", false },
	{ "update_fails", false },
	{ "read_bytes", false },
	{ "write_bytes", false },
	{ "read_count", false },
	{ "write_count", false },
	AGG("read_agg"),
	AGG("write_agg"),
	{ "rate_limiter_throttled_events", false },
	{ "io_engine_throttled_events", false },
	{ "remaining_reqs_count", false },
};
static const struct field deprecated_api_f[] = { { "deprecated_http_api_calls", false } };
static const struct field get_api_f[] = {
	{ "instance_info_count", false },  { "machine_cfg_count", false },
	{ "mmds_count", false },	   { "vmm_version_count", false },
	{ "hotplug_memory_count", false },
};
static const struct field i8042_f[] = {
	{ "error_count", false }, { "missed_read_count", false }, { "missed_write_count", false },
	{ "read_count", false },  { "reset_count", false },	  { "write_count", false },
};
static const struct field uart_f[] = {
	{ "error_count", false },
	{ "flush_count", false },
	{ "missed_read_count", false },
	{ "missed_write_count", false },
	{ "read_count", false },
	{ "write_count", false },
	{ "rate_limiter_dropped_bytes", false },
};
static const struct field latencies_f[] = {
	{ "full_create_snapshot", true },
	{ "diff_create_snapshot", true },
	{ "load_snapshot", true },
	{ "pause_vm", true },
	{ "resume_vm", true },
	{ "vmm_full_create_snapshot", true },
	{ "vmm_diff_create_snapshot", true },
	{ "vmm_load_snapshot", true },
	{ "vmm_pause_vm", true },
	{ "vmm_resume_vm", true },
};
static const struct field logger_f[] = {
	{ "missed_metrics_count", false },
	{ "metrics_fails", false },
	{ "missed_log_count", false },
	{ "rate_limited_log_count", false },
};
static const struct field mmds_f[] = {
	{ "rx_accepted", false },
	{ "rx_accepted_err", false },
	{ "rx_accepted_unusual", false },
	{ "rx_bad_eth", false },
	{ "rx_invalid_token", false },
	{ "rx_no_token", false },
	{ "rx_count", false },
	{ "tx_bytes", false },
	{ "tx_count", false },
	{ "tx_errors", false },
	{ "tx_frames", false },
	{ "connections_created", false },
	{ "connections_destroyed", false },
};
static const struct field net_f[] = {
	{ "activate_fails", false },
	{ "cfg_fails", false },
	{ "no_rx_avail_buffer", false },
	{ "no_tx_avail_buffer", false },
	{ "event_fails", false },
	{ "rx_queue_event_count", false },
	{ "rx_event_rate_limiter_count", false },
	{ "rx_rate_limiter_throttled", false },
	{ "rx_tap_event_count", false },
	{ "rx_bytes_count", false },
	{ "rx_packets_count", false },
	{ "rx_fails", false },
	{ "rx_count", false },
	{ "tap_read_fails", false },
	{ "tap_write_fails", false },
	AGG("tap_write_agg"),
	{ "tx_bytes_count", false },
	{ "tx_malformed_frames", false },
	{ "tx_fails", false },
	{ "tx_count", false },
	{ "tx_packets_count", false },
	{ "tx_queue_event_count", false },
	{ "tx_rate_limiter_event_count", false },
	{ "tx_rate_limiter_throttled", false },
	{ "tx_spoofed_mac_count", false },
	{ "tx_remaining_reqs_count", false },
};
static const struct field patch_api_f[] = {
	{ "drive_count", false },	   { "drive_fails", false },
	{ "network_count", false },	   { "network_fails", false },
	{ "machine_cfg_count", false },	   { "machine_cfg_fails", false },
	{ "mmds_count", false },	   { "mmds_fails", false },
	{ "hotplug_memory_count", false }, { "hotplug_memory_fails", false },
	{ "pmem_count", false },	   { "pmem_fails", false },
};
static const struct field put_api_f[] = {
	{ "actions_count", false },	   { "actions_fails", false },
	{ "boot_source_count", false },	   { "boot_source_fails", false },
	{ "drive_count", false },	   { "drive_fails", false },
	{ "logger_count", false },	   { "logger_fails", false },
	{ "machine_cfg_count", false },	   { "machine_cfg_fails", false },
	{ "cpu_cfg_count", false },	   { "cpu_cfg_fails", false },
	{ "metrics_count", false },	   { "metrics_fails", false },
	{ "network_count", false },	   { "network_fails", false },
	{ "mmds_count", false },	   { "mmds_fails", false },
	{ "vsock_count", false },	   { "vsock_fails", false },
	{ "pmem_count", false },	   { "pmem_fails", false },
	{ "serial_count", false },	   { "serial_fails", false },
	{ "hotplug_memory_count", false }, { "hotplug_memory_fails", false },
};
static const struct field seccomp_f[] = { { "num_faults", true } };
static const struct field vcpu_f[] = {
	{ "exit_io_in", false },      { "exit_io_out", false }, { "exit_mmio_read", false },
	{ "exit_mmio_write", false }, { "failures", false },	{ "kvmclock_ctrl_fails", false },
	AGG("exit_io_in_agg"),	      AGG("exit_io_out_agg"),	AGG("exit_mmio_read_agg"),
	AGG("exit_mmio_write_agg"),
};
static const struct field vmm_f[] = { { "panic_count", true } };
static const struct field signals_f[] = {
	{ "sigbus", true },   { "sigsegv", true }, { "sigxfsz", true }, { "sigxcpu", true },
	{ "sigpipe", false }, { "sighup", true },  { "sigill", true },
};
static const struct field vsock_f[] = {
	{ "activate_fails", false },	   { "cfg_fails", false },
	{ "rx_queue_event_fails", false }, { "tx_queue_event_fails", false },
	{ "ev_queue_event_fails", false }, { "muxer_event_fails", false },
	{ "conn_event_fails", false },	   { "rx_queue_event_count", false },
	{ "tx_queue_event_count", false }, { "rx_bytes_count", false },
	{ "tx_bytes_count", false },	   { "rx_packets_count", false },
	{ "tx_packets_count", false },	   { "conns_added", false },
	{ "conns_killed", false },	   { "conns_removed", false },
	{ "killq_resync", false },	   { "tx_flush_fails", false },
	{ "tx_write_fails", false },	   { "rx_read_fails", false },
};
static const struct field entropy_f[] = {
	{ "activate_fails", false },	       { "entropy_event_fails", false },
	{ "entropy_event_count", false },      { "entropy_bytes", false },
	{ "host_rng_fails", false },	       { "entropy_rate_limiter_throttled", false },
	{ "rate_limiter_event_count", false },
};
static const struct field interrupts_f[] = { { "triggers", false }, { "config_updates", false } };
static const struct field pmem_f[] = {
	{ "activate_fails", false },
	{ "cfg_fails", false },
	{ "event_fails", false },
	{ "queue_event_count", false },
	{ "rate_limiter_throttled_events", false },
	{ "rate_limiter_event_count", false },
};
static const struct field memory_hotplug_f[] = {
	{ "activate_fails", false },	{ "queue_event_fails", false },
	{ "queue_event_count", false }, AGG("plug_agg"),
	{ "plug_count", false },	{ "plug_bytes", false },
	{ "plug_fails", false },	AGG("unplug_agg"),
	{ "unplug_count", false },	{ "unplug_bytes", false },
	{ "unplug_fails", false },	{ "unplug_discard_fails", false },
	AGG("unplug_all_agg"),		{ "unplug_all_count", false },
	{ "unplug_all_fails", false },	AGG("state_agg"),
	{ "state_count", false },	{ "state_fails", false },
};

/* ---- ember's own section ----------------------------------------------------- */

static const struct field ember_api_f[] = {
	{ "requests", false },	    { "errors", false },	{ "latency_us_p50", true },
	{ "latency_us_p99", true }, { "latency_us_max", true },
};
static const struct field ember_boot_f[] = {
	{ "start_to_instance_start_us", true },
	{ "instance_start_us", true },
	{ "first_kvm_run_us", true },
};
static const struct field ember_block_f[] = {
	{ "errors", false },	   { "io_errors", false },   { "bad_chains", false },
	{ "get_id_count", false }, { "needs_reset", false },
};
static const struct field ember_net_f[] = {
	{ "rx_dropped", false }, { "tx_malformed", false },	{ "bad_chains", false },
	{ "tap_errors", false }, { "rx_short_buffers", false }, { "needs_reset", false },
};
static const struct field ember_vsock_f[] = {
	{ "conns_opened", false },    { "conns_closed", false },    { "conns_refused", false },
	{ "conns_timed_out", false }, { "conns_open", true },	    { "bad_packets", false },
	{ "bad_chains", false },      { "resets_to_guest", false }, { "needs_reset", false },
};
static const struct field ember_entropy_f[] = { { "needs_reset", false } };
static const struct field ember_balloon_f[] = {
	{ "needs_reset", false },
	{ "inflated_pages", false },
	{ "bad_pfns", false },
};
static const struct field ember_vcpu_f[] = {
	{ "exit_hlt", false },
	{ "exit_shutdown", false },
	{ "exit_internal_error", false },
	{ "exit_system_event", false },
	{ "exit_intr", false },
	{ "exit_other", false },
	{ "unhandled_io", false },
};
static const struct field ember_uart_f[] = { { "rx_bytes", false }, { "rx_dropped", false } };

/* ---- the machinery --------------------------------------------------------------- */

static struct metrics_slot *slot_get(struct vmm_metrics *m, const char *key)
{
	for (unsigned int i = 0; i < m->nr_slots; i++)
		if (strcmp(m->slots[i].key, key) == 0)
			return &m->slots[i];
	struct metrics_slot *s = realloc(m->slots, (m->nr_slots + 1) * sizeof(*s));
	if (!s)
		return NULL;
	m->slots = s;
	s = &m->slots[m->nr_slots++];
	memset(s, 0, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "%s", key);
	return s;
}

static void set_field(json_t *o, const char *name, uint64_t v)
{
	const char *dot = strchr(name, '.');
	if (dot) {
		char sub[48];
		snprintf(sub, sizeof(sub), "%.*s", (int)(dot - name), name);
		json_t *child = json_object_get(o, sub);
		if (!child) {
			child = json_object();
			json_object_set_new(o, sub, child);
		}
		o = child;
		name = dot + 1;
	}
	json_object_set_new(o, name, json_integer((json_int_t)v));
}

/* @n fields with their cumulative values @v, as section @key of @parent.
 * @slot_key names the slot (unique across the line). */
static void section(struct vmm_metrics *m, json_t *parent, const char *key, const char *slot_key,
		    const struct field *f, unsigned int n, const uint64_t *v)
{
	struct metrics_slot *s = slot_get(m, slot_key);
	json_t *o = json_object();
	for (unsigned int i = 0; i < n && i < FIELDS_MAX; i++) {
		uint64_t prev = s ? s->prev[i] : 0;
		set_field(o, f[i].name, f[i].store || v[i] < prev ? v[i] : v[i] - prev);
		if (s)
			s->snap[i] = v[i];
	}
	if (s)
		s->pending = true;
	json_object_set_new(parent, key, o);
}

/* A section ember has nothing for: every metric 0, as Firecracker shows it
 * on a VM without the feature. */
static void zeros(json_t *parent, const char *key, const struct field *f, unsigned int n)
{
	json_t *o = json_object();
	for (unsigned int i = 0; i < n; i++)
		set_field(o, f[i].name, 0);
	json_object_set_new(parent, key, o);
}

static void slots_commit(struct vmm_metrics *m, bool written)
{
	for (unsigned int i = 0; i < m->nr_slots; i++) {
		struct metrics_slot *s = &m->slots[i];
		if (s->pending && written)
			memcpy(s->prev, s->snap, sizeof(s->prev));
		s->pending = false;
	}
}

/* ---- the values ---------------------------------------------------------------- */

static void block_values(const struct virtio_blk *b, uint64_t *v)
{
	const struct blk_metrics *m = &b->m;
	const struct virtio_mmio *t = &b->transport;
	uint64_t x[N(block_f)] = {
		t->activate_fails,
		m->cfg_fails,
		m->no_avail_buffer,
		t->event_fails,
		m->io_errors,
		m->invalid_reqs + m->bad_chains,
		m->flushes,
		t->queue_events[0],
		m->rate_limiter_events,
		m->update_count,
		m->update_fails,
		m->read_bytes,
		m->write_bytes,
		m->reads,
		m->writes,
		m->read_time.min_ns / 1000,
		m->read_time.max_ns / 1000,
		m->read_time.sum_ns / 1000,
		m->write_time.min_ns / 1000,
		m->write_time.max_ns / 1000,
		m->write_time.sum_ns / 1000,
		m->throttled,
		m->backpressure,
		m->remaining_reqs,
	};
	memcpy(v, x, sizeof(x));
}

static void net_values(const struct virtio_net *n, uint64_t *v)
{
	const struct net_metrics *m = &n->m;
	const struct virtio_mmio *t = &n->transport;
	uint64_t x[N(net_f)] = {
		t->activate_fails,
		0,
		m->no_rx_avail_buffer,
		0,
		t->event_fails,
		t->queue_events[0],
		m->rx_timer_events,
		m->rx_throttled,
		m->tap_events,
		m->rx_bytes,
		m->rx_frames,
		m->rx_dropped + m->tap_read_fails,
		m->rx_frames,
		m->tap_read_fails,
		m->tap_write_fails,
		m->tap_write_ns_min / 1000,
		m->tap_write_ns_max / 1000,
		m->tap_write_ns_sum / 1000,
		m->tx_bytes,
		m->tx_malformed,
		m->tap_write_fails,
		m->tx_frames,
		m->tx_frames,
		t->queue_events[1],
		m->tx_timer_events,
		m->tx_throttled,
		0, /* tx_spoofed_mac_count: the source MAC is not checked */
		m->tx_remaining,
	};
	memcpy(v, x, sizeof(x));
}

/* Without the device, all 0 (the caller's zeroed array). */
static void vsock_values(const struct virtio_vsock *vs, uint64_t *v)
{
	const struct vsock_metrics *m = &vs->m;
	const struct virtio_mmio *t = &vs->transport;
	uint64_t x[N(vsock_f)] = {
		t->activate_fails,
		0, /* cfg_fails: the config space (guest_cid) is read-only */
		0,
		0,
		0,
		0,
		0, /* the *_event_fails */
		t->queue_events[0],
		t->queue_events[1],
		m->rx_bytes,
		m->tx_bytes,
		m->rx_packets,
		m->tx_packets,
		m->conns_opened,
		m->conns_timed_out,
		m->conns_closed,
		0, /* killq_resync */
		0, /* tx_flush_fails */
		0, /* tx_write_fails */
		m->rx_read_fails,
	};
	memcpy(v, x, sizeof(x));
}

/* Sum @n sections' values into @sum (the aggregate "block" and "net"). */
static void add_values(uint64_t *sum, const uint64_t *v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		sum[i] += v[i];
}

static void devices(struct vmm_metrics *m, json_t *line, const struct vmm *vmm, bool net)
{
	uint64_t v[FIELDS_MAX], sum[FIELDS_MAX] = { 0 };
	const struct field *f = net ? net_f : block_f;
	unsigned int nf = net ? N(net_f) : N(block_f);
	unsigned int nr = net ? (vmm->nets ? vmm->nr_nets : 0) : (vmm->blks ? vmm->nr_blks : 0);
	char key[96];
	for (unsigned int i = 0; i < nr; i++) {
		if (net)
			net_values(&vmm->nets[i], v);
		else
			block_values(&vmm->blks[i], v);
		add_values(sum, v, nf);
		snprintf(key, sizeof(key), "%s_%s", net ? "net" : "block",
			 net ? vmm->nets[i].cfg.id : vmm->blks[i].id);
		section(m, line, key, key, f, nf, v);
	}
	section(m, line, net ? "net" : "block", net ? "net" : "block", f, nf, sum);
}

static uint64_t vcpu_exits(const struct vmm *vmm, enum vcpu_exit_kind k)
{
	uint64_t sum = 0;
	for (unsigned int i = 0; vmm->vm.vcpus && i < vmm->vm.nr_vcpus; i++)
		sum += vmm->vm.vcpus[i].exits[k];
	return sum;
}

static void vcpu_section(struct vmm_metrics *m, json_t *line, const struct vmm *vmm)
{
	uint64_t v[N(vcpu_f)] = {
		vcpu_exits(vmm, VCPU_EXIT_IO_IN),     vcpu_exits(vmm, VCPU_EXIT_IO_OUT),
		vcpu_exits(vmm, VCPU_EXIT_MMIO_READ), vcpu_exits(vmm, VCPU_EXIT_MMIO_WRITE),
		vcpu_exits(vmm, VCPU_EXIT_FAILURE),   0,
	};
	for (unsigned int k = 0; k <= VCPU_EXIT_MMIO_WRITE; k++) {
		uint64_t min = 0, max = 0, sum = 0;
		for (unsigned int i = 0; vmm->vm.vcpus && i < vmm->vm.nr_vcpus; i++) {
			const struct vcpu_exit_time *t = &vmm->vm.vcpus[i].exit_time[k];
			if (t->min_ns && (!min || t->min_ns < min))
				min = t->min_ns;
			if (t->max_ns > max)
				max = t->max_ns;
			sum += t->sum_ns;
		}
		v[6 + 3 * k] = min / 1000;
		v[7 + 3 * k] = max / 1000;
		v[8 + 3 * k] = sum / 1000;
	}
	section(m, line, "vcpu", "vcpu", vcpu_f, N(vcpu_f), v);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static json_t *ember_section(struct vmm_metrics *m, const struct vmm *vmm)
{
	json_t *e = json_pack("{s:s, s:s}", "id", vmm->cfg.id, "state", vmm_state_name(vmm->state));
	bool built = vmm->vm.vcpus != NULL;

	uint32_t sorted[1024];
	unsigned int n = m->api_latency_n < 1024 ? m->api_latency_n : 1024;
	memcpy(sorted, m->api_latency_us, n * sizeof(sorted[0]));
	qsort(sorted, n, sizeof(sorted[0]), cmp_u32);
	uint64_t api[] = { m->api_requests, m->api_errors, n ? sorted[n / 2] : 0,
			   n ? sorted[(n * 99) / 100] : 0, m->api_latency_us_max };
	section(m, e, "api", "ember.api", ember_api_f, N(ember_api_f), api);

	uint64_t boot[] = { m->start_us, m->build_us, built ? vmm->vm.vcpus[0].first_run_us : 0 };
	section(m, e, "boot", "ember.boot", ember_boot_f, N(ember_boot_f), boot);

	char key[96];
	json_t *blocks = json_object();
	for (unsigned int i = 0; vmm->blks && i < vmm->nr_blks; i++) {
		const struct virtio_blk *b = &vmm->blks[i];
		uint64_t v[] = { b->m.errors, b->m.io_errors, b->m.bad_chains, b->m.get_ids,
				 b->transport.needs_reset_events };
		snprintf(key, sizeof(key), "ember.block.%s", b->id);
		section(m, blocks, b->id, key, ember_block_f, N(ember_block_f), v);
	}
	json_object_set_new(e, "block", blocks);

	json_t *nets = json_object();
	for (unsigned int i = 0; vmm->nets && i < vmm->nr_nets; i++) {
		const struct virtio_net *d = &vmm->nets[i];
		uint64_t v[] = { d->m.rx_dropped,	d->m.tx_malformed,
				 d->m.bad_chains,	d->m.tap_errors,
				 d->m.rx_short_buffers, d->transport.needs_reset_events };
		snprintf(key, sizeof(key), "ember.net.%s", d->cfg.id);
		section(m, nets, d->cfg.id, key, ember_net_f, N(ember_net_f), v);
	}
	json_object_set_new(e, "net", nets);

	static const struct vsock_metrics no_vsock;
	const struct vsock_metrics *vm = vmm->vsock ? &vmm->vsock->m : &no_vsock;
	uint64_t conns_open = 0;
	for (unsigned int i = 0; vmm->vsock && i < VSOCK_MAX_CONNS; i++)
		conns_open += vmm->vsock->conns[i].state != VSOCK_FREE &&
		    vmm->vsock->conns[i].state != VSOCK_CLOSING; /* host side gone */
	uint64_t vs[] = { vm->conns_opened,
			  vm->conns_closed,
			  vm->conns_refused,
			  vm->conns_timed_out,
			  conns_open,
			  vm->bad_packets,
			  vm->bad_chains,
			  vm->resets_to_guest,
			  vmm->vsock ? vmm->vsock->transport.needs_reset_events : 0 };
	section(m, e, "vsock", "ember.vsock", ember_vsock_f, N(ember_vsock_f), vs);

	uint64_t rng[] = { vmm->rng ? vmm->rng->transport.needs_reset_events : 0 };
	section(m, e, "entropy", "ember.entropy", ember_entropy_f, N(ember_entropy_f), rng);

	const struct virtio_balloon *b = vmm->balloon;
	uint64_t bl[] = { b ? b->transport.needs_reset_events : 0, b ? b->m.inflated_pages : 0,
			  b ? b->m.bad_pfns : 0 };
	section(m, e, "balloon", "ember.balloon", ember_balloon_f, N(ember_balloon_f), bl);

	uint64_t vc[] = { vcpu_exits(vmm, VCPU_EXIT_HLT),
			  vcpu_exits(vmm, VCPU_EXIT_SHUTDOWN),
			  vcpu_exits(vmm, VCPU_EXIT_INTERNAL_ERROR),
			  vcpu_exits(vmm, VCPU_EXIT_SYSTEM_EVENT),
			  vcpu_exits(vmm, VCPU_EXIT_INTR),
			  vcpu_exits(vmm, VCPU_EXIT_OTHER),
			  vcpu_exits(vmm, VCPU_EXIT_UNHANDLED_IO) };
	section(m, e, "vcpu", "ember.vcpu", ember_vcpu_f, N(ember_vcpu_f), vc);

	uint64_t uart[] = { vmm->serial.rx_bytes, vmm->serial.rx_dropped };
	section(m, e, "uart", "ember.uart", ember_uart_f, N(ember_uart_f), uart);
	return e;
}

/* The line, without its newline. A new reference. */
static json_t *metrics_line(struct vmm *vmm)
{
	struct vmm_metrics *m = &vmm->metrics;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_t *line = json_object();
	json_object_set_new(line, "utc_timestamp_ms",
			    json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	if (m->emit_id)
		json_object_set_new(line, "id", json_string(vmm->cfg.id));
	if (m->properties)
		json_object_set(line, "properties", m->properties);

	uint64_t v[FIELDS_MAX] = { m->startup_us, m->startup_cpu_us };
	section(m, line, "api_server", "api_server", api_server_f, N(api_server_f), v);
	static const struct balloon_metrics no_balloon;
	const struct balloon_metrics *bm = vmm->balloon ? &vmm->balloon->m : &no_balloon;
	uint64_t bv[] = { bm->activate_fails,
			  bm->inflate_count,
			  bm->stats_updates_count,
			  bm->stats_update_fails,
			  bm->deflate_count,
			  bm->event_fails,
			  bm->free_page_report_count,
			  bm->free_page_report_freed,
			  bm->free_page_report_fails,
			  0,
			  0,
			  0 };
	section(m, line, "balloon", "balloon", balloon_f, N(balloon_f), bv);
	devices(m, line, vmm, false);
	v[0] = m->deprecated_api_calls;
	section(m, line, "deprecated_api", "deprecated_api", deprecated_api_f, 1, v);

	/* The endpoint table's rows, in the order put_api_f etc. name them. */
	uint64_t get[N(get_api_f)], put[N(put_api_f)], patch[N(patch_api_f)];
	for (unsigned int i = 0; i < N(get_api_f); i++)
		get[i] = m->api_count[i];
	for (unsigned int i = 0; i < N(put_api_f) / 2; i++) {
		put[2 * i] = m->api_count[N(get_api_f) + i];
		put[2 * i + 1] = m->api_fails[N(get_api_f) + i];
	}
	for (unsigned int i = 0; i < N(patch_api_f) / 2; i++) {
		unsigned int row = N(get_api_f) + N(put_api_f) / 2 + i;
		patch[2 * i] = m->api_count[row];
		patch[2 * i + 1] = m->api_fails[row];
	}
	section(m, line, "get_api_requests", "get", get_api_f, N(get_api_f), get);

	const struct i8042_metrics *k = vmm->i8042 ? &vmm->i8042->m : NULL;
	uint64_t kv[] = { 0,
			  k ? k->missed_read_count : 0,
			  k ? k->missed_write_count : 0,
			  k ? k->read_count : 0,
			  k ? k->reset_count : 0,
			  k ? k->write_count : 0 };
	section(m, line, "i8042", "i8042", i8042_f, N(i8042_f), kv);
	const struct serial_metrics *u = &vmm->serial.m;
	uint64_t uv[] = {
		0,
		0,
		u->missed_read_count,
		u->missed_write_count,
		u->read_count,
		u->write_count,
		u->rate_limiter_dropped_bytes,
	};
	section(m, line, "uart", "uart", uart_f, N(uart_f), uv);

	for (unsigned int i = 0; i < LAT_KINDS; i++) {
		v[i] = m->latency_us[i];
		v[LAT_KINDS + i] = m->vmm_latency_us[i];
	}
	section(m, line, "latencies_us", "latencies_us", latencies_f, N(latencies_f), v);
	uint64_t lg[] = { m->missed_metrics, m->metrics_fails, log_missed_count(), 0 };
	section(m, line, "logger", "logger", logger_f, N(logger_f), lg);
	const struct mmds *md = &vmm->mmds;
	uint64_t mv[N(mmds_f)] = { md->rx_accepted,
				   md->rx_bad,
				   0,
				   0,
				   md->rx_invalid_token,
				   md->rx_no_token,
				   md->rx_accepted,
				   0,
				   md->tx_frames,
				   md->tx_errors,
				   md->tx_frames,
				   md->conn_created,
				   md->conn_destroyed };
	section(m, line, "mmds", "mmds", mmds_f, N(mmds_f), mv);
	devices(m, line, vmm, true);
	section(m, line, "patch_api_requests", "patch", patch_api_f, N(patch_api_f), patch);
	section(m, line, "put_api_requests", "put", put_api_f, N(put_api_f), put);
	zeros(line, "seccomp", seccomp_f, N(seccomp_f));
	vcpu_section(m, line, vmm);
	zeros(line, "vmm", vmm_f, N(vmm_f));
	zeros(line, "signals", signals_f, N(signals_f));

	const struct virtio_vsock *vs = vmm->vsock;
	uint64_t vv[N(vsock_f)] = { 0 };
	if (vs)
		vsock_values(vs, vv);
	section(m, line, "vsock", "vsock", vsock_f, N(vsock_f), vv);

	static const struct rng_metrics no_rng;
	const struct rng_metrics *r = vmm->rng ? &vmm->rng->m : &no_rng;
	uint64_t rv[] = { r->activate_fails, r->event_fails, r->event_count,	    r->bytes,
			  r->host_rng_fails, r->throttled,   r->rate_limiter_events };
	section(m, line, "entropy", "entropy", entropy_f, N(entropy_f), rv);
	zeros(line, "pmem", pmem_f, N(pmem_f));

	uint64_t irq[2] = { 0, 0 };
	for (unsigned int i = 0; vmm->blks && i < vmm->nr_blks; i++) {
		irq[0] += vmm->blks[i].transport.irq_triggers;
		irq[1] += vmm->blks[i].transport.config_updates;
	}
	for (unsigned int i = 0; vmm->nets && i < vmm->nr_nets; i++) {
		irq[0] += vmm->nets[i].transport.irq_triggers;
		irq[1] += vmm->nets[i].transport.config_updates;
	}
	if (vs) {
		irq[0] += vs->transport.irq_triggers;
		irq[1] += vs->transport.config_updates;
	}
	if (vmm->rng) {
		irq[0] += vmm->rng->transport.irq_triggers;
		irq[1] += vmm->rng->transport.config_updates;
	}
	if (vmm->balloon) {
		irq[0] += vmm->balloon->transport.irq_triggers;
		irq[1] += vmm->balloon->transport.config_updates;
	}
	section(m, line, "interrupts", "interrupts", interrupts_f, N(interrupts_f), irq);
	zeros(line, "memory_hotplug", memory_hotplug_f, N(memory_hotplug_f));

	json_object_set_new(line, "ember", ember_section(m, vmm));
	return line;
}

/* Write @len bytes (a whole line) or nothing. 0, -EAGAIN or -errno. */
static int metrics_write_line(struct vmm_metrics *m, const char *s, size_t len)
{
	if (m->fifo) {
		int size = fcntl(m->fd, F_GETPIPE_SZ);
		int queued = 0;
		if (size > 0 && ioctl(m->fd, FIONREAD, &queued) == 0 &&
		    (uint64_t)queued + len + FIFO_SLACK > (uint64_t)size)
			return -EAGAIN;
	}
	ssize_t w;
	do
		w = write(m->fd, s, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	/* Only a regular file that filled up writes part of a line. */
	return (size_t)w == len ? 0 : -ENOSPC;
}

int metrics_flush(struct vmm *vmm)
{
	struct vmm_metrics *m = &vmm->metrics;
	if (m->fd < 0)
		return -ENODEV;
	json_t *line = metrics_line(vmm);
	char *s = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	int r = -ENOMEM;
	if (s) {
		size_t len = strlen(s);
		s[len] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
		r = metrics_write_line(m, s, len + 1);
		free(s);
	}
	slots_commit(m, r == 0);
	if (r < 0) {
		m->missed_metrics++;
		m->metrics_fails += r != -EAGAIN;
	}
	return r;
}

/* ---- API requests ------------------------------------------------------------- */

/*
 * Firecracker's endpoint counters: the get rows, then put, then patch, in
 * the order of get_api_f, put_api_f (count/fails pairs) and patch_api_f.
 * A path ending in '/' takes an id; any other also matches its sub-paths.
 */
static const struct api_row {
	const char *method, *path;
} api_rows[METRICS_API_ROWS] = {
	{ "GET", "/" },
	{ "GET", "/machine-config" },
	{ "GET", "/mmds" },
	{ "GET", "/version" },
	{ "GET", "/hotplug/memory" },
	{ "PUT", "/actions" },
	{ "PUT", "/boot-source" },
	{ "PUT", "/drives/" },
	{ "PUT", "/logger" },
	{ "PUT", "/machine-config" },
	{ "PUT", "/cpu-config" },
	{ "PUT", "/metrics" },
	{ "PUT", "/network-interfaces/" },
	{ "PUT", "/mmds" },
	{ "PUT", "/vsock" },
	{ "PUT", "/pmem/" },
	{ "PUT", "/serial" },
	{ "PUT", "/hotplug/memory" },
	{ "PATCH", "/drives/" },
	{ "PATCH", "/network-interfaces/" },
	{ "PATCH", "/machine-config" },
	{ "PATCH", "/mmds" },
	{ "PATCH", "/hotplug/memory" },
	{ "PATCH", "/pmem/" },
};

_Static_assert(N(get_api_f) + N(put_api_f) / 2 + N(patch_api_f) / 2 == METRICS_API_ROWS,
	       "one api_rows entry per get_api_requests name and put/patch count-fails pair");

static bool api_row_matches(const struct api_row *row, const char *method, const char *path)
{
	size_t n = strlen(row->path);
	if (strcmp(row->method, method) != 0)
		return false;
	if (n == 1)
		return strcmp(path, "/") == 0;
	if (row->path[n - 1] == '/') /* an id, and nothing after it */
		return strncmp(path, row->path, n) == 0 && path[n] && !strchr(path + n, '/');
	return strncmp(path, row->path, n) == 0 && (!path[n] || path[n] == '/');
}

static bool has(const json_t *body, const char *key)
{
	const json_t *v = json_object_get(body, key);
	return v && !json_is_null(v) && !json_is_false(v);
}

/* Firecracker's deprecated fields: each request using one counts once. */
static bool deprecated(const char *method, const char *path, const json_t *body)
{
	if (!body || strcmp(method, "GET") == 0)
		return false;
	if (strcmp(path, "/machine-config") == 0)
		return has(body, "cpu_template");
	if (strcmp(path, "/vsock") == 0)
		return has(body, "vsock_id");
	if (strcmp(path, "/snapshot/load") == 0)
		return has(body, "mem_file_path") || has(body, "enable_diff_snapshots");
	if (strcmp(path, "/mmds/config") == 0) { /* MMDS V1, named or by default */
		const char *v = json_string_value(json_object_get(body, "version"));
		return !v || strcmp(v, "V1") == 0;
	}
	return false;
}

static void api_latency(struct vmm_metrics *m, const char *method, const char *path,
			const json_t *body, uint64_t us, uint64_t handler_us)
{
	int k = -1;
	const char *v;
	if (strcmp(method, "PUT") == 0 && strcmp(path, "/snapshot/create") == 0)
		k = (v = json_string_value(json_object_get(body, "snapshot_type"))) &&
			strcmp(v, "Diff") == 0
		    ? LAT_DIFF_CREATE_SNAPSHOT
		    : LAT_FULL_CREATE_SNAPSHOT;
	else if (strcmp(method, "PUT") == 0 && strcmp(path, "/snapshot/load") == 0)
		k = LAT_LOAD_SNAPSHOT;
	else if (strcmp(method, "PATCH") == 0 && strcmp(path, "/vm") == 0 &&
		 (v = json_string_value(json_object_get(body, "state"))))
		k = strcmp(v, "Paused") == 0 ? LAT_PAUSE_VM : LAT_RESUME_VM;
	if (k < 0)
		return;
	m->latency_us[k] = us;
	m->vmm_latency_us[k] = handler_us;
}

void metrics_api_request(struct vmm *vmm, const char *method, const char *path, const json_t *body,
			 unsigned int status, uint64_t us, uint64_t handler_us)
{
	struct vmm_metrics *m = &vmm->metrics;
	bool error = status >= 400;
	m->api_requests++;
	m->api_errors += error;
	m->api_latency_us_total += us;
	if (us > m->api_latency_us_max)
		m->api_latency_us_max = us;
	m->api_latency_us[m->api_latency_n++ % 1024] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	for (unsigned int i = 0; i < METRICS_API_ROWS; i++) {
		if (api_row_matches(&api_rows[i], method, path)) {
			m->api_count[i]++;
			m->api_fails[i] += error;
			break;
		}
	}
	m->deprecated_api_calls += deprecated(method, path, body);
	if (!error)
		api_latency(m, method, path, body, us, handler_us);
}

/* ---- start, timer --------------------------------------------------------------- */

static void metrics_timer(void *opaque, uint32_t events)
{
	struct vmm *vmm = opaque;
	uint64_t v;
	(void)events;
	ssize_t r = read(vmm->metrics.timer_fd, &v, sizeof(v));
	(void)r;
	metrics_flush(vmm);
}

void metrics_vm_started(struct vmm *vmm)
{
	struct vmm_metrics *m = &vmm->metrics;
	if (m->fd < 0 || m->periodic)
		return;
	m->periodic = true;
	struct itimerspec its = { .it_value = { METRICS_PERIOD_S, 0 },
				  .it_interval = { METRICS_PERIOD_S, 0 } };
	if (timerfd_settime(m->timer_fd, 0, &its, NULL) < 0)
		log_warn("metrics: cannot arm the 60 s timer: %s", strerror(errno));
	metrics_flush(vmm);
}

int metrics_start(struct vmm *vmm, const char *path)
{
	struct vmm_metrics *m = &vmm->metrics;
	if (m->fd >= 0)
		return -EALREADY;
	if (!path || !*path)
		return -ENOENT;
	/* Read-write and non-blocking, as Firecracker opens it: a FIFO with no
	 * reader yet opens at once, and holding both ends keeps it open when a
	 * reader comes and goes. O_APPEND: a regular file grows, it is not
	 * overwritten from its start as Firecracker's would be. */
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	m->timer_h = event_loop_add(&vmm->loop, tfd, EPOLLIN, metrics_timer, vmm);
	if (!m->timer_h) {
		int e = -errno;
		close(tfd);
		close(fd);
		return e;
	}
	m->fd = fd;
	m->fifo = S_ISFIFO(st.st_mode);
	m->timer_fd = tfd;
	if (vmm->state == VMM_RUNNING || vmm->state == VMM_PAUSED)
		metrics_vm_started(vmm);
	return 0;
}
