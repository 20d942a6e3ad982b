/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Table-driven checks of JSON request bodies and config-file sections
 * (parsed by jansson): unknown fields, missing required fields, wrong types
 * and values outside an enum each produce one message naming the field, in
 * the words Firecracker's API uses for the same mistakes.
 *
 * `null` for an optional field means the field is absent, at every depth,
 * as serde's Option<T> reads it in Firecracker: the check removes such
 * members, so handlers only ever see a field that is there with its type.
 * A null for a required field is a wrong type.
 */
#ifndef EMBER_API_SCHEMA_H
#define EMBER_API_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum jtype { J_STRING, J_UINT, J_BOOL, J_OBJECT, J_ENUM, J_STRING_LIST };

struct jfield {
	const char *name;
	enum jtype type;
	bool required;
	const char *const *values; /* J_ENUM: NULL-terminated allowed strings */
	const struct jfield *fields; /* J_OBJECT: the nested schema, NULL-terminated */
};

/*
 * Check @obj (a JSON object) against @fields, removing the optional members
 * that are null (in nested objects too). 0, or -1 with @err set.
 */
int schema_check(json_t *obj, const struct jfield *fields, const char *what, char *err,
		 size_t err_len);

/* A TokenBucket object (size, one_time_burst, refill_time), as PUT /serial takes it. */
extern const struct jfield schema_token_bucket[];
/* The rate_limiter object shared by drives and network interfaces. */
extern const struct jfield schema_rate_limiter[];

#endif
