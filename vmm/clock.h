/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Monotonic time, relative to when this process started. The start is the
 * time given with --start-time-us (taken by the launcher just before exec, as
 * Firecracker's jailer does) or, failing that, the first call of clock_init().
 */
#ifndef EMBER_CLOCK_H
#define EMBER_CLOCK_H

#include <stdint.h>

/* Record the process start. Call first thing in main(). */
void clock_init(void);
/* Override the start with a CLOCK_MONOTONIC timestamp in microseconds. */
void clock_set_start_us(uint64_t start_us);
/* CLOCK_MONOTONIC now, in microseconds / nanoseconds. */
uint64_t clock_now_us(void);
uint64_t clock_now_ns(void);
/* Microseconds since the process start. */
uint64_t clock_us_since_start(void);
/* Process CPU time used so far, in microseconds. */
uint64_t clock_cpu_us(void);

#endif
