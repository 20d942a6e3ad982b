// SPDX-License-Identifier: Apache-2.0
/*
 * hello: the default guest. Signals the boot timer, prints a line and its
 * command line, then, as the command line asks:
 *   echo=N   read N bytes from the serial port and print them back
 *   reset=1  reset through the i8042 (port 0x64, command 0xfe)
 *   cad=1    wait for Ctrl+Alt+Del on the i8042, print the scan codes
 *   tick=N   at ring 3, print '.' every N TSC cycles, forever (a guest to
 *            snapshot: after a restore the first '.' shows it runs again)
 *   exit=N   exit through the debug port with status N (default 0)
 */
#include "kit.h"

#define UART_LSR (KIT_COM1 + 5)
#define UART_LSR_DR 0x01

static void echo(uint64_t n)
{
	kit_puts("echo: ");
	for (uint64_t i = 0; i < n; i++) {
		while (!(inb(UART_LSR) & UART_LSR_DR))
			;
		kit_putc((char)inb(KIT_COM1));
	}
	kit_putc('\n');
}

static uint64_t tick_cycles;
static uint8_t tick_stack[8192] __attribute__((aligned(16)));

static void ticker(void)
{
	kit_puts("ticking\n");
	for (uint64_t t = rdtsc();; t = rdtsc()) {
		while (rdtsc() - t < tick_cycles)
			__asm__ volatile("pause");
		kit_putc('.');
	}
}

int guest_main(void)
{
	kit_boot_timer();
	kit_puts("Hello from the ember guest\n");
	kit_puts("cmdline: ");
	kit_puts(kit_cmdline());
	kit_putc('\n');
	uint64_t v = 0;
	if (kit_cmdline_u64("echo=", &v) == 0)
		echo(v);
	if (kit_cmdline_u64("cad=", &v) == 0 && v) {
		kit_puts("waiting for ctrl-alt-del\n");
		kit_puts("keys:");
		for (int i = 0; i < 4; i++) {
			while (!(inb(0x64) & 1))
				__asm__ volatile("pause");
			kit_putc(' ');
			kit_put_hex(inb(0x60));
		}
		kit_putc('\n');
	}
	if (kit_cmdline_u64("tick=", &tick_cycles) == 0 && tick_cycles)
		kit_enter_user(ticker, tick_stack + sizeof(tick_stack));
	if (kit_cmdline_u64("reset=", &v) == 0 && v) {
		outb(0x64, 0xfe);
		kit_puts("reset did not happen\n");
		return 99;
	}
	v = 0;
	kit_cmdline_u64("exit=", &v);
	return (int)v;
}
