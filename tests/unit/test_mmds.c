// SPDX-License-Identifier: Apache-2.0
/* The MMDS data store: RFC 7396's merge patch examples, the size limit,
 * and the guest's reads by path in JSON and IMDS text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mmds/mmds.h"

static json_t *j(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
	assert_non_null(v);
	return v;
}

static void put(struct mmds *m, const char *text)
{
	json_t *v = j(text);
	assert_int_equal(mmds_put(m, v), 0);
	json_decref(v);
}

static void expect(const struct mmds *m, const char *text)
{
	json_t *got = mmds_get_all(m), *want = j(text);
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
}

/* RFC 7396, Appendix A. */
static void merge_patch_rfc_examples(void **state)
{
	(void)state;
	static const char *const cases[][3] = {
		{ "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
		{ "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}" },
		{ "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
		{ "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
		  "{\"a\":{\"b\":\"d\"}}" },
		{ "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
		{ "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
		{ "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
		{ "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"" },
		{ "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
		{ "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
		{ "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mmds m = { 0 };
		put(&m, cases[i][0]);
		json_t *p = j(cases[i][1]);
		assert_int_equal(mmds_patch(&m, p), 0);
		json_decref(p);
		json_t *got = m.data, *want = j(cases[i][2]);
		assert_true(json_equal(got, want));
		json_decref(want);
		mmds_free(&m);
	}
}

static void patch_needs_put_and_limit_holds(void **state)
{
	(void)state;
	struct mmds m = { .limit = 10 };
	json_t *p = j("{\"a\":1}");
	assert_int_equal(mmds_patch(&m, p), -ENODATA);
	put(&m, "{\"a\":1}"); /* 7 bytes */
	json_t *big = j("{\"bcdefgh\":1}");
	assert_int_equal(mmds_patch(&m, big), -E2BIG);
	assert_int_equal(mmds_put(&m, big), -E2BIG);
	expect(&m, "{\"a\":1}");
	json_t *ten = j("{\"abc\":12}"); /* exactly 10 */
	assert_int_equal(mmds_put(&m, ten), 0);
	json_decref(p);
	json_decref(big);
	json_decref(ten);
	mmds_free(&m);
}

static void read(const struct mmds *m, const char *path, enum mmds_format f, int want_r,
		 const char *want)
{
	char *out = NULL;
	int r = mmds_get_value(m, path, f, &out);
	assert_int_equal(r, want_r);
	if (!r)
		assert_string_equal(out, want);
	free(out);
}

static void reads_by_path(void **state)
{
	(void)state;
	struct mmds m = { 0 };
	read(&m, "/", MMDS_JSON, 0, "null");
	read(&m, "/", MMDS_IMDS, -ENOTSUP, NULL);
	put(&m,
	    "{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"res\":\"r\",\"net\":{}},"
	    "\"n\":43,\"l\":[\"x\",\"y\"]},\"a/b\":\"slash\",\"m~n\":\"tilde\",\"\":\"empty\"}");
	read(&m, "/latest/meta-data", MMDS_IMDS, 0, "ami-id\nnet/\nres");
	read(&m, "/latest/meta-data/", MMDS_IMDS, 0, "ami-id\nnet/\nres");
	read(&m, "//latest///meta-data//", MMDS_IMDS, 0, "ami-id\nnet/\nres");
	read(&m, "/latest/meta-data/ami-id", MMDS_IMDS, 0, "ami-1");
	read(&m, "/latest/meta-data/ami-id", MMDS_JSON, 0, "\"ami-1\"");
	read(&m, "/latest/meta-data", MMDS_JSON, 0,
	     "{\"ami-id\":\"ami-1\",\"net\":{},\"res\":\"r\"}");
	read(&m, "/latest/meta-data/net", MMDS_IMDS, 0, "");
	read(&m, "/latest/n", MMDS_JSON, 0, "43");
	read(&m, "/latest/n", MMDS_IMDS, -ENOTSUP, NULL);
	read(&m, "/latest/l", MMDS_IMDS, -ENOTSUP, NULL);
	read(&m, "/latest/l/1", MMDS_IMDS, 0, "y");
	read(&m, "/latest/l/01", MMDS_JSON, -ENOENT, NULL);
	read(&m, "/latest/l/2", MMDS_JSON, -ENOENT, NULL);
	read(&m, "/latest/l/-1", MMDS_JSON, -ENOENT, NULL);
	read(&m, "/latest/l/99999999999999999999", MMDS_JSON, -ENOENT, NULL);
	read(&m, "/a~1b", MMDS_IMDS, 0, "slash");
	read(&m, "/m~0n", MMDS_IMDS, 0, "tilde");
	read(&m, "/nope", MMDS_JSON, -ENOENT, NULL);
	read(&m, "/latest/meta-data/ami-id/deeper", MMDS_JSON, -ENOENT, NULL);
	read(&m, "latest", MMDS_JSON, -ENOENT, NULL);
	mmds_free(&m);
}

static void link_local(void **state)
{
	(void)state;
	assert_true(mmds_ipv4_valid(MMDS_DEFAULT_IPV4));
	assert_true(mmds_ipv4_valid(0xa9fe0100));
	assert_true(mmds_ipv4_valid(0xa9fefeff));
	assert_false(mmds_ipv4_valid(0xa9fe00ff));
	assert_false(mmds_ipv4_valid(0xa9feff00));
	assert_false(mmds_ipv4_valid(0x0a000001));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(merge_patch_rfc_examples),
		cmocka_unit_test(patch_needs_put_and_limit_holds),
		cmocka_unit_test(reads_by_path),
		cmocka_unit_test(link_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
