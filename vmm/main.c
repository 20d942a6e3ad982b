// SPDX-License-Identifier: Apache-2.0
/* ember: a minimal KVM monitor for microVMs. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "clock.h"
#include "exit_codes.h"
#include "log.h"
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
	vm_request_stop(&vmm->vm, EMBER_EXIT_OK, "signal");
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
	vmm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return vmm->signal_fd < 0 ? -errno : 0;
}

int vmm_run(struct vmm *vmm)
{
	if (!event_loop_add(&vmm->loop, vmm->vm.stop_efd, EPOLLIN, on_stop, vmm) ||
	    !event_loop_add(&vmm->loop, vmm->signal_fd, EPOLLIN, on_signal, vmm)) {
		log_err("cannot set up the event loop: %s", strerror(errno));
		return EMBER_EXIT_ERROR;
	}
	if (vmm->serial.out_fd >= 0) {
		if (serial_attach_stdin(&vmm->serial, &vmm->loop) < 0)
			log_warn("serial input from stdin is not available");
	}
	if (vm_start_vcpus(&vmm->vm) < 0)
		return EMBER_EXIT_ERROR;
	if (event_loop_run(&vmm->loop) < 0) {
		log_err("event loop failed: %s", strerror(errno));
		return EMBER_EXIT_ERROR;
	}
	return vmm->vm.exit_status;
}

int main(int argc, char **argv)
{
	static struct vmm vmm;
	struct vmm_config cfg;

	clock_init();
	int r = cli_parse(argc, argv, &cfg);
	if (r)
		return r < 0 ? EMBER_EXIT_OK : r;
	if (cfg.start_time_us)
		clock_set_start_us(cfg.start_time_us);
	log_init(cfg.log_level, STDERR_FILENO);

	if (signals_setup(&vmm) < 0 || event_loop_init(&vmm.loop) < 0)
		die(EMBER_EXIT_ERROR, "cannot set up signals and the event loop");
	r = vmm_build(&vmm, &cfg);
	if (r)
		return r;
	r = vmm_run(&vmm);
	vmm_shutdown(&vmm);
	/* vCPU threads may still be inside KVM_RUN; exit() ends them with us. */
	exit(r);
}
