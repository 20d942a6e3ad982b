/* SPDX-License-Identifier: Apache-2.0 */
/* Integer limits for freestanding guests (gcc's own limits.h chains to libc's). */
#ifndef EMBER_GUEST_LIMITS_H
#define EMBER_GUEST_LIMITS_H

#define CHAR_BIT 8
#define INT_MAX __INT_MAX__
#define INT_MIN (-INT_MAX - 1)
#define UINT_MAX (INT_MAX * 2U + 1U)
#define LONG_MAX __LONG_MAX__
#define LONG_MIN (-LONG_MAX - 1L)
#define ULONG_MAX (LONG_MAX * 2UL + 1UL)

#endif
