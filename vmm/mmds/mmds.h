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

/* Session tokens (PUT /latest/api/token): their lifetime bounds, seconds. */
#define MMDS_TOKEN_TTL_MIN 1
#define MMDS_TOKEN_TTL_MAX 21600
/* Live tokens kept; a new one past this replaces the one expiring first. */
#define MMDS_MAX_TOKENS 64
#define MMDS_TOKEN_LEN 64 /* 32 random bytes in hex, without the NUL */

struct mmds_token {
	char text[MMDS_TOKEN_LEN + 1];
	uint64_t expires_ns; /* CLOCK_MONOTONIC; 0: free slot */
};

struct mmds {
	/* The document; NULL until a PUT /mmds or --metadata filled it
	 * (Firecracker's "not initialized": PATCH is refused until then). */
	json_t *data;
	/* The store exists: a /mmds request before boot, PUT /mmds/config or
	 * --metadata made it. After boot, Firecracker refuses /mmds requests
	 * on a VM that never had one. */
	bool created;
	size_t limit; /* largest compact JSON, bytes; 0: MMDS_DEFAULT_LIMIT */
	/* How the guest-facing service answers (PUT /mmds/config). */
	enum mmds_version version;
	bool imds_compat;
	struct mmds_token tokens[MMDS_MAX_TOKENS];
	/* Counters for Firecracker's mmds metrics. */
	uint64_t rx_accepted, rx_bad, tx_frames, tx_errors, conn_created, conn_destroyed;
	uint64_t rx_no_token, rx_invalid_token;
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

/*
 * Session tokens (token.c). mmds_token_new() makes one living @ttl_s
 * seconds from @now_ns into @out; -EINVAL when @ttl_s is outside
 * MMDS_TOKEN_TTL_MIN..MAX, -EIO when the kernel gives no random bytes.
 * mmds_token_valid() is true for a live token made here.
 */
int mmds_token_new(struct mmds *m, uint64_t ttl_s, uint64_t now_ns, char out[MMDS_TOKEN_LEN + 1])
    __attribute__((warn_unused_result));
bool mmds_token_valid(const struct mmds *m, const char *token, uint64_t now_ns);

/*
 * The guest's HTTP request, parsed, and Firecracker's answer to it
 * (http.c): @method "GET", "PUT" or another; @path without the query;
 * @accept_json: Accept is application/json; the token headers as sent
 * (NULL: absent). Fills @status, @allow (for a 405; may be NULL), @type
 * and *@body (a new string for free()). Pure apart from the tokens it makes.
 */
struct mmds_request {
	const char *method, *path;
	bool accept_json;
	const char *token, *ttl;
	bool forwarded_for; /* X-Forwarded-For was sent: PUT refuses it */
};
struct mmds_response {
	unsigned int status;
	const char *allow;
	const char *type;
	char *body;
};
void mmds_answer(struct mmds *m, const struct mmds_request *rq, uint64_t now_ns,
		 struct mmds_response *rs);

/* ---- the guest-facing network side (net.c): lwIP, on the VMM thread ---- */

struct mmds_net;
struct event_loop;

/*
 * Serve MMDS on one interface: frames the guest sends to @ipv4 (host
 * order), and ARP for it, are for lwIP; its answers wait in a fixed ring
 * until the device takes them (mmds_net_peek/pop). @kick(@opaque) runs
 * when lwIP's timers queue frames outside the device's own TX handling,
 * so the device can deliver them. VMM thread. 0 or -errno.
 */
int mmds_net_attach(struct mmds_net **out, struct mmds *m, uint32_t ipv4, struct event_loop *loop,
		    void (*kick)(void *opaque), void *opaque) __attribute__((warn_unused_result));
/* Is @frame (an Ethernet frame) for the MMDS? Pure; @frame may be short. */
bool mmds_net_wants(const struct mmds_net *n, const uint8_t *frame, size_t len);
/* Hand lwIP a frame mmds_net_wants(). */
void mmds_net_input(struct mmds_net *n, const uint8_t *frame, size_t len);
/* The oldest frame waiting for the guest (NULL: none), and dropping it. */
const uint8_t *mmds_net_peek(const struct mmds_net *n, size_t *len);
void mmds_net_pop(struct mmds_net *n);
/* Run lwIP's due timers and kick the interfaces with frames waiting (the
 * timerfd's handler; tests and fuzz targets call it after moving time). */
void mmds_net_run_timers(void);
/* Stop serving: lwIP forgets the interface, its connections are dropped. */
void mmds_net_detach(struct mmds_net *n);
/* The MAC the MMDS answers from. */
extern const uint8_t mmds_mac[6];

/* 169.254.1.0 to 169.254.254.255, the link-local range RFC 3927 lets a host
 * use (Firecracker's rule for ipv4_address); @addr in host byte order. */
bool mmds_ipv4_valid(uint32_t addr);

#endif
