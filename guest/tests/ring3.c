// SPDX-License-Identifier: Apache-2.0
/*
 * ring3: drop to user mode and run a CPU-bound checksum there, where this
 * machine's nested hypervisor runs guest code natively. Prints the checksum,
 * the privilege level it ran at and its TSC cycles, then exits 0 from ring 3
 * through the debug-exit port (IOPL 3 allows the port I/O).
 * "iters=N" sets the iteration count (default 300 million).
 */
#include "kit.h"
#include "ring3_checksum.h"

static uint8_t user_stack[16384] __attribute__((aligned(16)));
static uint64_t iterations = 300000000ull;

static void user_main(void)
{
	uint64_t t0 = rdtsc();
	uint64_t sum = ring3_checksum(iterations);
	uint64_t t1 = rdtsc();
	kit_puts("ring3: cpl=");
	kit_put_dec(kit_cpl());
	kit_puts(" iterations=");
	kit_put_dec(iterations);
	kit_puts(" checksum=");
	kit_put_hex(sum);
	kit_puts(" tsc_cycles=");
	kit_put_dec(t1 - t0);
	kit_putc('\n');
	kit_exit(kit_cpl() == 3 ? 0 : 1);
}

int guest_main(void)
{
	kit_cmdline_u64("iters=", &iterations);
	kit_puts("ring3: entering user mode\n");
	kit_enter_user(user_main, user_stack + sizeof(user_stack));
}
