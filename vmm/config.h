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
#include "arch/x86_64/cpu_template.h"
#include "devices/virtio/balloon/balloon.h"
#include "devices/virtio/block/block.h"
#include "devices/virtio/net/net.h"
#include "devices/virtio/rng/rng.h"
#include "log.h"
#include "mmds/mmds.h"
#include "version.h"

#define VMM_MAX_DRIVES 16
#define DRIVE_ID_MAX 64

enum serial_mode { SERIAL_STDOUT, SERIAL_NONE, SERIAL_FILE };

#define VMM_MAX_NET 8

struct net_config {
	char *iface_id;
	char *host_dev_name;
	char *guest_mac;
	struct net_device_config limits; /* rate limits and mtu (0: not given) only */
	bool mmds; /* PUT /mmds/config lists it: frames to the MMDS address are answered */
};

/* PUT /mmds/config (the interfaces are net_config.mmds). */
struct mmds_config {
	bool set;
	enum mmds_version version;
	uint32_t ipv4; /* host byte order */
	bool imds_compat;
};

/* The virtio-vsock device (PUT /vsock). */
struct vsock_config {
	bool set;
	uint32_t guest_cid;
	char *uds_path;
};

/* The virtio-rng entropy device (PUT /entropy): its rate limits. */
struct entropy_config {
	bool set;
	struct rng_config limits;
};

/* The balloon device (PUT /balloon). amount_mib follows PATCH /balloon and
 * stats_polling_interval_s PATCH /balloon/statistics, so GET /vm/config and
 * a snapshot show the values in force. */
struct balloon_section {
	bool set;
	struct balloon_config dev;
};

/* A drive as the user described it (strings owned by the config). */
struct drive_config {
	struct blk_drive_config blk;
	bool is_root;
	char *partuuid;
};

/*
 * How an x86 guest learns its CPUs and virtio devices. The default is
 * Firecracker's: ACPI tables, and also the MP table and one
 * virtio_mmio.device= command-line entry per device for kernels without
 * ACPI. A kernel with both finds each device through ACPI and the command
 * line, and Linux's second probe of the same MMIO window fails (-EBUSY), so
 * each device still registers once; --acpi-only leaves out the legacy
 * descriptions for such kernels, --no-acpi the tables.
 */
enum acpi_mode { ACPI_WITH_LEGACY, ACPI_OFF, ACPI_ONLY };

/* Firecracker's command line for a boot source without boot_args: reboot on
 * panic, no modules, no 8250 UARTs, a plain i8042 keyboard (no AUX port, no
 * multiplexer). */
#define VMM_DEFAULT_BOOT_ARGS                                                                      \
	"reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd "         \
	"swiotlb=noforce"

/* All strings in a vmm_config are heap copies it owns. */
struct vmm_config {
	char *kernel_path;
	char *initrd_path;
	char *cmdline;
	/* PUT /boot-source left boot_args out: the guest gets Firecracker's
	 * default command line (VMM_DEFAULT_BOOT_ARGS), GET /vm/config null. */
	bool default_boot_args;
	unsigned int vcpus;
	uint64_t mem_mib;
#define VMM_MAX_DRIVES 16
#define DRIVE_ID_MAX 64

	enum serial_mode serial;
	char *serial_path;
	/* PUT /serial's rate_limiter (a TokenBucket on output bytes); size 0: none. */
	uint64_t serial_rl_size, serial_rl_burst, serial_rl_refill_ms;
	bool boot_timer;
	enum boot_protocol protocol;
	/* The logger (--level, --show-level, --show-log-origin, --module,
	 * --log-path, PUT /logger): what log_configure() was last given. */
	enum log_level log_level;
	bool log_show_level, log_show_origin;
	char *log_module;
	uint64_t start_time_us; /* 0: take it at start-up */
	bool start_time_given;
	/* Firecracker's jailer passes the CPU time it had used when it exec'd
	 * us (--start-time-cpu-us) and its parent's (--parent-cpu-time-us). */
	uint64_t start_time_cpu_us, parent_cpu_time_us;
	bool start_time_cpu_given;
	struct drive_config drives[VMM_MAX_DRIVES];
	unsigned int nr_drives;
	struct net_config nets[VMM_MAX_NET];
	unsigned int nr_nets;
	struct vsock_config vsock;
	struct entropy_config entropy;
	struct mmds_config mmds;
	struct balloon_section balloon;
	bool smt, track_dirty_pages, huge_pages_2m;
	/* The CPU template: machine-config's cpu_template (enum static_template)
	 * or PUT /cpu-config's custom one (owned; NULL when none). At most one
	 * is set: the later request replaces the earlier, as in Firecracker. */
	int cpu_template;
	struct cpu_template *cpu_custom;
	bool huge_pages_thp; /* huge_pages "Transparent": madvise(MADV_HUGEPAGE) */
	enum acpi_mode acpi;

	/* Process-level settings. */
	char *api_sock;
	/* --http-api-max-payload-size: largest request body, bytes (0: the
	 * default, API_MAX_BODY). */
	uint64_t api_max_payload;
	char *config_file;
	bool no_api;
	char *restore_path, *restore_mem; /* --restore STATE --mem FILE */
	bool restore_resume, restore_uffd;
	bool no_seccomp; /* --no-seccomp */
	bool no_prewarm; /* --no-prewarm: no KVM VM prepared while the API waits */
	/* --prewarm-shape: the VM prepared while the API waits (0 MiB: empty) */
	unsigned int prewarm_vcpus;
	uint64_t prewarm_mem_mib;
	char *seccomp_filter; /* --seccomp-filter FILE */
	char *ws_record, *ws_prefetch; /* --ws-record / --ws-prefetch */
	char *id;
	char *log_path;
	char *metrics_path;
	char *metadata_path; /* --metadata: the MMDS data store's first contents */
	uint64_t mmds_size_limit; /* --mmds-size-limit; 0: --http-api-max-payload-size */
};

/* Ids (instance, drive, interface): 1-64 characters of [A-Za-z0-9_-]. */
bool config_id_valid(const char *id);

/* Replace a config string with a copy of @v (NULL clears it). */
void config_set_str(char **dst, const char *v);

/* Free every string @cfg owns and zero it, for a process (a test, a fuzz
 * target) that fills one config again and again. */
void config_free(struct vmm_config *cfg);

/* Where the API listens when neither --api-sock nor --no-api says (nor
 * ember's own --kernel / --restore shorthand): Firecracker's default, which
 * its jailer's users (Kata, firecracker-containerd, the Go SDK) look for
 * inside the jail, <root>/run/firecracker.socket. */
#define EMBER_DEFAULT_API_SOCK "/run/firecracker.socket"

/*
 * Parse argv. On a bad argument, prints one error line and returns
 * EMBER_EXIT_USAGE (EMBER_EXIT_SNAPSHOT for a --describe-snapshot file that
 * is not a state file); for --help, --version, --snapshot-version and
 * --describe-snapshot prints and returns -1 (exit 0). Returns 0 when the
 * VM should run.
 */
int cli_parse(int argc, char **argv, struct vmm_config *cfg);

/*
 * Parse one --drive value, "path=P[,id=ID][,ro=on|off][,cache=unsafe|writeback]
 * [,io_engine=async|sync]", into @d. Returns 0 or -EINVAL with @err set.
 */
int cli_parse_drive(char *spec, struct drive_config *d, char *err, size_t err_len);

#define EMBER_MIN_MEM_MIB 2

#endif
