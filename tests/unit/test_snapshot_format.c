// SPDX-License-Identifier: Apache-2.0
/*
 * The snapshot state file format: a round trip, and every way a file can be
 * damaged (truncated at every length, any byte flipped, sections that lie
 * about their length under a valid CRC, random bytes) is refused cleanly.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <cmocka.h>

#include "snapshot/format.h"

static void build(struct snap_writer *w)
{
	static const char cfg[] = "{\"machine-config\":{}}";
	uint64_t vcpu[40];
	for (unsigned int i = 0; i < 40; i++)
		vcpu[i] = i * 0x0101010101010101ull;
	snap_writer_init(w);
	snap_writer_add(w, SNAP_CONFIG, 0, cfg, sizeof(cfg) - 1);
	snap_writer_add(w, SNAP_VCPU, 0, vcpu, sizeof(vcpu));
	snap_writer_add(w, SNAP_VCPU, 1, vcpu, 13); /* odd length: padded */
	assert_int_equal(snap_writer_finish(w), 0);
}

/* Recompute the trailer CRC after a deliberate edit. */
static void reseal(uint8_t *b, size_t len)
{
	uint32_t crc = (uint32_t)crc32(0, b, (uInt)(len - 8));
	memcpy(b + len - 8, &crc, 4);
}

static void round_trip(void **state)
{
	(void)state;
	struct snap_writer w;
	build(&w);
	struct snap_reader r;
	const char *why = "";
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), 0);
	assert_int_equal(r.count, 3);
	const struct snap_section *s = snap_find(&r, SNAP_VCPU, 1);
	assert_non_null(s);
	assert_int_equal(s->len, 13);
	assert_null(snap_find(&r, SNAP_VCPU, 2));
	uint64_t v[40];
	assert_int_equal(snap_get(&r, SNAP_VCPU, 0, v, sizeof(v)), 0);
	assert_int_equal(v[39], 39 * 0x0101010101010101ull);
	/* The caller's expected size is checked too. */
	assert_int_equal(snap_get(&r, SNAP_VCPU, 0, v, sizeof(v) - 8), -EINVAL);
	snap_reader_free(&r);
	snap_writer_free(&w);
}

static void every_truncation_is_refused(void **state)
{
	(void)state;
	struct snap_writer w;
	build(&w);
	for (size_t len = 0; len < w.len; len++) {
		struct snap_reader r;
		const char *why = "";
		assert_true(snap_reader_init(&r, w.buf, len, &why) < 0);
	}
	snap_writer_free(&w);
}

static void every_flipped_byte_is_refused(void **state)
{
	(void)state;
	struct snap_writer w;
	build(&w);
	for (size_t i = 0; i < w.len; i++) {
		w.buf[i] ^= 0x40;
		struct snap_reader r;
		const char *why = "";
		int e = snap_reader_init(&r, w.buf, w.len, &why);
		assert_true(e < 0);
		w.buf[i] ^= 0x40;
	}
	snap_writer_free(&w);
}

static void header_errors_say_what(void **state)
{
	(void)state;
	struct snap_writer w;
	build(&w);
	struct snap_reader r;
	const char *why = "";
	uint32_t v = 0xaa64;
	memcpy(w.buf + 8, &v, 4);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), -ENOEXEC);
	v = SNAP_ARCH_X86_64;
	memcpy(w.buf + 8, &v, 4);
	v = SNAP_VERSION + 1;
	memcpy(w.buf + 12, &v, 4);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), -EPROTO);
	v = 0;
	memcpy(w.buf + 12, &v, 4);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), -EPROTO);
	/* Version 1 reads, but not with a section only version 2 writes. */
	v = 1;
	memcpy(w.buf + 12, &v, 4);
	reseal(w.buf, w.len);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), 0);
	assert_int_equal(r.version, 1);
	snap_reader_free(&r);
	snap_writer_free(&w);
	build(&w);
	const struct snap_clock clk = { 0 };
	w.len -= 8; /* reopen: drop the trailer */
	snap_writer_add(&w, SNAP_CLOCK, 0, &clk, sizeof(clk));
	assert_int_equal(snap_writer_finish(&w), 0);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), 0);
	assert_int_equal(r.version, SNAP_VERSION);
	snap_reader_free(&r);
	memcpy(w.buf + 12, &v, 4);
	reseal(w.buf, w.len);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), -EINVAL);
	assert_non_null(strstr(why, "only version 2 has"));
	snap_writer_free(&w);
	/* Nor version 2 with a section only version 3 writes. */
	build(&w);
	const uint8_t balloon[40] = { 0 };
	w.len -= 8;
	snap_writer_add(&w, SNAP_BALLOON, 0, balloon, sizeof(balloon));
	assert_int_equal(snap_writer_finish(&w), 0);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), 0);
	snap_reader_free(&r);
	v = 2;
	memcpy(w.buf + 12, &v, 4);
	reseal(w.buf, w.len);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len, &why), -EINVAL);
	assert_non_null(strstr(why, "only version 3 has"));
	v = SNAP_VERSION;
	memcpy(w.buf + 12, &v, 4);
	assert_int_equal(snap_reader_init(&r, w.buf, SNAP_MAX_FILE + 1, &why), -EFBIG);
	snap_writer_free(&w);
}

/* Valid CRC, lying structure: the reader must check more than the CRC. */
static void lying_sections_are_refused(void **state)
{
	(void)state;
	struct snap_writer w;
	build(&w);
	struct snap_reader r;
	const char *why = "";
	uint8_t *b = malloc(w.len);
	/* First section's length far past the end. */
	memcpy(b, w.buf, w.len);
	uint32_t v = 0xfffffff0u;
	memcpy(b + 24 + 8, &v, 4);
	reseal(b, w.len);
	assert_int_equal(snap_reader_init(&r, b, w.len, &why), -EINVAL);
	print_message("  huge section length: %s\n", why);
	/* More sections claimed than present. */
	memcpy(b, w.buf, w.len);
	v = 4;
	memcpy(b + 16, &v, 4);
	reseal(b, w.len);
	assert_int_equal(snap_reader_init(&r, b, w.len, &why), -EINVAL);
	print_message("  count too high: %s\n", why);
	/* Fewer: bytes left over. */
	memcpy(b, w.buf, w.len);
	v = 2;
	memcpy(b + 16, &v, 4);
	reseal(b, w.len);
	assert_int_equal(snap_reader_init(&r, b, w.len, &why), -EINVAL);
	print_message("  count too low: %s\n", why);
	/* An absurd count. */
	memcpy(b, w.buf, w.len);
	v = 0x7fffffff;
	memcpy(b + 16, &v, 4);
	reseal(b, w.len);
	assert_int_equal(snap_reader_init(&r, b, w.len, &why), -EINVAL);
	free(b);
	snap_writer_free(&w);
}

static void random_bodies_under_a_valid_crc(void **state)
{
	(void)state;
	struct snap_writer w;
	build(&w);
	uint8_t *b = malloc(w.len);
	srand(1);
	unsigned int accepted = 0;
	for (int round = 0; round < 20000; round++) {
		memcpy(b, w.buf, 24);
		for (size_t i = 24; i < w.len - 8; i++)
			b[i] = (uint8_t)rand();
		uint32_t count = (uint32_t)(rand() % 5);
		memcpy(b + 16, &count, 4);
		reseal(b, w.len);
		struct snap_reader r;
		const char *why = "";
		if (snap_reader_init(&r, b, w.len, &why) == 0) {
			/* Whatever was accepted lies wholly inside the buffer. */
			for (uint32_t k = 0; k < r.count; k++)
				assert_true(r.sections[k].data + r.sections[k].len <=
					    b + w.len - 8);
			accepted++;
			snap_reader_free(&r);
		}
	}
	print_message("  %u of 20000 random bodies parsed (all in bounds)\n", accepted);
	free(b);
	snap_writer_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(every_truncation_is_refused),
		cmocka_unit_test(every_flipped_byte_is_refused),
		cmocka_unit_test(header_errors_say_what),
		cmocka_unit_test(lying_sections_are_refused),
		cmocka_unit_test(random_bodies_under_a_valid_crc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
