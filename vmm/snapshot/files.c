// SPDX-License-Identifier: Apache-2.0
/* Writing a snapshot's two files: see files.h. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "vm.h"

#define PAGE 4096ull

int snap_fail(char *err, size_t len, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return r;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];
	return memcmp(p, zero, PAGE) == 0;
}

/* Write pages [first, first + n) of a region; all-zero runs stay holes. */
static int write_pages(int fd, const struct guest_region *reg, uint64_t file_off, uint64_t first,
		       uint64_t n, bool skip_zero)
{
	uint64_t p = first, end = first + n;
	while (p < end) {
		if (skip_zero && page_is_zero(reg->host + p * PAGE)) {
			p++;
			continue;
		}
		uint64_t q = p + 1;
		while (q < end && !(skip_zero && page_is_zero(reg->host + q * PAGE)))
			q++;
		uint64_t off = p * PAGE, len = (q - p) * PAGE;
		while (len) {
			ssize_t w = pwrite(fd, reg->host + off, len, (off_t)(file_off + off));
			if (w <= 0)
				return w < 0 ? -errno : -EIO;
			off += (uint64_t)w, len -= (uint64_t)w;
		}
		p = q;
	}
	return 0;
}

/*
 * Which pages of region @i a Diff holds, one bit per page in @bitmap. With
 * track_dirty_pages: those KVM's dirty log reports (reading it clears it)
 * plus those ember's devices wrote, which KVM does not see. Without it, as
 * Firecracker does: every page mincore(2) finds resident (written or read
 * since boot or load; a superset, and wrong only for swapped-out pages).
 */
static int diff_bitmap(struct vm *vm, unsigned int i, uint64_t *bitmap, char *err, size_t err_len)
{
	const struct guest_region *reg = &vm->mem.regions[i];
	uint64_t pages = reg->size / PAGE;
	if (!vm->track_dirty) {
		unsigned char *vec = malloc(pages);
		if (!vec)
			return snap_fail(err, err_len, -ENOMEM, "out of memory");
		if (mincore(reg->host, reg->size, vec) < 0) {
			int r = -errno;
			free(vec);
			return snap_fail(err, err_len, r, "mincore: %s", strerror(-r));
		}
		for (uint64_t p = 0; p < pages; p++)
			if (vec[p] & 1)
				bitmap[p / 64] |= 1ull << (p % 64);
		free(vec);
		return 0;
	}
	struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = bitmap };
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return snap_fail(err, err_len, -errno, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
	for (size_t k = 0; k < (pages + 63) / 64; k++)
		bitmap[k] |= __atomic_exchange_n(&reg->dirty[k], 0, __ATOMIC_RELAXED);
	return 0;
}

/* @whole: every page that is not all zeros (a Full snapshot, or a Diff with
 * no base); else the Diff's pages (diff_bitmap()). */
static int write_memory(struct vm *vm, int fd, bool whole, const char *path, char *err,
			size_t err_len)
{
	uint64_t file_off = 0;
	for (unsigned int i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_region *reg = &vm->mem.regions[i];
		uint64_t pages = reg->size / PAGE;
		int r = 0;
		if (whole) {
			r = write_pages(fd, reg, file_off, 0, pages, true);
		} else {
			uint64_t *bitmap = calloc((pages + 63) / 64, sizeof(uint64_t));
			if (!bitmap)
				return snap_fail(err, err_len, -ENOMEM, "out of memory");
			r = diff_bitmap(vm, i, bitmap, err, err_len);
			if (r < 0) {
				free(bitmap);
				return r;
			}
			for (uint64_t p = 0; p < pages && r == 0; p++)
				if (bitmap[p / 64] & (1ull << (p % 64)))
					r = write_pages(fd, reg, file_off, p, 1, false);
			free(bitmap);
		}
		if (r < 0)
			return snap_fail(err, err_len, r, "cannot write mem_file_path '%s': %s",
					 path, strerror(-r));
		file_off += reg->size;
	}
	return 0;
}

/* Clear the dirty log, so the next diff holds only what changes from now. */
void snap_reset_dirty_log(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->mem.nr_regions; i++) {
		size_t words = (vm->mem.regions[i].size / PAGE + 63) / 64;
		uint64_t *bitmap = calloc(words, sizeof(uint64_t));
		struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = bitmap };
		if (bitmap && ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
			log_warn("KVM_GET_DIRTY_LOG slot %u: %s", i, strerror(errno));
		free(bitmap);
		if (vm->mem.regions[i].dirty)
			memset(vm->mem.regions[i].dirty, 0, words * sizeof(uint64_t));
	}
}

/* A new file beside @path (@path.tmpXXXXXX, its name in *@tmp, heap): its fd or -errno. */
static int create_temp(const char *path, char **tmp)
{
	size_t n = strlen(path) + 16;
	*tmp = malloc(n);
	if (!*tmp)
		return -ENOMEM;
	snprintf(*tmp, n, "%s.tmpXXXXXX", path);
	int fd = mkostemp(*tmp, O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		free(*tmp);
		*tmp = NULL;
		return r;
	}
	return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const uint8_t *)buf + off, len - off);
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (size_t)w;
	}
	return 0;
}

/*
 * A Diff written where a memory file of this VM's size already is lands on
 * top of it, as Firecracker merges a Diff into an existing memory file: the
 * older file's data (its holes stay holes) is copied into the new one
 * first, and the Diff's pages then written over it. The older file is only
 * read, so the result is still renamed into place whole, or not at all.
 * Anything else at @path (no file, another size) is replaced as before.
 */
static int copy_base(const char *path, int out, uint64_t size)
{
	static uint8_t buf[1 << 20]; /* VMM thread only */
	struct stat st;
	int in = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (in < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = fstat(in, &st) < 0 ? -errno : 0;
	if (r < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		close(in);
		return r;
	}
	for (off_t off = 0; r == 0;) {
		off_t data = lseek(in, off, SEEK_DATA),
		      hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (data < 0 || hole < 0) {
			r = data < 0 && errno == ENXIO ? 1 : -errno; /* ENXIO: no more data */
			break;
		}
		for (off = data; off < hole && r == 0;) {
			size_t n = (uint64_t)(hole - off) < sizeof(buf) ? (size_t)(hole - off)
									: sizeof(buf);
			ssize_t got = pread(in, buf, n, off);
			if (got <= 0) {
				r = got < 0 ? -errno : -EIO;
				break;
			}
			for (ssize_t done = 0; done < got && r == 0;) {
				ssize_t w =
				    pwrite(out, buf + done, (size_t)(got - done), off + done);
				r = w < 0 ? -errno : w == 0 ? -EIO : 0;
				done += w > 0 ? w : 0;
			}
			off += got;
		}
	}
	close(in);
	return r < 0 ? r : 0;
}

/* Make the renames in @path's directory durable (best effort). */
static void sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		if (fsync(fd) < 0)
			log_warn("snapshot: fsync of the directory of '%s': %s", path,
				 strerror(errno));
		close(fd);
	}
	free(copy);
}

/* See files.h. */
int snap_write_files(struct vm *vm, const char *state_path, const char *mem_path, bool whole,
		     const void *state, size_t len, bool *consumed, char *err, size_t err_len)
{
	char *mem_tmp = NULL, *state_tmp = NULL;
	int fd = create_temp(mem_path, &mem_tmp), r = fd < 0 ? fd : 0;
	if (r < 0) {
		snap_fail(err, err_len, r, "cannot create mem_file_path '%s': %s", mem_path,
			  strerror(-r));
		goto out;
	}
	if (ftruncate(fd, (off_t)vm->mem.size) < 0) {
		r = snap_fail(err, err_len, -errno, "cannot size mem_file_path '%s': %s", mem_path,
			      strerror(errno));
		close(fd);
		goto out;
	}
	if (!whole && (r = copy_base(mem_path, fd, vm->mem.size)) < 0) {
		snap_fail(err, err_len, r, "cannot merge into mem_file_path '%s': %s", mem_path,
			  strerror(-r));
		close(fd);
		goto out;
	}
	*consumed = !whole && vm->track_dirty;
	r = write_memory(vm, fd, whole, mem_path, err, err_len);
	if (r == 0 && fsync(fd) < 0)
		r = snap_fail(err, err_len, -errno, "cannot write mem_file_path '%s': %s", mem_path,
			      strerror(errno));
	close(fd);
	if (r < 0)
		goto out;
	fd = create_temp(state_path, &state_tmp);
	r = fd < 0 ? fd : write_all(fd, state, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		snap_fail(err, err_len, r, "cannot write snapshot_path '%s': %s", state_path,
			  strerror(-r));
		goto out;
	}
	if (unlink(state_path) < 0 && errno != ENOENT) {
		r = snap_fail(err, err_len, -errno, "cannot replace snapshot_path '%s': %s",
			      state_path, strerror(errno));
		goto out;
	}
	if (rename(mem_tmp, mem_path) < 0 || rename(state_tmp, state_path) < 0) {
		r = snap_fail(err, err_len, -errno, "cannot rename the snapshot into place: %s",
			      strerror(errno));
		goto out;
	}
	sync_dir_of(mem_path);
	sync_dir_of(state_path);
out:
	if (r < 0 && mem_tmp)
		unlink(mem_tmp);
	if (r < 0 && state_tmp)
		unlink(state_tmp);
	free(mem_tmp);
	free(state_tmp);
	return r;
}
