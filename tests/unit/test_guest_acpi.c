// SPDX-License-Identifier: Apache-2.0
/*
 * The guest kit's AML parser (guest/kit/acpi_aml.c), built for the host:
 * ember's own DSDT read back, hand-built encodings the encoder never
 * emits, malformed input, and every truncation and many byte mutations of
 * a real DSDT placed right before an inaccessible page, so a read past the
 * end faults instead of passing unnoticed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "acpi/acpi.h"
#include "arch/x86_64/layout.h"

/* The kit's reader itself; acpi_read() is not called (it reads guest
 * physical addresses), so its boot-structure hooks are stubs. */
#include "../../guest/kit/acpi.c"
#include "../../guest/kit/acpi_aml.c"

uint64_t kit_start_info(void)
{
	return 0;
}

uint64_t kit_zero_page(void)
{
	return 0;
}

static struct acpi_info info;

/* @len bytes at the very end of a page whose successor is PROT_NONE. */
static uint8_t *guarded(const void *src, size_t len)
{
	static uint8_t *area;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), span = 4 * page;
	if (!area) {
		area = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
		assert_true(area != MAP_FAILED);
		assert_int_equal(mprotect(area + span, page, PROT_NONE), 0);
	}
	assert_true(len <= span);
	memcpy(area + span - len, src, len);
	return area + span - len;
}

static int parse(const uint8_t *aml, size_t len)
{
	memset(&info, 0, sizeof(info));
	return acpi_aml_parse(&info, guarded(aml, len), (uint32_t)len, 36);
}

/* ember's DSDT for @nr virtio devices: its AML body (after the header). */
static size_t ember_dsdt(unsigned int nr, uint8_t *out, size_t max)
{
	static uint8_t tables[ACPI_TABLES_END - ACPI_TABLES_START];
	struct fdt_mmio_device devs[VIRTIO_MAX_DEVICES];
	for (unsigned int i = 0; i < nr; i++)
		devs[i] = (struct fdt_mmio_device){ .base = VIRTIO_MMIO_BASE + 0x1000ull * i,
						    .size = 0x1000,
						    .irq = VIRTIO_IRQ_BASE + i };
	struct acpi_params p = { .nr_vcpus = 2, .devices = devs, .nr_devices = nr };
	struct acpi_layout l;
	assert_int_equal(acpi_build(tables, sizeof(tables), ACPI_TABLES_START, &p, &l), 0);
	const uint8_t *dsdt = tables + (l.dsdt - ACPI_TABLES_START);
	uint32_t len = acpi_rd32(dsdt + 4);
	assert_true(len > 36 && len - 36 <= max);
	assert_memory_equal(dsdt, "DSDT", 4);
	memcpy(out, dsdt + 36, len - 36);
	return len - 36;
}

static const struct acpi_device *dev(const char *path)
{
	for (unsigned int i = 0; i < info.nr_devices; i++)
		if (strcmp(info.devices[i].path, path) == 0)
			return &info.devices[i];
	fail_msg("no device %s", path);
	return NULL;
}

static void embers_dsdt_reads_back(void **state)
{
	(void)state;
	uint8_t aml[8192];
	for (unsigned int nr = 0; nr <= VIRTIO_MAX_DEVICES; nr += 6) {
		size_t len = ember_dsdt(nr, aml, sizeof(aml));
		assert_int_equal(parse(aml, len), 0);
		assert_int_equal(info.nr_devices, 4 + nr);
		const struct acpi_device *d = dev("\\_SB_.COM1");
		assert_string_equal(d->hid, "PNP0501");
		assert_int_equal(d->nr_io, 1);
		assert_int_equal(d->io[0].min, 0x3f8);
		assert_int_equal(d->io[0].len, 8);
		assert_int_equal(d->nr_irq, 1);
		assert_int_equal(d->irq[0].gsi, 4);
		d = dev("\\_SB_.PS2_");
		assert_string_equal(d->hid, "PNP0303");
		assert_int_equal(d->nr_io, 2);
		for (unsigned int i = 0; i < nr; i++) {
			char path[16];
			snprintf(path, sizeof(path), "\\_SB_.VR%02u", i);
			d = dev(path);
			assert_string_equal(d->hid, "LNRO0005");
			assert_true(d->has_uid);
			assert_int_equal(d->uid, i);
			assert_int_equal(d->nr_mem, 1);
			assert_int_equal(d->mem[0].base, VIRTIO_MMIO_BASE + 0x1000ull * i);
			assert_int_equal(d->mem[0].len, 0x1000);
			assert_int_equal(d->nr_irq, 1);
			assert_int_equal(d->irq[0].gsi, VIRTIO_IRQ_BASE + i);
			assert_int_equal(d->irq[0].flags, 0x3);
			assert_true(d->irq[0].extended);
		}
		d = dev("\\_SB_.VGEN");
		assert_string_equal(d->cid, "VM_Gen_Counter");
		assert_int_equal(d->nr_addr, 2);
		assert_int_equal(d->addr[0], VMGENID_ADDR);
		d = dev("\\_SB_.GED_");
		assert_int_equal(d->irq[0].gsi, GED_IRQ);
		assert_int_equal(d->nr_methods, 1);
		assert_string_equal(d->method[0].name, "_EVT");
		assert_true(d->method[0].has_notify);
		assert_int_equal(d->method[0].notify.value, GED_IRQ);
		assert_int_equal(d->method[0].notify.code, 0x80);
		assert_string_equal(d->method[0].notify.target, "\\_SB_.VGEN");
	}
}

/* A hand-built AML stream: bytes, and PkgLengths of a chosen width. */
struct amlbuf {
	uint8_t b[2048];
	size_t n;
};

static void put(struct amlbuf *a, const void *p, size_t len)
{
	assert_true(a->n + len <= sizeof(a->b));
	memcpy(a->b + a->n, p, len);
	a->n += len;
}

#define PUT(a, ...)                                                                                \
	do {                                                                                       \
		static const uint8_t b_[] = { __VA_ARGS__ };                                       \
		put(a, b_, sizeof(b_));                                                            \
	} while (0)
#define PUTS(a, s) put(a, s, sizeof(s) - 1)

/* Insert at @at a PkgLength @width bytes wide covering everything after it. */
static void pkg(struct amlbuf *a, size_t at, unsigned int width)
{
	size_t body = a->n - at;
	uint32_t len = (uint32_t)(body + width);
	memmove(a->b + at + width, a->b + at, body);
	if (width == 1) {
		assert_true(len < 64);
		a->b[at] = (uint8_t)len;
	} else {
		a->b[at] = (uint8_t)((width - 1) << 6 | (len & 0xf));
		for (unsigned int i = 1; i < width; i++)
			a->b[at + i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
	}
	a->n += width;
}

static void encodings_the_encoder_never_emits(void **state)
{
	(void)state;
	struct amlbuf a = { .n = 0 };
	/* Device (\_SB_.DEV1) at the root, a 4-byte PkgLength. */
	PUT(&a, 0x5b, 0x82);
	size_t dev1 = a.n;
	PUTS(&a, "\\\x2e_SB_DEV1");
	PUTS(&a, "\x08_HID\x0c\x41\xd0\x05\x01"); /* EisaId ("PNP0501") */
	PUTS(&a, "\x08_UID\x0e\x88\x77\x66\x55\x44\x33\x22\x11");
	/* Name (^DEV1._DDN, "x"): a parent prefix and a dual name. */
	PUTS(&a,
	     "\x08^\x2e"
	     "DEV1_DDN\x0d"
	     "dev one\0");
	/* Name (_CRS, Buffer (0x20) {...}): BufferSize past the initializer. */
	PUTS(&a, "\x08_CRS\x11");
	size_t crs = a.n;
	PUT(&a, 0x0a, 0x20, /* BufferSize 32, 30 bytes follow */
	    0x4b, 0x60, 0x00, 0x04, /* fixed IO 0x60, 4 ports */
	    0x23, 0x00, 0x02, 0x19, /* IRQ {9}: edge, active low, shared */
	    0x85, 0x11, 0x00, 0x00, /* Memory32, read-only: */
	    0x00, 0x00, 0x0f, 0x00, /* minimum 0xf0000 */
	    0xff, 0xff, 0x0f, 0x00, /* maximum 0xfffff */
	    0x00, 0x10, 0x00, 0x00, /* alignment 0x1000 */
	    0x00, 0x00, 0x01, 0x00, /* length 0x10000 */
	    0x79, 0x00);
	pkg(&a, crs, 2);
	/* Device (SUB0) nested in DEV1, Name (ADDR, Package (3) {1, 2}) in it. */
	PUT(&a, 0x5b, 0x82);
	size_t sub = a.n;
	PUTS(&a,
	     "SUB0\x08"
	     "ADDR\x12");
	size_t pk = a.n;
	PUT(&a, 0x03, 0x01, 0x0a, 0x02);
	pkg(&a, pk, 1);
	pkg(&a, sub, 3);
	pkg(&a, dev1, 4);
	/* Name (\_SB_.DEV1.SUB0._HID, "SUB") through a MultiNamePrefix. */
	PUTS(&a, "\x08\\\x2f\x04_SB_DEV1SUB0_HID\x0dSUB\0");
	/* Objects at scope level that the parser steps over: If, Processor. */
	PUT(&a, 0xa0, 0x03, 0x01, 0xa3, 0x5b, 0x83, 0x01);

	assert_int_equal(parse(a.b, a.n), 0);
	assert_int_equal(info.nr_devices, 2);
	const struct acpi_device *d = dev("\\_SB_.DEV1");
	assert_string_equal(d->hid, "PNP0501");
	assert_int_equal(d->uid, 0x1122334455667788ull);
	assert_string_equal(d->ddn, "dev one");
	assert_int_equal(d->nr_io, 1);
	assert_int_equal(d->io[0].min, 0x60);
	assert_int_equal(d->io[0].len, 4);
	assert_int_equal(d->nr_irq, 1);
	assert_int_equal(d->irq[0].gsi, 9);
	assert_int_equal(d->irq[0].flags, 0x1 | 0x2 | 0x4 | 0x8); /* edge, low, shared */
	assert_false(d->irq[0].extended);
	assert_int_equal(d->nr_mem, 1);
	assert_int_equal(d->mem[0].base, 0xf0000);
	assert_int_equal(d->mem[0].len, 0x10000);
	assert_false(d->mem[0].writable);
	d = dev("\\_SB_.DEV1.SUB0");
	assert_string_equal(d->hid, "SUB");
	assert_int_equal(d->nr_addr, 0); /* Package (3): not an address pair */
}

struct bad_case {
	const char *name;
	const uint8_t *aml;
	size_t len;
	const char *error;
	uint64_t at;
};

#define BAD(n, e, at_, ...)                                                                        \
	{                                                                                          \
		.name = n, .aml = (const uint8_t[]){ __VA_ARGS__ },                                \
		.len = sizeof((uint8_t[]){ __VA_ARGS__ }), .error = e, .at = 36 + (at_)            \
	}

static void malformed_aml_is_an_error_at_its_offset(void **state)
{
	(void)state;
	const struct bad_case cases[] = {
		BAD("PkgLength past its parent", "PkgLength outside its parent", 1, 0x10, 0x3f, '_',
		    'S', 'B', '_'),
		BAD("PkgLength reserved bits", "PkgLength reserved bits set", 1, 0x10, 0x70, 0x00,
		    '_', 'S', 'B', '_'),
		BAD("lower-case NameSeg", "bad NameSeg", 1, 0x08, 'a', 'B', 'C', 'D', 0x00),
		BAD("digit leading a NameSeg", "bad NameSeg", 1, 0x08, '1', 'B', 'C', 'D', 0x00),
		BAD("^ above the root", "^ above the root", 1, 0x08, '^', 'A', 'B', 'C', 'D', 0x00),
		BAD("StoreOp at scope level", "unsupported opcode", 0, 0x70, 0x00, 0x60),
		BAD("unknown extended opcode", "unsupported extended opcode", 0, 0x5b, 0x80, 'R',
		    'E', 'G', '0', 0x00, 0x00, 0x01),
		BAD("unterminated String", "unterminated String", 6, 0x08, 'A', 'B', 'C', 'D', 0x0d,
		    'x', 'y'),
		BAD("truncated DWord", "truncated integer", 6, 0x08, 'A', 'B', 'C', 'D', 0x0c, 1,
		    2),
		BAD("Package with too many elements", "more Package elements than NumElements", 9,
		    0x08, 'A', 'B', 'C', 'D', 0x12, 0x05, 0x01, 0x01, 0x01, 0x01),
		BAD("Buffer initializer longer than BufferSize",
		    "Buffer initializer longer than BufferSize", 9, 0x08, 'A', 'B', 'C', 'D', 0x11,
		    0x05, 0x0a, 0x01, 0x79, 0x00),
		BAD("_CRS without an End Tag", "_CRS without an End Tag", 24, 0x5b, 0x82, 0x16, 'D',
		    'E', 'V', '0', 0x08, '_', 'C', 'R', 'S', 0x11, 0x0b, 0x0a, 0x08, 0x47, 0x01,
		    0x60, 0x00, 0x60, 0x00, 0x00, 0x01),
		BAD("bad End Tag checksum", "bad resource template checksum", 16, 0x5b, 0x82, 0x10,
		    'D', 'E', 'V', '0', 0x08, '_', 'C', 'R', 'S', 0x11, 0x05, 0x0a, 0x02, 0x79,
		    0x01),
		BAD("descriptor past the buffer", "resource descriptor overruns _CRS", 16, 0x5b,
		    0x82, 0x11, 'D', 'E', 'V', '0', 0x08, '_', 'C', 'R', 'S', 0x11, 0x06, 0x0a,
		    0x03, 0x86, 0x09, 0x00),
		BAD("_CRS that is no Buffer", "_CRS is not a Buffer", 7, 0x5b, 0x82, 0x0b, 'D', 'E',
		    'V', '0', 0x08, '_', 'C', 'R', 'S', 0x00),
		BAD("Device defined twice", "Device defined twice", 7, 0x5b, 0x82, 0x05, 'D', 'E',
		    'V', '0', 0x5b, 0x82, 0x05, 'D', 'E', 'V', '0'),
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		if (parse(c->aml, c->len) != -1 || !info.error || strcmp(info.error, c->error) ||
		    info.error_at != c->at)
			fail_msg("%s: got '%s' at %llu, want '%s' at %llu", c->name,
				 info.error ? info.error : "(none)",
				 (unsigned long long)info.error_at, c->error,
				 (unsigned long long)c->at);
	}
}

static void nesting_and_counts_are_bounded(void **state)
{
	(void)state;
	struct amlbuf a = { .n = 0 };
	size_t at[ACPI_MAX_DEPTH + 2];
	for (int i = 0; i < ACPI_MAX_DEPTH + 2; i++) {
		PUT(&a, 0x10);
		at[i] = a.n;
		PUTS(&a, "S___");
	}
	for (int i = ACPI_MAX_DEPTH + 1; i >= 0; i--)
		pkg(&a, at[i], 2);
	assert_int_equal(parse(a.b, a.n), -1);
	assert_string_equal(info.error, "name path too deep");

	a.n = 0;
	for (int i = 0; i <= ACPI_MAX_DEVICES; i++) {
		char dev[8] = {
			0x5b, 0x82, 0x05, 'D', 'V', (char)('A' + i / 26), (char)('A' + i % 26)
		};
		put(&a, dev, 7);
	}
	assert_int_equal(parse(a.b, a.n), -1);
	assert_string_equal(info.error, "too many devices");
	assert_int_equal(info.nr_devices, ACPI_MAX_DEVICES);
}

static void every_truncation_stays_inside_the_table(void **state)
{
	(void)state;
	uint8_t aml[8192];
	size_t len = ember_dsdt(3, aml, sizeof(aml));
	unsigned int ok = 0;
	for (size_t cut = 0; cut < len; cut++) {
		int r = parse(aml, cut);
		assert_true(r == 0 || r == -1);
		if (r == 0)
			ok++;
		else
			assert_true(info.error_at <= 36 + cut);
	}
	/* Only a cut between top-level terms parses: here, none but 0. */
	assert_int_equal(ok, 1);
}

static void byte_mutations_stay_inside_the_table(void **state)
{
	(void)state;
	static const uint8_t values[] = { 0x00, 0x01, 0x0a, 0x11, 0x12, 0x2e, 0x2f, 0x3f, 0x40,
					  0x5b, 0x5c, 0x5e, 0x7f, 0x80, 0xbf, 0xc0, 0xff };
	uint8_t aml[8192], bad[8192];
	size_t len = ember_dsdt(VIRTIO_MAX_DEVICES, aml, sizeof(aml));
	unsigned int failed = 0, runs = 0;
	for (size_t pos = 0; pos < len; pos++) {
		for (size_t v = 0; v <= sizeof(values); v++) {
			memcpy(bad, aml, len);
			bad[pos] = v < sizeof(values) ? values[v] : (uint8_t)(aml[pos] ^ 0x01);
			int r = parse(bad, len);
			assert_true(r == 0 || r == -1);
			assert_true(info.nr_devices <= ACPI_MAX_DEVICES);
			failed += r < 0;
			runs++;
		}
	}
	assert_true(failed > 0 && failed < runs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(embers_dsdt_reads_back),
		cmocka_unit_test(encodings_the_encoder_never_emits),
		cmocka_unit_test(malformed_aml_is_an_error_at_its_offset),
		cmocka_unit_test(nesting_and_counts_are_bounded),
		cmocka_unit_test(every_truncation_stays_inside_the_table),
		cmocka_unit_test(byte_mutations_stay_inside_the_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
