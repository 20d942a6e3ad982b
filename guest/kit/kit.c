// SPDX-License-Identifier: Apache-2.0
#include "kit.h"

/* hvm_start_info fields the kit reads (Xen's public ABI). */
struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
#define HVM_START_MAGIC 0x336ec578u
#define ZP_CMD_LINE_PTR 0x228

static uint64_t start_info, zero_page;
static const char *cmdline = "";

void kit_putc(char c)
{
	/* ember's and QEMU's UARTs never back up, so no LSR polling: each poll
	 * would be one more (slow, emulated) exit. */
	outb(KIT_COM1, (uint8_t)c);
}

void kit_puts(const char *s)
{
	while (*s)
		kit_putc(*s++);
}

void kit_put_hex(uint64_t v)
{
	char buf[19];
	int i = 18;
	buf[i] = 0;
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	kit_puts(&buf[i]);
}

void kit_put_dec(uint64_t v)
{
	char buf[21];
	int i = 20;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	kit_puts(&buf[i]);
}

void kit_exit(unsigned int code)
{
	outb(KIT_DEBUG_EXIT, (uint8_t)code);
	for (;;)
		__asm__ volatile("hlt");
}

void kit_boot_timer(void)
{
	*(volatile uint8_t *)KIT_BOOT_TIMER = KIT_BOOT_TIMER_MAGIC;
}

const char *kit_cmdline(void)
{
	return cmdline;
}

uint64_t kit_start_info(void)
{
	return start_info;
}

uint64_t kit_zero_page(void)
{
	return zero_page;
}

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
#define ZP_SETUP_DATA 0x250
#define SETUP_DTB 2

const void *kit_dtb(void)
{
	const struct hvm_start_info *si = (const struct hvm_start_info *)start_info;
	if (si && si->magic == HVM_START_MAGIC && si->modlist_paddr) {
		const struct hvm_modlist_entry *m = (const void *)si->modlist_paddr;
		for (uint32_t i = 0; i < si->nr_modules; i++)
			if (m[i].cmdline_paddr &&
			    strcmp((const char *)m[i].cmdline_paddr, "dtb") == 0)
				return (const void *)m[i].paddr;
	}
	if (zero_page) {
		uint64_t sd = *(const uint64_t *)(zero_page + ZP_SETUP_DATA);
		for (int n = 0; sd && n < 16; n++) {
			const uint32_t *hdr = (const uint32_t *)(sd + 8);
			if (hdr[0] == SETUP_DTB)
				return (const void *)(sd + 16);
			sd = *(const uint64_t *)sd;
		}
	}
	return NULL;
}

static int key_at(const char *p, const char *key)
{
	while (*key)
		if (*p++ != *key++)
			return 0;
	return 1;
}

int kit_cmdline_u64(const char *key, uint64_t *out)
{
	for (const char *p = cmdline; *p; p++) {
		if ((p != cmdline && p[-1] != ' ') || !key_at(p, key))
			continue;
		p += strlen(key);
		uint64_t v = 0;
		unsigned int base = 10;
		if (p[0] == '0' && p[1] == 'x') {
			base = 16;
			p += 2;
		}
		for (;; p++) {
			unsigned int d;
			if (*p >= '0' && *p <= '9')
				d = (unsigned int)(*p - '0');
			else if (base == 16 && *p >= 'a' && *p <= 'f')
				d = (unsigned int)(*p - 'a' + 10);
			else
				break;
			v = v * base + d;
		}
		*out = v;
		return 0;
	}
	return -1;
}

void kit_main_pvh(uint64_t info)
{
	const struct hvm_start_info *si = (const struct hvm_start_info *)info;
	start_info = info;
	if (si && si->magic == HVM_START_MAGIC && si->cmdline_paddr)
		cmdline = (const char *)si->cmdline_paddr;
	kit_exit((unsigned int)guest_main());
}

void kit_main_linux(uint64_t zp)
{
	zero_page = zp;
	uint32_t ptr = *(const uint32_t *)(zp + ZP_CMD_LINE_PTR);
	if (ptr)
		cmdline = (const char *)(uint64_t)ptr;
	kit_exit((unsigned int)guest_main());
}

void kit_enter_user(void (*fn)(void), void *stack_top)
{
	/* iretq frame: SS, RSP, RFLAGS (IOPL 3, IF clear), CS, RIP. */
	__asm__ volatile("pushq $0x1b\n\t"
			 "pushq %0\n\t"
			 "pushq $0x3002\n\t"
			 "pushq $0x23\n\t"
			 "pushq %1\n\t"
			 "iretq"
			 :
			 : "r"(stack_top), "r"(fn)
			 : "memory");
	__builtin_unreachable();
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}
