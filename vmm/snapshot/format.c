// SPDX-License-Identifier: Apache-2.0
/* The snapshot state file format: see format.h. */
#include "format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define HDR_LEN 24
#define SEC_HDR_LEN 16
#define TRAILER_LEN 8

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *reserve(struct snap_writer *w, size_t n)
{
	if (w->failed)
		return NULL;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->failed = 1;
			return NULL;
		}
		w->buf = b;
		w->cap = cap;
	}
	uint8_t *p = w->buf + w->len;
	memset(p, 0, n);
	w->len += n;
	return p;
}

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	uint8_t *h = reserve(w, HDR_LEN);
	if (!h)
		return;
	memcpy(h, SNAP_MAGIC, 8);
	put32(h + 8, SNAP_ARCH_X86_64);
	put32(h + 12, SNAP_VERSION);
}

void snap_writer_add(struct snap_writer *w, uint32_t tag, uint32_t instance, const void *data,
		     uint32_t len)
{
	size_t padded = ((size_t)len + 7) & ~(size_t)7;
	uint8_t *p = reserve(w, SEC_HDR_LEN + padded);
	if (!p)
		return;
	put32(p, tag);
	put32(p + 4, instance);
	put32(p + 8, len);
	memcpy(p + SEC_HDR_LEN, data, len);
	w->count++;
}

int snap_writer_finish(struct snap_writer *w)
{
	uint8_t *t = reserve(w, TRAILER_LEN);
	if (!t || w->failed)
		return -ENOMEM;
	put32(w->buf + 16, w->count);
	put32(t, (uint32_t)crc32(0, w->buf, (uInt)(w->len - TRAILER_LEN)));
	return 0;
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int snap_reader_init(struct snap_reader *r, const uint8_t *buf, size_t len, const char **why)
{
	memset(r, 0, sizeof(*r));
	if (len > SNAP_MAX_FILE) {
		*why = "the state file is larger than any ember writes";
		return -EFBIG;
	}
	if (len < HDR_LEN + TRAILER_LEN || memcmp(buf, SNAP_MAGIC, 8) != 0) {
		*why = "not an ember snapshot state file (bad magic or truncated)";
		return -EINVAL;
	}
	if (get32(buf + 8) != SNAP_ARCH_X86_64) {
		*why = "the snapshot was taken on another architecture";
		return -ENOEXEC;
	}
	uint32_t version = get32(buf + 12);
	if (version < SNAP_VERSION_MIN || version > SNAP_VERSION) {
		*why = "the snapshot has a format version this ember does not read (it reads 1 "
		       "to 3)";
		return -EPROTO;
	}
	if (len % 8 || get32(buf + len - 4) != 0 ||
	    get32(buf + len - TRAILER_LEN) != (uint32_t)crc32(0, buf, (uInt)(len - TRAILER_LEN))) {
		*why = "the state file is corrupt or truncated (CRC mismatch)";
		return -EBADMSG;
	}
	uint32_t count = get32(buf + 16);
	if (count > SNAP_MAX_SECTIONS) {
		*why = "too many sections";
		return -EINVAL;
	}
	r->sections = calloc(count ? count : 1, sizeof(*r->sections));
	if (!r->sections) {
		*why = "out of memory";
		return -ENOMEM;
	}
	size_t off = HDR_LEN, end = len - TRAILER_LEN;
	for (uint32_t i = 0; i < count; i++) {
		if (end - off < SEC_HDR_LEN) {
			*why = "a section header runs past the end of the file";
			goto bad;
		}
		const uint8_t *p = buf + off;
		uint32_t slen = get32(p + 8);
		size_t padded = ((size_t)slen + 7) & ~(size_t)7;
		if (padded > end - off - SEC_HDR_LEN) {
			*why = "a section runs past the end of the file";
			goto bad;
		}
		r->sections[i] =
		    (struct snap_section){ get32(p), get32(p + 4), slen, p + SEC_HDR_LEN };
		if (version < 2 && r->sections[i].tag >= SNAP_RATE_LIMITER) {
			*why = "a version 1 state file with a section only version 2 has";
			goto bad;
		}
		if (version < 3 && r->sections[i].tag >= SNAP_CPUID) {
			*why = "a version 2 state file with a section only version 3 has";
			goto bad;
		}
		off += SEC_HDR_LEN + padded;
	}
	if (off != end) {
		*why = "bytes after the last section";
		goto bad;
	}
	r->buf = buf;
	r->len = len;
	r->version = version;
	r->count = count;
	return 0;
bad:
	free(r->sections);
	r->sections = NULL;
	return -EINVAL;
}

void snap_reader_free(struct snap_reader *r)
{
	free(r->sections);
	memset(r, 0, sizeof(*r));
}

const struct snap_section *snap_find(const struct snap_reader *r, uint32_t tag, uint32_t instance)
{
	for (uint32_t i = 0; i < r->count; i++)
		if (r->sections[i].tag == tag && r->sections[i].instance == instance)
			return &r->sections[i];
	return NULL;
}

int snap_get(const struct snap_reader *r, uint32_t tag, uint32_t instance, void *out, uint32_t len)
{
	const struct snap_section *s = snap_find(r, tag, instance);
	if (!s || s->len != len)
		return -EINVAL;
	memcpy(out, s->data, len);
	return 0;
}
