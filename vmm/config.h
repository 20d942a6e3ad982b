/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the user asked for: the VM configuration as parsed from the command
 * line. Plain data; the VMM thread owns it.
 */
#ifndef EMBER_CONFIG_H
#define EMBER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "arch/x86_64/boot.h"
#include "devices/virtio/block/block.h"
#include "log.h"

#define VMM_MAX_DRIVES 16
#define DRIVE_ID_MAX 64

enum serial_mode { SERIAL_STDOUT, SERIAL_NONE, SERIAL_FILE };

struct vmm_config {
	const char *kernel_path;
	const char *initrd_path;
	const char *cmdline;
	unsigned int vcpus;
	uint64_t mem_mib;
#define VMM_MAX_DRIVES 16
#define DRIVE_ID_MAX 64

	enum serial_mode serial;
	const char *serial_path;
	bool boot_timer;
	enum boot_protocol protocol;
	enum log_level log_level;
	uint64_t start_time_us; /* 0: take it at start-up */
	struct blk_drive_config drives[VMM_MAX_DRIVES];
	unsigned int nr_drives;
};

/*
 * Parse argv. On a bad argument, prints one error line and returns
 * EMBER_EXIT_USAGE; for --help/--version prints and returns -1 (exit 0).
 * Returns 0 when the VM should run.
 */
int cli_parse(int argc, char **argv, struct vmm_config *cfg);

/*
 * Parse one --drive value, "path=P[,id=ID][,ro=on|off][,cache=unsafe|writeback]
 * [,io_engine=async|sync]", into @d. Returns 0 or -EINVAL with @err set.
 * Keeps pointers into @spec, which must outlive @d.
 */
int cli_parse_drive(char *spec, struct blk_drive_config *d, char *err, size_t err_len);

#define EMBER_VERSION "0.1.0"
#define EMBER_MIN_MEM_MIB 2

#endif
