/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small encoder for ACPI Machine Language (ACPI 6.5, chapter 20): the
 * subset a microVM's DSDT needs. Objects are appended to a growing buffer
 * in the order AML lays them out; an object that holds others (Scope,
 * Device, Method, If, Package, Buffer) is opened with one call, which
 * returns a mark, filled, and closed with aml_close(), which inserts its
 * PkgLength. Operators that take operands (Name, LEqual, Notify) are
 * followed by their operands' own calls.
 *
 *	size_t dev = aml_device(a, "VR00");
 *	aml_name(a, "_HID");
 *	aml_string(a, "LNRO0005");
 *	aml_close(a, dev);
 *
 * Errors (a bad name, a package over 2^28 bytes, no memory) latch in
 * a->err and make later calls no-ops; check it once at the end.
 */
#ifndef EMBER_AML_H
#define EMBER_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int err; /* first error, a negative errno; 0 while all is well */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* Latch @err (a negative errno) unless an earlier error is already there. */
void aml_fail(struct aml *a, int err);

/* Objects that hold others: each returns a mark for aml_close(). */
size_t aml_scope(struct aml *a, const char *path);
size_t aml_device(struct aml *a, const char *path);
/* @nargs 0-7; @serialized marks the method Serialized. */
size_t aml_method(struct aml *a, const char *name, unsigned int nargs, bool serialized);
/* If (predicate) { ... }: the predicate's calls come first. */
size_t aml_if(struct aml *a);
/* A package of @n elements; the elements' calls follow. */
size_t aml_package(struct aml *a, unsigned int n);
void aml_close(struct aml *a, size_t mark);

/* Name(@name, ...): the value's call follows. */
void aml_name(struct aml *a, const char *name);
/* Data: the shortest encoding of @v (ZeroOp, OneOp, BytePrefix, ...). */
void aml_integer(struct aml *a, uint64_t v);
/* A String of printable ASCII. */
void aml_string(struct aml *a, const char *s);
/* EisaId("PNP0501"): three upper-case letters and four hex digits. */
void aml_eisaid(struct aml *a, const char *id);
/* A Buffer holding @len bytes. */
void aml_buffer(struct aml *a, const void *data, size_t len);
/* A reference to a named object (a NameString). */
void aml_path(struct aml *a, const char *path);
/* Arg0 - Arg6. */
void aml_arg(struct aml *a, unsigned int n);
/* LEqual(x, y): both operands' calls follow. */
void aml_lequal(struct aml *a);
/* Notify(@path, @value). */
void aml_notify(struct aml *a, const char *path, uint8_t value);

/* EisaId's 32-bit encoding of @id, or 0 if @id is malformed. */
uint32_t aml_eisaid_value(const char *id);

/*
 * Resource templates (ACPI 6.5, 6.4): descriptors appended to a byte
 * buffer, which aml_res_end() terminates (End Tag) and aml_buffer() then
 * wraps as the value of a _CRS.
 */
struct aml_res {
	uint8_t buf[256];
	size_t len;
	bool overflow;
};

void aml_res_io(struct aml_res *r, uint16_t port, uint8_t len); /* IO(Decode16, fixed) */
void aml_res_irq(struct aml_res *r, uint8_t irq); /* IRQNoFlags: edge, active high */
void aml_res_mem32_fixed(struct aml_res *r, uint32_t base, uint32_t len, bool writable);
/* Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { @gsi } */
void aml_res_ext_irq(struct aml_res *r, uint32_t gsi);
void aml_res_end(struct aml_res *r);

#endif
