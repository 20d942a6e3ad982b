/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest kit's function API (guest/kit/fn.h) for a plain host process,
 * so scripts/bench/fn.sh can build the same handler source as a host
 * program: the floor for a fresh process per request. FN_MAIN becomes a
 * main() that reads the request from stdin, runs the handler and writes the
 * response to stdout (exit status: the runtime's response status).
 */
#ifndef EMBER_FN_HOST_H
#define EMBER_FN_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define FN_MAX_REQUEST (1u << 20)
#define FN_MAX_RESPONSE (1u << 20)

struct fn_request {
	const uint8_t *data;
	uint32_t len;
	uint32_t seed_sources;
	uint8_t seed[32];
	uint64_t serial;
};

struct fn_response {
	uint8_t *data;
	uint32_t cap;
	uint32_t len;
};

typedef int (*fn_handler)(const struct fn_request *req, struct fn_response *resp);

static uint8_t fn_host_in[FN_MAX_REQUEST], fn_host_out[FN_MAX_RESPONSE];

static inline int fn_host_main(fn_handler handler)
{
	struct fn_request req = { .data = fn_host_in, .serial = 1 };
	struct fn_response resp = { .data = fn_host_out, .cap = FN_MAX_RESPONSE };
	ssize_t n;
	while (req.len < FN_MAX_REQUEST &&
	       (n = read(0, fn_host_in + req.len, FN_MAX_REQUEST - req.len)) > 0)
		req.len += (uint32_t)n;
	if (handler(&req, &resp))
		return 4;
	if (resp.len > resp.cap)
		return 2;
	for (uint32_t done = 0; done < resp.len; done += (uint32_t)n)
		if ((n = write(1, resp.data + done, resp.len - done)) <= 0)
			return 1;
	return 0;
}

#define FN_MAIN(handler, init, flags)                                                              \
	int main(void)                                                                             \
	{                                                                                          \
		return fn_host_main(handler);                                                      \
	}

#endif
