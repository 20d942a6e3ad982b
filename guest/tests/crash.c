// SPDX-License-Identifier: Apache-2.0
/*
 * crash: a guest that dies on purpose, so tests can check the monitor exits
 * with the documented code and a register dump instead of hanging.
 *   mode=0 (default)  triple fault: empty IDT, then an undefined opcode
 *   mode=1            execute from an address with no memory behind it
 */
#include "kit.h"

int guest_main(void)
{
	uint64_t mode = 0;
	kit_cmdline_u64("mode=", &mode);
	kit_puts("crash: about to fail, mode ");
	kit_put_dec(mode);
	kit_putc('\n');
	if (mode == 1) {
		void (*nowhere)(void) = (void (*)(void))0xd0010000ull;
		nowhere();
	}
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idt = { 0, 0 };
	__asm__ volatile("lidt %0\n\tud2" : : "m"(idt));
	return 1;
}
