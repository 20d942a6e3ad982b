// SPDX-License-Identifier: Apache-2.0
/* ember: a minimal KVM monitor for microVMs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "clock.h"
#include "exit_codes.h"
#include "log.h"
#include "vcpu.h"
#include "seccomp/seccomp.h"
#include "snapshot/snapshot.h"
#include "vmm.h"

static void on_stop(void *opaque, uint32_t events)
{
	struct vmm *vmm = opaque;
	(void)events;
	vmm->loop.stop = true;
}

static void on_signal(void *opaque, uint32_t events)
{
	struct vmm *vmm = opaque;
	struct signalfd_siginfo si;
	(void)events;
	if (read(vmm->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("received signal %u, stopping", si.ssi_signo);
	if (vmm->state == VMM_NOT_STARTED || vmm->state == VMM_START_FAILED)
		vmm->loop.stop = true;
	else
		vm_request_stop(&vmm->vm, EMBER_EXIT_OK, "signal");
}

static void on_api(void *opaque, uint32_t events)
{
	struct vmm *vmm = opaque;
	(void)events;
	struct api_call *c = api_server_take(&vmm->api);
	bool was_started = vmm->state != VMM_NOT_STARTED;
	while (c) {
		struct api_call *next = c->next;
		api_dispatch(vmm, c);
		api_server_reply(&vmm->api, c);
		c = next;
	}
	/* The VM's stop eventfd exists only once InstanceStart built the VM. */
	if (!was_started && (vmm->state == VMM_RUNNING || vmm->state == VMM_PAUSED)) {
		if (!event_loop_add(&vmm->loop, vmm->vm.stop_efd, EPOLLIN, on_stop, vmm))
			log_err("cannot watch the VM: %s", strerror(errno));
		if (serial_attach_stdin(&vmm->serial, &vmm->loop) < 0)
			log_warn("serial input from stdin is not available");
	}
}

/* Signals go to the VMM thread's loop; the mask is inherited by vCPU threads. */
static int signals_setup(struct vmm *vmm)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -EINVAL;
	signal(SIGPIPE, SIG_IGN);
	if (vcpu_signals_init() < 0)
		return -EINVAL;
	vmm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return vmm->signal_fd < 0 ? -errno : 0;
}

/* The logger as the command line sets it: --log-path, --level and the rest. */
static void logger_start(const struct vmm_config *cfg)
{
	log_init(LOG_INFO, STDERR_FILENO);
	log_set_instance_id(cfg->id);
	struct log_options o = { .level = cfg->log_level,
				 .show_level = cfg->log_show_level,
				 .show_origin = cfg->log_show_origin,
				 .module = cfg->log_module };
	int r = log_configure(&o, cfg->log_path);
	if (r < 0) {
		fprintf(stderr, "ember: cannot open --log-path '%s': %s\n", cfg->log_path,
			strerror(-r));
		exit(EMBER_EXIT_USAGE);
	}
}

/*
 * Start-up is over: the API socket accepts (or, with --no-api, the VM
 * runs). Record Firecracker's process_startup_time_us (since the
 * launcher's --start-time-us, else since main() began) and
 * process_startup_time_cpu_us: this process's CPU time since the
 * launcher's --start-time-cpu-us reading (CPU time survives exec), plus
 * the launcher's own, --parent-cpu-time-us.
 */
static void startup_done(struct vmm *vmm)
{
	const struct vmm_config *cfg = &vmm->cfg;
	uint64_t cpu = clock_cpu_us(), own = cpu, total;
	if (cfg->start_time_cpu_given && cfg->start_time_cpu_us > cpu)
		log_warn("--start-time-cpu-us %llu is more than this process's CPU time (%llu us): "
			 "not a reading of its clock, ignored",
			 (unsigned long long)cfg->start_time_cpu_us, (unsigned long long)cpu);
	else if (cfg->start_time_cpu_given)
		own = cpu - cfg->start_time_cpu_us;
	if (__builtin_add_overflow(own, cfg->parent_cpu_time_us, &total))
		total = UINT64_MAX;
	vmm->metrics.startup_us = clock_us_since_start();
	vmm->metrics.startup_cpu_us = total;
}

/* The MMDS store's limit (--mmds-size-limit, else the API's largest body,
 * as Firecracker) and its first contents (--metadata). 0, or -1 logged. */
static int mmds_start(struct vmm *vmm)
{
	const struct vmm_config *cfg = &vmm->cfg;
	vmm->mmds.limit = cfg->mmds_size_limit ? cfg->mmds_size_limit
	    : cfg->api_max_payload	       ? cfg->api_max_payload
					       : API_MAX_BODY;
	if (!cfg->metadata_path)
		return 0;
	json_error_t je;
	json_t *data =
	    json_load_file(cfg->metadata_path, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (!data) {
		log_err("--metadata: cannot parse '%s': %s (line %d, column %d)",
			cfg->metadata_path, je.text, je.line, je.column);
		return -1;
	}
	int r = mmds_put(&vmm->mmds, data);
	json_decref(data);
	if (r < 0) {
		log_err("--metadata: '%s' is larger than the MMDS data store limit, %zu bytes",
			cfg->metadata_path, vmm->mmds.limit);
		return -1;
	}
	return 0;
}

static int start_now(struct vmm *vmm)
{
	char err[600];
	int r;
	if (vmm->cfg.restore_path) {
		struct snapshot_load a = { .state_path = vmm->cfg.restore_path,
					   .mem_path = vmm->cfg.restore_mem,
					   .resume = vmm->cfg.restore_resume,
					   .uffd = vmm->cfg.restore_uffd,
					   .ws_record = vmm->cfg.ws_record,
					   .ws_prefetch = vmm->cfg.ws_prefetch,
					   /* The breakdown counts from the process start. */
					   .request_ns =
					       (clock_now_us() - clock_us_since_start()) * 1000 };
		r = snapshot_load(vmm, &a, err, sizeof(err));
		if (r)
			log_err("--restore: %s", err);
	} else {
		r = vmm_start(vmm, err, sizeof(err));
	}
	if (r)
		return r;
	if (!event_loop_add(&vmm->loop, vmm->vm.stop_efd, EPOLLIN, on_stop, vmm)) {
		log_err("cannot watch the VM: %s", strerror(errno));
		return EMBER_EXIT_ERROR;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct vmm vmm;
	struct vmm_config *cfg = &vmm.cfg;

	clock_init();
	int r = cli_parse(argc, argv, cfg);
	if (r)
		return r < 0 ? EMBER_EXIT_OK : r;
	if (cfg->start_time_given)
		clock_set_start_us(cfg->start_time_us);
	logger_start(cfg);
	vmm.metrics.fd = -1;

	if (seccomp_setup(!cfg->no_seccomp, cfg->seccomp_filter) < 0)
		return EMBER_EXIT_USAGE;
	tzset(); /* the HTTP thread formats dates: read the zone now, not under its filter */
	if (signals_setup(&vmm) < 0 || event_loop_init(&vmm.loop) < 0 ||
	    !event_loop_add(&vmm.loop, vmm.signal_fd, EPOLLIN, on_signal, &vmm))
		die(EMBER_EXIT_ERROR, "cannot set up signals and the event loop");

	if (cfg->metrics_path && metrics_start(&vmm, cfg->metrics_path) < 0)
		die(EMBER_EXIT_USAGE, "cannot open --metrics-path '%s'", cfg->metrics_path);
	if (cfg->config_file) {
		char err[600];
		if (vmm_load_config_file(&vmm, cfg->config_file, err, sizeof(err)) < 0)
			die(EMBER_EXIT_USAGE, "--config-file: %s", err);
	}
	if (mmds_start(&vmm) < 0)
		return EMBER_EXIT_USAGE;
	if (cfg->api_sock) {
		if (api_server_start(&vmm.api, cfg->api_sock, cfg->api_max_payload) < 0)
			return EMBER_EXIT_USAGE;
		vmm.api_on = true;
		if (!event_loop_add(&vmm.loop, vmm.api.wake_fd, EPOLLIN, on_api, &vmm))
			die(EMBER_EXIT_ERROR, "cannot watch the API queue");
		startup_done(&vmm);
		log_info("API server listening on %s after %llu us, %llu us of CPU", cfg->api_sock,
			 (unsigned long long)vmm.metrics.startup_us,
			 (unsigned long long)vmm.metrics.startup_cpu_us);
	}
	/* A kernel from the command line or config file boots at once; so
	 * does a snapshot named by --restore. */
	if (cfg->kernel_path || cfg->restore_path) {
		r = start_now(&vmm);
		if (r) {
			vmm_shutdown(&vmm);
			return r;
		}
		if (serial_attach_stdin(&vmm.serial, &vmm.loop) < 0)
			log_warn("serial input from stdin is not available");
		if (!vmm.api_on) {
			startup_done(&vmm);
			log_info("VM running after %llu us, %llu us of CPU",
				 (unsigned long long)vmm.metrics.startup_us,
				 (unsigned long long)vmm.metrics.startup_cpu_us);
		}
	}
	/* Waiting for the API: prepare the snapshot-independent KVM objects
	 * now, so a PUT /snapshot/load or InstanceStart does not pay for them.
	 * --no-prewarm turns it off (benchmarks compare the two). */
	if (vmm.api_on && !cfg->kernel_path && !cfg->restore_path && !cfg->no_prewarm) {
		uint64_t t = clock_now_us();
		r = vm_prewarm(cfg->prewarm_mem_mib << 20, cfg->prewarm_vcpus);
		if (r == 0)
			log_debug("KVM VM prepared in %llu us (%u vCPUs, %llu MiB)",
				  (unsigned long long)(clock_now_us() - t), cfg->prewarm_vcpus,
				  (unsigned long long)cfg->prewarm_mem_mib);
		else
			log_warn("cannot prepare a KVM VM while waiting: %s", strerror(-r));
	}
	/* Start-up is over: from here the VMM thread runs under its filter. */
	if (seccomp_apply(SECCOMP_VMM) < 0)
		die(EMBER_EXIT_ERROR, "cannot install the seccomp filter");
	/* Under that filter, as threads started later would be. */
	if (vmm.api_on && !cfg->kernel_path && !cfg->restore_path && !cfg->no_prewarm)
		vcpu_prestart(cfg->prewarm_vcpus);
	if (event_loop_run(&vmm.loop) < 0)
		log_err("event loop failed: %s", strerror(errno));
	r = vmm.state == VMM_RUNNING || vmm.state == VMM_PAUSED ? vmm.vm.exit_status
								: EMBER_EXIT_OK;
	vmm_shutdown(&vmm);
	if (vmm.metrics.fd >= 0)
		metrics_flush(&vmm);
	/* vCPU threads may still be inside KVM_RUN; exit() ends them with us. */
	exit(r);
}
