// SPDX-License-Identifier: Apache-2.0
/* InstanceStart, pause, resume and Ctrl+Alt+Del: the VM's lifecycle. */
#include <errno.h>
#include <stdio.h>

#include "clock.h"
#include "exit_codes.h"
#include "log.h"
#include "vmm.h"

const char *vmm_state_name(enum vmm_state s)
{
	switch (s) {
	case VMM_NOT_STARTED:
	case VMM_START_FAILED:
		return "Not started";
	case VMM_RUNNING:
		return "Running";
	case VMM_PAUSED:
		return "Paused";
	}
	return "Not started";
}

int vmm_start(struct vmm *vmm, char *err, size_t err_len)
{
	uint64_t t0 = clock_now_us();
	vmm->metrics.start_us = clock_us_since_start();
	char why[300];
	if (vmm_cpu_template_resolve(vmm, why, sizeof(why)) < 0) {
		/* Nothing is built yet: the VM may be configured again. */
		snprintf(err, err_len, "Start microvm error: %s", why);
		return EMBER_EXIT_USAGE;
	}
	int r = vmm_build(vmm);
	if (r == 0 && vm_start_vcpus(&vmm->vm) < 0)
		r = EMBER_EXIT_ERROR;
	if (r) {
		/* KVM objects may be half made: this process cannot try again. */
		vmm->state = VMM_START_FAILED;
		snprintf(err, err_len, "InstanceStart failed (exit code %d); the log has the cause",
			 r);
		return r;
	}
	vmm->metrics.build_us = clock_now_us() - t0;
	vmm->state = VMM_RUNNING;
	log_info("VM started in %llu us", (unsigned long long)vmm->metrics.build_us);
	metrics_vm_started(vmm);
	return 0;
}

int vmm_pause(struct vmm *vmm)
{
	if (vmm->state == VMM_PAUSED)
		return 0;
	int r = vm_pause(&vmm->vm);
	if (r == 0)
		vmm->state = VMM_PAUSED;
	return r;
}

int vmm_resume(struct vmm *vmm)
{
	if (vmm->state == VMM_PAUSED) {
		vm_resume(&vmm->vm);
		vmm->state = VMM_RUNNING;
	}
	return 0;
}

int vmm_send_ctrl_alt_del(struct vmm *vmm)
{
	return vmm->i8042 ? i8042_send_ctrl_alt_del(vmm->i8042) : -ENODEV;
}
