// SPDX-License-Identifier: Apache-2.0
/*
 * MMDS V2 session tokens. Firecracker seals each token's expiry with
 * AES-GCM, so it keeps no state; ember has no cipher library, so a token is
 * 32 bytes from getrandom(2) kept with its expiry in a fixed table
 * (MMDS_MAX_TOKENS). A guest that makes more tokens than that loses the
 * one expiring first, which then reads as expired (401), a state the guest
 * must handle anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "mmds/mmds.h"

int mmds_token_new(struct mmds *m, uint64_t ttl_s, uint64_t now_ns, char out[MMDS_TOKEN_LEN + 1])
{
	if (ttl_s < MMDS_TOKEN_TTL_MIN || ttl_s > MMDS_TOKEN_TTL_MAX)
		return -EINVAL;
	uint8_t raw[MMDS_TOKEN_LEN / 2];
	if (getrandom(raw, sizeof(raw), GRND_NONBLOCK) != (ssize_t)sizeof(raw))
		return -EIO;
	/* A free or expired slot, else the one expiring first. */
	struct mmds_token *slot = &m->tokens[0];
	for (size_t i = 0; i < MMDS_MAX_TOKENS; i++) {
		struct mmds_token *t = &m->tokens[i];
		if (t->expires_ns <= now_ns) {
			slot = t;
			break;
		}
		if (t->expires_ns < slot->expires_ns)
			slot = t;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(slot->text + 2 * i, 3, "%02x", raw[i]);
	slot->expires_ns = now_ns + ttl_s * 1000000000ull;
	memcpy(out, slot->text, sizeof(slot->text));
	return 0;
}

/* Compares every byte whatever the first difference, so the time taken
 * says nothing about how much of a guess was right. */
static bool same(const char *a, const char *b)
{
	unsigned int diff = 0;
	for (size_t i = 0; i < MMDS_TOKEN_LEN; i++)
		diff |= (unsigned int)(a[i] ^ b[i]);
	return diff == 0;
}

bool mmds_token_valid(const struct mmds *m, const char *token, uint64_t now_ns)
{
	if (!token || strnlen(token, MMDS_TOKEN_LEN + 1) != MMDS_TOKEN_LEN)
		return false;
	bool ok = false;
	for (size_t i = 0; i < MMDS_MAX_TOKENS; i++) {
		const struct mmds_token *t = &m->tokens[i];
		ok |= t->expires_ns > now_ns && same(t->text, token);
	}
	return ok;
}
