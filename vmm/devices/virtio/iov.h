/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Byte ranges across a descriptor chain's iovecs (which point into guest
 * memory already checked by virtq_pop). Shared by the virtio devices.
 */
#ifndef EMBER_VIRTIO_IOV_H
#define EMBER_VIRTIO_IOV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* The iovecs covering @len bytes from byte @off of @iov[0..n), into @out. */
uint32_t iov_slice(const struct iovec *iov, unsigned int n, uint64_t off, uint64_t len,
		   struct iovec *out);
/* Copy @len bytes from byte @off of @iov[0..n) to @dst; false if short. */
bool iov_copy_out(const struct iovec *iov, unsigned int n, uint64_t off, void *dst, uint64_t len);
/* Copy @len bytes from @src to byte @off of @iov[0..n); false if short. */
bool iov_copy_in(const struct iovec *iov, unsigned int n, uint64_t off, const void *src,
		 uint64_t len);

#endif
