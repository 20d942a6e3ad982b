// SPDX-License-Identifier: Apache-2.0
/*
 * Debug exit: a write to DEBUG_EXIT_PORT stops the VM, and the low byte of
 * the value becomes ember's exit status. Test guests report results with it.
 */
#include <stdio.h>

#include "arch/x86_64/layout.h"
#include "legacy.h"
#include "vm.h"

static void debug_exit_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct vm *vm = opaque;
	(void)off;
	(void)len;
	char why[48];
	snprintf(why, sizeof(why), "guest wrote %u to the debug-exit port", data[0]);
	vm_request_stop(vm, data[0], why);
}

int debug_exit_init(struct vm *vm)
{
	struct bus_device dev = {
		.name = "debug-exit",
		.base = DEBUG_EXIT_PORT,
		.len = 4,
		.opaque = vm,
		.write = debug_exit_write,
	};
	return bus_register(&vm->pio_bus, &dev);
}
