// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics as JSON lines (one object per flush) to a file or FIFO: at start,
 * every 60 s, on FlushMetrics and at exit. Counters are cumulative.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "util.h"
#include "vcpu.h"
#include "vmm.h"

#define METRICS_PERIOD_S 60

static const char *const exit_names[VCPU_EXIT_KINDS] = {
	[VCPU_EXIT_IO] = "exits_io",
	[VCPU_EXIT_MMIO] = "exits_mmio",
	[VCPU_EXIT_HLT] = "exits_hlt",
	[VCPU_EXIT_SHUTDOWN] = "exits_shutdown",
	[VCPU_EXIT_INTERNAL_ERROR] = "exits_internal_error",
	[VCPU_EXIT_SYSTEM_EVENT] = "exits_system_event",
	[VCPU_EXIT_INTR] = "exits_intr",
	[VCPU_EXIT_OTHER] = "exits_other",
	[VCPU_EXIT_UNHANDLED_IO] = "unhandled_io",
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static json_t *api_metrics(const struct vmm_metrics *m)
{
	uint32_t sorted[1024];
	unsigned int n = m->api_latency_n < 1024 ? m->api_latency_n : 1024;
	memcpy(sorted, m->api_latency_us, n * sizeof(sorted[0]));
	qsort(sorted, n, sizeof(sorted[0]), cmp_u32);
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)m->api_requests,
			 "errors", (json_int_t)m->api_errors, "latency_us_p50",
			 (json_int_t)(n ? sorted[n / 2] : 0), "latency_us_p99",
			 (json_int_t)(n ? sorted[(n * 99) / 100] : 0), "latency_us_max",
			 (json_int_t)m->api_latency_us_max);
}

static json_t *block_metrics(const struct vmm *vmm)
{
	json_t *o = json_object();
	for (unsigned int i = 0; i < vmm->nr_blks; i++) {
		const struct virtio_blk *b = &vmm->blks[i];
		const struct blk_metrics *m = &b->m;
		json_object_set_new(
		    o, b->id,
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "read_count", (json_int_t)m->reads, "write_count",
			      (json_int_t)m->writes, "flush_count", (json_int_t)m->flushes,
			      "read_bytes", (json_int_t)m->read_bytes, "write_bytes",
			      (json_int_t)m->write_bytes, "errors", (json_int_t)m->errors,
			      "io_errors", (json_int_t)m->io_errors, "bad_chains",
			      (json_int_t)m->bad_chains, "rate_limiter_throttled",
			      (json_int_t)m->throttled, "backpressure", (json_int_t)m->backpressure,
			      "needs_reset", (json_int_t)b->transport.needs_reset_events));
	}
	return o;
}

static json_t *net_metrics(const struct vmm *vmm)
{
	json_t *o = json_object();
	for (unsigned int i = 0; i < vmm->nr_nets; i++) {
		const struct virtio_net *n = &vmm->nets[i];
		const struct net_metrics *m = &n->m;
		json_object_set_new(
		    o, n->cfg.id,
		    json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rx_frames",
			(json_int_t)m->rx_frames, "rx_bytes", (json_int_t)m->rx_bytes, "tx_frames",
			(json_int_t)m->tx_frames, "tx_bytes", (json_int_t)m->tx_bytes, "rx_dropped",
			(json_int_t)m->rx_dropped, "tx_malformed", (json_int_t)m->tx_malformed,
			"bad_chains", (json_int_t)m->bad_chains, "rx_rate_limiter_throttled",
			(json_int_t)m->rx_throttled, "tx_rate_limiter_throttled",
			(json_int_t)m->tx_throttled, "tap_errors", (json_int_t)m->tap_errors,
			"rx_short_buffers", (json_int_t)m->rx_short_buffers));
	}
	return o;
}

static json_t *vsock_metrics(const struct vmm *vmm)
{
	if (!vmm->vsock)
		return json_object();
	const struct vsock_metrics *m = &vmm->vsock->m;
	unsigned int open = 0;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		open += vmm->vsock->conns[i].state != VSOCK_FREE &&
		    vmm->vsock->conns[i].state != VSOCK_CLOSING; /* host side gone */
	return json_pack(
	    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "conns_opened",
	    (json_int_t)m->conns_opened, "conns_closed", (json_int_t)m->conns_closed,
	    "conns_refused", (json_int_t)m->conns_refused, "conns_open", (json_int_t)open,
	    "tx_bytes", (json_int_t)m->tx_bytes, "rx_bytes", (json_int_t)m->rx_bytes, "bad_packets",
	    (json_int_t)m->bad_packets, "bad_chains", (json_int_t)m->bad_chains, "resets_to_guest",
	    (json_int_t)m->resets_to_guest, "conns_timed_out", (json_int_t)m->conns_timed_out,
	    "needs_reset", (json_int_t)vmm->vsock->transport.needs_reset_events);
}

/* Firecracker's `entropy` object (its names), all zeros without the
 * device, plus ember's needs_reset as for the other devices. */
static json_t *entropy_metrics(const struct vmm *vmm)
{
	static const struct rng_metrics none;
	const struct rng_metrics *m = vmm->rng ? &vmm->rng->m : &none;
	return json_pack(
	    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "activate_fails",
	    (json_int_t)m->activate_fails, "entropy_event_fails", (json_int_t)m->event_fails,
	    "entropy_event_count", (json_int_t)m->event_count, "entropy_bytes",
	    (json_int_t)m->bytes, "host_rng_fails", (json_int_t)m->host_rng_fails,
	    "entropy_rate_limiter_throttled", (json_int_t)m->throttled, "rate_limiter_event_count",
	    (json_int_t)m->rate_limiter_events, "needs_reset",
	    (json_int_t)(vmm->rng ? vmm->rng->transport.needs_reset_events : 0));
}

static json_t *vcpu_metrics(const struct vmm *vmm)
{
	json_t *o = json_object();
	for (unsigned int k = 0; k < VCPU_EXIT_KINDS; k++) {
		uint64_t sum = 0;
		for (unsigned int i = 0; vmm->state != VMM_NOT_STARTED && i < vmm->vm.nr_vcpus; i++)
			sum += vmm->vm.vcpus[i].exits[k];
		json_object_set_new(o, exit_names[k], json_integer((json_int_t)sum));
	}
	return o;
}

int metrics_flush(struct vmm *vmm)
{
	struct vmm_metrics *m = &vmm->metrics;
	if (m->fd < 0)
		return -ENODEV;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_t *line =
	    json_pack("{s:I, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I}}",
		      "utc_timestamp_ms", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "id",
		      vmm->cfg.id, "state", vmm_state_name(vmm->state), "missed_log_count",
		      (json_int_t)log_missed_count(), "api_server", api_metrics(m), "block",
		      block_metrics(vmm), "net", net_metrics(vmm), "vsock", vsock_metrics(vmm),
		      "entropy", entropy_metrics(vmm), "vcpu", vcpu_metrics(vmm), "boot",
		      "start_to_instance_start_us", (json_int_t)m->start_us, "instance_start_us",
		      (json_int_t)m->build_us, "first_kvm_run_us",
		      (json_int_t)(vmm->state != VMM_NOT_STARTED && vmm->vm.vcpus
				       ? vmm->vm.vcpus[0].first_run_us
				       : 0));
	char *s = line ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	if (!s)
		return -ENOMEM;
	size_t len = strlen(s);
	s[len] = '\n'; /* json_dumps leaves room for the NUL we overwrite */
	int r = write_full(m->fd, s, len + 1);
	free(s);
	return r;
}

void metrics_api_request(struct vmm *vmm, uint64_t latency_us, bool error)
{
	struct vmm_metrics *m = &vmm->metrics;
	m->api_requests++;
	m->api_errors += error;
	m->api_latency_us_total += latency_us;
	if (latency_us > m->api_latency_us_max)
		m->api_latency_us_max = latency_us;
	m->api_latency_us[m->api_latency_n++ % 1024] =
	    latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us;
}

static void metrics_timer(void *opaque, uint32_t events)
{
	struct vmm *vmm = opaque;
	uint64_t v;
	(void)events;
	ssize_t r = read(vmm->metrics.timer_fd, &v, sizeof(v));
	(void)r;
	metrics_flush(vmm);
}

int metrics_start(struct vmm *vmm, const char *path)
{
	struct vmm_metrics *m = &vmm->metrics;
	if (m->fd >= 0)
		return -EALREADY;
	/* O_NONBLOCK so a FIFO with no reader yet does not hang the VMM. */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	m->fd = fd;
	m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = { .it_value = { METRICS_PERIOD_S, 0 },
				  .it_interval = { METRICS_PERIOD_S, 0 } };
	if (m->timer_fd < 0 || timerfd_settime(m->timer_fd, 0, &its, NULL) < 0)
		return -errno;
	m->timer_h = event_loop_add(&vmm->loop, m->timer_fd, EPOLLIN, metrics_timer, vmm);
	if (!m->timer_h)
		return -errno;
	return metrics_flush(vmm);
}
