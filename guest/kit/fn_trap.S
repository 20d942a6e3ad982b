/*
 * The function runtime's exception path (guest/kit/fn_cpu.c sets up the IDT and
 * TSS). A fault at ring 3 enters fn_trap_N on the TSS's ring-0 stack; the
 * common part records vector, error code, RIP and CR2 in fn_fault and irets
 * to ring 3: to fn_fault_resume, which longjmps to the context in fn_catch
 * (the runtime's, around the handler or init), or, with none, to
 * fn_fault_uncaught on a stack of its own. A fault at ring 0 is a runtime
 * bug: the VM stops with FN_EXIT_RUNTIME_FAULT (92). Ring 0 is emulated on
 * the development machines, so this path stays a few dozen instructions.
 */
#define KIT_DEBUG_EXIT 0xf4
#define FN_EXIT_RUNTIME_FAULT 92
#define USER_RFLAGS 0x3002		/* IOPL 3, interrupts off */

	.text
	.balign 16
	.globl fn_trap_stubs
fn_trap_stubs:
	.set v, 0
	.rept 32
	.balign 16
	/* The CPU pushes an error code for 8, 10-14, 17, 21, 29 and 30. */
	.if (v == 8) || (v >= 10 && v <= 14) || (v == 17) || (v == 21) || (v == 29) || (v == 30)
	.else
	pushq $0
	.endif
	pushq $v
	jmp fn_trap_common
	.set v, v + 1
	.endr

	/* Stack: vector, error, RIP, CS, RFLAGS, RSP, SS. */
fn_trap_common:
	testb $3, 24(%rsp)
	jz ring0_fault
	push %rax
	lea fn_idle_hlt(%rip), %rax
	cmp %rax, 24(%rsp)		/* RIP, one slot further for the push */
	pop %rax
	je idle_halt
	mov (%rsp), %rax
	mov %rax, fn_fault(%rip)
	mov 8(%rsp), %rax
	mov %rax, fn_fault+8(%rip)
	mov 16(%rsp), %rax
	mov %rax, fn_fault+16(%rip)
	mov %cr2, %rax
	mov %rax, fn_fault+24(%rip)
	movq $USER_RFLAGS, 32(%rsp)
	mov fn_catch(%rip), %rdi
	test %rdi, %rdi
	jz 1f
	lea fn_fault_resume(%rip), %rax
	mov %rax, 16(%rsp)
	mov 48(%rdi), %rax		/* the saved context's stack */
	mov %rax, 40(%rsp)
	add $16, %rsp
	iretq
1:	lea fn_fault_uncaught(%rip), %rax
	mov %rax, 16(%rsp)
	lea fn_fault_stack_top-8(%rip), %rax	/* as after a call */
	mov %rax, 40(%rsp)
	add $16, %rsp
	iretq

idle_halt:
	add $16, %rsp			/* vector, error code */
	incq (%rsp)			/* past the one-byte hlt */
	sti
	hlt
	cli
	iretq

ring0_fault:
	mov $FN_EXIT_RUNTIME_FAULT, %al
	out %al, $KIT_DEBUG_EXIT
2:	hlt
	jmp 2b

	/* Ring 3, %rdi = the context in fn_catch. */
fn_fault_resume:
	mov $1, %esi
	jmp fn_longjmp

/*
 * Waiting without spinning (fn.c's idle()): ring 3 calls fn_idle_halt,
 * whose hlt faults (#GP: hlt is for ring 0) into fn_trap_common, which
 * sees that RIP, halts with interrupts on for the hlt only, and returns
 * past it. (A DPL-3 gate for int $n would be the usual door, but on the
 * development machines int $n at ring 3 raised #UD.) The sti shadow means
 * an interrupt already pending wakes the hlt at once, so one that came
 * after the caller's last look at its queues is not lost.
 */
	.globl fn_idle_halt
fn_idle_halt:
fn_idle_hlt:
	hlt
	ret

/* The local APIC's spurious vector: no EOI for it. */
	.globl fn_spurious
fn_spurious:
	iretq

/* A device interrupt (vector FN_IRQ_VECTOR): only end it at the local APIC. */
	.globl fn_irq
fn_irq:
	push %rax
	mov fn_lapic_eoi(%rip), %rax
	movl $0, (%rax)
	pop %rax
	iretq

/* int fn_setjmp(struct fn_ctx *ctx): 0 now, the value given to fn_longjmp later. */
	.globl fn_setjmp
fn_setjmp:
	mov %rbx, (%rdi)
	mov %rbp, 8(%rdi)
	mov %r12, 16(%rdi)
	mov %r13, 24(%rdi)
	mov %r14, 32(%rdi)
	mov %r15, 40(%rdi)
	lea 8(%rsp), %rdx
	mov %rdx, 48(%rdi)
	mov (%rsp), %rdx
	mov %rdx, 56(%rdi)
	xor %eax, %eax
	ret

/* void fn_longjmp(struct fn_ctx *ctx, int val) */
	.globl fn_longjmp
fn_longjmp:
	mov (%rdi), %rbx
	mov 8(%rdi), %rbp
	mov 16(%rdi), %r12
	mov 24(%rdi), %r13
	mov 32(%rdi), %r14
	mov 40(%rdi), %r15
	mov 48(%rdi), %rsp
	mov %esi, %eax
	jmp *56(%rdi)

	.bss
	.balign 16
	.space 8192
fn_fault_stack_top:
	.section .note.GNU-stack, "", @progbits
