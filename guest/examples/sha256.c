// SPDX-License-Identifier: Apache-2.0
/* sha256: the response is the 32-byte SHA-256 of the request. */
#include "fn.h"
#include "sha256.h"

static int hash(const struct fn_request *req, struct fn_response *resp)
{
	sha256(req->data, req->len, resp->data);
	resp->len = SHA256_LEN;
	return 0;
}

FN_MAIN(hash, NULL, 0)
