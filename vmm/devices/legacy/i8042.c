// SPDX-License-Identifier: Apache-2.0
/*
 * i8042 keyboard controller, reduced to what a microVM guest uses:
 *   - command 0xfe on port 0x64 (pulse the reset line) stops the VM
 *     cleanly: Linux reboots that way with reboot=k;
 *   - Ctrl+Alt+Del, queued by the API's SendCtrlAltDel as scan codes
 *     (set 2, as Firecracker sends them) with IRQ 1, so the guest can shut
 *     down in order.
 */
#include <string.h>

#include "arch/x86_64/layout.h"
#include "exit_codes.h"
#include "legacy.h"
#include "vm.h"

#define I8042_CMD_RESET 0xfe
#define I8042_STATUS_OBF 0x01
#define I8042_KBD_IRQ 1

static void i8042_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	memset(data, 0, len);
	pthread_mutex_lock(&k->lock);
	if (off == 0 && k->len) {
		data[0] = k->out[k->head];
		k->head = (k->head + 1) % sizeof(k->out);
		k->len--;
	} else if (off == I8042_CMD_PORT - I8042_DATA_PORT) {
		data[0] = k->len ? I8042_STATUS_OBF : 0;
	}
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	(void)len;
	if (off == I8042_CMD_PORT - I8042_DATA_PORT && data[0] == I8042_CMD_RESET)
		vm_request_stop(k->vm, EMBER_EXIT_OK, "guest reset through the i8042");
}

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	static const uint8_t keys[] = { 0x14, 0x11, 0xe0, 0x71 }; /* Ctrl, Alt, Del (set 2) */
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < sizeof(keys) && k->len < sizeof(k->out); i++) {
		k->out[(k->head + k->len) % sizeof(k->out)] = keys[i];
		k->len++;
	}
	pthread_mutex_unlock(&k->lock);
	return vm_irq_pulse(k->vm, I8042_KBD_IRQ);
}

int i8042_init(struct i8042 *k, struct vm *vm)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->vm = vm;
	struct bus_device dev = {
		.name = "i8042",
		.base = I8042_DATA_PORT,
		.len = I8042_CMD_PORT - I8042_DATA_PORT + 1,
		.opaque = k,
		.read = i8042_read,
		.write = i8042_write,
	};
	return bus_register(&vm->pio_bus, &dev);
}
