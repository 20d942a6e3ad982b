/*
 * PVH entry for test guests. The monitor (or any PVH loader) enters
 * pvh_start32 in 32-bit protected mode, paging off, %ebx = hvm_start_info.
 * We switch to long mode with page tables built at link time, so the
 * (emulated, on this machine) ring-0 path is a few dozen instructions.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a"
	.balign 4
	.long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.long pvh_start32
	.balign 4

	.section .text.entry32, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	mov %ebx, %esi
	lgdt gdt_desc
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0x20, %eax			/* CR4.PAE */
	mov %eax, %cr4
	mov $0xc0000080, %ecx		/* EFER */
	rdmsr
	or $0x100, %eax			/* EFER.LME */
	wrmsr
	mov $0x80000011, %eax		/* CR0.PG | CR0.ET | CR0.PE */
	mov %eax, %cr0
	ljmp $0x08, $long_start

	.code64
long_start:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	lea kit_stack_top(%rip), %rsp
	mov %esi, %edi			/* zero-extended start-info address */
	call kit_main_pvh
1:	hlt
	jmp 1b

	.data
	.balign 8
	.globl kit_gdt
kit_gdt:
	.quad 0				/* null */
	.quad 0x00af9a000000ffff	/* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* 0x10 kernel data */
	.quad 0x00cff2000000ffff	/* 0x18 user data, DPL 3 */
	.quad 0x00affa000000ffff	/* 0x20 user code, 64-bit, DPL 3 */
gdt_end:
gdt_desc:
	.word gdt_end - kit_gdt - 1
	.long kit_gdt

	/* Identity map of the low 4 GiB, 2 MiB pages, user-accessible. */
	.section .data.pagetables, "aw"
	.balign 4096
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x7, pd + 0x1007, pd + 0x2007, pd + 0x3007
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.quad (i << 21) + 0x87
	.set i, i + 1
	.endr

	.bss
	.balign 16
	.space 16384
	.globl kit_stack_top
kit_stack_top:
	.section .note.GNU-stack, "", @progbits
