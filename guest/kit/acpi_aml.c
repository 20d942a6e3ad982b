// SPDX-License-Identifier: Apache-2.0
/*
 * The AML subset of a micro-VM's DSDT (see acpi.h), and the resource
 * descriptors of its _CRS buffers: small I/O, fixed I/O and IRQ, large
 * Memory32, Memory32Fixed and Extended Interrupt. Other resource
 * descriptors are counted and skipped by their length.
 *
 * Every parse step takes the end of its container and never reads past it;
 * a PkgLength may not reach past its parent's.
 */
#include "acpi_aml.h"
#include "kit.h"

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE 0x0a
#define AML_WORD 0x0b
#define AML_DWORD 0x0c
#define AML_STRING 0x0d
#define AML_QWORD 0x0e
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_METHOD 0x14
#define AML_DUAL_NAME 0x2e
#define AML_MULTI_NAME 0x2f
#define AML_EXT 0x5b
#define AML_ROOT 0x5c /* '\' */
#define AML_PARENT 0x5e /* '^' */
#define AML_ARG0 0x68
#define AML_ARG6 0x6e
#define AML_NOTIFY 0x86
#define AML_LEQUAL 0x93
#define AML_IF 0xa0
#define AML_ELSE 0xa1
#define AML_WHILE 0xa2
#define AML_ONES 0xff
#define AML_EXT_DEVICE 0x82
#define AML_EXT_PROCESSOR 0x83
#define AML_EXT_POWER_RES 0x84
#define AML_EXT_THERMAL_ZONE 0x85

struct aml_path {
	unsigned int n;
	char seg[ACPI_MAX_DEPTH][4];
};

struct aml {
	struct acpi_info *info;
	const uint8_t *base; /* the first AML byte, at table offset .offset */
	uint32_t offset;
	int quiet; /* decoding a method body: a mismatch is not an error */
};

enum aml_kind { AML_INT, AML_STR, AML_BUF, AML_PKG, AML_REF };

struct aml_value {
	enum aml_kind kind;
	uint64_t i; /* an integer's value; a package's NumElements */
	const uint8_t *data; /* a string's or buffer's bytes */
	uint32_t len;
	unsigned int nr_ints; /* a package's leading integer elements */
	uint64_t ints[2];
};

static int aml_error(struct aml *a, const char *what, const uint8_t *at)
{
	if (a->quiet)
		return -1;
	return acpi_fail(a->info, what, a->offset + (uint64_t)(at - a->base));
}

/* PkgLength (1-4 bytes) at *pp: sets *body_end, leaves *pp after it. */
static int pkg_length(struct aml *a, const uint8_t **pp, const uint8_t *end,
		      const uint8_t **body_end)
{
	const uint8_t *p = *pp;
	if (p >= end)
		return aml_error(a, "truncated PkgLength", p);
	unsigned int extra = p[0] >> 6;
	uint32_t len = p[0] & 0x3f;
	if (extra) {
		if (p[0] & 0x30)
			return aml_error(a, "PkgLength reserved bits set", p);
		if ((size_t)(end - p) < 1 + extra)
			return aml_error(a, "truncated PkgLength", p);
		len = p[0] & 0x0f;
		for (unsigned int i = 0; i < extra; i++)
			len |= (uint32_t)p[1 + i] << (4 + 8 * i);
	}
	if (len < 1 + extra || len > (size_t)(end - p))
		return aml_error(a, "PkgLength outside its parent", p);
	*pp = p + 1 + extra;
	*body_end = p + len;
	return 0;
}

static int seg_valid(const uint8_t *s)
{
	for (int i = 0; i < 4; i++) {
		uint8_t c = s[i];
		if (!((c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

static int seg_is(const char *seg, const char *name)
{
	return memcmp(seg, name, 4) == 0;
}

/* A NameString at *pp, resolved against @scope into @out. */
static int name_string(struct aml *a, const uint8_t **pp, const uint8_t *end,
		       const struct aml_path *scope, struct aml_path *out)
{
	const uint8_t *p = *pp;
	*out = *scope;
	if (p < end && *p == AML_ROOT) {
		out->n = 0;
		p++;
	} else {
		for (; p < end && *p == AML_PARENT; p++) {
			if (out->n == 0)
				return aml_error(a, "^ above the root", p);
			out->n--;
		}
	}
	if (p >= end)
		return aml_error(a, "truncated NameString", p);
	unsigned int segs = 1;
	if (*p == 0) {
		segs = 0;
		p++;
	} else if (*p == AML_DUAL_NAME) {
		segs = 2;
		p++;
	} else if (*p == AML_MULTI_NAME) {
		if (++p >= end || *p == 0)
			return aml_error(a, "bad MultiNamePrefix count", p);
		segs = *p++;
	}
	if ((size_t)(end - p) < 4 * (size_t)segs)
		return aml_error(a, "truncated NameString", p);
	for (unsigned int i = 0; i < segs; i++, p += 4) {
		if (!seg_valid(p))
			return aml_error(a, "bad NameSeg", p);
		if (out->n == ACPI_MAX_DEPTH)
			return aml_error(a, "name path too deep", p);
		memcpy(out->seg[out->n++], p, 4);
	}
	*pp = p;
	return 0;
}

static int name_start(uint8_t c)
{
	return c == AML_ROOT || c == AML_PARENT || c == AML_DUAL_NAME || c == AML_MULTI_NAME ||
	    c == '_' || (c >= 'A' && c <= 'Z');
}

static void path_format(const struct aml_path *path, char *buf)
{
	char *b = buf;
	*b++ = '\\';
	for (unsigned int i = 0; i < path->n; i++) {
		if (i)
			*b++ = '.';
		for (int j = 0; j < 4; j++)
			*b++ = path->seg[i][j];
	}
	*b = 0;
}

static int data_object(struct aml *a, const uint8_t **pp, const uint8_t *end, struct aml_value *v,
		       unsigned int depth);

static int buffer(struct aml *a, const uint8_t **pp, const uint8_t *end, struct aml_value *v,
		  unsigned int depth)
{
	const uint8_t *p = *pp, *body;
	struct aml_value size;
	if (pkg_length(a, &p, end, &body) < 0 || data_object(a, &p, body, &size, depth + 1) < 0)
		return -1;
	if (size.kind != AML_INT)
		return aml_error(a, "BufferSize is not an integer", p);
	if (size.i < (uint64_t)(body - p))
		return aml_error(a, "Buffer initializer longer than BufferSize", p);
	v->kind = AML_BUF;
	v->data = p;
	v->len = (uint32_t)(body - p);
	*pp = body;
	return 0;
}

static int package(struct aml *a, const uint8_t **pp, const uint8_t *end, struct aml_value *v,
		   unsigned int depth)
{
	static const struct aml_path root;
	const uint8_t *p = *pp, *body;
	if (pkg_length(a, &p, end, &body) < 0)
		return -1;
	if (p >= body)
		return aml_error(a, "Package without NumElements", p);
	unsigned int num = *p++, count = 0;
	v->kind = AML_PKG;
	v->i = num;
	for (; p < body; count++) {
		struct aml_value e = { .kind = AML_REF };
		struct aml_path ref;
		if (count == num)
			return aml_error(a, "more Package elements than NumElements", p);
		if (name_start(*p) ? name_string(a, &p, body, &root, &ref) < 0
				   : data_object(a, &p, body, &e, depth + 1) < 0)
			return -1;
		if (e.kind == AML_INT && v->nr_ints == count && v->nr_ints < 2)
			v->ints[v->nr_ints++] = e.i;
	}
	*pp = body;
	return 0;
}

/* A DataObject of the subset: integer constants, String, Buffer, Package. */
static int data_object(struct aml *a, const uint8_t **pp, const uint8_t *end, struct aml_value *v,
		       unsigned int depth)
{
	const uint8_t *p = *pp, *s;
	unsigned int n = 0;
	if (depth > ACPI_MAX_DEPTH)
		return aml_error(a, "data objects nested too deep", p);
	if (p >= end)
		return aml_error(a, "truncated data object", p);
	*v = (struct aml_value){ .kind = AML_INT };
	switch (*p++) {
	case AML_ZERO:
		break;
	case AML_ONE:
		v->i = 1;
		break;
	case AML_ONES:
		v->i = ~0ull;
		break;
	case AML_BYTE:
		n = 1;
		break;
	case AML_WORD:
		n = 2;
		break;
	case AML_DWORD:
		n = 4;
		break;
	case AML_QWORD:
		n = 8;
		break;
	case AML_STRING:
		for (s = p; p < end && *p; p++)
			if (*p > 0x7f)
				return aml_error(a, "non-ASCII String byte", p);
		if (p >= end)
			return aml_error(a, "unterminated String", s);
		v->kind = AML_STR;
		v->data = s;
		v->len = (uint32_t)(p - s);
		p++;
		break;
	case AML_BUFFER:
		*pp = p;
		return buffer(a, pp, end, v, depth);
	case AML_PACKAGE:
		*pp = p;
		return package(a, pp, end, v, depth);
	default:
		return aml_error(a, "unsupported data object", p - 1);
	}
	if ((size_t)(end - p) < n)
		return aml_error(a, "truncated integer", p);
	for (unsigned int i = 0; i < n; i++)
		v->i |= (uint64_t)p[i] << (8 * i);
	*pp = p + n;
	return 0;
}

static struct acpi_device *device_at(struct acpi_info *info, const struct aml_path *path)
{
	char buf[ACPI_PATH_MAX];
	path_format(path, buf);
	for (unsigned int i = 0; i < info->nr_devices; i++)
		if (strcmp(info->devices[i].path, buf) == 0)
			return &info->devices[i];
	return NULL;
}

static int device_define(struct aml *a, const struct aml_path *path, const uint8_t *at)
{
	struct acpi_info *info = a->info;
	if (device_at(info, path))
		return aml_error(a, "Device defined twice", at);
	if (info->nr_devices == ACPI_MAX_DEVICES)
		return aml_error(a, "too many devices", at);
	path_format(path, info->devices[info->nr_devices++].path);
	return 0;
}

/* EISA id: three 5-bit letters and four hex digits, stored big-endian. */
static void eisa_decode(uint32_t v, char *out)
{
	uint32_t x = (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
	out[0] = (char)('@' + ((x >> 26) & 0x1f));
	out[1] = (char)('@' + ((x >> 21) & 0x1f));
	out[2] = (char)('@' + ((x >> 16) & 0x1f));
	for (int i = 0; i < 4; i++)
		out[3 + i] = "0123456789ABCDEF"[(x >> (12 - 4 * i)) & 0xf];
	out[7] = 0;
}

static int id_set(struct aml *a, char *dst, const struct aml_value *v, const uint8_t *at)
{
	if (v->kind == AML_INT) {
		if (v->i > 0xffffffffu)
			return aml_error(a, "EISA id wider than 32 bits", at);
		eisa_decode((uint32_t)v->i, dst);
		return 0;
	}
	if (v->kind != AML_STR)
		return aml_error(a, "id is neither an integer nor a String", at);
	if (v->len >= sizeof(((struct acpi_device *)0)->hid))
		return aml_error(a, "id String too long", at);
	memcpy(dst, v->data, v->len);
	dst[v->len] = 0;
	return 0;
}

static int crs_small(struct aml *a, struct acpi_device *d, const uint8_t *p, unsigned int n)
{
	const uint8_t *b = p + 1;
	switch ((p[0] >> 3) & 0xf) {
	case 0x4: /* IRQ: a 16-bit mask, optional flags */
		if (n != 2 && n != 3)
			return aml_error(a, "bad IRQ descriptor length", p);
		for (uint32_t irq = 0; irq < 16; irq++) {
			if (!(acpi_rd16(b) & (1u << irq)))
				continue;
			if (d->nr_irq == ACPI_MAX_RES)
				return aml_error(a, "too many interrupts", p);
			/* IRQ flags: bit 0 edge, 3 active low, 4 shared; none: edge high. */
			uint8_t f = n == 3 ? b[2] : 1;
			d->irq[d->nr_irq++] = (struct acpi_irq){
				.gsi = irq,
				.flags = (uint8_t)(1 | (f & 1) << 1 | (f >> 1 & 4) | (f >> 1 & 8)),
			};
		}
		return 0;
	case 0x8: /* I/O port range */
		if (n != 7)
			return aml_error(a, "bad I/O descriptor length", p);
		if (d->nr_io == ACPI_MAX_RES)
			return aml_error(a, "too many I/O ranges", p);
		d->io[d->nr_io].min = acpi_rd16(b + 1);
		d->io[d->nr_io].max = acpi_rd16(b + 3);
		d->io[d->nr_io++].len = b[6];
		return 0;
	case 0x9: /* fixed I/O port range: 10-bit decode */
		if (n != 3)
			return aml_error(a, "bad fixed I/O descriptor length", p);
		if (d->nr_io == ACPI_MAX_RES)
			return aml_error(a, "too many I/O ranges", p);
		d->io[d->nr_io].min = d->io[d->nr_io].max = acpi_rd16(b) & 0x3ff;
		d->io[d->nr_io++].len = b[2];
		return 0;
	}
	d->nr_other_res++;
	return 0;
}

static int crs_large(struct aml *a, struct acpi_device *d, const uint8_t *p, unsigned int n)
{
	const uint8_t *b = p + 3;
	switch (p[0] & 0x7f) {
	case 0x05: /* Memory32: info, min, max, alignment, length */
	case 0x06: /* Memory32Fixed: info, base, length */
		if (n != ((p[0] & 0x7f) == 0x05 ? 17u : 9u))
			return aml_error(a, "bad Memory32 descriptor length", p);
		if (d->nr_mem == ACPI_MAX_RES)
			return aml_error(a, "too many memory ranges", p);
		d->mem[d->nr_mem].writable = b[0] & 1;
		d->mem[d->nr_mem].base = acpi_rd32(b + 1);
		d->mem[d->nr_mem++].len = acpi_rd32(b + n - 4);
		return 0;
	case 0x09: /* Extended Interrupt: flags, count, count GSIs, source */
		if (n < 2 || b[1] == 0 || n < 2 + 4u * b[1])
			return aml_error(a, "bad Extended Interrupt descriptor length", p);
		for (unsigned int i = 0; i < b[1]; i++) {
			if (d->nr_irq == ACPI_MAX_RES)
				return aml_error(a, "too many interrupts", p);
			d->irq[d->nr_irq++] = (struct acpi_irq){
				.gsi = acpi_rd32(b + 2 + 4 * i),
				.flags = b[0],
				.extended = 1,
			};
		}
		return 0;
	}
	d->nr_other_res++;
	return 0;
}

/* A resource template: descriptors up to an End Tag, whose checksum (if
 * not zero) makes the template's bytes sum to zero. */
static int crs_decode(struct aml *a, struct acpi_device *d, const struct aml_value *v)
{
	const uint8_t *p = v->data, *end = v->data + v->len;
	if (d->has_crs)
		return aml_error(a, "second _CRS", p);
	d->has_crs = 1;
	while (p < end) {
		unsigned int n, hdr = 1;
		if (!(p[0] & 0x80)) {
			n = p[0] & 7;
		} else {
			if (end - p < 3)
				return aml_error(a, "truncated large resource descriptor", p);
			n = acpi_rd16(p + 1);
			hdr = 3;
		}
		if ((size_t)(end - p) < hdr + n)
			return aml_error(a, "resource descriptor overruns _CRS", p);
		if (p[0] == 0x79) { /* End Tag */
			uint8_t sum = 0;
			for (const uint8_t *q = v->data; q < p + 2; q++)
				sum = (uint8_t)(sum + *q);
			if (p[1] != 0 && sum != 0)
				return aml_error(a, "bad resource template checksum", p);
			return 0;
		}
		if ((hdr == 1 ? crs_small(a, d, p, n) : crs_large(a, d, p, n)) < 0)
			return -1;
		p += hdr + n;
	}
	return aml_error(a, "_CRS without an End Tag", p);
}

static int name_define(struct aml *a, const struct aml_path *path, const struct aml_value *v,
		       const uint8_t *at)
{
	if (path->n == 0)
		return 0;
	struct aml_path parent = *path;
	const char *seg = path->seg[--parent.n];
	struct acpi_device *d = device_at(a->info, &parent);
	if (!d)
		return 0;
	if (seg_is(seg, "_HID"))
		return id_set(a, d->hid, v, at);
	if (seg_is(seg, "_CID"))
		return id_set(a, d->cid, v, at);
	if (seg_is(seg, "_DDN")) {
		if (v->kind != AML_STR)
			return aml_error(a, "_DDN is not a String", at);
		return id_set(a, d->ddn, v, at);
	}
	if (seg_is(seg, "_UID") && v->kind == AML_INT) {
		d->has_uid = 1;
		d->uid = v->i;
	}
	if (seg_is(seg, "_CRS")) {
		if (v->kind != AML_BUF)
			return aml_error(a, "_CRS is not a Buffer", at);
		return crs_decode(a, d, v);
	}
	if (seg_is(seg, "ADDR") && v->kind == AML_PKG && v->i == 2 && v->nr_ints == 2) {
		d->nr_addr = 2;
		d->addr[0] = v->ints[0];
		d->addr[1] = v->ints[1];
	}
	return 0;
}

static int arg_or_int(struct aml *a, const uint8_t **pp, const uint8_t *end, int *arg, uint64_t *k)
{
	struct aml_value v;
	if (*pp < end && **pp >= AML_ARG0 && **pp <= AML_ARG6) {
		*arg = **pp - AML_ARG0;
		(*pp)++;
		return 0;
	}
	if (data_object(a, pp, end, &v, ACPI_MAX_DEPTH) < 0 || v.kind != AML_INT)
		return -1;
	*k = v.i;
	return 0;
}

/* Best effort, quietly: If (ArgN == K) { Notify (Target, Code) ... }. */
static int notify_decode(struct aml *a, const uint8_t *p, const uint8_t *end,
			 const struct aml_path *scope, struct acpi_notify *n)
{
	const uint8_t *body;
	struct aml_path target;
	struct aml_value code;
	int arg1 = -1, arg2 = -1;
	uint64_t k = 0;
	if (p >= end || *p++ != AML_IF || pkg_length(a, &p, end, &body) < 0)
		return -1;
	if (p >= body || *p++ != AML_LEQUAL || arg_or_int(a, &p, body, &arg1, &k) < 0 ||
	    arg_or_int(a, &p, body, &arg2, &k) < 0 || (arg1 < 0) == (arg2 < 0))
		return -1;
	if (p >= body || *p++ != AML_NOTIFY || name_string(a, &p, body, scope, &target) < 0 ||
	    data_object(a, &p, body, &code, ACPI_MAX_DEPTH) < 0 || code.kind != AML_INT)
		return -1;
	n->arg = (uint8_t)(arg1 >= 0 ? arg1 : arg2);
	n->value = k;
	n->code = code.i;
	path_format(&target, n->target);
	return 0;
}

static int method_define(struct aml *a, const struct aml_path *path, const uint8_t *p,
			 const uint8_t *end)
{
	if (p >= end)
		return aml_error(a, "Method without MethodFlags", p);
	struct aml_path parent = *path;
	parent.n--;
	struct acpi_device *d = device_at(a->info, &parent);
	if (!d || d->nr_methods == ACPI_MAX_METHODS)
		return 0;
	typeof(d->method[0]) *m = &d->method[d->nr_methods++];
	memcpy(m->name, path->seg[path->n - 1], 4);
	m->name[4] = 0;
	m->args = p[0] & 7;
	a->quiet = 1;
	m->has_notify = notify_decode(a, p + 1, end, &parent, &m->notify) == 0;
	a->quiet = 0;
	return 0;
}

static int term_list(struct aml *a, const uint8_t *p, const uint8_t *end,
		     const struct aml_path *scope, unsigned int depth)
{
	if (depth > ACPI_MAX_DEPTH)
		return aml_error(a, "terms nested too deep", p);
	while (p < end) {
		const uint8_t *op = p++, *body;
		struct aml_path path;
		struct aml_value v;
		switch (*op) {
		case AML_SCOPE:
			if (pkg_length(a, &p, end, &body) < 0 ||
			    name_string(a, &p, body, scope, &path) < 0 ||
			    term_list(a, p, body, &path, depth + 1) < 0)
				return -1;
			p = body;
			break;
		case AML_NAME:
			if (name_string(a, &p, end, scope, &path) < 0 ||
			    data_object(a, &p, end, &v, 0) < 0 || name_define(a, &path, &v, op) < 0)
				return -1;
			break;
		case AML_METHOD:
			if (pkg_length(a, &p, end, &body) < 0 ||
			    name_string(a, &p, body, scope, &path) < 0 || path.n == 0 ||
			    method_define(a, &path, p, body) < 0)
				return aml_error(a, "bad Method", op);
			p = body;
			break;
		case AML_IF:
		case AML_ELSE:
		case AML_WHILE:
			if (pkg_length(a, &p, end, &body) < 0)
				return -1;
			p = body;
			break;
		case AML_EXT:
			if (p >= end)
				return aml_error(a, "truncated extended opcode", op);
			switch (*p++) {
			case AML_EXT_DEVICE:
				if (pkg_length(a, &p, end, &body) < 0 ||
				    name_string(a, &p, body, scope, &path) < 0 ||
				    device_define(a, &path, op) < 0 ||
				    term_list(a, p, body, &path, depth + 1) < 0)
					return -1;
				p = body;
				break;
			case AML_EXT_PROCESSOR:
			case AML_EXT_POWER_RES:
			case AML_EXT_THERMAL_ZONE:
				if (pkg_length(a, &p, end, &body) < 0)
					return -1;
				p = body;
				break;
			default:
				return aml_error(a, "unsupported extended opcode", op);
			}
			break;
		default:
			return aml_error(a, "unsupported opcode", op);
		}
	}
	return 0;
}

int acpi_aml_parse(struct acpi_info *info, const uint8_t *aml, uint32_t len, uint32_t offset)
{
	static const struct aml_path root;
	struct aml a = { .info = info, .base = aml, .offset = offset };
	return term_list(&a, aml, aml + len, &root, 0);
}
