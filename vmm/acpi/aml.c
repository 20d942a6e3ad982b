// SPDX-License-Identifier: Apache-2.0
/* AML encoding: opcodes, PkgLength, NameString, data objects, resources. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"

/* ACPI 6.5, 20.3: the opcodes ember emits. */
enum {
	AML_ZERO = 0x00,
	AML_ONE = 0x01,
	AML_NAME = 0x08,
	AML_BYTE = 0x0a,
	AML_WORD = 0x0b,
	AML_DWORD = 0x0c,
	AML_STRING = 0x0d,
	AML_QWORD = 0x0e,
	AML_SCOPE = 0x10,
	AML_BUFFER = 0x11,
	AML_PACKAGE = 0x12,
	AML_METHOD = 0x14,
	AML_DUAL_NAME = 0x2e,
	AML_MULTI_NAME = 0x2f,
	AML_EXT = 0x5b,
	AML_ARG0 = 0x68,
	AML_NOTIFY = 0x86,
	AML_LEQUAL = 0x93,
	AML_IF = 0xa0,
	AML_EXT_DEVICE = 0x82,
};

/* PkgLength covers itself: at most 4 bytes, 28 bits. */
#define PKG_MAX 0x0fffffffu
#define NAME_SEGS_MAX 255

void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

static bool reserve(struct aml *a, size_t n)
{
	if (a->err)
		return false;
	if (a->cap - a->len >= n)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap - a->len < n)
		cap *= 2;
	uint8_t *p = realloc(a->buf, cap);
	if (!p) {
		aml_fail(a, -ENOMEM);
		return false;
	}
	a->buf = p;
	a->cap = cap;
	return true;
}

static void emit(struct aml *a, const void *p, size_t n)
{
	if (reserve(a, n)) {
		memcpy(a->buf + a->len, p, n);
		a->len += n;
	}
}

static void emit_byte(struct aml *a, uint8_t b)
{
	emit(a, &b, 1);
}

static void emit_le(struct aml *a, uint64_t v, unsigned int bytes)
{
	uint8_t b[8];
	for (unsigned int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	emit(a, b, bytes);
}

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

/* NameSeg characters (20.2.2): a lead of A-Z or '_', then also 0-9. */
static bool seg_char(char c, bool lead)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!lead && c >= '0' && c <= '9');
}

/*
 * "\_SB_.VR00", "^PARN", "_HID": prefixes, then dot-separated segments of
 * one to four characters, padded with '_' as ASL does.
 */
void aml_path(struct aml *a, const char *path)
{
	/* A root prefix, or any number of parent prefixes; not both. */
	size_t prefix = path[0] == '\\' ? 1 : strspn(path, "^");
	const char *p = path + prefix;
	uint8_t segs[NAME_SEGS_MAX][4];
	unsigned int n = 0;
	while (*p) {
		if (n == NAME_SEGS_MAX) {
			aml_fail(a, -EINVAL);
			return;
		}
		unsigned int i = 0;
		for (; i < 4 && *p && *p != '.'; i++, p++) {
			if (!seg_char(*p, i == 0)) {
				aml_fail(a, -EINVAL);
				return;
			}
			segs[n][i] = (uint8_t)*p;
		}
		if (i == 0 || (*p && *p != '.')) {
			aml_fail(a, -EINVAL);
			return;
		}
		memset(&segs[n][i], '_', 4 - i);
		n++;
		if (*p == '.' && !*++p) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	if (n == 0 && prefix == 0) {
		aml_fail(a, -EINVAL);
		return;
	}
	emit(a, path, prefix);
	if (n == 0)
		emit_byte(a, 0x00); /* NullName: the prefix alone, e.g. "\\" */
	else if (n == 2)
		emit_byte(a, AML_DUAL_NAME);
	else if (n > 2) {
		emit_byte(a, AML_MULTI_NAME);
		emit_byte(a, (uint8_t)n);
	}
	emit(a, segs, 4ul * n);
}

/* Open a PkgLength-delimited object: its opcode bytes now, the length at close. */
static size_t open_pkg(struct aml *a, const uint8_t *op, size_t op_len)
{
	emit(a, op, op_len);
	return a->len;
}

void aml_close(struct aml *a, size_t mark)
{
	if (a->err)
		return;
	if (mark > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* One byte holds 6 bits; each further byte adds 8 to a 4-bit lead. */
	static const uint32_t max[4] = { 0x3f, 0xfff, 0xfffff, PKG_MAX };
	size_t body = a->len - mark;
	unsigned int n = 1;
	while (n <= 4 && body + n > max[n - 1])
		n++;
	if (n > 4) {
		aml_fail(a, -E2BIG);
		return;
	}
	uint32_t total = (uint32_t)(body + n);
	uint8_t enc[4];
	if (n == 1) {
		enc[0] = (uint8_t)total;
	} else {
		enc[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (unsigned int i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	if (!reserve(a, n))
		return;
	memmove(a->buf + mark + n, a->buf + mark, body);
	memcpy(a->buf + mark, enc, n);
	a->len += n;
}

size_t aml_scope(struct aml *a, const char *path)
{
	static const uint8_t op[] = { AML_SCOPE };
	size_t m = open_pkg(a, op, sizeof(op));
	aml_path(a, path);
	return m;
}

size_t aml_device(struct aml *a, const char *path)
{
	static const uint8_t op[] = { AML_EXT, AML_EXT_DEVICE };
	size_t m = open_pkg(a, op, sizeof(op));
	aml_path(a, path);
	return m;
}

size_t aml_method(struct aml *a, const char *name, unsigned int nargs, bool serialized)
{
	static const uint8_t op[] = { AML_METHOD };
	if (nargs > 7)
		aml_fail(a, -EINVAL);
	size_t m = open_pkg(a, op, sizeof(op));
	aml_path(a, name);
	emit_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
	return m;
}

size_t aml_if(struct aml *a)
{
	static const uint8_t op[] = { AML_IF };
	return open_pkg(a, op, sizeof(op));
}

size_t aml_package(struct aml *a, unsigned int n)
{
	static const uint8_t op[] = { AML_PACKAGE };
	if (n > 0xff)
		aml_fail(a, -E2BIG);
	size_t m = open_pkg(a, op, sizeof(op));
	emit_byte(a, (uint8_t)n);
	return m;
}

void aml_name(struct aml *a, const char *name)
{
	emit_byte(a, AML_NAME);
	aml_path(a, name);
}

void aml_integer(struct aml *a, uint64_t v)
{
	static const struct {
		uint64_t max;
		uint8_t prefix;
		unsigned int bytes;
	} forms[] = {
		{ 0xff, AML_BYTE, 1 },
		{ 0xffff, AML_WORD, 2 },
		{ 0xffffffff, AML_DWORD, 4 },
		{ UINT64_MAX, AML_QWORD, 8 },
	};
	if (v <= 1) {
		emit_byte(a, v ? AML_ONE : AML_ZERO);
		return;
	}
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		if (v <= forms[i].max) {
			emit_byte(a, forms[i].prefix);
			emit_le(a, v, forms[i].bytes);
			return;
		}
	}
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p < 0x20 || *p > 0x7e) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	emit_byte(a, AML_STRING);
	emit(a, s, strlen(s) + 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Three letters in 5 bits each and four hex digits, stored big-endian. */
uint32_t aml_eisaid_value(const char *id)
{
	if (strlen(id) != 7)
		return 0;
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v = (v << 5) | (uint32_t)(id[i] - '@');
	}
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);
		if (d < 0)
			return 0;
		v = (v << 4) | (uint32_t)d;
	}
	return __builtin_bswap32(v);
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = aml_eisaid_value(id);
	if (!v) {
		aml_fail(a, -EINVAL);
		return;
	}
	emit_byte(a, AML_DWORD); /* always a DWord, as ASL compilers emit it */
	emit_le(a, v, 4);
}

void aml_buffer(struct aml *a, const void *data, size_t len)
{
	static const uint8_t op[] = { AML_BUFFER };
	size_t m = open_pkg(a, op, sizeof(op));
	aml_integer(a, len);
	emit(a, data, len);
	aml_close(a, m);
}

void aml_arg(struct aml *a, unsigned int n)
{
	if (n > 6) {
		aml_fail(a, -EINVAL);
		return;
	}
	emit_byte(a, (uint8_t)(AML_ARG0 + n));
}

void aml_lequal(struct aml *a)
{
	emit_byte(a, AML_LEQUAL);
}

void aml_notify(struct aml *a, const char *path, uint8_t value)
{
	emit_byte(a, AML_NOTIFY);
	aml_path(a, path);
	aml_integer(a, value);
}

/* --- resource descriptors (6.4.2 small, 6.4.3 large) -------------------- */

static void res_emit(struct aml_res *r, const uint8_t *p, size_t n)
{
	if (r->overflow || sizeof(r->buf) - r->len < n) {
		r->overflow = true;
		return;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

void aml_res_io(struct aml_res *r, uint16_t port, uint8_t len)
{
	const uint8_t d[8] = {
		0x47, /* small item 0x08, 7 bytes */
		0x01, /* decodes 16 address bits */
		(uint8_t)port, (uint8_t)(port >> 8), (uint8_t)port, (uint8_t)(port >> 8),
		0x00, /* alignment: a fixed range */
		len,
	};
	res_emit(r, d, sizeof(d));
}

void aml_res_irq(struct aml_res *r, uint8_t irq)
{
	if (irq > 15) {
		r->overflow = true; /* only ISA IRQs fit the mask */
		return;
	}
	const uint8_t d[3] = { 0x22, (uint8_t)(1u << irq), (uint8_t)((1u << irq) >> 8) };
	res_emit(r, d, sizeof(d));
}

void aml_res_mem32_fixed(struct aml_res *r, uint32_t base, uint32_t len, bool writable)
{
	const uint8_t d[12] = {
		0x86,
		9,
		0, /* length of the rest */
		writable ? 1 : 0,
		(uint8_t)base,
		(uint8_t)(base >> 8),
		(uint8_t)(base >> 16),
		(uint8_t)(base >> 24),
		(uint8_t)len,
		(uint8_t)(len >> 8),
		(uint8_t)(len >> 16),
		(uint8_t)(len >> 24),
	};
	res_emit(r, d, sizeof(d));
}

void aml_res_ext_irq(struct aml_res *r, uint32_t gsi)
{
	const uint8_t d[9] = {
		0x89,
		6,
		0,
		0x03, /* consumer, edge-triggered, active high, exclusive */
		1, /* one interrupt */
		(uint8_t)gsi,
		(uint8_t)(gsi >> 8),
		(uint8_t)(gsi >> 16),
		(uint8_t)(gsi >> 24),
	};
	res_emit(r, d, sizeof(d));
}

void aml_res_end(struct aml_res *r)
{
	/* A zero checksum means "treat as valid" (6.4.2.9). */
	static const uint8_t d[2] = { 0x79, 0x00 };
	res_emit(r, d, sizeof(d));
}
