/* SPDX-License-Identifier: Apache-2.0 */
/* The CPU-bound loop the ring3 guest runs; also built for the host. */
#ifndef RING3_CHECKSUM_H
#define RING3_CHECKSUM_H

#include <stdint.h>

static inline uint64_t ring3_checksum(uint64_t iterations)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, sum = 0;
	for (uint64_t i = 0; i < iterations; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sum += x ^ i;
	}
	return sum;
}

#endif
