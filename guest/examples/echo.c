// SPDX-License-Identifier: Apache-2.0
/* echo: the response is the request. */
#include "fn.h"

static int echo(const struct fn_request *req, struct fn_response *resp)
{
	memcpy(resp->data, req->data, req->len);
	resp->len = req->len;
	return 0;
}

FN_MAIN(echo, NULL, 0)
