// SPDX-License-Identifier: Apache-2.0
/*
 * The API's configuration endpoints: boot source, machine configuration,
 * drives, network interfaces, vsock and entropy. VMM thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "routes.h"
#include "vmm.h"

/* A GPT partition UUID (8-4-4-4-12 hex digits) is the longest partuuid. */
#define PARTUUID_MAX 36
/* The MTU range Firecracker's API allows (68: the IPv4 minimum). */
#define NET_MTU_MIN 68
#define NET_MTU_MAX 65535

/* ---- boot-source --------------------------------------------------------- */

static const struct jfield boot_source_schema[] = {
	{ "kernel_image_path", J_STRING, true, NULL, NULL },
	{ "boot_args", J_STRING, false, NULL, NULL },
	{ "initrd_path", J_STRING, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

unsigned int put_boot_source(struct ctx *c)
{
	if (api_check(c, boot_source_schema, "boot-source") < 0)
		return 400;
	const char *kernel = jstr(c->body, "kernel_image_path");
	const char *initrd = jstr(c->body, "initrd_path");
	const char *args = jstr(c->body, "boot_args");
	if (api_check_file(c, "kernel image", kernel, false) < 0 ||
	    (initrd && api_check_file(c, "initrd", initrd, false) < 0))
		return 400;
	if (args && strlen(args) >= CMDLINE_MAX)
		return api_fail(c, "boot_args is %zu bytes, the kernel accepts at most %u",
				strlen(args), CMDLINE_MAX - 1);
	struct vmm_config *cfg = &c->vmm->cfg;
	config_set_str(&cfg->kernel_path, kernel);
	config_set_str(&cfg->initrd_path, initrd);
	config_set_str(&cfg->cmdline, args);
	cfg->default_boot_args = !args; /* as Firecracker: its default command line */
	return 204;
}

/* ---- machine-config ------------------------------------------------------ */

/* Every value Firecracker's schema has, so that the ones ember cannot honour
 * yet get a reason instead of "unknown variant". */
static const char *const huge_pages_values[] = { "None", "Transparent", "2M", NULL };
static const char *const cpu_template_values[] = { "None", "C3",  "T2",	  "T2S",
						   "T2CL", "T2A", "V1N1", NULL };

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
	if (api_check(c, put ? machine_schema_put : machine_schema_patch, "machine-config") < 0)
		return 400;
	struct vmm_config *cfg = &c->vmm->cfg;
	uint64_t vcpus = juint(c->body, "vcpu_count", put ? 0 : cfg->vcpus);
	uint64_t mem = juint(c->body, "mem_size_mib", put ? 0 : cfg->mem_mib);
	bool smt = jbool(c->body, "smt", put ? false : cfg->smt);
	if (vcpus < 1 || vcpus > VM_MAX_VCPUS)
		return api_fail(c, "Invalid vCPU count: %llu (must be 1 to %d)",
				(unsigned long long)vcpus, VM_MAX_VCPUS);
	if (mem < EMBER_MIN_MEM_MIB)
		return api_fail(c, "Invalid memory size: %llu MiB (at least %d)",
				(unsigned long long)mem, EMBER_MIN_MEM_MIB);
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	if (pages > 0 && mem > (((uint64_t)pages * (uint64_t)page) >> 20))
		return api_fail(c, "Invalid memory size: %llu MiB exceeds the host's memory",
				(unsigned long long)mem);
	/* Firecracker's rule: with SMT, 1 or an even number of vCPUs. */
	if (smt && vcpus > 1 && vcpus % 2)
		return api_fail(c,
				"The number of vCPUs must be greater than 0, less than %d and must "
				"be 1 or an even number if SMT is enabled.",
				VM_MAX_VCPUS);
	const char *tmpl = jstr(c->body, "cpu_template");
	if (tmpl && strcmp(tmpl, "V1N1") == 0)
		return api_fail(c,
				"cpu_template: V1N1 is an aarch64 template; ember runs on x86_64");
	const char *hp = jstr(c->body, "huge_pages");
	if (hp && strcmp(hp, "2M") == 0 && mem % 2)
		return api_fail(c, "mem_size_mib must be a multiple of 2 with 2M huge pages");
	cfg->vcpus = (unsigned int)vcpus;
	cfg->mem_mib = mem;
	cfg->smt = smt;
	if (tmpl) { /* left out: the template stays, static or custom */
		cfg->cpu_template = cpu_template_by_name(tmpl);
		free(cfg->cpu_custom);
		cfg->cpu_custom = NULL;
	}
	cfg->track_dirty_pages =
	    jbool(c->body, "track_dirty_pages", put ? false : cfg->track_dirty_pages);
	cfg->huge_pages_2m = hp ? strcmp(hp, "2M") == 0 : (put ? false : cfg->huge_pages_2m);
	cfg->huge_pages_thp =
	    hp ? strcmp(hp, "Transparent") == 0 : (put ? false : cfg->huge_pages_thp);
	return 204;
}

unsigned int put_machine(struct ctx *c)
{
	return apply_machine(c, true);
}

unsigned int patch_machine(struct ctx *c)
{
	return apply_machine(c, false);
}

unsigned int get_machine(struct ctx *c)
{
	c->resp = api_machine_json(c->vmm);
	return 200;
}

/* ---- drives ---------------------------------------------------------------- */

static const char *const cache_values[] = { "Unsafe", "Writeback", NULL };
static const char *const engine_values[] = { "Sync", "Async", NULL };

static const struct jfield drive_schema[] = {
	{ "drive_id", J_STRING, true, NULL, NULL },
	/* Required unless `socket` (vhost-user) is given, which ember refuses. */
	{ "path_on_host", J_STRING, false, NULL, NULL },
	{ "is_root_device", J_BOOL, true, NULL, NULL },
	{ "is_read_only", J_BOOL, false, NULL, NULL },
	{ "partuuid", J_STRING, false, NULL, NULL },
	{ "cache_type", J_ENUM, false, cache_values, NULL },
	{ "io_engine", J_ENUM, false, engine_values, NULL },
	{ "rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ "socket", J_STRING, false, NULL, NULL },
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
		api_fail(c, "The id from the path [%s] does not match the id from the body [%s]!",
			 c->id, body_id);
		return -1;
	}
	if (!config_id_valid(c->id)) {
		api_fail(c, "Invalid id [%s]: use 1 to 64 characters of [A-Za-z0-9_-]", c->id);
		return -1;
	}
	return 0;
}

/* A rate_limiter object's two buckets, in the order the device configs keep them. */
struct limits {
	uint64_t bw_size, bw_burst, bw_refill_ms, ops_size, ops_burst, ops_refill_ms;
};

/*
 * A rate_limiter object over the limits @l in force: a bucket the object
 * names replaces that bucket (a size of 0 turns it off), a bucket it leaves
 * out keeps its limits, as Firecracker's PATCH does (its BucketUpdate::None).
 */
static struct limits read_limits(const json_t *rl, struct limits l)
{
	const json_t *bw = json_object_get(rl, "bandwidth");
	const json_t *ops = json_object_get(rl, "ops");
	if (bw) {
		l.bw_size = juint(bw, "size", 0);
		l.bw_burst = juint(bw, "one_time_burst", 0);
		l.bw_refill_ms = juint(bw, "refill_time", 0);
	}
	if (ops) {
		l.ops_size = juint(ops, "size", 0);
		l.ops_burst = juint(ops, "one_time_burst", 0);
		l.ops_refill_ms = juint(ops, "refill_time", 0);
	}
	return l;
}

static void rate_limits(const json_t *rl, struct blk_drive_config *d)
{
	struct limits l =
	    read_limits(rl,
			(struct limits){ d->bw_size, d->bw_burst, d->bw_refill_ms, d->ops_size,
					 d->ops_burst, d->ops_refill_ms });
	d->bw_size = l.bw_size;
	d->bw_burst = l.bw_burst;
	d->bw_refill_ms = l.bw_refill_ms;
	d->ops_size = l.ops_size;
	d->ops_burst = l.ops_burst;
	d->ops_refill_ms = l.ops_refill_ms;
}

/* rx_rate_limiter / tx_rate_limiter of a network interface body, into @d. */
static void net_limits(const json_t *body, struct net_device_config *d)
{
	const json_t *rx = json_object_get(body, "rx_rate_limiter");
	const json_t *tx = json_object_get(body, "tx_rate_limiter");
	if (rx) {
		struct limits l = read_limits(
		    rx,
		    (struct limits){ d->rx_bw_size, d->rx_bw_burst, d->rx_bw_refill_ms,
				     d->rx_ops_size, d->rx_ops_burst, d->rx_ops_refill_ms });
		d->rx_bw_size = l.bw_size, d->rx_bw_burst = l.bw_burst,
		d->rx_bw_refill_ms = l.bw_refill_ms;
		d->rx_ops_size = l.ops_size, d->rx_ops_burst = l.ops_burst,
		d->rx_ops_refill_ms = l.ops_refill_ms;
	}
	if (tx) {
		struct limits l = read_limits(
		    tx,
		    (struct limits){ d->tx_bw_size, d->tx_bw_burst, d->tx_bw_refill_ms,
				     d->tx_ops_size, d->tx_ops_burst, d->tx_ops_refill_ms });
		d->tx_bw_size = l.bw_size, d->tx_bw_burst = l.bw_burst,
		d->tx_bw_refill_ms = l.bw_refill_ms;
		d->tx_ops_size = l.ops_size, d->tx_ops_burst = l.ops_burst,
		d->tx_ops_refill_ms = l.ops_refill_ms;
	}
}

static int rate_limits_valid(struct ctx *c, const json_t *rl)
{
	const char *names[2] = { "bandwidth", "ops" };
	for (int i = 0; i < 2; i++) {
		const json_t *b = json_object_get(rl, names[i]);
		uint64_t refill = b ? juint(b, "refill_time", 0) : 0;
		if (b && juint(b, "size", 0) && !refill) {
			api_fail(
			    c, "rate_limiter.%s: refill_time must be more than 0 when size is set",
			    names[i]);
			return -1;
		}
		if (refill > RATE_LIMITER_MAX_REFILL_MS) {
			api_fail(c, "rate_limiter.%s: refill_time must be at most %llu ms",
				 names[i], (unsigned long long)RATE_LIMITER_MAX_REFILL_MS);
			return -1;
		}
	}
	return 0;
}

unsigned int put_drive(struct ctx *c)
{
	if (api_check(c, drive_schema, "drive") < 0 || id_matches(c, "drive_id") < 0)
		return 400;
	if (jstr(c->body, "socket"))
		return api_fail(c,
				"socket: vhost-user block backends are not supported by ember; "
				"give path_on_host (a virtio-block drive) instead");
	struct vmm_config *cfg = &c->vmm->cfg;
	bool ro = jbool(c->body, "is_read_only", false);
	bool root = jbool(c->body, "is_root_device", false);
	const char *path = jstr(c->body, "path_on_host");
	if (!path)
		return api_fail(c, "missing field `path_on_host` in drive");
	if (api_check_file(c, "drive file", path, !ro) < 0)
		return 400;
	const json_t *rl = json_object_get(c->body, "rate_limiter");
	if (rl && rate_limits_valid(c, rl) < 0)
		return 400;
	const char *partuuid = jstr(c->body, "partuuid");
	if (partuuid &&
	    (!*partuuid || strlen(partuuid) > PARTUUID_MAX ||
	     strspn(partuuid, "0123456789abcdefABCDEF-") != strlen(partuuid)))
		return api_fail(c,
				"partuuid must be 1 to %d hexadecimal digits and dashes (a GPT "
				"partition UUID, or an MBR disk signature with partition number)",
				PARTUUID_MAX);
	unsigned int slot = cfg->nr_drives;
	for (unsigned int i = 0; i < cfg->nr_drives; i++) {
		if (strcmp(cfg->drives[i].blk.id, c->id) == 0)
			slot = i;
		else if (root && cfg->drives[i].is_root)
			return api_fail(c, "A root block device already exists!");
	}
	if (slot == VMM_MAX_DRIVES)
		return api_fail(c, "Too many drives: at most %d", VMM_MAX_DRIVES);
	if (slot + 1 + cfg->nr_nets > VIRTIO_MAX_DEVICES)
		return api_fail(c, "Too many virtio devices: at most %d", VIRTIO_MAX_DEVICES);
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
		.partuuid = partuuid ? strdup(partuuid) : NULL,
	};
	if (rl)
		rate_limits(rl, &d->blk);
	return 204;
}

unsigned int patch_drive(struct ctx *c)
{
	if (api_check(c, drive_patch_schema, "drive") < 0 || id_matches(c, "drive_id") < 0)
		return 400;
	struct vmm *vmm = c->vmm;
	struct virtio_blk *b = NULL;
	for (unsigned int i = 0; i < vmm->nr_blks; i++)
		if (strcmp(vmm->blks[i].id, c->id) == 0)
			b = &vmm->blks[i];
	if (!b)
		return api_fail(c, "No drive with id [%s]", c->id);
	const char *path = jstr(c->body, "path_on_host");
	const json_t *rl = json_object_get(c->body, "rate_limiter");
	if (rl && rate_limits_valid(c, rl) < 0)
		return 400;
	if (path && api_check_file(c, "drive file", path, !b->cfg.read_only) < 0)
		return 400;
	/* The limits in force, as GET /vm/config and snapshots show them. */
	struct blk_drive_config *d = NULL;
	for (unsigned int i = 0; i < vmm->cfg.nr_drives; i++)
		if (strcmp(vmm->cfg.drives[i].blk.id, c->id) == 0)
			d = &vmm->cfg.drives[i].blk;
	struct blk_drive_config limits = d ? *d : (struct blk_drive_config){ 0 };
	if (rl)
		rate_limits(rl, &limits);
	char err[200] = "";
	if (virtio_blk_update(b, path, rl ? &limits : NULL, err, sizeof(err)) < 0)
		return api_fail(c, "drive [%s]: %s", c->id, err);
	if (d && path) {
		free((void *)(uintptr_t)d->path);
		d->path = strdup(path);
	}
	if (d && rl)
		rate_limits(rl, d);
	return 204;
}

/* ---- network interfaces and vsock (validated and stored) ------------------ */

static const struct jfield net_schema[] = {
	{ "iface_id", J_STRING, true, NULL, NULL },
	{ "host_dev_name", J_STRING, true, NULL, NULL },
	{ "guest_mac", J_STRING, false, NULL, NULL },
	{ "mtu", J_UINT, false, NULL, NULL },
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

unsigned int put_net(struct ctx *c)
{
	if (api_check(c, net_schema, "network interface") < 0 || id_matches(c, "iface_id") < 0)
		return 400;
	const char *dev = jstr(c->body, "host_dev_name");
	const char *mac = jstr(c->body, "guest_mac");
	if (!*dev || strlen(dev) >= 16)
		return api_fail(c, "host_dev_name must be 1 to 15 characters (a TAP device name)");
	if (mac && !mac_valid(mac))
		return api_fail(c, "guest_mac '%s' is not a MAC address like 06:00:ac:10:00:02",
				mac);
	uint64_t mtu = juint(c->body, "mtu", 0);
	if (json_is_integer(json_object_get(c->body, "mtu")) &&
	    (mtu < NET_MTU_MIN || mtu > NET_MTU_MAX))
		return api_fail(c, "mtu must be from %d to %d, not %llu", NET_MTU_MIN, NET_MTU_MAX,
				(unsigned long long)mtu);
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
			return api_fail(c, "The host device name [%s] is already used by [%s]", dev,
					cfg->nets[i].iface_id);
	}
	if (slot == VMM_MAX_NET)
		return api_fail(c, "Too many network interfaces: at most %d", VMM_MAX_NET);
	struct net_config *n = &cfg->nets[slot];
	if (slot == cfg->nr_nets) {
		memset(n, 0, sizeof(*n));
		cfg->nr_nets++;
	}
	config_set_str(&n->iface_id, c->id);
	config_set_str(&n->host_dev_name, dev);
	config_set_str(&n->guest_mac, mac);
	memset(&n->limits, 0, sizeof(n->limits));
	net_limits(c->body, &n->limits);
	n->limits.mtu = (uint16_t)mtu; /* 0: not given, the device advertises 1500 */
	return 204;
}

unsigned int patch_net(struct ctx *c)
{
	if (api_check(c, net_patch_schema, "network interface") < 0 ||
	    id_matches(c, "iface_id") < 0)
		return 400;
	const char *lims[2] = { "rx_rate_limiter", "tx_rate_limiter" };
	for (int i = 0; i < 2; i++) {
		const json_t *rl = json_object_get(c->body, lims[i]);
		if (rl && rate_limits_valid(c, rl) < 0)
			return 400;
	}
	struct vmm *vmm = c->vmm;
	for (unsigned int i = 0; i < vmm->nr_nets; i++) {
		struct virtio_net *n = &vmm->nets[i];
		if (strcmp(n->cfg.id, c->id) != 0)
			continue;
		/* A direction left out keeps its limits. */
		struct net_device_config d = n->cfg;
		net_limits(c->body, &d);
		virtio_net_set_limits(n, &d);
		n->cfg = d;
		/* GET /vm/config and snapshots show what is now in force. */
		for (unsigned int j = 0; j < vmm->cfg.nr_nets; j++)
			if (strcmp(vmm->cfg.nets[j].iface_id, c->id) == 0)
				net_limits(c->body, &vmm->cfg.nets[j].limits);
		return 204;
	}
	return api_fail(c, "No network interface with id [%s] is attached", c->id);
}

static const struct jfield vsock_schema[] = {
	{ "guest_cid", J_UINT, true, NULL, NULL },
	{ "uds_path", J_STRING, true, NULL, NULL },
	{ "vsock_id", J_STRING, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

unsigned int put_vsock(struct ctx *c)
{
	if (api_check(c, vsock_schema, "vsock") < 0)
		return 400;
	uint64_t cid = juint(c->body, "guest_cid", 0);
	const char *uds = jstr(c->body, "uds_path");
	if (cid < 3 || cid > UINT32_MAX)
		return api_fail(
		    c, "guest_cid must be from 3 to 4294967295 (0-2 are reserved), not %llu",
		    (unsigned long long)cid);
	/* Room for "_<port>", the guest-initiated connections' socket names. */
	if (!*uds || strlen(uds) > VSOCK_UDS_PATH_MAX)
		return api_fail(c,
				"uds_path must be 1 to %d characters (a Unix socket path, plus "
				"room for a _<port> suffix)",
				VSOCK_UDS_PATH_MAX);
	struct vmm_config *cfg = &c->vmm->cfg;
	cfg->vsock.set = true;
	cfg->vsock.guest_cid = (uint32_t)cid;
	config_set_str(&cfg->vsock.uds_path, uds);
	return 204;
}

/* ---- entropy (virtio-rng) -------------------------------------------------- */

static const struct jfield entropy_schema[] = {
	{ "rate_limiter", J_OBJECT, false, NULL, schema_rate_limiter },
	{ NULL, 0, false, NULL, NULL },
};

unsigned int put_entropy(struct ctx *c)
{
	if (api_check(c, entropy_schema, "entropy") < 0)
		return 400;
	const json_t *rl = json_object_get(c->body, "rate_limiter");
	if (rl && rate_limits_valid(c, rl) < 0)
		return 400;
	struct limits l = rl ? read_limits(rl, (struct limits){ 0 }) : (struct limits){ 0 };
	struct vmm_config *cfg = &c->vmm->cfg;
	cfg->entropy.set = true;
	cfg->entropy.limits = (struct rng_config){
		.bw_size = l.bw_size,
		.bw_burst = l.bw_burst,
		.bw_refill_ms = l.bw_refill_ms,
		.ops_size = l.ops_size,
		.ops_burst = l.ops_burst,
		.ops_refill_ms = l.ops_refill_ms,
	};
	return 204;
}

/* ---- serial ------------------------------------------------------------------ */

static const struct jfield serial_schema[] = {
	{ "serial_out_path", J_STRING, false, NULL, NULL },
	{ "rate_limiter", J_OBJECT, false, NULL, schema_token_bucket },
	{ NULL, 0, false, NULL, NULL },
};

/*
 * PUT /serial, before boot, as Firecracker: where COM1's output goes
 * (serial_out_path; left out: stdout, Firecracker's default) and a token
 * bucket on its bytes. The file is opened when the VM starts, so a FIFO
 * may get its reader later; here its directory must exist and a path that
 * exists must be a file or FIFO ember may write, so that a typo is a 400
 * now rather than a failed InstanceStart.
 */
unsigned int put_serial(struct ctx *c)
{
	if (api_check(c, serial_schema, "serial") < 0)
		return 400;
	const char *path = jstr(c->body, "serial_out_path");
	const json_t *rl = json_object_get(c->body, "rate_limiter");
	uint64_t size = rl ? juint(rl, "size", 0) : 0,
		 refill = rl ? juint(rl, "refill_time", 0) : 0;
	if (size && !refill)
		return api_fail(c,
				"rate_limiter: refill_time must be more than 0 when size is set");
	if (refill > RATE_LIMITER_MAX_REFILL_MS)
		return api_fail(c, "rate_limiter: refill_time must be at most %llu ms",
				(unsigned long long)RATE_LIMITER_MAX_REFILL_MS);
	if (path) {
		struct stat st;
		if (!*path)
			return api_fail(c, "serial_out_path must not be empty");
		if (stat(path, &st) == 0) {
			if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
				return api_fail(c, "serial_out_path '%s' is not a file or FIFO",
						path);
			if (access(path, W_OK) < 0)
				return api_fail(c, "serial_out_path '%s' cannot be opened: %s",
						path, strerror(errno));
		} else {
			char *dir = strdup(path);
			if (!dir)
				return api_fail(c, "out of memory");
			char *slash = strrchr(dir, '/');
			const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
			int ok = access(d, W_OK | X_OK);
			int e = errno;
			free(dir);
			if (ok < 0)
				return api_fail(c, "serial_out_path '%s' cannot be created: %s",
						path, strerror(e));
		}
	}
	struct vmm_config *cfg = &c->vmm->cfg;
	cfg->serial = path ? SERIAL_FILE : SERIAL_STDOUT;
	config_set_str(&cfg->serial_path, path);
	cfg->serial_rl_size = size;
	cfg->serial_rl_burst = rl ? juint(rl, "one_time_burst", 0) : 0;
	cfg->serial_rl_refill_ms = refill;
	return 204;
}
