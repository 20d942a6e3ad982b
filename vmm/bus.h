/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Port I/O and MMIO buses: address ranges mapped to device callbacks.
 *
 * Devices register during VM set-up, before any vCPU runs; after that the
 * bus is read-only, so vCPU threads dispatch without a lock. Callbacks run on
 * the vCPU thread that took the exit and must do their own locking.
 */
#ifndef EMBER_BUS_H
#define EMBER_BUS_H

#include <stdint.h>

#define BUS_MAX_DEVICES 32

struct bus_device {
	const char *name;
	uint64_t base;
	uint64_t len;
	void *opaque;
	/* @off is relative to @base; @len is 1, 2, 4 or 8. */
	void (*read)(void *opaque, uint64_t off, uint8_t *data, uint32_t len);
	void (*write)(void *opaque, uint64_t off, const uint8_t *data, uint32_t len);
};

struct bus {
	struct bus_device devices[BUS_MAX_DEVICES];
	unsigned int nr_devices;
};

/* Add a device; -EEXIST if its range overlaps another, -ENOSPC if full. */
int bus_register(struct bus *bus, const struct bus_device *dev) __attribute__((warn_unused_result));

/*
 * Dispatch an access. Returns 0, or -ENOENT when no device covers
 * [@addr, @addr + @len) (a read then fills @data with all-ones, as an
 * unassigned address reads on real hardware).
 */
int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len);
int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len);

#endif
