// SPDX-License-Identifier: Apache-2.0
#include "iov.h"

#include <string.h>

#include "queue.h"

uint32_t iov_slice(const struct iovec *iov, unsigned int n, uint64_t off, uint64_t len,
		   struct iovec *out)
{
	uint32_t k = 0;
	for (unsigned int i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		uint64_t take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		out[k++] =
		    (struct iovec){ .iov_base = (uint8_t *)iov[i].iov_base + off, .iov_len = take };
		len -= take;
		off = 0;
	}
	return k;
}

bool iov_copy_out(const struct iovec *iov, unsigned int n, uint64_t off, void *dst, uint64_t len)
{
	struct iovec part[VIRTQ_MAX_SIZE];
	uint32_t k = iov_slice(iov, n, off, len, part);
	uint8_t *d = dst;
	for (uint32_t i = 0; i < k; i++) {
		memcpy(d, part[i].iov_base, part[i].iov_len);
		d += part[i].iov_len;
	}
	return (uint64_t)(d - (uint8_t *)dst) == len;
}

bool iov_copy_in(const struct iovec *iov, unsigned int n, uint64_t off, const void *src,
		 uint64_t len)
{
	struct iovec part[VIRTQ_MAX_SIZE];
	uint32_t k = iov_slice(iov, n, off, len, part);
	const uint8_t *s = src;
	for (uint32_t i = 0; i < k; i++) {
		memcpy(part[i].iov_base, s, part[i].iov_len);
		s += part[i].iov_len;
	}
	return (uint64_t)(s - (const uint8_t *)src) == len;
}
