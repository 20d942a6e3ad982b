/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The monitor process: one VM, its devices and the VMM thread's event loop.
 * vmm_build() turns a configuration into a VM ready to start; vmm_run()
 * starts the vCPUs and serves events until the VM stops.
 */
#ifndef EMBER_VMM_H
#define EMBER_VMM_H

#include "config.h"
#include "arch/x86_64/layout.h"
#include "devices/legacy/legacy.h"
#include "devices/virtio/block/block.h"
#include "event_loop.h"
#include "devtree.h"
#include "vm.h"

struct vmm {
	struct vm vm;
	struct serial serial;
	struct event_loop loop;
	int signal_fd;
	struct virtio_blk *blks;
	unsigned int nr_blks;
	/* Every virtio-mmio device, in the order the guest is told about them. */
	struct fdt_mmio_device mmio_devs[VIRTIO_MAX_DEVICES];
	unsigned int nr_mmio_devs;
};

/* Build the VM from @cfg. Returns 0 or an ember exit code, error logged. */
int vmm_build(struct vmm *vmm, const struct vmm_config *cfg) __attribute__((warn_unused_result));
/* Flush what must reach disk (writeback drives) before the process exits. */
void vmm_shutdown(struct vmm *vmm);
/* Run until the VM stops; returns the process exit status. */
int vmm_run(struct vmm *vmm);

#endif
