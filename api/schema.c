// SPDX-License-Identifier: Apache-2.0
#include "schema.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

const struct jfield schema_token_bucket[] = {
	{ "size", J_UINT, true, NULL, NULL },
	{ "one_time_burst", J_UINT, false, NULL, NULL },
	{ "refill_time", J_UINT, true, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

const struct jfield schema_rate_limiter[] = {
	{ "bandwidth", J_OBJECT, false, NULL, schema_token_bucket },
	{ "ops", J_OBJECT, false, NULL, schema_token_bucket },
	{ NULL, 0, false, NULL, NULL },
};

static const char *const type_names[] = {
	[J_STRING] = "a string", [J_UINT] = "a non-negative integer",
	[J_BOOL] = "a boolean",	 [J_OBJECT] = "an object",
	[J_ENUM] = "a string",	 [J_STRING_LIST] = "an array of strings",
};

static void list_names(const struct jfield *fields, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (const struct jfield *f = fields; f->name && n < len; f++)
		n += (size_t)snprintf(buf + n, len - n, "%s`%s`", f == fields ? "" : ", ", f->name);
}

static bool type_ok(const json_t *v, const struct jfield *f)
{
	switch (f->type) {
	case J_STRING:
	case J_ENUM:
		return json_is_string(v);
	case J_UINT:
		return json_is_integer(v) && json_integer_value(v) >= 0;
	case J_BOOL:
		return json_is_boolean(v);
	case J_OBJECT:
		return json_is_object(v);
	case J_STRING_LIST: {
		size_t i;
		const json_t *item;
		if (!json_is_array(v))
			return false;
		json_array_foreach(v, i, item)
		{
			if (!json_is_string(item))
				return false;
		}
		return true;
	}
	}
	return false;
}

int schema_check(json_t *obj, const struct jfield *fields, const char *what, char *err,
		 size_t err_len)
{
	char names[512];
	if (!json_is_object(obj)) {
		snprintf(err, err_len, "%s must be a JSON object", what);
		return -1;
	}
	const char *key;
	json_t *v;
	void *next;
	json_object_foreach_safe(obj, next, key, v)
	{
		const struct jfield *f = fields;
		while (f->name && strcmp(f->name, key) != 0)
			f++;
		if (!f->name) {
			list_names(fields, names, sizeof(names));
			snprintf(err, err_len, "unknown field `%s` in %s, expected one of %s", key,
				 what, names);
			return -1;
		}
		if (json_is_null(v) && f->required) {
			snprintf(err, err_len,
				 "invalid type for field `%s` in %s: expected %s, not null", key,
				 what, type_names[f->type]);
			return -1;
		}
		if (json_is_null(v)) {
			json_object_del(obj, key); /* absent, as Option<T> reads null */
			continue;
		}
		if (!type_ok(v, f)) {
			snprintf(err, err_len, "invalid type for field `%s` in %s: expected %s",
				 key, what, type_names[f->type]);
			return -1;
		}
		if (f->type == J_ENUM) {
			const char *s = json_string_value(v);
			const char *const *ok = f->values;
			while (*ok && strcmp(*ok, s) != 0)
				ok++;
			if (!*ok) {
				size_t n = 0;
				names[0] = 0;
				for (ok = f->values; *ok && n < sizeof(names); ok++)
					n +=
					    (size_t)snprintf(names + n, sizeof(names) - n, "%s`%s`",
							     ok == f->values ? "" : ", ", *ok);
				snprintf(
				    err, err_len,
				    "unknown variant `%s` for field `%s` in %s, expected one of %s",
				    s, key, what, names);
				return -1;
			}
		}
		if (f->type == J_OBJECT && f->fields) {
			char sub[96];
			snprintf(sub, sizeof(sub), "`%s`", key);
			if (schema_check(v, f->fields, sub, err, err_len) < 0)
				return -1;
		}
	}
	for (const struct jfield *f = fields; f->name; f++) {
		if (f->required && !json_object_get(obj, f->name)) {
			snprintf(err, err_len, "missing field `%s` in %s", f->name, what);
			return -1;
		}
	}
	return 0;
}
