/*
 * 64-bit entry for a guest packaged as a bzImage (Linux boot protocol):
 * the loader puts this payload at 1 MiB and jumps to +0x200 in long mode
 * with its own page tables and GDT, %rsi = the zero page.
 */
	.section .text.head, "ax"
	.code64
	.globl startup_32
startup_32:				/* 32-bit entry: not supported, stop */
	hlt
	jmp startup_32

	.org 0x200
	.globl startup_64
startup_64:
	lea kit_stack_top64(%rip), %rsp
	mov %rsi, %rdi
	call kit_main_linux
1:	hlt
	jmp 1b

	.bss
	.balign 16
	.space 16384
kit_stack_top64:
	.section .note.GNU-stack, "", @progbits
