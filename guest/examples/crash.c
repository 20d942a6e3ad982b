// SPDX-License-Identifier: Apache-2.0
/*
 * crash: a handler that faults at ring 3, for the error tests. The first
 * request byte picks the fault: 'u' an undefined opcode (#UD), 'd' a divide
 * by zero (#DE), 'g' a privileged instruction (#GP), anything else (or an
 * empty request) a write above the mapped 4 GiB (#PF).
 */
#include "fn.h"

static int crash(const struct fn_request *req, struct fn_response *resp)
{
	char how = req->len ? (char)req->data[0] : 'p';
	resp->len = 0;
	if (how == 'u')
		__asm__ volatile("ud2");
	if (how == 'd') {
		volatile uint32_t zero = 0, n = 100; /* volatile: a real div */
		resp->len = n / zero;
	}
	if (how == 'g')
		__asm__ volatile("hlt");
	*(volatile uint64_t *)0x10000000000ull = 1;
	return 0;
}

FN_MAIN(crash, NULL, 0)
