// SPDX-License-Identifier: Apache-2.0
/*
 * Boot timer: an MMIO page at BOOT_TIMER_ADDR. When the guest writes
 * BOOT_TIMER_MAGIC to offset 0 (Firecracker's convention, so guest images
 * built for it work), ember logs how long the boot took since the process
 * started and since VM set-up began.
 */
#include "arch/x86_64/layout.h"
#include "clock.h"
#include "legacy.h"
#include "log.h"
#include "vm.h"

static void boot_timer_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct vm *vm = opaque;
	(void)len;
	if (off != 0 || data[0] != BOOT_TIMER_MAGIC)
		return;
	uint64_t now = clock_now_us();
	uint64_t since_start = clock_us_since_start();
	uint64_t since_setup = now > vm->setup_start_us ? now - vm->setup_start_us : 0;
	log_info("Guest-boot-time = %llu us %llu ms since process start, %llu us since VM set-up, "
		 "%llu CPU us",
		 (unsigned long long)since_start, (unsigned long long)(since_start / 1000),
		 (unsigned long long)since_setup, (unsigned long long)clock_cpu_us());
}

int boot_timer_init(struct vm *vm)
{
	struct bus_device dev = {
		.name = "boot-timer",
		.base = BOOT_TIMER_ADDR,
		.len = 0x1000,
		.opaque = vm,
		.write = boot_timer_write,
	};
	return bus_register(&vm->mmio_bus, &dev);
}
