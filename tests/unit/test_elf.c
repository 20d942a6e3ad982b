// SPDX-License-Identifier: Apache-2.0
/* ELF loader: a good PVH kernel, and every malformed variant we can build. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86_64/boot.h"
#include "fake_mem.h"

#define MiB (1ull << 20)

/* A small ELF: header, 3 phdrs (2 PT_LOAD, 1 PT_NOTE), note, two payloads. */
struct elf_img {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[3];
	struct {
		Elf64_Nhdr nh;
		char name[4];
		uint32_t entry;
	} note;
	uint8_t text[64];
	uint8_t data[32];
};

static void elf_good(struct elf_img *e)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_ident[EI_VERSION] = EV_CURRENT;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_entry = 0x200000;
	e->eh.e_phoff = offsetof(struct elf_img, ph);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = 3;
	e->eh.e_ehsize = sizeof(Elf64_Ehdr);
	e->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD,
				 .p_offset = offsetof(struct elf_img, text),
				 .p_paddr = 0x200000,
				 .p_filesz = 64,
				 .p_memsz = 64 };
	e->ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD,
				 .p_offset = offsetof(struct elf_img, data),
				 .p_paddr = 0x300000,
				 .p_filesz = 32,
				 .p_memsz = 8192 };
	e->ph[2] = (Elf64_Phdr){ .p_type = PT_NOTE,
				 .p_offset = offsetof(struct elf_img, note),
				 .p_filesz = sizeof(e->note) };
	e->note.nh =
	    (Elf64_Nhdr){ .n_namesz = 4, .n_descsz = 4, .n_type = XEN_ELFNOTE_PHYS32_ENTRY };
	memcpy(e->note.name, "Xen", 4);
	e->note.entry = 0x200010;
	memset(e->text, 0x90, sizeof(e->text));
	memset(e->data, 0xab, sizeof(e->data));
}

static int memfd_with(const void *buf, size_t len)
{
	int fd = memfd_create("elf", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	return fd;
}

static int load(const struct elf_img *e, size_t len, struct kernel_image *img, char *err)
{
	struct guest_mem mem;
	assert_int_equal(fake_mem_init(&mem, 16 * MiB), 0);
	int fd = memfd_with(e, len);
	int r = kernel_load(&mem, fd, img, err);
	close(fd);
	fake_mem_free(&mem);
	return r;
}

static void good_pvh_elf_loads(void **state)
{
	(void)state;
	struct elf_img e;
	struct kernel_image img;
	char err[BOOT_ERR_MAX] = "";
	struct guest_mem mem;
	elf_good(&e);
	assert_int_equal(fake_mem_init(&mem, 16 * MiB), 0);
	/* Dirty the bss area to see that it gets zeroed. */
	memset(guest_mem_ptr(&mem, 0x300000, 8192), 0x5a, 8192);
	int fd = memfd_with(&e, sizeof(e));
	assert_int_equal(kernel_load(&mem, fd, &img, err), 0);
	close(fd);
	assert_int_equal(img.format, KERNEL_ELF);
	assert_int_equal(img.pvh_entry, 0x200010);
	assert_int_equal(img.entry64, 0x200000);
	assert_int_equal(img.load_start, 0x200000);
	assert_int_equal(img.load_end, 0x300000 + 8192);
	const uint8_t *text = guest_mem_ptr(&mem, 0x200000, 64);
	const uint8_t *data = guest_mem_ptr(&mem, 0x300000, 8192);
	assert_memory_equal(text, e.text, 64);
	assert_memory_equal(data, e.data, 32);
	for (int i = 32; i < 8192; i++)
		assert_int_equal(data[i], 0);
	fake_mem_free(&mem);
}

static void elf_without_note_has_no_pvh_entry(void **state)
{
	(void)state;
	struct elf_img e;
	struct kernel_image img;
	char err[BOOT_ERR_MAX];
	elf_good(&e);
	e.ph[2].p_type = PT_NULL;
	assert_int_equal(load(&e, sizeof(e), &img, err), 0);
	assert_int_equal(img.pvh_entry, 0);
}

/* One malformed variant: what to break, and a word the error must contain. */
struct bad_case {
	const char *name;
	void (*mutate)(struct elf_img *e, size_t *len);
	int err;
	const char *msg;
};

/* clang-format off: one mutation per line reads as a table */
static void m_magic(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_ident[1] = 'X';
}
static void m_class32(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_ident[EI_CLASS] = ELFCLASS32;
}
static void m_machine(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_machine = EM_AARCH64;
}
static void m_type(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_type = ET_DYN;
}
static void m_phnum0(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_phnum = 0;
}
static void m_phnum_huge(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_phnum = 0xffff;
}
static void m_phentsize(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_phentsize = 32;
}
static void m_phoff_past(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_phoff = 1u << 20;
}
static void m_phoff_wrap(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_phoff = UINT64_MAX - 8;
}
static void m_truncated(struct elf_img *e, size_t *l)
{
	(void)e;
	*l = offsetof(struct elf_img, data) + 4;
}
static void m_truncated_hdr(struct elf_img *e, size_t *l)
{
	(void)e;
	*l = 40;
}
static void m_seg_past_file(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[0].p_offset = 1u << 30;
}
static void m_seg_off_wrap(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[0].p_offset = UINT64_MAX - 10;
}
static void m_filesz_gt_memsz(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[1].p_memsz = 16;
}
static void m_below_1m(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[0].p_paddr = 0x7000;
}
static void m_past_mem(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[1].p_paddr = 16 * MiB - 4096;
}
static void m_in_gap(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[1].p_paddr = 0xd0000000;
}
static void m_addr_wrap(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[1].p_paddr = UINT64_MAX - 4096;
}
static void m_huge_memsz(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[1].p_memsz = 1ull << 40;
}
static void m_overlap(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[1].p_paddr = 0x200020;
}
static void m_entry_outside(struct elf_img *e, size_t *l)
{
	(void)l;
	e->eh.e_entry = 0x900000;
}
static void m_pvh_outside(struct elf_img *e, size_t *l)
{
	(void)l;
	e->note.entry = 0x10;
}
static void m_note_namesz(struct elf_img *e, size_t *l)
{
	(void)l;
	e->note.nh.n_namesz = 0xfffffff0;
}
static void m_note_descsz(struct elf_img *e, size_t *l)
{
	(void)l;
	e->note.nh.n_descsz = 4096;
}
static void m_note_short(struct elf_img *e, size_t *l)
{
	(void)l;
	e->note.nh.n_descsz = 2;
}
static void m_note_past(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[2].p_filesz = 1u << 20;
}
static void m_no_load(struct elf_img *e, size_t *l)
{
	(void)l;
	e->ph[0].p_type = e->ph[1].p_type = PT_NULL;
}
static void m_empty(struct elf_img *e, size_t *l)
{
	(void)e;
	*l = 0;
}
static void m_garbage(struct elf_img *e, size_t *l)
{
	memset(e, 0xa5, sizeof(*e));
	*l = sizeof(*e);
}

static const struct bad_case bad_cases[] = {
	{ "bad magic", m_magic, -ENOEXEC, "neither an ELF file nor a bzImage" },
	{ "32-bit", m_class32, -ENOEXEC, "64-bit" },
	{ "wrong machine", m_machine, -ENOEXEC, "x86_64" },
	{ "not executable", m_type, -ENOEXEC, "executable" },
	{ "no phdrs", m_phnum0, -ENOEXEC, "program header" },
	{ "too many phdrs", m_phnum_huge, -ENOEXEC, "program header" },
	{ "phentsize", m_phentsize, -ENOEXEC, "program header" },
	{ "phoff past end", m_phoff_past, -ENOEXEC, "truncated" },
	{ "phoff wraps", m_phoff_wrap, -ENOEXEC, "truncated" },
	{ "truncated file", m_truncated, -ENOEXEC, "truncated" },
	{ "truncated header", m_truncated_hdr, -ENOEXEC, "too short" },
	{ "segment past file", m_seg_past_file, -ENOEXEC, "truncated" },
	{ "segment offset wraps", m_seg_off_wrap, -ENOEXEC, "truncated" },
	{ "filesz > memsz", m_filesz_gt_memsz, -ENOEXEC, "file size" },
	{ "below 1 MiB", m_below_1m, -ENOEXEC, "below 1 MiB" },
	{ "past guest memory", m_past_mem, -EFBIG, "does not fit" },
	{ "in the MMIO gap", m_in_gap, -EFBIG, "does not fit" },
	{ "address wraps", m_addr_wrap, -ENOEXEC, "overflows" },
	{ "huge memsz", m_huge_memsz, -EFBIG, "does not fit" },
	{ "overlapping segments", m_overlap, -ENOEXEC, "overlap" },
	{ "entry outside", m_entry_outside, -ENOEXEC, "entry point" },
	{ "PVH entry outside", m_pvh_outside, -ENOEXEC, "PVH entry" },
	{ "note name too long", m_note_namesz, -ENOEXEC, "note" },
	{ "note desc too long", m_note_descsz, -ENOEXEC, "note" },
	{ "PVH note too short", m_note_short, -ENOEXEC, "too short" },
	{ "note past file", m_note_past, -ENOEXEC, "note" },
	{ "no loadable segment", m_no_load, -ENOEXEC, "no loadable" },
	{ "empty file", m_empty, -ENOEXEC, "empty" },
	{ "garbage", m_garbage, -ENOEXEC, "not a kernel" },
};
/* clang-format on */

static void malformed_elves_fail_with_clear_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct elf_img e;
		struct kernel_image img;
		char err[BOOT_ERR_MAX] = "";
		size_t len = sizeof(e);
		elf_good(&e);
		c->mutate(&e, &len);
		int r = load(&e, len, &img, err);
		print_message("  %-22s -> %d \"%s\"\n", c->name, r, err);
		assert_int_equal(r, c->err);
		assert_non_null(strstr(err, c->msg));
		assert_true(strlen(err) > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_pvh_elf_loads),
		cmocka_unit_test(elf_without_note_has_no_pvh_entry),
		cmocka_unit_test(malformed_elves_fail_with_clear_errors),
	};
	return cmocka_run_group_tests_name("elf", tests, NULL, NULL);
}
