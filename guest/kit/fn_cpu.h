/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The function runtime's CPU plumbing (fn_cpu.c, fn_trap.S), apart from its
 * protocol (fn.c): the descriptor tables that bring a ring-3 fault back to
 * the runtime, the device interrupt that ends an idle halt, and the halt.
 */
#ifndef EMBER_GUEST_FN_CPU_H
#define EMBER_GUEST_FN_CPU_H

#include <stdint.h>

#include "acpi.h"

/* Callee-saved registers, stack and return address (fn_trap.S's layout). */
struct fn_ctx {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};
/* 0 now; the value passed to fn_longjmp() when it comes back here. */
int fn_setjmp(struct fn_ctx *ctx) __attribute__((returns_twice));
__attribute__((noreturn)) void fn_longjmp(struct fn_ctx *ctx, int val);

/*
 * Where a fault at ring 3 goes: fn_trap.S records it in fn_fault and
 * longjmps (value 1) to *fn_catch, or with fn_catch NULL calls
 * fn_fault_uncaught() (the runtime's, noreturn) on a stack of its own.
 */
struct fn_fault {
	uint64_t vector, error, rip, cr2;
};
extern struct fn_ctx *fn_catch;
extern struct fn_fault fn_fault;

/* Ring 0, once: load the GDT with a TSS and the IDT (exceptions 0-31, the
 * device interrupt, the spurious vector). */
void fn_cpu_setup(void);

/*
 * Ring 3 (the APICs' pages are user-mapped): route @gsi to this CPU as the
 * device interrupt (edge, active high), mask LINT0 (the never-programmed
 * PIC) and enable the local APIC. 0, or -1 when @acpi lacks what it takes.
 */
int fn_cpu_route_irq(const struct acpi_info *acpi, uint32_t gsi);

/* Ring 3: halt until an interrupt (one already pending returns at once). */
void fn_idle_halt(void);

#endif
