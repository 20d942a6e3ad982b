// SPDX-License-Identifier: Apache-2.0
/*
 * What the MMDS answers a guest's HTTP request, in Firecracker's words and
 * status codes (docs/mmds/mmds-user-guide.md): GET of a path in the store,
 * PUT /latest/api/token for a session token; V2 wants a live token on
 * every GET, V1 serves GETs without one (and counts those).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmds/mmds.h"

#define TOKEN_PATH "/latest/api/token"

static void text(struct mmds_response *rs, unsigned int status, const char *fmt, const char *arg)
{
	rs->status = status;
	rs->type = "text/plain";
	if (asprintf(&rs->body, fmt, arg ? arg : "") < 0)
		rs->body = NULL;
}

/* Runs of '/' as one: the path the store and the token check see. */
static void squeeze(const char *in, char *out, size_t cap)
{
	size_t n = 0;
	for (; *in && n + 1 < cap; in++)
		if (*in != '/' || !n || out[n - 1] != '/')
			out[n++] = *in;
	out[n] = 0;
}

static void get(struct mmds *m, const struct mmds_request *rq, struct mmds_response *rs)
{
	enum mmds_format fmt = rq->accept_json && !m->imds_compat ? MMDS_JSON : MMDS_IMDS;
	char *out = NULL;
	int r = mmds_get_value(m, rq->path, fmt, &out);
	if (r == -ENOENT) {
		text(rs, 404, "Resource not found: %s.", rq->path);
		return;
	}
	if (r == -ENOTSUP) {
		text(rs, 501, "Cannot retrieve value. The value has an unsupported type.%s", NULL);
		return;
	}
	if (r < 0) {
		text(rs, 500, "Out of memory.%s", NULL);
		return;
	}
	rs->status = 200;
	rs->type = fmt == MMDS_JSON ? "application/json" : "text/plain";
	rs->body = out;
}

/* The TTL header's value: a decimal number, nothing else. */
static bool parse_ttl(const char *s, uint64_t *v)
{
	if (!*s || strlen(s) > 10)
		return false;
	uint64_t n = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*v = n;
	return true;
}

static void put_token(struct mmds *m, const struct mmds_request *rq, uint64_t now_ns,
		      struct mmds_response *rs)
{
	char path[256];
	squeeze(rq->path, path, sizeof(path));
	if (rq->forwarded_for) {
		text(rs, 400, "Invalid header. Reason: Unsupported header name. Key: %s",
		     "X-Forwarded-For");
		return;
	}
	if (strcmp(path, TOKEN_PATH) != 0) {
		text(rs, 404, "Resource not found: %s.", rq->path);
		return;
	}
	if (!rq->ttl) {
		text(rs, 400,
		     "Token time to live value not found. Use `X-metadata-token-ttl-seconds` "
		     "header to specify the token's lifetime.%s",
		     NULL);
		return;
	}
	uint64_t ttl;
	if (!parse_ttl(rq->ttl, &ttl)) {
		text(rs, 400,
		     "Invalid header. Reason: Invalid value. Key:X-metadata-token-ttl-seconds; "
		     "Value:%s",
		     rq->ttl);
		return;
	}
	char token[MMDS_TOKEN_LEN + 1];
	int r = mmds_token_new(m, ttl, now_ns, token);
	if (r == -EINVAL) {
		char v[24];
		snprintf(v, sizeof(v), "%llu", (unsigned long long)ttl);
		text(rs, 400,
		     "Invalid time to live value provided for token: %s. Please provide a value "
		     "between 1 and 21600.",
		     v);
		return;
	}
	if (r < 0) {
		text(rs, 500, "Failed to generate a token.%s", NULL);
		return;
	}
	text(rs, 200, "%s", token);
}

void mmds_answer(struct mmds *m, const struct mmds_request *rq, uint64_t now_ns,
		 struct mmds_response *rs)
{
	memset(rs, 0, sizeof(*rs));
	if (!rq->path[0] || rq->path[0] != '/') {
		text(rs, 400, "Invalid URI.%s", NULL);
		return;
	}
	if (strcmp(rq->method, "PUT") == 0) {
		put_token(m, rq, now_ns, rs);
		return;
	}
	if (strcmp(rq->method, "GET") != 0) {
		text(rs, 405, "Not allowed HTTP method.%s", NULL);
		rs->allow = "GET, PUT";
		return;
	}
	bool valid = rq->token && mmds_token_valid(m, rq->token, now_ns);
	if (m->version == MMDS_V2 && !rq->token) {
		text(rs, 401,
		     "No MMDS token provided. Use `X-metadata-token` header to specify the session "
		     "token.%s",
		     NULL);
		return;
	}
	if (m->version == MMDS_V2 && !valid) {
		text(rs, 401, "MMDS token not valid.%s", NULL);
		return;
	}
	/* V1: served either way, counted (Firecracker's rx_no_token and
	 * rx_invalid_token) to show who still relies on V1. */
	m->rx_no_token += !rq->token;
	m->rx_invalid_token += rq->token && !valid;
	get(m, rq, rs);
}
