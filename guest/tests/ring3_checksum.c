// SPDX-License-Identifier: Apache-2.0
/* Host build of the ring3 guest's loop: prints the expected checksum. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ring3_checksum.h"

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 300000000ull;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	uint64_t sum = ring3_checksum(n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("checksum=0x%llx seconds=%.3f\n", (unsigned long long)sum,
	       (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
