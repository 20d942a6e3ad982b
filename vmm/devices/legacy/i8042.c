// SPDX-License-Identifier: Apache-2.0
/*
 * i8042 keyboard controller, reduced to what a microVM guest uses: the
 * status and data registers read as idle, and command 0xfe (pulse the reset
 * line) stops the VM cleanly, which is how Linux reboots with reboot=k.
 */
#include <string.h>

#include "arch/x86_64/layout.h"
#include "exit_codes.h"
#include "legacy.h"
#include "vm.h"

#define I8042_CMD_RESET 0xfe

static void i8042_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)off;
	/* No key data, input buffer empty: the guest never waits on us. */
	memset(data, 0, len);
}

static void i8042_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct vm *vm = opaque;
	(void)len;
	if (off == I8042_CMD_PORT - I8042_DATA_PORT && data[0] == I8042_CMD_RESET)
		vm_request_stop(vm, EMBER_EXIT_OK, "guest reset through the i8042");
}

int i8042_init(struct vm *vm)
{
	struct bus_device dev = {
		.name = "i8042",
		.base = I8042_DATA_PORT,
		.len = I8042_CMD_PORT - I8042_DATA_PORT + 1,
		.opaque = vm,
		.read = i8042_read,
		.write = i8042_write,
	};
	return bus_register(&vm->pio_bus, &dev);
}
