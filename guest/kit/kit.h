/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember's guest kit: what a freestanding test guest needs to boot, print and
 * report. A guest defines guest_main(); its return value leaves through the
 * debug-exit port and becomes ember's exit status.
 *
 * Ring-0 code here is emulated on the development machines (~3 us per
 * instruction): keep it short and do real work at ring 3 (kit_enter_user).
 */
#ifndef EMBER_GUEST_KIT_H
#define EMBER_GUEST_KIT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KIT_COM1 0x3f8
#define KIT_DEBUG_EXIT 0xf4
#define KIT_BOOT_TIMER 0xd0000000ull
#define KIT_BOOT_TIMER_MAGIC 123

int guest_main(void);

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline unsigned int kit_cpl(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

void kit_putc(char c);
void kit_puts(const char *s);
void kit_put_hex(uint64_t v);
void kit_put_dec(uint64_t v);
__attribute__((noreturn)) void kit_exit(unsigned int code);
void kit_boot_timer(void);

/* The command line the monitor passed (never NULL). */
const char *kit_cmdline(void);
/* Find "key=<decimal or 0x hex>" in the command line; 0 if found, -1 if not. */
int kit_cmdline_u64(const char *key, uint64_t *out);
/* Boot structure addresses: hvm_start_info (PVH) or zero page (Linux). */
uint64_t kit_start_info(void);
uint64_t kit_zero_page(void);

/* Drop to ring 3 with IOPL 3 (port I/O allowed) and run @fn on @stack_top. */
__attribute__((noreturn)) void kit_enter_user(void (*fn)(void), void *stack_top);

/*
 * The device tree the monitor passed: PVH module named "dtb", or the
 * SETUP_DTB entry of the zero page's setup_data list. NULL if none.
 */
const void *kit_dtb(void);

#endif
