/* SPDX-License-Identifier: Apache-2.0 */
/* Between the ACPI reader's table code (acpi.c) and its AML parser (acpi_aml.c). */
#ifndef EMBER_GUEST_ACPI_AML_H
#define EMBER_GUEST_ACPI_AML_H

#include "acpi.h"

/* Little-endian reads at any alignment. */
uint16_t acpi_rd16(const uint8_t *p);
uint32_t acpi_rd32(const uint8_t *p);
uint64_t acpi_rd64(const uint8_t *p);

/* Record the first error (@what, @at) in @info; returns -1. */
int acpi_fail(struct acpi_info *info, const char *what, uint64_t at);

/*
 * Parse @len bytes of AML (a DSDT's body) into @info's device list. @offset
 * is where @aml starts in its table: errors report table offsets.
 * Returns 0 or -1 with @info->error set.
 */
int acpi_aml_parse(struct acpi_info *info, const uint8_t *aml, uint32_t len, uint32_t offset);

#endif
