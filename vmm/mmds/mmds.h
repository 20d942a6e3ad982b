/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MMDS, the microVM metadata service: Firecracker's data store (a JSON
 * document the host sets through PUT/PATCH /mmds) and the answers a guest
 * gets when it reads it over HTTP (docs/mmds/mmds-user-guide.md).
 *
 * The store is plain jansson data owned by the VMM thread; every function
 * here runs on the VMM thread.
 */
#ifndef EMBER_MMDS_H
#define EMBER_MMDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Firecracker's default data store limit, its --http-api-max-payload-size
 * default: the store's compact JSON may be at most this many bytes. */
#define MMDS_DEFAULT_LIMIT 51200

/* The default address of the guest-facing service, 169.254.169.254. */
#define MMDS_DEFAULT_IPV4 0xa9fea9feu

enum mmds_version { MMDS_V1, MMDS_V2 };

/* How a guest asked to see a value (its Accept header, imds_compat). */
enum mmds_format { MMDS_JSON, MMDS_IMDS };

struct mmds {
	/* The document; NULL until a PUT /mmds or --metadata filled it
	 * (Firecracker's "not initialized": PATCH is refused until then). */
	json_t *data;
	/* The store exists: a /mmds request before boot, PUT /mmds/config or
	 * --metadata made it. After boot, Firecracker refuses /mmds requests
	 * on a VM that never had one. */
	bool created;
	size_t limit; /* largest compact JSON, bytes; 0: MMDS_DEFAULT_LIMIT */
};

/* Replace the document with @data (a new reference is taken). 0, or
 * -E2BIG when its compact JSON is larger than the limit (nothing changes). */
int mmds_put(struct mmds *m, json_t *data) __attribute__((warn_unused_result));
/* Apply @patch as a JSON merge patch (RFC 7396). 0, -ENODATA when the store
 * was never PUT, -E2BIG when the result would be over the limit (nothing
 * changes then), -ENOMEM. */
int mmds_patch(struct mmds *m, const json_t *patch) __attribute__((warn_unused_result));
/* The whole document as GET /mmds shows it ({} when never PUT); a new
 * reference. */
json_t *mmds_get_all(const struct mmds *m);
/*
 * The value at @path, a guest's request path ("/latest/meta-data/"), as
 * Firecracker answers it: runs of '/' count as one, one trailing '/' is
 * ignored, the rest is a JSON pointer (RFC 6901). In @fmt: MMDS_JSON is the
 * value's compact JSON, MMDS_IMDS an object's keys one a line ("key/" for
 * an object) or a string's text. On success *@out is a new string for
 * free(). -ENOENT: no such value; -ENOTSUP: IMDS of a number, boolean,
 * array or null; -ENOMEM.
 */
int mmds_get_value(const struct mmds *m, const char *path, enum mmds_format fmt, char **out)
    __attribute__((warn_unused_result));
/* Drop the document (a test or fuzz target reusing a struct mmds). */
void mmds_free(struct mmds *m);

/* 169.254.1.0 to 169.254.254.255, the link-local range RFC 3927 lets a host
 * use (Firecracker's rule for ipv4_address); @addr in host byte order. */
bool mmds_ipv4_valid(uint32_t addr);

#endif
