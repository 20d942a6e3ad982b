// SPDX-License-Identifier: Apache-2.0
/*
 * The MMDS data store: PUT replaces, PATCH merges (RFC 7396), both bounded
 * by the size of the document's compact JSON; and the guest's reads, by
 * JSON pointer, in JSON or IMDS text. Keys come out sorted, as Firecracker
 * (serde_json's ordered map) shows them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mmds/mmds.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)

static size_t limit_of(const struct mmds *m)
{
	return m->limit ? m->limit : MMDS_DEFAULT_LIMIT;
}

/* json_dumpb() with no buffer says how long the text would be. */
static bool fits(const struct mmds *m, const json_t *v)
{
	return json_dumpb(v, NULL, 0, DUMP_FLAGS) <= limit_of(m);
}

int mmds_put(struct mmds *m, json_t *data)
{
	if (!fits(m, data))
		return -E2BIG;
	json_incref(data);
	json_decref(m->data);
	m->data = data;
	m->created = true;
	return 0;
}

/* RFC 7396 MergePatch(target, patch); consumes @target (may be NULL),
 * returns the result (a new reference) or NULL when out of memory. */
static json_t *merge(json_t *target, const json_t *patch)
{
	if (!json_is_object(patch)) {
		json_decref(target);
		return json_deep_copy(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = json_object();
		if (!target)
			return NULL;
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)(uintptr_t)patch, key, v)
	{
		if (json_is_null(v)) {
			json_object_del(target, key);
			continue;
		}
		json_t *old = json_incref(json_object_get(target, key));
		json_t *merged = merge(old, v);
		if (!merged || json_object_set_new(target, key, merged) < 0) {
			json_decref(target);
			return NULL;
		}
	}
	return target;
}

int mmds_patch(struct mmds *m, const json_t *patch)
{
	if (!m->data)
		return -ENODATA;
	json_t *next = merge(json_deep_copy(m->data), patch);
	if (!next)
		return -ENOMEM;
	if (!fits(m, next)) {
		json_decref(next);
		return -E2BIG;
	}
	json_decref(m->data);
	m->data = next;
	return 0;
}

json_t *mmds_get_all(const struct mmds *m)
{
	if (!m->data || json_is_null(m->data))
		return json_object();
	/* A copy whose objects hold their keys in sorted order. */
	char *text = json_dumps(m->data, DUMP_FLAGS);
	json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	free(text);
	return v;
}

/* An array index as RFC 6901 spells it: digits, no leading zero. */
static bool array_index(const char *tok, size_t len, size_t *idx)
{
	if (!len || len > 9 || (tok[0] == '0' && len > 1))
		return false;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return false;
		n = n * 10 + (size_t)(tok[i] - '0');
	}
	*idx = n;
	return true;
}

/* Follow @ptr (a JSON pointer of @len bytes) from @v. NULL when absent or
 * malformed; -ENOMEM is not possible (tokens are unescaped in place). */
static json_t *pointer(json_t *v, const char *ptr, size_t len)
{
	if (!len)
		return v;
	if (ptr[0] != '/')
		return NULL;
	char tok[len + 1];
	size_t i = 1;
	while (v) {
		size_t n = 0;
		for (; i < len && ptr[i] != '/'; i++) {
			char ch = ptr[i];
			if (ch == '~' && i + 1 < len && (ptr[i + 1] == '0' || ptr[i + 1] == '1'))
				ch = ptr[++i] == '0' ? '~' : '/';
			tok[n++] = ch;
		}
		tok[n] = 0;
		size_t idx;
		if (json_is_object(v))
			v = strlen(tok) == n ? json_object_get(v, tok) : NULL;
		else if (json_is_array(v) && array_index(tok, n, &idx))
			v = json_array_get(v, idx);
		else
			v = NULL;
		if (i >= len)
			break;
		i++; /* the '/' */
	}
	return v;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An object's keys, sorted, one a line, "key/" for an object. */
static char *imds_keys(const json_t *obj)
{
	size_t n = json_object_size(obj), len = 1;
	const char **keys = calloc(n ? n : 1, sizeof(*keys));
	if (!keys)
		return NULL;
	const char *key;
	json_t *v;
	size_t k = 0;
	json_object_foreach((json_t *)(uintptr_t)obj, key, v)
	{
		keys[k++] = key;
		len += strlen(key) + 2;
	}
	qsort(keys, n, sizeof(*keys), key_cmp);
	char *out = malloc(len), *p = out;
	for (size_t i = 0; out && i < n; i++) {
		size_t kl = strlen(keys[i]);
		if (i)
			*p++ = '\n';
		memcpy(p, keys[i], kl);
		p += kl;
		if (json_is_object(json_object_get(obj, keys[i])))
			*p++ = '/';
	}
	if (out)
		*p = 0;
	free(keys);
	return out;
}

int mmds_get_value(const struct mmds *m, const char *path, enum mmds_format fmt, char **out)
{
	/* Collapse runs of '/', then drop one trailing '/'. */
	size_t plen = strlen(path);
	char clean[plen + 1];
	size_t n = 0;
	for (size_t i = 0; i < plen; i++)
		if (path[i] != '/' || !n || clean[n - 1] != '/')
			clean[n++] = path[i];
	if (n && clean[n - 1] == '/')
		n--;
	clean[n] = 0;
	json_t *root = m->data ? m->data : json_null();
	json_t *v = pointer(root, clean, n);
	if (!v)
		return -ENOENT;
	if (fmt == MMDS_JSON)
		*out = json_dumps(v, DUMP_FLAGS);
	else if (json_is_object(v))
		*out = imds_keys(v);
	else if (json_is_string(v))
		*out = strndup(json_string_value(v), json_string_length(v));
	else
		return -ENOTSUP;
	return *out ? 0 : -ENOMEM;
}

void mmds_free(struct mmds *m)
{
	json_decref(m->data);
	m->data = NULL;
	m->created = false;
}

bool mmds_ipv4_valid(uint32_t addr)
{
	uint32_t third = (addr >> 8) & 0xff;
	return (addr >> 16) == 0xa9fe && third != 0 && third != 255;
}
