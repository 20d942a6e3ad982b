// SPDX-License-Identifier: Apache-2.0
/*
 * i8042 keyboard controller, reduced to what a microVM guest uses, with the
 * same surface as Firecracker's:
 *   - the controller commands Linux's i8042 driver issues while probing:
 *     read/write the command byte (0x20/0x60), read/write the output port
 *     (0xd0/0xd1), self-tests (0xaa, 0xab), keyboard disable/enable
 *     (0xad/0xae); every keyboard command byte is acknowledged (0xfa), so a
 *     driver that probes the keyboard gets answers instead of timeouts;
 *   - command 0xfe (pulse the reset line) stops the VM cleanly: Linux
 *     reboots that way with reboot=k;
 *   - Ctrl+Alt+Del, queued by the API's SendCtrlAltDel as scan codes
 *     (set 2, as Firecracker sends them, with translation off in the command
 *     byte) with IRQ 1. A driver reads one byte per interrupt, so the
 *     interrupt is raised again while bytes remain.
 * There is no auxiliary (mouse) port.
 */
#include <string.h>

#include "arch/x86_64/layout.h"
#include "exit_codes.h"
#include "legacy.h"
#include "vm.h"

#define I8042_KBD_IRQ 1

/* Status register (read from port 0x64). */
#define I8042_STATUS_OBF 0x01 /* a byte waits on port 0x60 */
#define I8042_STATUS_SYS 0x04 /* self-test passed */
#define I8042_STATUS_CMD 0x08 /* the last write was a command */
#define I8042_STATUS_UNLOCKED 0x10 /* keyboard not inhibited */

/* Command byte. */
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_SYS 0x04
#define I8042_CTR_KBDDIS 0x10

/* Controller commands (written to port 0x64). */
#define I8042_CMD_READ_CTR 0x20
#define I8042_CMD_WRITE_CTR 0x60
#define I8042_CMD_SELF_TEST 0xaa
#define I8042_CMD_KBD_TEST 0xab
#define I8042_CMD_KBD_DISABLE 0xad
#define I8042_CMD_KBD_ENABLE 0xae
#define I8042_CMD_READ_OUTP 0xd0
#define I8042_CMD_WRITE_OUTP 0xd1
#define I8042_CMD_WRITE_KBD_OUT 0xd2
#define I8042_CMD_RESET 0xfe

/* Keyboard device answers. */
#define KBD_ACK 0xfa
#define KBD_SELF_TEST_OK 0xaa
#define KBD_CMD_RESET 0xff
#define KBD_CMD_GET_ID 0xf2

#define I8042_SELF_TEST_OK 0x55

/* Queue a byte for port 0x60; a full buffer drops it. Caller holds the lock. */
static void i8042_push(struct i8042 *k, uint8_t byte)
{
	if (k->len == sizeof(k->out))
		return;
	k->out[(k->head + k->len) % sizeof(k->out)] = byte;
	k->len++;
}

/* Whether a keyboard byte now queued should interrupt the guest. Caller holds the lock. */
static bool i8042_kbd_irq_enabled(const struct i8042 *k)
{
	return k->len && (k->ctr & I8042_CTR_KBDINT) && !(k->ctr & I8042_CTR_KBDDIS);
}

static void i8042_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	bool irq = false;

	memset(data, 0, len);
	pthread_mutex_lock(&k->lock);
	if (len != 1 || (off != 0 && off != I8042_CMD_PORT - I8042_DATA_PORT))
		k->m.missed_read_count++;
	else
		k->m.read_count++;
	if (off == 0) {
		if (k->len) {
			data[0] = k->out[k->head];
			k->head = (k->head + 1) % sizeof(k->out);
			k->len--;
			irq = i8042_kbd_irq_enabled(k);
		}
	} else if (off == I8042_CMD_PORT - I8042_DATA_PORT) {
		data[0] = (k->len ? I8042_STATUS_OBF : 0) | I8042_STATUS_SYS |
		    (k->last_was_cmd ? I8042_STATUS_CMD : 0) | I8042_STATUS_UNLOCKED;
	}
	pthread_mutex_unlock(&k->lock);
	if (irq)
		vm_irq_pulse(k->vm, I8042_KBD_IRQ);
}

/* A controller command on port 0x64. Returns true to stop the VM. Caller holds the lock. */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->pending = 0;
	switch (cmd) {
	case I8042_CMD_READ_CTR:
		i8042_push(k, k->ctr);
		break;
	case I8042_CMD_WRITE_CTR:
	case I8042_CMD_WRITE_OUTP:
	case I8042_CMD_WRITE_KBD_OUT:
		k->pending = cmd;
		break;
	case I8042_CMD_SELF_TEST:
		i8042_push(k, I8042_SELF_TEST_OK);
		break;
	case I8042_CMD_KBD_TEST:
		i8042_push(k, 0);
		break;
	case I8042_CMD_KBD_DISABLE:
		k->ctr |= I8042_CTR_KBDDIS;
		break;
	case I8042_CMD_KBD_ENABLE:
		k->ctr &= ~I8042_CTR_KBDDIS;
		break;
	case I8042_CMD_READ_OUTP:
		i8042_push(k, k->outp);
		break;
	case I8042_CMD_RESET:
		k->m.reset_count++;
		return true;
	default:
		/* Auxiliary-port and other commands: no such hardware here. */
		break;
	}
	return false;
}

/* A byte on port 0x60: a command's parameter or a byte for the keyboard.
 * Returns whether to interrupt the guest. Caller holds the lock. */
static bool i8042_data(struct i8042 *k, uint8_t byte)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	switch (cmd) {
	case I8042_CMD_WRITE_CTR:
		k->ctr = byte;
		return false;
	case I8042_CMD_WRITE_OUTP:
		k->outp = byte;
		return false;
	case I8042_CMD_WRITE_KBD_OUT:
		i8042_push(k, byte);
		return i8042_kbd_irq_enabled(k);
	default:
		break;
	}
	/* The keyboard acknowledges every byte; reset and identify answer more. */
	i8042_push(k, KBD_ACK);
	if (byte == KBD_CMD_RESET) {
		i8042_push(k, KBD_SELF_TEST_OK);
	} else if (byte == KBD_CMD_GET_ID) {
		i8042_push(k, 0xab);
		i8042_push(k, 0x83);
	}
	return i8042_kbd_irq_enabled(k);
}

static void i8042_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	bool stop = false, irq = false;

	pthread_mutex_lock(&k->lock);
	if (len != 1 || (off != 0 && off != I8042_CMD_PORT - I8042_DATA_PORT))
		k->m.missed_write_count++;
	else
		k->m.write_count++;
	if (off == I8042_CMD_PORT - I8042_DATA_PORT) {
		k->last_was_cmd = true;
		stop = i8042_command(k, data[0]);
	} else if (off == 0) {
		k->last_was_cmd = false;
		irq = i8042_data(k, data[0]);
	}
	pthread_mutex_unlock(&k->lock);
	if (stop)
		vm_request_stop(k->vm, EMBER_EXIT_OK, "guest reset through the i8042");
	else if (irq)
		vm_irq_pulse(k->vm, I8042_KBD_IRQ);
}

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	static const uint8_t keys[] = { 0x14, 0x11, 0xe0, 0x71 }; /* Ctrl, Alt, Del (set 2) */
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < sizeof(keys); i++)
		i8042_push(k, keys[i]);
	pthread_mutex_unlock(&k->lock);
	return vm_irq_pulse(k->vm, I8042_KBD_IRQ);
}

int i8042_init(struct i8042 *k, struct vm *vm)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->vm = vm;
	k->ctr = I8042_CTR_KBDINT | I8042_CTR_SYS;
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
