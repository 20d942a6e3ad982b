// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "exit_codes.h"
#include "snapshot/format.h"
#include "util.h"
#include "vm.h"

static const char usage[] =
    "usage: ember [--api-sock PATH | --no-api] [--config-file FILE] [options]\n"
    "       ember --kernel PATH [options]\n"
    "\n"
    "  --api-sock PATH       serve the API on PATH (default " EMBER_DEFAULT_API_SOCK ",\n"
    "                        unless --no-api, --kernel or --restore)\n"
    "  --no-api              no API socket\n"
    "  --config-file FILE    configure (and boot) from Firecracker's JSON layout\n"
    "  --id ID               the instance's id (GET /, logs, metrics)\n"
    "  --kernel PATH         ELF vmlinux (PVH or 64-bit entry) or bzImage\n"
    "  --initrd PATH         initial ramdisk\n"
    "  --cmdline STR         kernel command line\n"
    "  --vcpus N             number of vCPUs, 1-32 (default 1)\n"
    "  --mem-mib N           guest memory in MiB (default 128)\n"
    "  --serial stdout|none|PATH  where the guest's COM1 output goes (default stdout)\n"
    "  --boot-timer          log the guest's boot time when it writes the boot timer\n"
    "  --boot-protocol auto|pvh|linux  how to enter an ELF kernel (default auto: PVH if\n"
    "                        the kernel has a PVH note)\n"
    "  --no-acpi             no ACPI tables: the guest finds its CPUs in the MP table and\n"
    "                        its virtio devices on the command line\n"
    "  --acpi-only           ACPI tables only: no MP table, no virtio_mmio.device=\n"
    "                        command-line entries (default: all three, as Firecracker)\n"
    "  --log-path PATH       log to PATH (a file, created if missing, or a FIFO)\n"
    "                        instead of stderr\n"
    "  --level LEVEL         Error, Warning (or Warn), Info, Debug, Trace or Off, in any\n"
    "                        case (default Info)\n"
    "  --show-level          put each line's level in it\n"
    "  --show-log-origin     put each line's source file and line in it\n"
    "  --module PREFIX       only lines from source files under PREFIX (vmm/vcpu,\n"
    "                        api, vmm::devices)\n"
    "  --start-time-us N     CLOCK_MONOTONIC time (us) the launcher started ember at\n"
    "  --start-time-cpu-us N this process's CPU time (us) when the launcher exec'd ember\n"
    "  --parent-cpu-time-us N CPU time (us) the launcher spent before that\n"
    "  --restore STATE --mem FILE [--resume]  start from a snapshot (state file and\n"
    "                        memory file of PUT /snapshot/create) instead of a kernel;\n"
    "                        paused unless --resume\n"
    "  --http-api-max-payload-size N  largest API request body in bytes (default 51200);\n"
    "                        larger ones get 400, as in Firecracker\n"
    "  --metadata FILE       fill the MMDS data store with the JSON in FILE\n"
    "  --mmds-size-limit N   largest MMDS data store, bytes of compact JSON (default:\n"
    "                        the --http-api-max-payload-size)\n"
    "  --no-seccomp          run without the per-thread seccomp filters\n"
    "  --no-prewarm          with --api-sock: do not prepare a KVM VM while waiting\n"
    "  --prewarm-shape V,M   with --api-sock: prepare, while waiting, a VM of V vCPUs\n"
    "                        and M MiB (memory slots, irqchip, PIT, vCPUs and their\n"
    "                        threads); a load or boot of that shape takes it, another\n"
    "                        builds its own. Default 'none': an empty KVM VM only\n"
    "  --seccomp-filter FILE use the policy in FILE (resources/seccomp format) instead\n"
    "                        of the built-in filters\n"
    "  --uffd                with --restore: memory through ember's userfaultfd handler\n"
    "  --ws-record PATH      with --uffd: record the pages the guest touches\n"
    "  --ws-prefetch PATH    with --uffd: copy in a recorded working set first\n"
    "  --snapshot-version    print the snapshot state file format version\n"
    "  --describe-snapshot FILE  print the format version of a state file\n"
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
	OPT_VERSION,
	OPT_DRIVE,
	OPT_API_SOCK,
	OPT_CONFIG_FILE,
	OPT_NO_API,
	OPT_ID,
	OPT_LOG_PATH,
	OPT_METRICS_PATH,
	OPT_RESTORE,
	OPT_RESTORE_MEM,
	OPT_RESUME,
	OPT_UFFD,
	OPT_WS_RECORD,
	OPT_WS_PREFETCH,
	OPT_NO_SECCOMP,
	OPT_NO_PREWARM,
	OPT_PREWARM_SHAPE,
	OPT_SECCOMP_FILTER,
	OPT_NO_ACPI,
	OPT_ACPI_ONLY,
	OPT_START_TIME_CPU,
	OPT_PARENT_CPU_TIME,
	OPT_SNAPSHOT_VERSION,
	OPT_DESCRIBE_SNAPSHOT,
	OPT_METADATA,
	OPT_MMDS_SIZE_LIMIT,
	OPT_ENABLE_PCI,
	OPT_API_MAX_PAYLOAD,
	OPT_SHOW_LEVEL,
	OPT_SHOW_LOG_ORIGIN,
	OPT_MODULE,
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
	{ "drive", required_argument, NULL, OPT_DRIVE },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
	{ "no-api", no_argument, NULL, OPT_NO_API },
	{ "id", required_argument, NULL, OPT_ID },
	{ "log-path", required_argument, NULL, OPT_LOG_PATH },
	{ "metrics-path", required_argument, NULL, OPT_METRICS_PATH },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "mem", required_argument, NULL, OPT_RESTORE_MEM },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "uffd", no_argument, NULL, OPT_UFFD },
	{ "ws-record", required_argument, NULL, OPT_WS_RECORD },
	{ "ws-prefetch", required_argument, NULL, OPT_WS_PREFETCH },
	{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
	{ "no-prewarm", no_argument, NULL, OPT_NO_PREWARM },
	{ "prewarm-shape", required_argument, NULL, OPT_PREWARM_SHAPE },
	{ "seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER },
	{ "no-acpi", no_argument, NULL, OPT_NO_ACPI },
	{ "acpi-only", no_argument, NULL, OPT_ACPI_ONLY },
	{ "start-time-cpu-us", required_argument, NULL, OPT_START_TIME_CPU },
	{ "parent-cpu-time-us", required_argument, NULL, OPT_PARENT_CPU_TIME },
	{ "snapshot-version", no_argument, NULL, OPT_SNAPSHOT_VERSION },
	{ "describe-snapshot", required_argument, NULL, OPT_DESCRIBE_SNAPSHOT },
	{ "metadata", required_argument, NULL, OPT_METADATA },
	{ "mmds-size-limit", required_argument, NULL, OPT_MMDS_SIZE_LIMIT },
	{ "enable-pci", no_argument, NULL, OPT_ENABLE_PCI },
	{ "http-api-max-payload-size", required_argument, NULL, OPT_API_MAX_PAYLOAD },
	{ "show-level", no_argument, NULL, OPT_SHOW_LEVEL },
	{ "show-log-origin", no_argument, NULL, OPT_SHOW_LOG_ORIGIN },
	{ "module", required_argument, NULL, OPT_MODULE },
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

/* --prewarm-shape: "none", or "VCPUS,MEM_MIB". */
static int parse_prewarm_shape(const char *s, struct vmm_config *cfg)
{
	char buf[48];
	uint64_t v, m;
	if (strcmp(s, "none") == 0) {
		cfg->prewarm_vcpus = 0;
		cfg->prewarm_mem_mib = 0;
		return 0;
	}
	const char *comma = strchr(s, ',');
	if (!comma || (size_t)(comma - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(comma - s));
	buf[comma - s] = 0;
	if (parse_u64(buf, &v) < 0 || v < 1 || v > VM_MAX_VCPUS || parse_u64(comma + 1, &m) < 0 ||
	    m < EMBER_MIN_MEM_MIB || m > (UINT64_MAX >> 20))
		return -EINVAL;
	cfg->prewarm_vcpus = (unsigned int)v;
	cfg->prewarm_mem_mib = m;
	return 0;
}

static uint64_t host_mem_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long page = sysconf(_SC_PAGESIZE);
	return pages > 0 && page > 0 ? ((uint64_t)pages * (uint64_t)page) >> 20 : 0;
}

static int parse_on_off(const char *v, bool *out)
{
	if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0)
		*out = true;
	else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0)
		*out = false;
	else
		return -EINVAL;
	return 0;
}

bool config_id_valid(const char *id)
{
	size_t n = strlen(id);
	return n > 0 && n <= DRIVE_ID_MAX &&
	    strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

void config_set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? strdup(v) : NULL;
}

void config_free(struct vmm_config *cfg)
{
	char **strs[] = { &cfg->kernel_path,
			  &cfg->initrd_path,
			  &cfg->cmdline,
			  &cfg->serial_path,
			  &cfg->vsock.uds_path,
			  &cfg->api_sock,
			  &cfg->config_file,
			  &cfg->restore_path,
			  &cfg->restore_mem,
			  &cfg->seccomp_filter,
			  &cfg->ws_record,
			  &cfg->ws_prefetch,
			  &cfg->id,
			  &cfg->log_path,
			  &cfg->log_module,
			  &cfg->metrics_path,
			  &cfg->metadata_path };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	for (unsigned int i = 0; i < cfg->nr_drives; i++) {
		free((void *)(uintptr_t)cfg->drives[i].blk.id);
		free((void *)(uintptr_t)cfg->drives[i].blk.path);
		free(cfg->drives[i].partuuid);
	}
	for (unsigned int i = 0; i < cfg->nr_nets; i++) {
		free(cfg->nets[i].iface_id);
		free(cfg->nets[i].host_dev_name);
		free(cfg->nets[i].guest_mac);
	}
	free(cfg->cpu_custom);
	memset(cfg, 0, sizeof(*cfg));
}

int cli_parse_drive(char *spec, struct drive_config *dc, char *err, size_t err_len)
{
	static unsigned int unnamed;
	char name[16];
	struct blk_drive_config *d = &dc->blk;
	const char *id = NULL, *path = NULL;
	*dc = (struct drive_config){ .blk = { .cache = BLK_CACHE_UNSAFE,
					      .engine = BLK_ENGINE_URING } };
	if (!spec) {
		snprintf(err, err_len, "out of memory");
		return -EINVAL;
	}
	char *save = NULL;
	for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		if (!v) {
			snprintf(err, err_len, "'%s' is not key=value", kv);
			return -EINVAL;
		}
		*v++ = 0;
		bool ok = true;
		if (strcmp(kv, "path") == 0)
			path = v;
		else if (strcmp(kv, "id") == 0)
			id = v;
		else if (strcmp(kv, "ro") == 0)
			ok = parse_on_off(v, &d->read_only) == 0;
		else if (strcmp(kv, "direct") == 0)
			ok = parse_on_off(v, &d->direct) == 0;
		else if (strcmp(kv, "cache") == 0 && strcasecmp(v, "unsafe") == 0)
			d->cache = BLK_CACHE_UNSAFE;
		else if (strcmp(kv, "cache") == 0 && strcasecmp(v, "writeback") == 0)
			d->cache = BLK_CACHE_WRITEBACK;
		else if (strcmp(kv, "io_engine") == 0 &&
			 (strcasecmp(v, "async") == 0 || strcasecmp(v, "io_uring") == 0))
			d->engine = BLK_ENGINE_URING;
		else if (strcmp(kv, "io_engine") == 0 && strcasecmp(v, "sync") == 0)
			d->engine = BLK_ENGINE_SYNC;
		else
			ok = false;
		if (!ok) {
			snprintf(err, err_len, "bad drive option '%s=%s'", kv, v);
			return -EINVAL;
		}
	}
	if (!path || !*path) {
		snprintf(err, err_len, "path= is required");
		return -EINVAL;
	}
	if (!id) {
		snprintf(name, sizeof(name), "drive%u", unnamed++);
		id = name;
	}
	if (!config_id_valid(id)) {
		snprintf(err, err_len, "drive id must be 1-64 characters of [A-Za-z0-9_-]");
		return -EINVAL;
	}
	d->id = strdup(id);
	d->path = strdup(path);
	return 0;
}

/* --describe-snapshot: the format version in a state file's header, as
 * Firecracker prints its own ("v" and the version). The header is all it
 * reads: the version of a file this ember cannot load is still shown. */
static int describe_snapshot(const char *path)
{
	uint8_t hdr[16];
	FILE *f = fopen(path, "rbe");
	if (!f)
		return bad("--describe-snapshot: cannot open '%s'", path);
	size_t n = fread(hdr, 1, sizeof(hdr), f);
	fclose(f);
	if (n < sizeof(hdr) || memcmp(hdr, SNAP_MAGIC, 8) != 0) {
		fprintf(stderr,
			"ember: --describe-snapshot: '%s' is not an ember snapshot state file\n",
			path);
		return EMBER_EXIT_SNAPSHOT;
	}
	uint32_t version = (uint32_t)hdr[12] | (uint32_t)hdr[13] << 8 | (uint32_t)hdr[14] << 16 |
	    (uint32_t)hdr[15] << 24;
	printf("v%u.0.0\n", version);
	return -1;
}

int cli_parse(int argc, char **argv, struct vmm_config *cfg)
{
	uint64_t v;
	*cfg = (struct vmm_config){
		.vcpus = 1,
		.mem_mib = 128,
		.serial = SERIAL_STDOUT,
		.protocol = BOOT_PROTOCOL_AUTO,
		.log_level = LOG_INFO, /* Firecracker's default */
	};
	opterr = 0;
	int opt;
	bool prewarm_shape_set = false;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_KERNEL:
			config_set_str(&cfg->kernel_path, optarg);
			break;
		case OPT_INITRD:
			config_set_str(&cfg->initrd_path, optarg);
			break;
		case OPT_CMDLINE:
			config_set_str(&cfg->cmdline, optarg);
			break;
		case OPT_API_SOCK:
			if (!*optarg)
				return bad("--api-sock needs a path%s", "");
			config_set_str(&cfg->api_sock, optarg);
			break;
		case OPT_API_MAX_PAYLOAD:
			/* 0 would refuse every PUT and PATCH: a mistake, not a setting. */
			if (parse_u64(optarg, &cfg->api_max_payload) < 0 || !cfg->api_max_payload)
				return bad(
				    "--http-api-max-payload-size must be a number of bytes from "
				    "1, not '%s'",
				    optarg);
			break;
		case OPT_CONFIG_FILE:
			config_set_str(&cfg->config_file, optarg);
			break;
		case OPT_NO_API:
			cfg->no_api = true;
			break;
		case OPT_ID:
			if (!config_id_valid(optarg))
				return bad(
				    "--id must be 1-64 characters of [A-Za-z0-9_-], not '%s'",
				    optarg);
			config_set_str(&cfg->id, optarg);
			break;
		case OPT_LOG_PATH:
			config_set_str(&cfg->log_path, optarg);
			break;
		case OPT_METRICS_PATH:
			config_set_str(&cfg->metrics_path, optarg);
			break;
		case OPT_RESTORE:
			config_set_str(&cfg->restore_path, optarg);
			break;
		case OPT_RESTORE_MEM:
			config_set_str(&cfg->restore_mem, optarg);
			break;
		case OPT_RESUME:
			cfg->restore_resume = true;
			break;
		case OPT_UFFD:
			cfg->restore_uffd = true;
			break;
		case OPT_WS_RECORD:
			config_set_str(&cfg->ws_record, optarg);
			break;
		case OPT_WS_PREFETCH:
			config_set_str(&cfg->ws_prefetch, optarg);
			break;
		case OPT_NO_SECCOMP:
			cfg->no_seccomp = true;
			break;
		case OPT_NO_PREWARM:
			cfg->no_prewarm = true;
			break;
		case OPT_PREWARM_SHAPE:
			if (parse_prewarm_shape(optarg, cfg) < 0)
				return bad(
				    "--prewarm-shape must be 'none' or VCPUS,MEM_MIB (1 to 32 "
				    "vCPUs, at least 2 MiB), not '%s'",
				    optarg);
			prewarm_shape_set = true;
			break;
		case OPT_NO_ACPI:
		case OPT_ACPI_ONLY: {
			enum acpi_mode m = opt == OPT_NO_ACPI ? ACPI_OFF : ACPI_ONLY;
			if (cfg->acpi != ACPI_WITH_LEGACY && cfg->acpi != m)
				return bad("--no-acpi and --acpi-only exclude each other%s", "");
			cfg->acpi = m;
			break;
		}
		case OPT_SECCOMP_FILTER:
			config_set_str(&cfg->seccomp_filter, optarg);
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
				config_set_str(&cfg->serial_path, optarg);
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
				return bad(
				    "--level must be Error, Warning, Info, Debug, Trace or Off "
				    "(any case), not '%s'",
				    optarg);
			break;
		case OPT_SHOW_LEVEL:
			cfg->log_show_level = true;
			break;
		case OPT_SHOW_LOG_ORIGIN:
			cfg->log_show_origin = true;
			break;
		case OPT_MODULE:
			if (strlen(optarg) > LOG_MODULE_MAX)
				return bad("--module must be at most 255 characters%s", "");
			config_set_str(&cfg->log_module, optarg);
			break;
		case OPT_START_TIME:
			if (parse_u64(optarg, &cfg->start_time_us) < 0)
				return bad(
				    "--start-time-us must be a number of microseconds, not '%s'",
				    optarg);
			/* A CLOCK_MONOTONIC reading taken before we started
			 * cannot lie in the future. */
			if (cfg->start_time_us > clock_now_us())
				return bad(
				    "--start-time-us '%s' is later than now on CLOCK_MONOTONIC",
				    optarg);
			cfg->start_time_given = true;
			break;
		case OPT_START_TIME_CPU:
			if (parse_u64(optarg, &cfg->start_time_cpu_us) < 0)
				return bad("--start-time-cpu-us must be a number of microseconds, "
					   "not '%s'",
					   optarg);
			cfg->start_time_cpu_given = true;
			break;
		case OPT_PARENT_CPU_TIME:
			if (parse_u64(optarg, &cfg->parent_cpu_time_us) < 0)
				return bad("--parent-cpu-time-us must be a number of microseconds, "
					   "not '%s'",
					   optarg);
			break;
		case OPT_METADATA:
			if (!*optarg)
				return bad("--metadata needs a file name%s", "");
			config_set_str(&cfg->metadata_path, optarg);
			break;
		case OPT_MMDS_SIZE_LIMIT:
			if (parse_u64(optarg, &cfg->mmds_size_limit) < 0 || !cfg->mmds_size_limit)
				return bad(
				    "--mmds-size-limit must be a number of bytes from 1, not "
				    "'%s'",
				    optarg);
			break;
		case OPT_ENABLE_PCI:
			return bad(
			    "--enable-pci: ember has no PCI transport; its virtio devices are "
			    "virtio-mmio%s",
			    "");
		case OPT_SNAPSHOT_VERSION:
			printf("v%u.0.0\n", SNAP_VERSION);
			return -1;
		case OPT_DESCRIBE_SNAPSHOT:
			return describe_snapshot(optarg);
		case OPT_DRIVE: {
			char err[160];
			if (cfg->nr_drives == VMM_MAX_DRIVES)
				return bad("at most 16 drives%s", "");
			struct drive_config *d = &cfg->drives[cfg->nr_drives];
			char *spec = strdup(optarg);
			int r = cli_parse_drive(spec, d, err, sizeof(err));
			free(spec);
			if (r < 0)
				return bad("--drive: %s", err);
			cfg->nr_drives++; /* counted now: its strings are the config's */
			for (unsigned int i = 0; i + 1 < cfg->nr_drives; i++)
				if (strcmp(cfg->drives[i].blk.id, d->blk.id) == 0)
					return bad("--drive: drive id '%s' is used twice",
						   d->blk.id);
			break;
		}
		case OPT_HELP:
			fputs(usage, stdout);
			return -1;
		case OPT_VERSION:
			/* Firecracker's first line, for parsers that take its
			 * second word as the version; then ember's own. */
			printf("Firecracker v%s\nember v%s\n", EMBER_FIRECRACKER_VERSION,
			       EMBER_VERSION);
			return -1;
		default:
			/* optopt is the option's value when a long option lacks its
			 * argument, the letter of an unknown short option (ember has
			 * none), 0 for an unknown long one. */
			if (optopt >= OPT_KERNEL)
				return bad("option --%s needs a value",
					   options[optopt - OPT_KERNEL].name);
			if (optopt) {
				char opt_s[3] = { '-', (char)optopt, 0 };
				return bad("unknown option '%s'", opt_s);
			}
			return bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!!cfg->restore_path != !!cfg->restore_mem)
		return bad("--restore and --mem go together%s", "");
	if ((cfg->restore_resume || cfg->restore_uffd) && !cfg->restore_path)
		return bad("--resume and --uffd need --restore%s", "");
	if ((cfg->ws_record || cfg->ws_prefetch) && !cfg->restore_uffd)
		return bad("--ws-record and --ws-prefetch need --uffd%s", "");
	if (cfg->no_seccomp && cfg->seccomp_filter)
		return bad("--no-seccomp and --seccomp-filter exclude each other%s", "");
	if (cfg->ws_record && cfg->ws_prefetch)
		return bad("--ws-record and --ws-prefetch exclude each other%s", "");
	if (cfg->restore_path && (cfg->kernel_path || cfg->config_file || cfg->nr_drives))
		return bad("--restore takes its configuration from the snapshot: no --kernel, "
			   "--drive or --config-file%s",
			   "");
	if (cfg->no_api && cfg->api_sock)
		return bad("--no-api and --api-sock exclude each other%s", "");
	if (cfg->no_api && !cfg->kernel_path && !cfg->config_file && !cfg->restore_path)
		return bad("--no-api needs a VM to run: --config-file, --kernel or --restore%s",
			   "");
	/* Firecracker serves its default socket unless told otherwise;
	 * ember's own shorthand (--kernel, --restore) boots without an API
	 * unless --api-sock asks for one. */
	if (!cfg->api_sock && !cfg->no_api && !cfg->kernel_path && !cfg->restore_path)
		config_set_str(&cfg->api_sock, EMBER_DEFAULT_API_SOCK);
	/* GET /vm/config and snapshots carry these as JSON strings. */
	const struct {
		const char *opt, *val;
	} texts[] = { { "--kernel", cfg->kernel_path }, { "--initrd", cfg->initrd_path },
		      { "--cmdline", cfg->cmdline },	{ "--log-path", cfg->log_path },
		      { "--module", cfg->log_module },	{ "--metrics-path", cfg->metrics_path } };
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i].val && !utf8_valid(texts[i].val))
			return bad("%s must be UTF-8 text", texts[i].opt);
	for (unsigned int i = 0; i < cfg->nr_drives; i++)
		if (!utf8_valid(cfg->drives[i].blk.path))
			return bad("--drive: path= must be UTF-8 text%s", "");
	if (!cfg->id)
		config_set_str(&cfg->id, "anonymous-instance");
	if (prewarm_shape_set && cfg->no_prewarm)
		return bad("--no-prewarm and --prewarm-shape exclude each other%s", "");
	uint64_t host = host_mem_mib();
	if (host && cfg->prewarm_mem_mib > host) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%llu MiB exceeds the host's %llu MiB",
			 (unsigned long long)cfg->prewarm_mem_mib, (unsigned long long)host);
		return bad("--prewarm-shape: %s", msg);
	}
	if (host && cfg->mem_mib > host) {
		char msg[96];
		snprintf(msg, sizeof(msg), "%llu MiB exceeds the host's %llu MiB",
			 (unsigned long long)cfg->mem_mib, (unsigned long long)host);
		return bad("--mem-mib: %s", msg);
	}
	return 0;
}
