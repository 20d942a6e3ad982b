// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "exit_codes.h"
#include "vm.h"

static const char usage[] =
    "usage: ember --kernel PATH [options]\n"
    "\n"
    "  --kernel PATH         ELF vmlinux (PVH or 64-bit entry) or bzImage\n"
    "  --initrd PATH         initial ramdisk\n"
    "  --cmdline STR         kernel command line\n"
    "  --vcpus N             number of vCPUs, 1-32 (default 1)\n"
    "  --mem-mib N           guest memory in MiB (default 128)\n"
    "  --serial stdout|none|PATH  where the guest's COM1 output goes (default stdout)\n"
    "  --boot-timer          log the guest's boot time when it writes the boot timer\n"
    "  --boot-protocol auto|pvh|linux  how to enter an ELF kernel (default auto: PVH if\n"
    "                        the kernel has a PVH note)\n"
    "  --level error|warn|info|debug  log level (default warn)\n"
    "  --start-time-us N     CLOCK_MONOTONIC time (us) the launcher started ember at\n"
    "  --help, --version\n";

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_VCPUS,
	OPT_MEM,
	OPT_SERIAL,
	OPT_BOOT_TIMER,
	OPT_PROTOCOL,
	OPT_LEVEL,
	OPT_START_TIME,
	OPT_HELP,
	OPT_VERSION
};

static const struct option options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "vcpus", required_argument, NULL, OPT_VCPUS },
	{ "mem-mib", required_argument, NULL, OPT_MEM },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "boot-timer", no_argument, NULL, OPT_BOOT_TIMER },
	{ "boot-protocol", required_argument, NULL, OPT_PROTOCOL },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "start-time-us", required_argument, NULL, OPT_START_TIME },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "ember: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see ember --help)\n");
	return EMBER_EXIT_USAGE;
}

/* Strict decimal: digits only, no sign, no overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno)
		return -ERANGE;
	*out = v;
	return 0;
}

static uint64_t host_mem_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long page = sysconf(_SC_PAGESIZE);
	return pages > 0 && page > 0 ? ((uint64_t)pages * (uint64_t)page) >> 20 : 0;
}

int cli_parse(int argc, char **argv, struct vmm_config *cfg)
{
	uint64_t v;
	*cfg = (struct vmm_config){
		.vcpus = 1,
		.mem_mib = 128,
		.serial = SERIAL_STDOUT,
		.protocol = BOOT_PROTOCOL_AUTO,
		.log_level = LOG_WARN,
	};
	opterr = 0;
	int opt;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_KERNEL:
			cfg->kernel_path = optarg;
			break;
		case OPT_INITRD:
			cfg->initrd_path = optarg;
			break;
		case OPT_CMDLINE:
			cfg->cmdline = optarg;
			break;
		case OPT_VCPUS:
			if (parse_u64(optarg, &v) < 0 || v < 1 || v > VM_MAX_VCPUS)
				return bad("--vcpus must be a number from 1 to 32, not '%s'",
					   optarg);
			cfg->vcpus = (unsigned int)v;
			break;
		case OPT_MEM:
			if (parse_u64(optarg, &v) < 0 || v < EMBER_MIN_MEM_MIB)
				return bad(
				    "--mem-mib must be a number of MiB, at least 2, not '%s'",
				    optarg);
			cfg->mem_mib = v;
			break;
		case OPT_SERIAL:
			if (strcmp(optarg, "stdout") == 0) {
				cfg->serial = SERIAL_STDOUT;
			} else if (strcmp(optarg, "none") == 0) {
				cfg->serial = SERIAL_NONE;
			} else if (*optarg) {
				cfg->serial = SERIAL_FILE;
				cfg->serial_path = optarg;
			} else {
				return bad("--serial needs stdout, none or a file path%s", "");
			}
			break;
		case OPT_BOOT_TIMER:
			cfg->boot_timer = true;
			break;
		case OPT_PROTOCOL:
			if (strcmp(optarg, "auto") == 0)
				cfg->protocol = BOOT_PROTOCOL_AUTO;
			else if (strcmp(optarg, "pvh") == 0)
				cfg->protocol = BOOT_PROTOCOL_PVH;
			else if (strcmp(optarg, "linux") == 0)
				cfg->protocol = BOOT_PROTOCOL_LINUX;
			else
				return bad("--boot-protocol must be auto, pvh or linux, not '%s'",
					   optarg);
			break;
		case OPT_LEVEL:
			if (log_level_parse(optarg, &cfg->log_level) < 0)
				return bad("--level must be error, warn, info or debug, not '%s'",
					   optarg);
			break;
		case OPT_START_TIME:
			if (parse_u64(optarg, &cfg->start_time_us) < 0)
				return bad(
				    "--start-time-us must be a number of microseconds, not '%s'",
				    optarg);
			break;
		case OPT_HELP:
			fputs(usage, stdout);
			return -1;
		case OPT_VERSION:
			printf("ember %s\n", EMBER_VERSION);
			return -1;
		default:
			if (optopt)
				return bad("option --%s needs a value",
					   options[optopt - OPT_KERNEL].name);
			return bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!cfg->kernel_path)
		return bad("--kernel is required%s", "");
	uint64_t host = host_mem_mib();
	if (host && cfg->mem_mib > host) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%llu MiB exceeds the host's %llu MiB",
			 (unsigned long long)cfg->mem_mib, (unsigned long long)host);
		return bad("--mem-mib: %s", msg);
	}
	return 0;
}
