// SPDX-License-Identifier: Apache-2.0
/* The jailed monitor's files: ember itself and exactly the shared libraries it links. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/mman.h>

#include "jailer.h"

int mkdirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	int r = in < 0 || out < 0 ? -1 : 0;
	char buf[65536];
	ssize_t n;
	while (r == 0 && (n = read(in, buf, sizeof(buf))) != 0)
		if (n < 0 || write(out, buf, (size_t)n) != n)
			r = -1;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0)
		r = -1;
	return r;
}

/* ---- the monitor's shared libraries -------------------------------------------- */

#define MAX_LIBS 64

static const char *const lib_dirs[] = { "/lib/x86_64-linux-gnu",
					"/usr/lib/x86_64-linux-gnu",
					"/lib64",
					"/usr/lib64",
					"/lib",
					"/usr/lib" };

/* File offset of virtual address @va, through the PT_LOAD headers. */
static int64_t va_to_off(const Elf64_Phdr *ph, unsigned int n, uint64_t va)
{
	for (unsigned int i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && va >= ph[i].p_vaddr &&
		    va - ph[i].p_vaddr < ph[i].p_filesz)
			return (int64_t)(ph[i].p_offset + (va - ph[i].p_vaddr));
	return -1;
}

/*
 * Append @path's interpreter and DT_NEEDED libraries (resolved in the
 * standard directories) to @list, once each. ember is linked against
 * Debian's shared libraries: the jail gets copies of exactly those.
 */
static int elf_deps(const char *path, char list[][PATH_MAX], unsigned int *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Mapped, not read: only the headers, dynamic section and string table
	 * are touched. */
	uint8_t *f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		return -1;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
	int r = -1;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phoff > (uint64_t)st.st_size ||
	    eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size - eh->e_phoff)
		goto out;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff);
	const Elf64_Dyn *dyn = NULL;
	size_t ndyn = 0;
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_offset > (uint64_t)st.st_size ||
		    ph[i].p_filesz > (uint64_t)st.st_size - ph[i].p_offset)
			goto out;
		if (ph[i].p_type == PT_INTERP && *n < MAX_LIBS) {
			snprintf(list[*n], PATH_MAX, "%.*s", (int)ph[i].p_filesz,
				 (const char *)f + ph[i].p_offset);
			bool dup = false;
			for (unsigned int k = 0; k < *n; k++)
				dup |= strcmp(list[k], list[*n]) == 0;
			*n += !dup;
		}
		if (ph[i].p_type == PT_DYNAMIC) {
			dyn = (const Elf64_Dyn *)(f + ph[i].p_offset);
			ndyn = ph[i].p_filesz / sizeof(Elf64_Dyn);
		}
	}
	uint64_t strtab = 0;
	for (size_t i = 0; dyn && i < ndyn && dyn[i].d_tag != DT_NULL; i++)
		if (dyn[i].d_tag == DT_STRTAB)
			strtab = dyn[i].d_un.d_ptr;
	int64_t stroff = strtab ? va_to_off(ph, eh->e_phnum, strtab) : -1;
	for (size_t i = 0; dyn && i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
		if (dyn[i].d_tag != DT_NEEDED)
			continue;
		if (stroff < 0 || (uint64_t)stroff + dyn[i].d_un.d_val >= (uint64_t)st.st_size)
			goto out;
		const char *name = (const char *)f + stroff + dyn[i].d_un.d_val;
		char found[PATH_MAX] = "";
		for (size_t d = 0; d < sizeof(lib_dirs) / sizeof(lib_dirs[0]) && !found[0]; d++) {
			snprintf(found, sizeof(found), "%s/%s", lib_dirs[d], name);
			if (access(found, R_OK) < 0)
				found[0] = 0;
		}
		if (!found[0] || *n == MAX_LIBS)
			goto out;
		bool dup = false;
		for (unsigned int k = 0; k < *n; k++)
			dup |= strcmp(list[k], found) == 0;
		if (!dup)
			snprintf(list[(*n)++], PATH_MAX, "%s", found);
	}
	r = 0;
out:
	munmap(f, (size_t)st.st_size);
	return r;
}

int copy_libs(struct jail *j)
{
	static char list[MAX_LIBS][PATH_MAX];
	unsigned int n = 0;
	if (elf_deps(j->exec_file, list, &n) < 0)
		return (errno = 0),
		       fail("cannot read the shared libraries '%s' needs", j->exec_file);
	for (unsigned int i = 0; i < n; i++) {
		if (elf_deps(list[i], list, &n) < 0)
			return (errno = 0), fail("cannot read the libraries of '%s'", list[i]);
		char dst[PATH_MAX * 2], dir[PATH_MAX * 2];
		snprintf(dst, sizeof(dst), "%s%s", j->root, list[i]);
		snprintf(dir, sizeof(dir), "%s", dst);
		*strrchr(dir, '/') = 0;
		if (mkdirs(dir, 0755) < 0 || link_or_copy(list[i], dst, 0555) < 0)
			return fail("cannot copy '%s' into the jail", list[i]);
	}
	return 0;
}

int link_or_copy(const char *from, const char *to, mode_t mode)
{
	char real[PATH_MAX];
	if (realpath(from, real) && link(real, to) == 0)
		return 0;
	return copy_file(from, to, mode);
}
