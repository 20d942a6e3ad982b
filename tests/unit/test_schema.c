// SPDX-License-Identifier: Apache-2.0
/* schema_check(): null for an optional field is an absent field, at every
 * depth; null for a required one is a wrong type; null never excuses an
 * unknown field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../api/schema.h"

static const struct jfield drive[] = {
	{ "drive_id", J_STRING, true, NULL, NULL },
	{ "is_read_only", J_BOOL, false, NULL, NULL },
	{ "rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ NULL, 0, false, NULL, NULL },
};

static int check(const char *text, char *err, json_t **out)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	int r = schema_check(j, drive, "drive", err, 200);
	if (out)
		*out = j;
	else
		json_decref(j);
	return r;
}

static void optional_nulls_are_dropped_at_every_depth(void **state)
{
	(void)state;
	char err[200] = "";
	json_t *j;
	assert_int_equal(check("{\"drive_id\": \"a\", \"is_read_only\": null, \"rate_limiter\": "
			       "{\"bandwidth\": null, \"ops\": {\"size\": 1, \"refill_time\": 2, "
			       "\"one_time_burst\": null}}}",
			       err, &j),
			 0);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s,
			    "{\"drive_id\":\"a\",\"rate_limiter\":{\"ops\":{\"refill_time\":2,"
			    "\"size\":1}}}");
	free(s);
	json_decref(j);
	assert_int_equal(check("{\"drive_id\": \"a\", \"rate_limiter\": null}", err, &j), 0);
	assert_null(json_object_get(j, "rate_limiter"));
	json_decref(j);
}

static void required_nulls_and_unknown_nulls_are_refused(void **state)
{
	(void)state;
	char err[200] = "";
	assert_int_equal(check("{\"drive_id\": null}", err, NULL), -1);
	assert_string_equal(err,
			    "invalid type for field `drive_id` in drive: expected a string, "
			    "not null");
	assert_int_equal(check("{\"drive_id\": \"a\", \"rate_limiter\": {\"ops\": {\"size\": 1, "
			       "\"refill_time\": null}}}",
			       err, NULL),
			 -1);
	assert_string_equal(err,
			    "invalid type for field `refill_time` in `ops`: expected a "
			    "non-negative integer, not null");
	assert_int_equal(check("{\"drive_id\": \"a\", \"bogus\": null}", err, NULL), -1);
	assert_non_null(strstr(err, "unknown field `bogus` in drive"));
	assert_int_equal(check("{\"is_read_only\": null}", err, NULL), -1);
	assert_string_equal(err, "missing field `drive_id` in drive");
	assert_int_equal(check("{\"drive_id\": \"a\", \"is_read_only\": 0}", err, NULL), -1);
	assert_non_null(strstr(err, "invalid type for field `is_read_only`"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(optional_nulls_are_dropped_at_every_depth),
		cmocka_unit_test(required_nulls_and_unknown_nulls_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
