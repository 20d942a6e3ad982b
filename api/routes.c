// SPDX-License-Identifier: Apache-2.0
/*
 * Firecracker's API: routing, the pre-boot/post-boot rules, the generic
 * endpoints (/, /version, /vm/config, /logger, /metrics, /vm, /actions) and
 * the config file (--config-file), which goes through the same handlers.
 * The configuration endpoints are in devices.c. VMM thread only.
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

#include "api.h"
#include "clock.h"
#include "exit_codes.h"
#include "log.h"
#include "routes.h"
#include "util.h"
#include "vmm.h"

enum when { ANY, PRE_BOOT, POST_BOOT };

unsigned int api_fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return 400;
}

/* The getters read null as absent, like the schema check; they are also
 * used on objects no schema has cleaned (a config-file entry's id). */
const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

uint64_t juint(const json_t *o, const char *k, uint64_t dflt)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : dflt;
}

bool jbool(const json_t *o, const char *k, bool dflt)
{
	const json_t *v = json_object_get(o, k);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int api_check(struct ctx *c, const struct jfield *schema, const char *what)
{
	return schema_check(c->body, schema, what, c->err, sizeof(c->err));
}

int api_check_file(struct ctx *c, const char *what, const char *path, bool need_write)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		api_fail(c, "%s '%s' cannot be opened: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		api_fail(c, "%s '%s' is not a regular file", what, path);
		return -1;
	}
	if (access(path, need_write ? R_OK | W_OK : R_OK) < 0) {
		api_fail(c, "%s '%s' cannot be opened: %s", what, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- GET / , /version, /vm/config ------------------------------------ */

/* Where Firecracker reports its own version, ember reports the Firecracker
 * API level it implements (vmm/version.h); its own is ember_version. */
static unsigned int get_root(struct ctx *c)
{
	c->resp = json_pack("{s:s, s:s, s:s, s:s, s:s}", "app_name", "ember", "id", c->vmm->cfg.id,
			    "state", vmm_state_name(c->vmm->state), "vmm_version",
			    EMBER_FIRECRACKER_VERSION, "ember_version", EMBER_VERSION);
	return 200;
}

static unsigned int get_version(struct ctx *c)
{
	c->resp = json_pack("{s:s, s:s}", "firecracker_version", EMBER_FIRECRACKER_VERSION,
			    "ember_version", EMBER_VERSION);
	return 200;
}

json_t *api_machine_json(const struct vmm *vmm)
{
	const struct vmm_config *cfg = &vmm->cfg;
	const char *huge_pages = "None";
	if (cfg->huge_pages_2m)
		huge_pages = "2M";
	else if (cfg->huge_pages_thp)
		huge_pages = "Transparent";
	json_t *m =
	    json_pack("{s:I, s:I, s:b, s:b, s:s}", "vcpu_count", (json_int_t)cfg->vcpus,
		      "mem_size_mib", (json_int_t)cfg->mem_mib, "smt", cfg->smt,
		      "track_dirty_pages", cfg->track_dirty_pages, "huge_pages", huge_pages);
	/* As Firecracker: only a static template shows; a custom one is the
	 * cpu-config section's. */
	if (m && cfg->cpu_template != TPL_NONE)
		json_object_set_new(m, "cpu_template",
				    json_string(cpu_template_name(cfg->cpu_template)));
	return m;
}

static json_t *nullable(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* A token bucket as Firecracker's TokenBucket object; null when unlimited. */
static json_t *bucket_json(uint64_t size, uint64_t burst, uint64_t refill_ms)
{
	if (!size)
		return json_null();
	return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)size, "one_time_burst",
			 (json_int_t)burst, "refill_time", (json_int_t)refill_ms);
}

/* A rate_limiter object as the API takes it; null when neither bucket limits. */
static json_t *limiter_json(uint64_t bw_size, uint64_t bw_burst, uint64_t bw_refill_ms,
			    uint64_t ops_size, uint64_t ops_burst, uint64_t ops_refill_ms)
{
	if (!bw_size && !ops_size)
		return json_null();
	return json_pack("{s:o, s:o}", "bandwidth", bucket_json(bw_size, bw_burst, bw_refill_ms),
			 "ops", bucket_json(ops_size, ops_burst, ops_refill_ms));
}

/* The entropy device as PUT /entropy takes it (EntropyDevice), or null. */
static json_t *entropy_json(const struct entropy_config *e)
{
	if (!e->set)
		return json_null();
	const struct rng_config *l = &e->limits;
	return json_pack("{s:o}", "rate_limiter",
			 limiter_json(l->bw_size, l->bw_burst, l->bw_refill_ms, l->ops_size,
				      l->ops_burst, l->ops_refill_ms));
}

static json_t *drive_json(const struct drive_config *d)
{
	const struct blk_drive_config *b = &d->blk;
	return json_pack("{s:s, s:o, s:b, s:s, s:b, s:s, s:o, s:s, s:n}", "drive_id", b->id,
			 "partuuid", nullable(d->partuuid), "is_root_device", d->is_root,
			 "cache_type", b->cache == BLK_CACHE_WRITEBACK ? "Writeback" : "Unsafe",
			 "is_read_only", b->read_only, "path_on_host", b->path, "rate_limiter",
			 limiter_json(b->bw_size, b->bw_burst, b->bw_refill_ms, b->ops_size,
				      b->ops_burst, b->ops_refill_ms),
			 "io_engine", b->engine == BLK_ENGINE_SYNC ? "Sync" : "Async", "socket");
}

static json_t *net_json(const struct net_config *n)
{
	const struct net_device_config *l = &n->limits;
	json_t *mtu = l->mtu ? json_integer(l->mtu) : json_null();
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "iface_id", n->iface_id, "host_dev_name",
			 n->host_dev_name, "guest_mac", nullable(n->guest_mac), "mtu", mtu,
			 "rx_rate_limiter",
			 limiter_json(l->rx_bw_size, l->rx_bw_burst, l->rx_bw_refill_ms,
				      l->rx_ops_size, l->rx_ops_burst, l->rx_ops_refill_ms),
			 "tx_rate_limiter",
			 limiter_json(l->tx_bw_size, l->tx_bw_burst, l->tx_bw_refill_ms,
				      l->tx_ops_size, l->tx_ops_burst, l->tx_ops_refill_ms));
}

/*
 * The configuration in config-file sections, as GET /vm/config shows it and
 * a snapshot keeps it: the sections ember implements. Logger and metrics
 * are shown (Firecracker shows null) when a path is set, since a reader
 * needs to know where they go.
 */
json_t *vmm_config_json(const struct vmm *vmm)
{
	const struct vmm_config *cfg = &vmm->cfg;
	json_t *drives = json_array(), *nets = json_array();
	for (unsigned int i = 0; i < cfg->nr_drives; i++)
		json_array_append_new(drives, drive_json(&cfg->drives[i]));
	for (unsigned int i = 0; i < cfg->nr_nets; i++)
		json_array_append_new(nets, net_json(&cfg->nets[i]));
	json_t *vsock = cfg->vsock.set
	    ? json_pack("{s:I, s:s}", "guest_cid", (json_int_t)cfg->vsock.guest_cid, "uds_path",
			cfg->vsock.uds_path)
	    : json_null();
	json_t *boot = cfg->kernel_path
	    ? json_pack("{s:s, s:o, s:o}", "kernel_image_path", cfg->kernel_path, "initrd_path",
			nullable(cfg->initrd_path), "boot_args", nullable(cfg->cmdline))
	    : json_null();
	json_t *logger =
	    cfg->log_path ? json_pack("{s:s}", "log_path", cfg->log_path) : json_null();
	json_t *metrics = json_null();
	if (cfg->metrics_path) {
		/* emit_id and properties only when set, so the answer loads back
		 * through PUT /metrics' own schema unchanged. */
		metrics = json_pack("{s:s}", "metrics_path", cfg->metrics_path);
		if (vmm->metrics.emit_id)
			json_object_set_new(metrics, "emit_id", json_true());
		if (vmm->metrics.properties)
			json_object_set(metrics, "properties", vmm->metrics.properties);
	}
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "drives",
			 drives, "boot-source", boot, "logger", logger, "machine-config",
			 api_machine_json(vmm), "cpu-config", api_cpu_config_json(vmm), "metrics",
			 metrics, "network-interfaces", nets, "vsock", vsock, "entropy",
			 entropy_json(&cfg->entropy), "mmds-config", api_mmds_config_json(cfg),
			 "balloon", balloon_config_json(cfg));
}

/*
 * The sections of Firecracker's config file that ember does not implement
 * yet: GET /vm/config shows them empty, and a config file may have them
 * absent, null or empty; anything they ask for is refused, not ignored.
 */
static const struct unimplemented {
	const char *name;
	bool list;
	const char *missing; /* what ember lacks */
} unimplemented[] = {
	{ "pmem", true, "virtio-pmem devices" },
	{ "memory-hotplug", false, "memory hot-plugging" },
};

#define NR_UNIMPLEMENTED (sizeof(unimplemented) / sizeof(unimplemented[0]))

/* Every section of Firecracker's config file, so the answer loads back as
 * --config-file. */
static unsigned int get_vm_config(struct ctx *c)
{
	c->resp = vmm_config_json(c->vmm);
	for (size_t i = 0; i < NR_UNIMPLEMENTED; i++)
		json_object_set_new(c->resp, unimplemented[i].name,
				    unimplemented[i].list ? json_array() : json_null());
	return 200;
}

/* ---- logger, metrics ------------------------------------------------------- */

/* level is a string checked here, not an enum: Firecracker takes its level
 * names in any case, and "Warn" for "Warning". */
static const struct jfield logger_schema[] = {
	{ "log_path", J_STRING, false, NULL, NULL },
	{ "level", J_STRING, false, NULL, NULL },
	{ "show_level", J_BOOL, false, NULL, NULL },
	{ "show_log_origin", J_BOOL, false, NULL, NULL },
	{ "module", J_STRING, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

/* Firecracker's update rules: before boot only (the route), as often as
 * wanted; a level left out goes back to Info, the other fields left out
 * keep their value; a log_path that cannot be opened changes nothing. */
static unsigned int put_logger(struct ctx *c)
{
	struct vmm_config *cfg = &c->vmm->cfg;
	if (api_check(c, logger_schema, "logger") < 0)
		return 400;
	const char *path = jstr(c->body, "log_path");
	const char *level = jstr(c->body, "level");
	const char *module = jstr(c->body, "module");
	struct log_options o = { .level = LOG_INFO,
				 .show_level = jbool(c->body, "show_level", cfg->log_show_level),
				 .show_origin =
				     jbool(c->body, "show_log_origin", cfg->log_show_origin),
				 .module = module ? module : cfg->log_module };
	if (level && log_level_parse(level, &o.level) < 0)
		return api_fail(c,
				"unknown variant `%s` for field `level` in logger, expected one of "
				"Error, Warning, Info, Debug, Trace, Off (in any case)",
				level);
	if (module && strlen(module) > LOG_MODULE_MAX)
		return api_fail(c, "module must be at most %d characters", LOG_MODULE_MAX);
	if (path && !*path)
		return api_fail(c, "log_path must not be empty");
	int r = log_configure(&o, path);
	if (r < 0)
		return api_fail(c, "log_path '%s' cannot be opened: %s", path, strerror(-r));
	if (path)
		config_set_str(&cfg->log_path, path);
	if (module)
		config_set_str(&cfg->log_module, module);
	cfg->log_level = o.level;
	cfg->log_show_level = o.show_level;
	cfg->log_show_origin = o.show_origin;
	return 204;
}

static const struct jfield metrics_schema[] = {
	{ "metrics_path", J_STRING, true, NULL, NULL },
	{ "emit_id", J_BOOL, false, NULL, NULL },
	{ "properties", J_OBJECT, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static unsigned int put_metrics(struct ctx *c)
{
	if (api_check(c, metrics_schema, "metrics") < 0)
		return 400;
	if (c->vmm->metrics.fd >= 0)
		return api_fail(c, "Reinitialization of metrics not allowed.");
	const char *path = jstr(c->body, "metrics_path");
	json_t *props = json_object_get(c->body, "properties");
	const char *key;
	json_t *v;
	json_object_foreach(props, key, v)
	{
		if (!json_is_string(v))
			return api_fail(c, "properties: the value of `%s` must be a string", key);
	}
	if (!*path)
		return api_fail(c, "metrics_path must not be empty");
	int r = metrics_start(c->vmm, path);
	if (r < 0)
		return api_fail(c, "metrics_path '%s' cannot be opened: %s", path, strerror(-r));
	c->vmm->metrics.emit_id = jbool(c->body, "emit_id", false);
	c->vmm->metrics.properties = props ? json_deep_copy(props) : NULL;
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
	if (api_check(c, vm_schema, "vm") < 0)
		return 400;
	bool pause = strcmp(jstr(c->body, "state"), "Paused") == 0;
	int r = pause ? vmm_pause(c->vmm) : vmm_resume(c->vmm);
	if (r < 0)
		return api_fail(c, "Cannot %s the microVM: %s", pause ? "pause" : "resume",
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
	if (api_check(c, action_schema, "action") < 0)
		return 400;
	const char *a = jstr(c->body, "action_type");
	bool started = c->vmm->state != VMM_NOT_STARTED;
	if (strcmp(a, "InstanceStart") == 0) {
		if (c->vmm->state == VMM_START_FAILED)
			return api_fail(
			    c, "A previous InstanceStart failed; start a new ember process.");
		if (started)
			return api_fail(c, "%s", pre_boot_msg);
		if (!c->vmm->cfg.kernel_path)
			return api_fail(
			    c,
			    "Cannot start the microVM without a kernel: PUT /boot-source first.");
		if (vmm_start(c->vmm, c->err, sizeof(c->err)) != 0)
			return 400;
		return 204;
	}
	if (strcmp(a, "SendCtrlAltDel") == 0) {
		if (!started || c->vmm->state == VMM_START_FAILED)
			return api_fail(c, "%s", post_boot_msg);
		if (vmm_send_ctrl_alt_del(c->vmm) < 0)
			return api_fail(c, "Cannot send Ctrl+Alt+Del to the guest");
		return 204;
	}
	if (c->vmm->metrics.fd < 0)
		return api_fail(c,
				"FlushMetrics: metrics are not configured (PUT /metrics first).");
	int r = metrics_flush(c->vmm);
	if (r == -EAGAIN)
		return api_fail(
		    c,
		    "FlushMetrics: the line was dropped: the metrics FIFO's reader "
		    "has not made room for it (logger.missed_metrics_count counts it).");
	if (r < 0)
		return api_fail(c, "FlushMetrics failed: %s", strerror(-r));
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
	{ "PUT", "/entropy", PRE_BOOT, put_entropy },
	{ "PUT", "/cpu-config", PRE_BOOT, put_cpu_config },
	{ "PUT", "/serial", PRE_BOOT, put_serial },
	{ "PUT", "/balloon", PRE_BOOT, put_balloon },
	{ "GET", "/balloon", ANY, get_balloon },
	{ "PATCH", "/balloon", POST_BOOT, patch_balloon },
	{ "GET", "/balloon/statistics", POST_BOOT, get_balloon_stats },
	{ "PATCH", "/balloon/statistics", POST_BOOT, patch_balloon_stats },
	{ "PUT", "/logger", PRE_BOOT, put_logger },
	{ "PUT", "/metrics", ANY, put_metrics },
	{ "PATCH", "/vm", POST_BOOT, patch_vm },
	{ "PUT", "/snapshot/create", POST_BOOT, put_snapshot_create },
	{ "PUT", "/snapshot/load", PRE_BOOT, put_snapshot_load },
	{ "PUT", "/actions", ANY, put_actions },
	{ "GET", "/mmds", ANY, get_mmds },
	{ "PUT", "/mmds", ANY, put_mmds },
	{ "PATCH", "/mmds", ANY, patch_mmds },
	{ "PUT", "/mmds/config", PRE_BOOT, put_mmds_config },
};

/* Firecracker's endpoints ember does not serve yet: a 400 that says so. */
static const struct {
	const char *prefix;
	const char *what;
} unserved[] = {
	{ "/balloon/hinting", "free page hinting (a Firecracker developer preview)" },
	{ "/pmem/", "virtio-pmem devices" },
	{ "/hotplug/memory", "memory hotplug (virtio-mem)" },
};

static unsigned int no_route(struct ctx *c, const char *method, const char *path)
{
	for (size_t i = 0; i < sizeof(unserved) / sizeof(unserved[0]); i++) {
		size_t n = strlen(unserved[i].prefix);
		if (strncmp(path, unserved[i].prefix, n) == 0 &&
		    (path[n] == 0 || path[n] == '/' || unserved[i].prefix[n - 1] == '/'))
			return api_fail(c,
					"Invalid request method and/or path: %s %s. ember does not "
					"implement %s yet.",
					method, path, unserved[i].what);
	}
	return api_fail(c, "Invalid request method and/or path: %s %s.", method, path);
}

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

/*
 * Firecracker's body rules come first, before the path is looked at: a GET
 * carries no body, a PUT or PATCH carries one (a zero-length body counts as
 * none). Then the route, then the body's JSON, then the boot state.
 */
static unsigned int route_call(struct ctx *c, const char *method, const char *path,
			       const char *body, size_t body_len)
{
	bool has_body = body && body_len;
	if (strcmp(method, "GET") == 0 && has_body)
		return api_fail(c, "GET request cannot have a body.");
	if (strcmp(method, "PUT") == 0 && !has_body)
		return api_fail(c, "Empty PUT request.");
	if (strcmp(method, "PATCH") == 0 && !has_body)
		return api_fail(c, "Empty PATCH request.");
	const struct route *r = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].method, method) == 0 &&
		    path_matches(&routes[i], path, &c->id)) {
			r = &routes[i];
			break;
		}
	}
	if (!r)
		return no_route(c, method, path);
	/* The MMDS store takes any JSON value, as Firecracker's does. */
	bool any_json = r->fn == put_mmds || r->fn == patch_mmds;
	if (has_body) {
		json_error_t je;
		c->body = json_loadb(
		    body, body_len, JSON_REJECT_DUPLICATES | (any_json ? JSON_DECODE_ANY : 0), &je);
		if (!c->body)
			return api_fail(c,
					"An error occurred when deserializing the json body of a "
					"request: %s at line %d column %d.",
					je.text, je.line, je.column);
		if (!any_json && !json_is_object(c->body))
			return api_fail(c,
					"An error occurred when deserializing the json body of "
					"a request: the body must be a JSON object.");
	}
	bool started = c->vmm->state != VMM_NOT_STARTED && c->vmm->state != VMM_START_FAILED;
	if (r->when == PRE_BOOT && started)
		return api_fail(c, "%s", pre_boot_msg);
	if (r->when == POST_BOOT && !started)
		return api_fail(c, "%s", post_boot_msg);
	return r->fn(c);
}

/* The audit trail, in Firecracker's words: each request at Info as it
 * arrives (its body quoted and cut short: bodies can be 50 KiB), then its
 * outcome, at Info or, for a failure, at Error with the fault_message. */
static void log_request(const struct api_call *call, char *qpath, size_t qpath_len)
{
	log_quote(qpath, qpath_len, call->path, strlen(call->path));
	if (!log_enabled(LOG_INFO))
		return;
	if (!call->body_len) {
		log_info("The API server received a %s request on %s.", call->method, qpath);
		return;
	}
	char qbody[768];
	log_quote(qbody, sizeof(qbody), call->body, call->body_len);
	log_info("The API server received a %s request on %s with body %s.", call->method, qpath,
		 qbody);
}

void api_dispatch(struct vmm *vmm, struct api_call *call)
{
	struct ctx c = { .vmm = vmm, .start_ns = call->start_ns };
	char qpath[256];
	log_request(call, qpath, sizeof(qpath));
	uint64_t t0 = clock_now_ns();
	unsigned int status = route_call(&c, call->method, call->path, call->body, call->body_len);
	uint64_t handler_us = (clock_now_ns() - t0) / 1000;
	call->status = status;
	if (status >= 400) {
		/* It may quote the request (a path, an id): keep it valid JSON. */
		utf8_sanitize(c.err);
		json_t *e = json_pack("{s:s}", "fault_message", c.err);
		call->response = json_dumps(e, JSON_COMPACT);
		json_decref(e);
		log_err("The request %s %s failed. Status code: %u %s. Message: %s", call->method,
			qpath, status, api_status_text(status), c.err);
	} else {
		if (c.resp) /* GET /mmds may answer any JSON value */
			call->response = json_dumps(c.resp, JSON_COMPACT | JSON_ENCODE_ANY);
		log_info("The request %s %s was executed successfully. Status code: %u %s.",
			 call->method, qpath, status, api_status_text(status));
	}
	uint64_t us = (clock_now_ns() - call->start_ns) / 1000;
	metrics_api_request(vmm, call->method, call->path, c.body, status, us, handler_us);
	json_decref(c.resp);
	json_decref(c.body);
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
	if (!json_is_object(root)) {
		snprintf(err, err_len, "'%s' must hold a JSON object", path);
		json_decref(root);
		return -1;
	}
	int r = vmm_load_config_json(vmm, root, err, err_len);
	json_decref(root);
	return r;
}

/*
 * The sections ember implements, in the order Firecracker applies them
 * (logger and metrics first, so the rest is logged and counted).
 */
static const struct section {
	const char *name;
	handler_fn fn;
	const char *id_field; /* a list of objects keyed by this field */
} sections[] = {
	{ "logger", put_logger, NULL },
	{ "metrics", put_metrics, NULL },
	{ "machine-config", put_machine, NULL },
	{ "cpu-config", config_cpu_config, NULL },
	{ "boot-source", put_boot_source, NULL },
	{ "drives", put_drive, "drive_id" },
	{ "network-interfaces", put_net, "iface_id" },
	{ "mmds-config", put_mmds_config, NULL },
	{ "vsock", put_vsock, NULL },
	{ "entropy", put_entropy, NULL },
	{ "balloon", put_balloon, NULL },
};

#define NR_SECTIONS (sizeof(sections) / sizeof(sections[0]))

static bool asks_nothing(const json_t *v)
{
	return json_is_null(v) || (json_is_object(v) && !json_object_size(v)) ||
	    (json_is_array(v) && !json_array_size(v));
}

/* Every key names a section; the unimplemented ones ask for nothing. */
static int config_sections_known(json_t *root, char *err, size_t err_len)
{
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		bool known = false;
		for (size_t i = 0; i < NR_SECTIONS && !known; i++)
			known = strcmp(sections[i].name, key) == 0;
		for (size_t i = 0; i < NR_UNIMPLEMENTED && !known; i++) {
			if (strcmp(unimplemented[i].name, key) != 0)
				continue;
			if (!asks_nothing(v)) {
				snprintf(err, err_len,
					 "%s: ember does not implement %s yet; leave the section "
					 "out, or make it null or empty",
					 key, unimplemented[i].missing);
				return -1;
			}
			known = true;
		}
		if (!known) {
			snprintf(err, err_len, "unknown section `%s`", key);
			return -1;
		}
	}
	return 0;
}

int vmm_load_config_json(struct vmm *vmm, json_t *root, char *err, size_t err_len)
{
	if (config_sections_known(root, err, err_len) < 0)
		return -1;
	for (const struct section *sec = sections; sec < sections + NR_SECTIONS; sec++) {
		json_t *v = json_object_get(root, sec->name);
		if (!v || json_is_null(v)) /* null: absent, as everywhere */
			continue;
		if (!sec->id_field) {
			if (config_section(vmm, sec->fn, v, NULL, sec->name, err, err_len) < 0)
				return -1;
			continue;
		}
		if (!json_is_array(v)) {
			snprintf(err, err_len, "`%s` must be an array", sec->name);
			return -1;
		}
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item)
		{
			const char *id = jstr(item, sec->id_field);
			if (config_section(vmm, sec->fn, item, id ? id : "", sec->name, err,
					   err_len) < 0)
				return -1;
		}
	}
	return 0;
}
