// SPDX-License-Identifier: Apache-2.0
/*
 * Firecracker's API, endpoint by endpoint: routing, the pre-boot/post-boot
 * rules, request validation, and the effect on the VMM. Runs on the VMM
 * thread. The config file (--config-file) goes through the same handlers.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "exit_codes.h"
#include "log.h"
#include "schema.h"
#include "vmm.h"

#define ERR_MAX 512

enum when { ANY, PRE_BOOT, POST_BOOT };

struct ctx {
	struct vmm *vmm;
	const char *id; /* {id} in the path, if any */
	json_t *body; /* parsed body (object) or NULL */
	json_t *resp; /* 200 body, if any */
	char err[ERR_MAX];
};

typedef unsigned int (*handler_fn)(struct ctx *c);

static unsigned int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static unsigned int fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return 400;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static uint64_t juint(const json_t *o, const char *k, uint64_t dflt)
{
	const json_t *v = json_object_get(o, k);
	return v ? (uint64_t)json_integer_value(v) : dflt;
}

static bool jbool(const json_t *o, const char *k, bool dflt)
{
	const json_t *v = json_object_get(o, k);
	return v ? json_is_true(v) : dflt;
}

static int check(struct ctx *c, const struct jfield *schema, const char *what)
{
	return schema_check(c->body, schema, what, c->err, sizeof(c->err));
}

/* A file the monitor will open later: check now, as Firecracker does. */
static int check_file(struct ctx *c, const char *what, const char *path, bool need_write)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fail(c, "%s '%s' cannot be opened: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(c, "%s '%s' is not a regular file", what, path);
		return -1;
	}
	if (access(path, need_write ? R_OK | W_OK : R_OK) < 0) {
		fail(c, "%s '%s' cannot be opened: %s", what, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- GET / , /version, /vm/config ------------------------------------ */

static unsigned int get_root(struct ctx *c)
{
	c->resp = json_pack("{s:s, s:s, s:s, s:s}", "app_name", "ember", "id", c->vmm->cfg.id,
			    "state", vmm_state_name(c->vmm->state), "vmm_version", EMBER_VERSION);
	return 200;
}

static unsigned int get_version(struct ctx *c)
{
	c->resp = json_pack("{s:s, s:s}", "firecracker_version", EMBER_VERSION, "ember_version",
			    EMBER_VERSION);
	return 200;
}

static json_t *machine_json(const struct vmm_config *cfg)
{
	return json_pack("{s:I, s:I, s:b, s:b, s:s}", "vcpu_count", (json_int_t)cfg->vcpus,
			 "mem_size_mib", (json_int_t)cfg->mem_mib, "smt", cfg->smt,
			 "track_dirty_pages", cfg->track_dirty_pages, "huge_pages",
			 cfg->huge_pages_2m ? "2M" : "None");
}

static json_t *nullable(const char *s)
{
	return s ? json_string(s) : json_null();
}

static unsigned int get_vm_config(struct ctx *c)
{
	const struct vmm_config *cfg = &c->vmm->cfg;
	json_t *drives = json_array(), *nets = json_array();
	for (unsigned int i = 0; i < cfg->nr_drives; i++) {
		const struct drive_config *d = &cfg->drives[i];
		json_array_append_new(
		    drives,
		    json_pack("{s:s, s:s, s:b, s:b, s:o, s:s, s:s}", "drive_id", d->blk.id,
			      "path_on_host", d->blk.path, "is_root_device", d->is_root,
			      "is_read_only", d->blk.read_only, "partuuid", nullable(d->partuuid),
			      "cache_type",
			      d->blk.cache == BLK_CACHE_WRITEBACK ? "Writeback" : "Unsafe",
			      "io_engine", d->blk.engine == BLK_ENGINE_SYNC ? "Sync" : "Async"));
	}
	for (unsigned int i = 0; i < cfg->nr_nets; i++) {
		const struct net_config *n = &cfg->nets[i];
		json_array_append_new(nets,
				      json_pack("{s:s, s:s, s:o}", "iface_id", n->iface_id,
						"host_dev_name", n->host_dev_name, "guest_mac",
						nullable(n->guest_mac)));
	}
	json_t *vsock = cfg->vsock.set
	    ? json_pack("{s:I, s:s}", "guest_cid", (json_int_t)cfg->vsock.guest_cid, "uds_path",
			cfg->vsock.uds_path)
	    : json_null();
	json_t *boot = json_pack("{s:o, s:o, s:o}", "kernel_image_path", nullable(cfg->kernel_path),
				 "boot_args", nullable(cfg->cmdline), "initrd_path",
				 nullable(cfg->initrd_path));
	c->resp =
	    json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "boot-source", boot, "drives", drives,
		      "machine-config", machine_json(cfg), "network-interfaces", nets, "vsock",
		      vsock, "logger", json_pack("{s:o}", "log_path", nullable(cfg->log_path)),
		      "metrics", json_pack("{s:o}", "metrics_path", nullable(cfg->metrics_path)));
	return 200;
}

/* ---- boot-source --------------------------------------------------------- */

static const struct jfield boot_source_schema[] = {
	{ "kernel_image_path", J_STRING, true, NULL, NULL },
	{ "boot_args", J_STRING, false, NULL, NULL },
	{ "initrd_path", J_STRING, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static unsigned int put_boot_source(struct ctx *c)
{
	if (check(c, boot_source_schema, "boot-source") < 0)
		return 400;
	const char *kernel = jstr(c->body, "kernel_image_path");
	const char *initrd = jstr(c->body, "initrd_path");
	const char *args = jstr(c->body, "boot_args");
	if (check_file(c, "kernel image", kernel, false) < 0 ||
	    (initrd && check_file(c, "initrd", initrd, false) < 0))
		return 400;
	if (args && strlen(args) >= CMDLINE_MAX)
		return fail(c, "boot_args is %zu bytes, the kernel accepts at most %u",
			    strlen(args), CMDLINE_MAX - 1);
	struct vmm_config *cfg = &c->vmm->cfg;
	config_set_str(&cfg->kernel_path, kernel);
	config_set_str(&cfg->initrd_path, initrd);
	config_set_str(&cfg->cmdline, args);
	return 204;
}

/* ---- machine-config ------------------------------------------------------ */

static const char *const huge_pages_values[] = { "None", "2M", NULL };
static const char *const cpu_template_values[] = { "None", NULL };

static const struct jfield machine_schema_put[] = {
	{ "vcpu_count", J_UINT, true, NULL, NULL },
	{ "mem_size_mib", J_UINT, true, NULL, NULL },
	{ "smt", J_BOOL, false, NULL, NULL },
	{ "track_dirty_pages", J_BOOL, false, NULL, NULL },
	{ "huge_pages", J_ENUM, false, huge_pages_values, NULL },
	{ "cpu_template", J_ENUM, false, cpu_template_values, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static const struct jfield machine_schema_patch[] = {
	{ "vcpu_count", J_UINT, false, NULL, NULL },
	{ "mem_size_mib", J_UINT, false, NULL, NULL },
	{ "smt", J_BOOL, false, NULL, NULL },
	{ "track_dirty_pages", J_BOOL, false, NULL, NULL },
	{ "huge_pages", J_ENUM, false, huge_pages_values, NULL },
	{ "cpu_template", J_ENUM, false, cpu_template_values, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static unsigned int apply_machine(struct ctx *c, bool put)
{
	if (check(c, put ? machine_schema_put : machine_schema_patch, "machine-config") < 0)
		return 400;
	struct vmm_config *cfg = &c->vmm->cfg;
	uint64_t vcpus = juint(c->body, "vcpu_count", put ? 0 : cfg->vcpus);
	uint64_t mem = juint(c->body, "mem_size_mib", put ? 0 : cfg->mem_mib);
	bool smt = jbool(c->body, "smt", put ? false : cfg->smt);
	if (vcpus < 1 || vcpus > VM_MAX_VCPUS)
		return fail(c, "Invalid vCPU count: %llu (must be 1 to %d)",
			    (unsigned long long)vcpus, VM_MAX_VCPUS);
	if (mem < EMBER_MIN_MEM_MIB)
		return fail(c, "Invalid memory size: %llu MiB (at least %d)",
			    (unsigned long long)mem, EMBER_MIN_MEM_MIB);
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	if (pages > 0 && mem > (((uint64_t)pages * (uint64_t)page) >> 20))
		return fail(c, "Invalid memory size: %llu MiB exceeds the host's memory",
			    (unsigned long long)mem);
	if (smt)
		return fail(c, "smt: simultaneous multithreading is not supported by ember");
	const char *hp = jstr(c->body, "huge_pages");
	if (hp && strcmp(hp, "2M") == 0 && mem % 2)
		return fail(c, "mem_size_mib must be a multiple of 2 with 2M huge pages");
	cfg->vcpus = (unsigned int)vcpus;
	cfg->mem_mib = mem;
	cfg->smt = smt;
	cfg->track_dirty_pages =
	    jbool(c->body, "track_dirty_pages", put ? false : cfg->track_dirty_pages);
	cfg->huge_pages_2m = hp ? strcmp(hp, "2M") == 0 : (put ? false : cfg->huge_pages_2m);
	return 204;
}

static unsigned int put_machine(struct ctx *c)
{
	return apply_machine(c, true);
}

static unsigned int patch_machine(struct ctx *c)
{
	return apply_machine(c, false);
}

static unsigned int get_machine(struct ctx *c)
{
	c->resp = machine_json(&c->vmm->cfg);
	return 200;
}

/* ---- drives ---------------------------------------------------------------- */

static const char *const cache_values[] = { "Unsafe", "Writeback", NULL };
static const char *const engine_values[] = { "Sync", "Async", NULL };

static const struct jfield drive_schema[] = {
	{ "drive_id", J_STRING, true, NULL, NULL },
	{ "path_on_host", J_STRING, true, NULL, NULL },
	{ "is_root_device", J_BOOL, true, NULL, NULL },
	{ "is_read_only", J_BOOL, false, NULL, NULL },
	{ "partuuid", J_STRING, false, NULL, NULL },
	{ "cache_type", J_ENUM, false, cache_values, NULL },
	{ "io_engine", J_ENUM, false, engine_values, NULL },
	{ "rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ NULL, 0, false, NULL, NULL },
};

static const struct jfield drive_patch_schema[] = {
	{ "drive_id", J_STRING, true, NULL, NULL },
	{ "path_on_host", J_STRING, false, NULL, NULL },
	{ "rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ NULL, 0, false, NULL, NULL },
};

static int id_matches(struct ctx *c, const char *field)
{
	const char *body_id = jstr(c->body, field);
	if (strcmp(body_id, c->id) != 0) {
		fail(c, "The id from the path [%s] does not match the id from the body [%s]!",
		     c->id, body_id);
		return -1;
	}
	if (!config_id_valid(c->id)) {
		fail(c, "Invalid id [%s]: use 1 to 64 characters of [A-Za-z0-9_-]", c->id);
		return -1;
	}
	return 0;
}

static void rate_limits(const json_t *rl, struct blk_drive_config *d)
{
	const json_t *bw = json_object_get(rl, "bandwidth");
	const json_t *ops = json_object_get(rl, "ops");
	d->bw_size = juint(bw, "size", 0);
	d->bw_burst = juint(bw, "one_time_burst", 0);
	d->bw_refill_ms = juint(bw, "refill_time", 0);
	d->ops_size = juint(ops, "size", 0);
	d->ops_burst = juint(ops, "one_time_burst", 0);
	d->ops_refill_ms = juint(ops, "refill_time", 0);
}

static int rate_limits_valid(struct ctx *c, const json_t *rl)
{
	const char *names[2] = { "bandwidth", "ops" };
	for (int i = 0; i < 2; i++) {
		const json_t *b = json_object_get(rl, names[i]);
		if (b && juint(b, "size", 0) && !juint(b, "refill_time", 0)) {
			fail(c, "rate_limiter.%s: refill_time must be more than 0 when size is set",
			     names[i]);
			return -1;
		}
	}
	return 0;
}

static unsigned int put_drive(struct ctx *c)
{
	if (check(c, drive_schema, "drive") < 0 || id_matches(c, "drive_id") < 0)
		return 400;
	struct vmm_config *cfg = &c->vmm->cfg;
	bool ro = jbool(c->body, "is_read_only", false);
	bool root = jbool(c->body, "is_root_device", false);
	const char *path = jstr(c->body, "path_on_host");
	if (check_file(c, "drive file", path, !ro) < 0)
		return 400;
	const json_t *rl = json_object_get(c->body, "rate_limiter");
	if (rl && rate_limits_valid(c, rl) < 0)
		return 400;
	unsigned int slot = cfg->nr_drives;
	for (unsigned int i = 0; i < cfg->nr_drives; i++) {
		if (strcmp(cfg->drives[i].blk.id, c->id) == 0)
			slot = i;
		else if (root && cfg->drives[i].is_root)
			return fail(c, "A root block device already exists!");
	}
	if (slot == VMM_MAX_DRIVES)
		return fail(c, "Too many drives: at most %d", VMM_MAX_DRIVES);
	if (slot + 1 + cfg->nr_nets > VIRTIO_MAX_DEVICES)
		return fail(c, "Too many virtio devices: at most %d", VIRTIO_MAX_DEVICES);
	struct drive_config *d = &cfg->drives[slot];
	if (slot == cfg->nr_drives) {
		memset(d, 0, sizeof(*d));
		cfg->nr_drives++;
	}
	free((void *)(uintptr_t)d->blk.id);
	free((void *)(uintptr_t)d->blk.path);
	free(d->partuuid);
	const char *engine = jstr(c->body, "io_engine");
	const char *cache = jstr(c->body, "cache_type");
	*d = (struct drive_config){
		.blk = { .id = strdup(c->id),
			 .path = strdup(path),
			 .read_only = ro,
			 .cache = cache && strcmp(cache, "Writeback") == 0 ? BLK_CACHE_WRITEBACK
									   : BLK_CACHE_UNSAFE,
			 .engine = engine && strcmp(engine, "Sync") == 0 ? BLK_ENGINE_SYNC
									 : BLK_ENGINE_URING },
		.is_root = root,
		.partuuid = jstr(c->body, "partuuid") ? strdup(jstr(c->body, "partuuid")) : NULL,
	};
	if (rl)
		rate_limits(rl, &d->blk);
	return 204;
}

static unsigned int patch_drive(struct ctx *c)
{
	if (check(c, drive_patch_schema, "drive") < 0 || id_matches(c, "drive_id") < 0)
		return 400;
	struct vmm *vmm = c->vmm;
	struct virtio_blk *b = NULL;
	for (unsigned int i = 0; i < vmm->nr_blks; i++)
		if (strcmp(vmm->blks[i].id, c->id) == 0)
			b = &vmm->blks[i];
	if (!b)
		return fail(c, "No drive with id [%s]", c->id);
	const char *path = jstr(c->body, "path_on_host");
	const json_t *rl = json_object_get(c->body, "rate_limiter");
	if (rl && rate_limits_valid(c, rl) < 0)
		return 400;
	if (path && check_file(c, "drive file", path, !b->cfg.read_only) < 0)
		return 400;
	struct blk_drive_config limits = { 0 };
	if (rl)
		rate_limits(rl, &limits);
	char err[200] = "";
	if (virtio_blk_update(b, path, rl ? &limits : NULL, err, sizeof(err)) < 0)
		return fail(c, "drive [%s]: %s", c->id, err);
	if (path) {
		struct vmm_config *cfg = &vmm->cfg;
		for (unsigned int i = 0; i < cfg->nr_drives; i++)
			if (strcmp(cfg->drives[i].blk.id, c->id) == 0) {
				free((void *)(uintptr_t)cfg->drives[i].blk.path);
				cfg->drives[i].blk.path = strdup(path);
			}
	}
	return 204;
}

/* ---- network interfaces and vsock (validated and stored) ------------------ */

static const struct jfield net_schema[] = {
	{ "iface_id", J_STRING, true, NULL, NULL },
	{ "host_dev_name", J_STRING, true, NULL, NULL },
	{ "guest_mac", J_STRING, false, NULL, NULL },
	{ "rx_rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ "tx_rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ NULL, 0, false, NULL, NULL },
};

static const struct jfield net_patch_schema[] = {
	{ "iface_id", J_STRING, true, NULL, NULL },
	{ "rx_rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ "tx_rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ NULL, 0, false, NULL, NULL },
};

static bool mac_valid(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	}
	return true;
}

static unsigned int put_net(struct ctx *c)
{
	if (check(c, net_schema, "network interface") < 0 || id_matches(c, "iface_id") < 0)
		return 400;
	const char *dev = jstr(c->body, "host_dev_name");
	const char *mac = jstr(c->body, "guest_mac");
	if (!*dev || strlen(dev) >= 16)
		return fail(c, "host_dev_name must be 1 to 15 characters (a TAP device name)");
	if (mac && !mac_valid(mac))
		return fail(c, "guest_mac '%s' is not a MAC address like 06:00:ac:10:00:02", mac);
	const char *lims[2] = { "rx_rate_limiter", "tx_rate_limiter" };
	for (int i = 0; i < 2; i++) {
		const json_t *rl = json_object_get(c->body, lims[i]);
		if (rl && rate_limits_valid(c, rl) < 0)
			return 400;
	}
	struct vmm_config *cfg = &c->vmm->cfg;
	unsigned int slot = cfg->nr_nets;
	for (unsigned int i = 0; i < cfg->nr_nets; i++) {
		if (strcmp(cfg->nets[i].iface_id, c->id) == 0)
			slot = i;
		else if (strcmp(cfg->nets[i].host_dev_name, dev) == 0)
			return fail(c, "The host device name [%s] is already used by [%s]", dev,
				    cfg->nets[i].iface_id);
	}
	if (slot == VMM_MAX_NET)
		return fail(c, "Too many network interfaces: at most %d", VMM_MAX_NET);
	struct net_config *n = &cfg->nets[slot];
	if (slot == cfg->nr_nets) {
		memset(n, 0, sizeof(*n));
		cfg->nr_nets++;
	}
	config_set_str(&n->iface_id, c->id);
	config_set_str(&n->host_dev_name, dev);
	config_set_str(&n->guest_mac, mac);
	return 204;
}

static unsigned int patch_net(struct ctx *c)
{
	if (check(c, net_patch_schema, "network interface") < 0 || id_matches(c, "iface_id") < 0)
		return 400;
	/* No VM can be running with an interface yet (InstanceStart refuses them). */
	return fail(c, "No network interface with id [%s] is attached", c->id);
}

static const struct jfield vsock_schema[] = {
	{ "guest_cid", J_UINT, true, NULL, NULL },
	{ "uds_path", J_STRING, true, NULL, NULL },
	{ "vsock_id", J_STRING, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static unsigned int put_vsock(struct ctx *c)
{
	if (check(c, vsock_schema, "vsock") < 0)
		return 400;
	uint64_t cid = juint(c->body, "guest_cid", 0);
	const char *uds = jstr(c->body, "uds_path");
	if (cid < 3 || cid > UINT32_MAX)
		return fail(c,
			    "guest_cid must be from 3 to 4294967295 (0-2 are reserved), not %llu",
			    (unsigned long long)cid);
	if (!*uds || strlen(uds) >= 108)
		return fail(c, "uds_path must be 1 to 107 characters (a Unix socket path)");
	struct vmm_config *cfg = &c->vmm->cfg;
	cfg->vsock.set = true;
	cfg->vsock.guest_cid = (uint32_t)cid;
	config_set_str(&cfg->vsock.uds_path, uds);
	return 204;
}

/* ---- logger, metrics ------------------------------------------------------- */

static const char *const level_values[] = { "Error", "Warning", "Info", "Debug",
					    "Trace", "Off",	NULL };

static const struct jfield logger_schema[] = {
	{ "log_path", J_STRING, false, NULL, NULL },
	{ "level", J_ENUM, false, level_values, NULL },
	{ "show_level", J_BOOL, false, NULL, NULL },
	{ "show_log_origin", J_BOOL, false, NULL, NULL },
	{ "module", J_STRING, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static unsigned int put_logger(struct ctx *c)
{
	if (check(c, logger_schema, "logger") < 0)
		return 400;
	const char *path = jstr(c->body, "log_path");
	const char *level = jstr(c->body, "level");
	enum log_level lvl = c->vmm->cfg.log_level;
	int fd = -1;
	if (level && strcmp(level, "Off") == 0)
		lvl = LOG_OFF;
	else if (level && strcmp(level, "Trace") == 0)
		lvl = LOG_DEBUG;
	else if (level)
		log_level_parse(level, &lvl);
	if (path) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
		if (fd < 0)
			return fail(c, "log_path '%s' cannot be opened: %s", path, strerror(errno));
		config_set_str(&c->vmm->cfg.log_path, path);
	}
	c->vmm->cfg.log_level = lvl;
	log_init(lvl, fd >= 0 ? fd : log_get_fd());
	return 204;
}

static const struct jfield metrics_schema[] = {
	{ "metrics_path", J_STRING, true, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static unsigned int put_metrics(struct ctx *c)
{
	if (check(c, metrics_schema, "metrics") < 0)
		return 400;
	if (c->vmm->metrics.fd >= 0)
		return fail(c, "Reinitialization of metrics not allowed.");
	const char *path = jstr(c->body, "metrics_path");
	int r = metrics_start(c->vmm, path);
	if (r < 0)
		return fail(c, "metrics_path '%s' cannot be opened: %s", path, strerror(-r));
	config_set_str(&c->vmm->cfg.metrics_path, path);
	return 204;
}

/* ---- vm state, actions ----------------------------------------------------- */

static const char *const vm_state_values[] = { "Paused", "Resumed", NULL };
static const struct jfield vm_schema[] = {
	{ "state", J_ENUM, true, vm_state_values, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static unsigned int patch_vm(struct ctx *c)
{
	if (check(c, vm_schema, "vm") < 0)
		return 400;
	bool pause = strcmp(jstr(c->body, "state"), "Paused") == 0;
	int r = pause ? vmm_pause(c->vmm) : vmm_resume(c->vmm);
	if (r < 0)
		return fail(c, "Cannot %s the microVM: %s", pause ? "pause" : "resume",
			    strerror(-r));
	return 204;
}

static const char *const action_values[] = { "InstanceStart", "SendCtrlAltDel", "FlushMetrics",
					     NULL };
static const struct jfield action_schema[] = {
	{ "action_type", J_ENUM, true, action_values, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static const char *pre_boot_msg =
    "The requested operation is not supported after starting the microVM.";
static const char *post_boot_msg =
    "The requested operation is not supported before starting the microVM.";

static unsigned int put_actions(struct ctx *c)
{
	if (check(c, action_schema, "action") < 0)
		return 400;
	const char *a = jstr(c->body, "action_type");
	bool started = c->vmm->state != VMM_NOT_STARTED;
	if (strcmp(a, "InstanceStart") == 0) {
		if (c->vmm->state == VMM_START_FAILED)
			return fail(c,
				    "A previous InstanceStart failed; start a new ember process.");
		if (started)
			return fail(c, "%s", pre_boot_msg);
		if (!c->vmm->cfg.kernel_path)
			return fail(
			    c,
			    "Cannot start the microVM without a kernel: PUT /boot-source first.");
		if (vmm_start(c->vmm, c->err, sizeof(c->err)) != 0)
			return 400;
		return 204;
	}
	if (strcmp(a, "SendCtrlAltDel") == 0) {
		if (!started || c->vmm->state == VMM_START_FAILED)
			return fail(c, "%s", post_boot_msg);
		if (vmm_send_ctrl_alt_del(c->vmm) < 0)
			return fail(c, "Cannot send Ctrl+Alt+Del to the guest");
		return 204;
	}
	if (c->vmm->metrics.fd < 0)
		return fail(c, "FlushMetrics: metrics are not configured (PUT /metrics first).");
	int r = metrics_flush(c->vmm);
	if (r < 0)
		return fail(c, "FlushMetrics failed: %s", strerror(-r));
	return 204;
}

/* ---- routing --------------------------------------------------------------- */

struct route {
	const char *method;
	const char *path; /* ending in '/' when an {id} follows */
	enum when when;
	handler_fn fn;
};

static const struct route routes[] = {
	{ "GET", "/", ANY, get_root },
	{ "GET", "/version", ANY, get_version },
	{ "GET", "/vm/config", ANY, get_vm_config },
	{ "PUT", "/boot-source", PRE_BOOT, put_boot_source },
	{ "GET", "/machine-config", ANY, get_machine },
	{ "PUT", "/machine-config", PRE_BOOT, put_machine },
	{ "PATCH", "/machine-config", PRE_BOOT, patch_machine },
	{ "PUT", "/drives/", PRE_BOOT, put_drive },
	{ "PATCH", "/drives/", POST_BOOT, patch_drive },
	{ "PUT", "/network-interfaces/", PRE_BOOT, put_net },
	{ "PATCH", "/network-interfaces/", POST_BOOT, patch_net },
	{ "PUT", "/vsock", PRE_BOOT, put_vsock },
	{ "PUT", "/logger", ANY, put_logger },
	{ "PUT", "/metrics", ANY, put_metrics },
	{ "PATCH", "/vm", POST_BOOT, patch_vm },
	{ "PUT", "/actions", ANY, put_actions },
};

static bool path_matches(const struct route *r, const char *path, const char **id)
{
	size_t n = strlen(r->path);
	if (r->path[n - 1] == '/' && n > 1) {
		if (strncmp(path, r->path, n) != 0 || !path[n] || strchr(path + n, '/'))
			return false;
		*id = path + n;
		return true;
	}
	return strcmp(path, r->path) == 0;
}

static unsigned int route_call(struct ctx *c, const char *method, const char *path,
			       const char *body, size_t body_len)
{
	const struct route *r = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].method, method) == 0 &&
		    path_matches(&routes[i], path, &c->id)) {
			r = &routes[i];
			break;
		}
	}
	if (!r)
		return fail(c, "Invalid request method and/or path: %s %s.", method, path);
	bool started = c->vmm->state != VMM_NOT_STARTED && c->vmm->state != VMM_START_FAILED;
	if (r->when == PRE_BOOT && started)
		return fail(c, "%s", pre_boot_msg);
	if (r->when == POST_BOOT && !started)
		return fail(c, "%s", post_boot_msg);
	if (strcmp(method, "GET") != 0) {
		if (!body || !body_len)
			return fail(c, "Empty request body: %s %s needs a JSON object.", method,
				    path);
		json_error_t je;
		c->body = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &je);
		if (!c->body)
			return fail(c, "Invalid JSON at line %d, column %d: %s", je.line, je.column,
				    je.text);
		if (!json_is_object(c->body))
			return fail(c, "The request body must be a JSON object.");
	}
	return r->fn(c);
}

void api_dispatch(struct vmm *vmm, struct api_call *call)
{
	struct ctx c = { .vmm = vmm };
	unsigned int status = route_call(&c, call->method, call->path, call->body, call->body_len);
	call->status = status;
	if (status >= 400) {
		json_t *e = json_pack("{s:s}", "fault_message", c.err);
		call->response = json_dumps(e, JSON_COMPACT);
		json_decref(e);
		log_warn("API %s %s: %u %s", call->method, call->path, status, c.err);
	} else if (c.resp) {
		call->response = json_dumps(c.resp, JSON_COMPACT);
	}
	json_decref(c.resp);
	json_decref(c.body);
	uint64_t us = (clock_now_ns() - call->start_ns) / 1000;
	metrics_api_request(vmm, us, status >= 400);
}

/* ---- --config-file ---------------------------------------------------------- */

static int config_section(struct vmm *vmm, handler_fn fn, json_t *obj, const char *id,
			  const char *what, char *err, size_t err_len)
{
	struct ctx c = { .vmm = vmm, .id = id, .body = obj };
	unsigned int status = fn(&c);
	json_decref(c.resp);
	if (status >= 400) {
		snprintf(err, err_len, "%s: %s", what, c.err);
		return -1;
	}
	return 0;
}

int vmm_load_config_file(struct vmm *vmm, const char *path, char *err, size_t err_len)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, err_len, "cannot parse '%s': %s (line %d, column %d)", path, je.text,
			 je.line, je.column);
		return -1;
	}
	int r = -1;
	static const char *const known[] = { "boot-source",    "drives",
					     "machine-config", "network-interfaces",
					     "vsock",	       "logger",
					     "metrics",	       NULL };
	const char *key;
	json_t *v;
	if (!json_is_object(root)) {
		snprintf(err, err_len, "'%s' must hold a JSON object", path);
		goto out;
	}
	json_object_foreach(root, key, v)
	{
		const char *const *k = known;
		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k) {
			snprintf(err, err_len, "unknown section `%s` in '%s'", key, path);
			goto out;
		}
	}
	/* Logger and metrics first, so the rest is logged and counted. */
	if ((v = json_object_get(root, "logger")) &&
	    config_section(vmm, put_logger, v, NULL, "logger", err, err_len) < 0)
		goto out;
	if ((v = json_object_get(root, "metrics")) &&
	    config_section(vmm, put_metrics, v, NULL, "metrics", err, err_len) < 0)
		goto out;
	if ((v = json_object_get(root, "machine-config")) &&
	    config_section(vmm, put_machine, v, NULL, "machine-config", err, err_len) < 0)
		goto out;
	if ((v = json_object_get(root, "boot-source")) &&
	    config_section(vmm, put_boot_source, v, NULL, "boot-source", err, err_len) < 0)
		goto out;
	const char *lists[2] = { "drives", "network-interfaces" };
	handler_fn fns[2] = { put_drive, put_net };
	const char *ids[2] = { "drive_id", "iface_id" };
	for (int l = 0; l < 2; l++) {
		json_t *arr = json_object_get(root, lists[l]);
		if (!arr)
			continue;
		if (!json_is_array(arr)) {
			snprintf(err, err_len, "`%s` must be an array", lists[l]);
			goto out;
		}
		size_t i;
		json_array_foreach(arr, i, v)
		{
			const char *id = json_is_object(v) ? jstr(v, ids[l]) : NULL;
			if (config_section(vmm, fns[l], v, id ? id : "", lists[l], err, err_len) <
			    0)
				goto out;
		}
	}
	if ((v = json_object_get(root, "vsock")) &&
	    config_section(vmm, put_vsock, v, NULL, "vsock", err, err_len) < 0)
		goto out;
	r = 0;
out:
	json_decref(root);
	return r;
}
