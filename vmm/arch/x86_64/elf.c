// SPDX-License-Identifier: Apache-2.0
/* ELF64 kernel loader, with the PVH entry note. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot.h"
#include "layout.h"
#include "util.h"

#define ELF_MAX_PHDRS 64
#define ELF_MAX_NOTES 65536

#define fail(code, ...) (snprintf(err, BOOT_ERR_MAX, __VA_ARGS__), (code))

/* Walk the notes of one PT_NOTE segment; set img->pvh_entry if found. */
static int elf_scan_notes(const uint8_t *buf, uint64_t len, struct kernel_image *img,
			  char err[BOOT_ERR_MAX])
{
	uint64_t off = 0;
	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, buf + off, sizeof(nh));
		off += sizeof(nh);
		uint64_t name_len = ((uint64_t)nh.n_namesz + 3) & ~3ull;
		uint64_t desc_len = ((uint64_t)nh.n_descsz + 3) & ~3ull;
		if (name_len > len - off || desc_len > len - off - name_len)
			return fail(-ENOEXEC, "ELF note runs past its segment");
		const uint8_t *name = buf + off;
		const uint8_t *desc = buf + off + name_len;
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(name, "Xen", 4) == 0) {
			uint32_t entry;
			if (nh.n_descsz < sizeof(entry))
				return fail(-ENOEXEC, "PVH entry note too short");
			memcpy(&entry, desc, sizeof(entry));
			img->pvh_entry = entry;
		}
		off += name_len + desc_len;
	}
	return 0;
}

static int elf_check_header(const Elf64_Ehdr *eh, uint64_t size, char err[BOOT_ERR_MAX])
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return fail(-ENOEXEC, "not an ELF file");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return fail(-ENOEXEC, "ELF is not 64-bit little-endian");
	if (eh->e_machine != EM_X86_64)
		return fail(-ENOEXEC, "ELF is not for x86_64 (e_machine %u)", eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return fail(-ENOEXEC, "ELF is not an executable (e_type %u)", eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum > ELF_MAX_PHDRS)
		return fail(-ENOEXEC,
			    "ELF program header table is malformed (%u entries of %u bytes)",
			    eh->e_phnum, eh->e_phentsize);
	uint64_t table_end;
	if (__builtin_add_overflow(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr),
				   &table_end) ||
	    table_end > size)
		return fail(-ENOEXEC,
			    "ELF program headers lie past the end of the file (truncated?)");
	return 0;
}

/* Check one PT_LOAD against the file, guest memory and earlier segments. */
static int elf_check_load(const struct guest_mem *mem, const Elf64_Phdr *ph, const Elf64_Phdr *phs,
			  unsigned int idx, uint64_t size, char err[BOOT_ERR_MAX])
{
	uint64_t file_end, mem_end;
	if (ph->p_filesz > ph->p_memsz)
		return fail(-ENOEXEC, "ELF segment %u: file size exceeds memory size", idx);
	if (__builtin_add_overflow(ph->p_offset, ph->p_filesz, &file_end) || file_end > size)
		return fail(-ENOEXEC, "ELF segment %u lies past the end of the file (truncated?)",
			    idx);
	if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &mem_end))
		return fail(-ENOEXEC, "ELF segment %u: address overflows", idx);
	if (ph->p_paddr < HIMEM_START)
		return fail(-ENOEXEC,
			    "ELF segment %u at 0x%llx is below 1 MiB, where ember keeps boot data",
			    idx, (unsigned long long)ph->p_paddr);
	if (!guest_mem_ptr(mem, ph->p_paddr, ph->p_memsz))
		return fail(-EFBIG, "ELF segment %u [0x%llx, 0x%llx) does not fit in guest memory",
			    idx, (unsigned long long)ph->p_paddr, (unsigned long long)mem_end);
	for (unsigned int j = 0; j < idx; j++) {
		const Elf64_Phdr *o = &phs[j];
		if (o->p_type != PT_LOAD || o->p_memsz == 0)
			continue;
		if (ph->p_paddr < o->p_paddr + o->p_memsz && o->p_paddr < mem_end)
			return fail(-ENOEXEC, "ELF segments %u and %u overlap", j, idx);
	}
	return 0;
}

int elf_load(const struct guest_mem *mem, int fd, uint64_t size, struct kernel_image *img,
	     char err[BOOT_ERR_MAX])
{
	Elf64_Ehdr eh;
	Elf64_Phdr phs[ELF_MAX_PHDRS];
	memset(img, 0, sizeof(*img));
	img->format = KERNEL_ELF;
	img->load_start = UINT64_MAX;

	if (size < sizeof(eh) || pread_full(fd, &eh, sizeof(eh), 0) < 0)
		return fail(-ENOEXEC, "file too short for an ELF header");
	int r = elf_check_header(&eh, size, err);
	if (r < 0)
		return r;
	if (pread_full(fd, phs, eh.e_phnum * sizeof(Elf64_Phdr), eh.e_phoff) < 0)
		return fail(-EIO, "cannot read ELF program headers");

	unsigned int nr_loads = 0;
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *ph = &phs[i];
		if (ph->p_type == PT_NOTE) {
			uint64_t end;
			if (ph->p_filesz > ELF_MAX_NOTES ||
			    __builtin_add_overflow(ph->p_offset, ph->p_filesz, &end) || end > size)
				return fail(-ENOEXEC,
					    "ELF note segment %u is malformed or truncated", i);
			uint8_t *notes = malloc(ph->p_filesz + 1);
			if (!notes)
				return -ENOMEM;
			r = pread_full(fd, notes, ph->p_filesz, ph->p_offset);
			if (!r)
				r = elf_scan_notes(notes, ph->p_filesz, img, err);
			else
				snprintf(err, BOOT_ERR_MAX, "cannot read ELF notes");
			free(notes);
			if (r < 0)
				return r;
			continue;
		}
		if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
			continue;
		r = elf_check_load(mem, ph, phs, i, size, err);
		if (r < 0)
			return r;
		uint8_t *dst = guest_mem_ptr(mem, ph->p_paddr, ph->p_memsz);
		if (pread_full(fd, dst, ph->p_filesz, ph->p_offset) < 0)
			return fail(-EIO, "cannot read ELF segment %u", i);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
		if (ph->p_paddr < img->load_start)
			img->load_start = ph->p_paddr;
		if (ph->p_paddr + ph->p_memsz > img->load_end)
			img->load_end = ph->p_paddr + ph->p_memsz;
		nr_loads++;
	}
	if (!nr_loads)
		return fail(-ENOEXEC, "ELF has no loadable segment");
	/* The 64-bit entry is taken as a physical address (vmlinux links with
	 * ENTRY(phys_startup_64)); it must land inside what was loaded. */
	img->entry64 = eh.e_entry;
	if (img->entry64 < img->load_start || img->entry64 >= img->load_end)
		return fail(-ENOEXEC, "ELF entry point 0x%llx is outside its loaded segments",
			    (unsigned long long)eh.e_entry);
	if (img->pvh_entry && (img->pvh_entry < img->load_start || img->pvh_entry >= img->load_end))
		return fail(-ENOEXEC, "PVH entry point 0x%llx is outside the loaded segments",
			    (unsigned long long)img->pvh_entry);
	return 0;
}
