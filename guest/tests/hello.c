// SPDX-License-Identifier: Apache-2.0
/*
 * hello: the default guest. Signals the boot timer, prints a line and its
 * command line, and exits with the code given as "exit=N" (default 0).
 */
#include "kit.h"

int guest_main(void)
{
	kit_boot_timer();
	kit_puts("Hello from the ember guest\n");
	kit_puts("cmdline: ");
	kit_puts(kit_cmdline());
	kit_putc('\n');
	uint64_t code = 0;
	kit_cmdline_u64("exit=", &code);
	return (int)code;
}
