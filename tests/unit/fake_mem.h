/* SPDX-License-Identifier: Apache-2.0 */
/* Fake guest memory for unit tests: real guest_mem layout over anonymous maps. */
#ifndef EMBER_TEST_FAKE_MEM_H
#define EMBER_TEST_FAKE_MEM_H

#include <stdint.h>
#include <sys/mman.h>

#include "arch/x86_64/layout.h"
#include "guest_mem.h"

static inline int fake_mem_init(struct guest_mem *mem, uint64_t size)
{
	int r = guest_mem_layout(mem, size, MMIO_GAP_START, MMIO_GAP_END);
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		void *p = mmap(NULL, mem->regions[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		mem->regions[i].host = p;
	}
	return 0;
}

static inline void fake_mem_free(struct guest_mem *mem)
{
	for (unsigned int i = 0; i < mem->nr_regions; i++)
		munmap(mem->regions[i].host, mem->regions[i].size);
}

#endif
