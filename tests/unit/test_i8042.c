// SPDX-License-Identifier: Apache-2.0
/* The i8042 as Linux's i8042 and atkbd drivers drive it: command byte,
 * self-tests, keyboard acknowledgements, Ctrl+Alt+Del bytes, reset line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86_64/layout.h"
#include "devices/legacy/legacy.h"
#include "exit_codes.h"
#include "vm.h"

#define STATUS_OBF 0x01

static struct vm *fake_vm(struct i8042 *k)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	vm->vm_fd = -1; /* IRQ pulses fail quietly: nothing to inject into */
	vm->stop_efd = -1;
	assert_int_equal(i8042_init(k, vm), 0);
	return vm;
}

static uint8_t in(struct vm *vm, uint16_t port)
{
	uint8_t b = 0xee;
	assert_int_equal(bus_read(&vm->pio_bus, port, &b, 1), 0);
	return b;
}

static void out(struct vm *vm, uint16_t port, uint8_t b)
{
	assert_int_equal(bus_write(&vm->pio_bus, port, &b, 1), 0);
}

/* One controller command and its one-byte answer, polled as Linux does. */
static uint8_t command(struct vm *vm, uint8_t cmd)
{
	out(vm, I8042_CMD_PORT, cmd);
	assert_true(in(vm, I8042_CMD_PORT) & STATUS_OBF);
	uint8_t b = in(vm, I8042_DATA_PORT);
	assert_false(in(vm, I8042_CMD_PORT) & STATUS_OBF);
	return b;
}

static void linux_probe_sequence(void **state)
{
	(void)state;
	struct i8042 k;
	struct vm *vm = fake_vm(&k);

	assert_false(in(vm, I8042_CMD_PORT) & STATUS_OBF); /* nothing to flush */
	uint8_t ctr = command(vm, 0x20);
	assert_int_equal(ctr & 0x01, 0x01); /* keyboard interrupt on */
	assert_int_equal(ctr & 0x40, 0); /* no translation: set-2 scan codes */
	out(vm, I8042_CMD_PORT, 0x60);
	out(vm, I8042_DATA_PORT, 0x45);
	assert_int_equal(command(vm, 0x20), 0x45);
	assert_int_equal(command(vm, 0xaa), 0x55); /* controller self-test */
	assert_int_equal(command(vm, 0xab), 0x00); /* keyboard port test */
	out(vm, I8042_CMD_PORT, 0xad);
	assert_int_equal(command(vm, 0x20) & 0x10, 0x10); /* keyboard disabled */
	out(vm, I8042_CMD_PORT, 0xae);
	assert_int_equal(command(vm, 0x20) & 0x10, 0);
	out(vm, I8042_CMD_PORT, 0xd1);
	out(vm, I8042_DATA_PORT, 0xdf);
	assert_int_equal(command(vm, 0xd0), 0xdf);
	/* Keyboard commands are acknowledged; identify and reset answer more. */
	out(vm, I8042_DATA_PORT, 0xf2);
	assert_int_equal(in(vm, I8042_DATA_PORT), 0xfa);
	assert_int_equal(in(vm, I8042_DATA_PORT), 0xab);
	assert_int_equal(in(vm, I8042_DATA_PORT), 0x83);
	out(vm, I8042_DATA_PORT, 0xff);
	assert_int_equal(in(vm, I8042_DATA_PORT), 0xfa);
	assert_int_equal(in(vm, I8042_DATA_PORT), 0xaa);
	assert_false(in(vm, I8042_CMD_PORT) & STATUS_OBF);
	assert_int_equal(in(vm, I8042_DATA_PORT), 0); /* empty: reads 0 */
	assert_int_equal(vm->stop_requested, 0);
	free(vm);
}

static void ctrl_alt_del_and_reset(void **state)
{
	(void)state;
	struct i8042 k;
	struct vm *vm = fake_vm(&k);
	static const uint8_t keys[] = { 0x14, 0x11, 0xe0, 0x71 };

	i8042_send_ctrl_alt_del(&k);
	for (size_t i = 0; i < sizeof(keys); i++) {
		assert_true(in(vm, I8042_CMD_PORT) & STATUS_OBF);
		assert_int_equal(in(vm, I8042_DATA_PORT), keys[i]);
	}
	assert_false(in(vm, I8042_CMD_PORT) & STATUS_OBF);
	/* A guest that floods the keyboard only fills the buffer. */
	for (int i = 0; i < 100; i++)
		out(vm, I8042_DATA_PORT, 0xee);
	for (int i = 0; i < 16; i++)
		assert_int_equal(in(vm, I8042_DATA_PORT), 0xfa);
	assert_false(in(vm, I8042_CMD_PORT) & STATUS_OBF);
	/* Unknown commands are ignored; 0xfe pulses the reset line. */
	out(vm, I8042_CMD_PORT, 0xa9);
	out(vm, I8042_CMD_PORT, 0x00);
	assert_int_equal(vm->stop_requested, 0);
	out(vm, I8042_CMD_PORT, 0xfe);
	assert_int_equal(vm->stop_requested, 1);
	assert_int_equal(vm->exit_status, EMBER_EXIT_OK);
	free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(linux_probe_sequence),
		cmocka_unit_test(ctrl_alt_del_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
