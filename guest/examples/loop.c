// SPDX-License-Identifier: Apache-2.0
/* loop: a handler that never returns; the host must stop it at its deadline. */
#include "fn.h"

static int spin(const struct fn_request *req, struct fn_response *resp)
{
	(void)req;
	(void)resp;
	volatile uint64_t spins = 0;
	while (spins != ~0ull)
		spins = spins + 1; /* some 10^19 iterations: never, at any deadline */
	return 0;
}

FN_MAIN(spin, NULL, 0)
