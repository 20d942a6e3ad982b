// SPDX-License-Identifier: Apache-2.0
#include "bus.h"

#include <errno.h>
#include <string.h>

int bus_register(struct bus *bus, const struct bus_device *dev)
{
	uint64_t end;
	if (dev->len == 0 || __builtin_add_overflow(dev->base, dev->len, &end))
		return -EINVAL;
	for (unsigned int i = 0; i < bus->nr_devices; i++) {
		const struct bus_device *d = &bus->devices[i];
		if (dev->base < d->base + d->len && d->base < end)
			return -EEXIST;
	}
	if (bus->nr_devices == BUS_MAX_DEVICES)
		return -ENOSPC;
	bus->devices[bus->nr_devices++] = *dev;
	return 0;
}

static const struct bus_device *bus_find(const struct bus *bus, uint64_t addr, uint32_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(addr, len, &end))
		return NULL;
	for (unsigned int i = 0; i < bus->nr_devices; i++) {
		const struct bus_device *d = &bus->devices[i];
		if (addr >= d->base && end <= d->base + d->len)
			return d;
	}
	return NULL;
}

int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len)
{
	const struct bus_device *d = bus_find(bus, addr, len);
	if (!d || !d->read) {
		memset(data, 0xff, len);
		return d ? 0 : -ENOENT;
	}
	d->read(d->opaque, addr - d->base, data, len);
	return 0;
}

int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len)
{
	const struct bus_device *d = bus_find(bus, addr, len);
	if (!d)
		return -ENOENT;
	if (d->write)
		d->write(d->opaque, addr - d->base, data, len);
	return 0;
}
