/* SPDX-License-Identifier: Apache-2.0 */
#ifndef EMBER_GUEST_STDLIB_H
#define EMBER_GUEST_STDLIB_H

unsigned long strtoul(const char *s, char **end, int base);

#endif
