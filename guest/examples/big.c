// SPDX-License-Identifier: Apache-2.0
/*
 * big: the request is a decimal byte count N; the response is N bytes of a
 * pattern (byte i is (i * 7 + 3) & 0xff). N above the response capacity is
 * reported as such (status 2: the handler sets len above cap); a request
 * that is not a number is refused (status 4, with a message).
 */
#include "fn.h"

static int big(const struct fn_request *req, struct fn_response *resp)
{
	uint64_t n = 0;
	if (req->len == 0 || req->len > 10)
		goto bad;
	for (uint32_t i = 0; i < req->len; i++) {
		if (req->data[i] < '0' || req->data[i] > '9')
			goto bad;
		n = n * 10 + (uint64_t)(req->data[i] - '0');
	}
	if (n > resp->cap) {
		resp->len = resp->cap + 1;
		return 0;
	}
	for (uint64_t i = 0; i < n; i++)
		resp->data[i] = (uint8_t)(i * 7 + 3);
	resp->len = (uint32_t)n;
	return 0;
bad:
	memcpy(resp->data, "not a decimal byte count", 24);
	resp->len = 24;
	return 1;
}

FN_MAIN(big, NULL, 0)
