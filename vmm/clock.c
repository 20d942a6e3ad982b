// SPDX-License-Identifier: Apache-2.0
#include "clock.h"

#include <time.h>

static uint64_t start_us;

uint64_t clock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t clock_now_us(void)
{
	return clock_now_ns() / 1000;
}

void clock_init(void)
{
	if (!start_us)
		start_us = clock_now_us();
}

void clock_set_start_us(uint64_t us)
{
	start_us = us;
}

uint64_t clock_us_since_start(void)
{
	uint64_t now = clock_now_us();
	return now > start_us ? now - start_us : 0;
}

uint64_t clock_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}
