/*
 * Real-mode start-up code for application processors. The BSP copies it to
 * SMP_TRAMPOLINE (a SIPI vector page) and sends INIT-SIPI-SIPI. Each AP
 * marks its initial APIC id (CPUID.1:EBX[31:24]) in a bitmap, counts itself
 * in, and halts. Eight instructions: cheap even when emulated.
 */
	.section .rodata
	.code16
	.globl smp_trampoline_start, smp_trampoline_end
smp_trampoline_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov $1, %eax
	cpuid
	shr $24, %ebx
	lock btsl %ebx, 0x3f04
	lock incl 0x3f00
1:	hlt
	jmp 1b
smp_trampoline_end:
	.section .note.GNU-stack, "", @progbits
