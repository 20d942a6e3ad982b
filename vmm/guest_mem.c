// SPDX-License-Identifier: Apache-2.0
#include "guest_mem.h"

#include <errno.h>
#include <string.h>

#define PAGE_MASK 0xfffull

int guest_mem_layout(struct guest_mem *mem, uint64_t size, uint64_t gap_start, uint64_t gap_end)
{
	memset(mem, 0, sizeof(*mem));
	if (size == 0 || (size & PAGE_MASK) || gap_end < gap_start)
		return -EINVAL;
	uint64_t low = size < gap_start ? size : gap_start;
	mem->regions[0] = (struct guest_region){ .gpa = 0, .size = low };
	mem->nr_regions = 1;
	if (size > low) {
		uint64_t high = size - low;
		uint64_t end;
		if (__builtin_add_overflow(gap_end, high, &end))
			return -EINVAL;
		mem->regions[1] = (struct guest_region){ .gpa = gap_end, .size = high };
		mem->nr_regions = 2;
	}
	mem->size = size;
	return 0;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		/* r->gpa + r->size cannot overflow: guest_mem_layout checked it. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && end - r->gpa <= r->size)
			return r->host ? r->host + (gpa - r->gpa) : NULL;
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_mem_ptr(mem, gpa, len);
	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = guest_mem_ptr(mem, gpa, len);
	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t guest_mem_room(const struct guest_mem *mem, uint64_t gpa)
{
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r->size - (gpa - r->gpa);
	}
	return 0;
}

uint64_t guest_mem_end(const struct guest_mem *mem)
{
	if (!mem->nr_regions)
		return 0;
	const struct guest_region *r = &mem->regions[mem->nr_regions - 1];
	return r->gpa + r->size;
}

void guest_mem_mark_dirty(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		if (!r->dirty || gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		uint64_t first = (gpa - r->gpa) / 4096;
		uint64_t last = (gpa - r->gpa + (len ? len - 1 : 0)) / 4096;
		if (last >= r->size / 4096)
			last = r->size / 4096 - 1;
		for (uint64_t p = first; p <= last; p++)
			__atomic_fetch_or(&r->dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
		return;
	}
}
