/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 (FIPS 180-4) for guest code: the function runtime mixes its
 * per-clone seed with it and the sha256 example hashes requests with it.
 * Freestanding (no libc beyond memcpy/memset); also built for the host by
 * tests/unit/test_guest_sha256.c, which checks it against NIST's vectors.
 */
#ifndef EMBER_GUEST_SHA256_H
#define EMBER_GUEST_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256 {
	uint32_t h[8];
	uint64_t total; /* bytes hashed so far */
	uint8_t buf[64];
	uint32_t used; /* bytes waiting in buf */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);
/* The three above in one call. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

#endif
