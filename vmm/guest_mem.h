/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest physical memory: the regions that back it and the one checked door
 * from a guest physical address to a host pointer.
 *
 * Ownership: struct vm owns the struct guest_mem and its mappings for the
 * life of the VM. The layout is fixed before any vCPU runs, so lookups need
 * no lock and may be made from any thread.
 */
#ifndef EMBER_GUEST_MEM_H
#define EMBER_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 4

struct guest_region {
	uint64_t gpa; /* guest physical start */
	uint64_t size; /* bytes, page-aligned */
	uint8_t *host; /* host mapping of the whole region */
	/* Pages the monitor's devices may have written since the last snapshot
	 * (one bit per 4 KiB page), when dirty pages are tracked; else NULL.
	 * KVM's dirty log covers the guest's own writes, not ours. */
	uint64_t *dirty;
};

struct guest_mem {
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned int nr_regions;
	uint64_t size; /* sum of region sizes */
};

/*
 * Split @size bytes of RAM around the x86 32-bit MMIO gap
 * [@gap_start, @gap_end): RAM below the gap, then the rest from @gap_end.
 * Fills the gpa/size of each region (host pointers are left NULL).
 * Returns 0 or -EINVAL if @size is 0 or not page-aligned.
 */
int guest_mem_layout(struct guest_mem *mem, uint64_t size, uint64_t gap_start, uint64_t gap_end);

/*
 * The checked door. Returns a host pointer to [@gpa, @gpa + @len) only if the
 * whole range lies inside one region; NULL otherwise (including when the
 * arithmetic would overflow). @len may be 0, meaning "is @gpa inside".
 * Nothing else turns a guest address into a host pointer.
 */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Note that a device may write [@gpa, @gpa + @len) (no-op unless tracking). */
void guest_mem_mark_dirty(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy into / out of guest memory through guest_mem_ptr(); 0 or -EFAULT. */
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);

/*
 * Bytes of RAM that are contiguous from @gpa within its region (0 if @gpa is
 * not RAM). Loaders use it to size what they may place at an address.
 */
uint64_t guest_mem_room(const struct guest_mem *mem, uint64_t gpa);

/* End of the highest region: one past the last guest RAM byte. */
uint64_t guest_mem_end(const struct guest_mem *mem);

#endif
