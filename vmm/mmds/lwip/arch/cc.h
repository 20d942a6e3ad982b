/* SPDX-License-Identifier: Apache-2.0 */
/* lwIP's platform header for ember: glibc's types and byte order; lwIP's
 * diagnostics go nowhere (LWIP_DEBUG is off). */
#ifndef EMBER_LWIP_ARCH_CC_H
#define EMBER_LWIP_ARCH_CC_H

#include <stdlib.h>

#define LWIP_PLATFORM_DIAG(x)                                                                      \
	do {                                                                                       \
	} while (0)
#define LWIP_PLATFORM_ASSERT(x)                                                                    \
	do {                                                                                       \
	} while (0)
#define LWIP_RAND() ((u32_t)random())

#endif
