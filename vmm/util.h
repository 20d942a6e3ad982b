/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers shared across the monitor. */
#ifndef EMBER_UTIL_H
#define EMBER_UTIL_H

#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* pread(2) until @len bytes are read. 0, -errno, or -EIO at end of file. */
int pread_full(int fd, void *buf, uint64_t len, uint64_t off);
/* write(2) until all of @buf is written. 0 or -errno. */
int write_full(int fd, const void *buf, uint64_t len);

#endif
