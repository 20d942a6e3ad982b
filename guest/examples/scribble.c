// SPDX-License-Identifier: Apache-2.0
/*
 * scribble: for the isolation tests. Each request first looks at a fixed
 * buffer (AREA bytes of the image's memory, zero in a fresh image), then
 * writes its tag (the request bytes, at most 64) over all of it and over
 * SCRATCH bytes it allocates. The response, one text line:
 *   previous=<tag a request before wrote, or -> clean=<1 if the buffer was
 *   all zero> hash=<SHA-256 of the buffer as found, hex> seed=<the seed,
 *   hex> sources=<fn_request.seed_sources> serial=<fn_request.serial>
 * In a VM restored per request every response says previous=- clean=1; in
 * warm mode the second request sees the first one's tag.
 */
#include "fn.h"
#include "sha256.h"

#define AREA (256 * 1024)
#define SCRATCH (1024 * 1024)
#define MAGIC "SCRIBBLE:"
#define TAG_MAX 64

static uint8_t area[AREA] __attribute__((aligned(4096)));

static char *put(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *put_hex(char *p, const uint8_t *b, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		*p++ = "0123456789abcdef"[b[i] >> 4];
		*p++ = "0123456789abcdef"[b[i] & 15];
	}
	return p;
}

static char *put_dec(char *p, uint64_t v)
{
	char tmp[21];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Fill @dst with MAGIC, the tag's length as one byte, the tag, repeated. */
static void scribble(uint8_t *dst, size_t len, const uint8_t *tag, uint32_t tag_len)
{
	uint8_t unit[sizeof(MAGIC) + TAG_MAX];
	size_t u = sizeof(MAGIC) - 1;
	memcpy(unit, MAGIC, u);
	unit[u++] = (uint8_t)tag_len;
	memcpy(unit + u, tag, tag_len);
	u += tag_len;
	for (size_t i = 0; i < len; i++)
		dst[i] = unit[i % u];
}

static int handle(const struct fn_request *req, struct fn_response *resp)
{
	uint32_t tag_len = req->len < TAG_MAX ? req->len : TAG_MAX;
	uint8_t hash[SHA256_LEN];
	sha256(area, sizeof(area), hash);
	int clean = 1;
	for (size_t i = 0; i < sizeof(area) && clean; i++)
		clean = area[i] == 0;

	char *p = (char *)resp->data;
	p = put(p, "previous=");
	size_t m = sizeof(MAGIC) - 1;
	if (memcmp(area, MAGIC, m) == 0 && area[m] <= TAG_MAX) {
		memcpy(p, area + m + 1, area[m]);
		p += area[m];
	} else {
		*p++ = '-';
	}
	p = put(p, " clean=");
	*p++ = clean ? '1' : '0';
	p = put(p, " hash=");
	p = put_hex(p, hash, sizeof(hash));
	p = put(p, " seed=");
	p = put_hex(p, req->seed, sizeof(req->seed));
	p = put(p, " sources=");
	p = put_dec(p, req->seed_sources);
	p = put(p, " serial=");
	p = put_dec(p, req->serial);
	*p++ = '\n';
	resp->len = (uint32_t)(p - (char *)resp->data);

	scribble(area, sizeof(area), req->data, tag_len);
	uint8_t *scratch = fn_alloc(SCRATCH);
	if (scratch)
		scribble(scratch, SCRATCH, req->data, tag_len);
	return 0;
}

FN_MAIN(handle, NULL, 0)
