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

const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

uint64_t juint(const json_t *o, const char *k, uint64_t dflt)
{
	const json_t *v = json_object_get(o, k);
	return v ? (uint64_t)json_integer_value(v) : dflt;
}

bool jbool(const json_t *o, const char *k, bool dflt)
{
	const json_t *v = json_object_get(o, k);
	return v ? json_is_true(v) : dflt;
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

json_t *api_machine_json(const struct vmm *vmm)
{
	const struct vmm_config *cfg = &vmm->cfg;
	return json_pack("{s:I, s:I, s:b, s:b, s:s}", "vcpu_count", (json_int_t)cfg->vcpus,
			 "mem_size_mib", (json_int_t)cfg->mem_mib, "smt", cfg->smt,
			 "track_dirty_pages", cfg->track_dirty_pages, "huge_pages",
			 cfg->huge_pages_2m ? "2M" : "None");
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

/* The entropy device as PUT /entropy takes it (EntropyDevice), or null. */
static json_t *entropy_json(const struct entropy_config *e)
{
	if (!e->set)
		return json_null();
	const struct rng_config *l = &e->limits;
	json_t *rl = l->bw_size || l->ops_size
	    ? json_pack("{s:o, s:o}", "bandwidth",
			bucket_json(l->bw_size, l->bw_burst, l->bw_refill_ms), "ops",
			bucket_json(l->ops_size, l->ops_burst, l->ops_refill_ms))
	    : json_null();
	return json_pack("{s:o}", "rate_limiter", rl);
}

json_t *vmm_config_json(const struct vmm *vmm)
{
	const struct vmm_config *cfg = &vmm->cfg;
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
		json_t *mtu = n->limits.mtu ? json_integer(n->limits.mtu) : json_null();
		json_array_append_new(nets,
				      json_pack("{s:s, s:s, s:o, s:o}", "iface_id", n->iface_id,
						"host_dev_name", n->host_dev_name, "guest_mac",
						nullable(n->guest_mac), "mtu", mtu));
	}
	json_t *vsock = cfg->vsock.set
	    ? json_pack("{s:I, s:s}", "guest_cid", (json_int_t)cfg->vsock.guest_cid, "uds_path",
			cfg->vsock.uds_path)
	    : json_null();
	json_t *boot = json_pack("{s:o, s:o, s:o}", "kernel_image_path", nullable(cfg->kernel_path),
				 "boot_args", nullable(cfg->cmdline), "initrd_path",
				 nullable(cfg->initrd_path));
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "boot-source", boot, "drives",
			 drives, "machine-config", api_machine_json(vmm), "network-interfaces",
			 nets, "vsock", vsock, "entropy", entropy_json(&cfg->entropy), "logger",
			 json_pack("{s:o}", "log_path", nullable(cfg->log_path)), "metrics",
			 json_pack("{s:o}", "metrics_path", nullable(cfg->metrics_path)));
}

static unsigned int get_vm_config(struct ctx *c)
{
	c->resp = vmm_config_json(c->vmm);
	return 200;
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
	if (api_check(c, logger_schema, "logger") < 0)
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
			return api_fail(c, "log_path '%s' cannot be opened: %s", path,
					strerror(errno));
		int r = log_replace_fd(fd);
		if (r < 0)
			return api_fail(c, "log_path '%s': %s", path, strerror(-r));
		config_set_str(&c->vmm->cfg.log_path, path);
	}
	c->vmm->cfg.log_level = lvl;
	log_init(lvl, log_get_fd());
	return 204;
}

static const struct jfield metrics_schema[] = {
	{ "metrics_path", J_STRING, true, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static unsigned int put_metrics(struct ctx *c)
{
	if (api_check(c, metrics_schema, "metrics") < 0)
		return 400;
	if (c->vmm->metrics.fd >= 0)
		return api_fail(c, "Reinitialization of metrics not allowed.");
	const char *path = jstr(c->body, "metrics_path");
	int r = metrics_start(c->vmm, path);
	if (r < 0)
		return api_fail(c, "metrics_path '%s' cannot be opened: %s", path, strerror(-r));
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
	{ "PUT", "/logger", ANY, put_logger },
	{ "PUT", "/metrics", ANY, put_metrics },
	{ "PATCH", "/vm", POST_BOOT, patch_vm },
	{ "PUT", "/snapshot/create", POST_BOOT, put_snapshot_create },
	{ "PUT", "/snapshot/load", PRE_BOOT, put_snapshot_load },
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
		return api_fail(c, "Invalid request method and/or path: %s %s.", method, path);
	bool started = c->vmm->state != VMM_NOT_STARTED && c->vmm->state != VMM_START_FAILED;
	if (r->when == PRE_BOOT && started)
		return api_fail(c, "%s", pre_boot_msg);
	if (r->when == POST_BOOT && !started)
		return api_fail(c, "%s", post_boot_msg);
	if (strcmp(method, "GET") != 0) {
		if (!body || !body_len)
			return api_fail(c, "Empty request body: %s %s needs a JSON object.", method,
					path);
		json_error_t je;
		c->body = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &je);
		if (!c->body)
			return api_fail(c, "Invalid JSON at line %d, column %d: %s", je.line,
					je.column, je.text);
		if (!json_is_object(c->body))
			return api_fail(c, "The request body must be a JSON object.");
	}
	return r->fn(c);
}

void api_dispatch(struct vmm *vmm, struct api_call *call)
{
	struct ctx c = { .vmm = vmm };
	unsigned int status = route_call(&c, call->method, call->path, call->body, call->body_len);
	call->status = status;
	if (status >= 400) {
		/* It may quote the request (a path, an id): keep it valid JSON. */
		utf8_sanitize(c.err);
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
	if (!json_is_object(root)) {
		snprintf(err, err_len, "'%s' must hold a JSON object", path);
		json_decref(root);
		return -1;
	}
	int r = vmm_load_config_json(vmm, root, err, err_len);
	json_decref(root);
	return r;
}

int vmm_load_config_json(struct vmm *vmm, json_t *root, char *err, size_t err_len)
{
	int r = -1;
	static const char *const known[] = {
		"boot-source", "drives",  "machine-config", "network-interfaces",
		"vsock",       "entropy", "logger",	    "metrics",
		NULL
	};
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		const char *const *k = known;
		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k) {
			snprintf(err, err_len, "unknown section `%s`", key);
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
	if ((v = json_object_get(root, "entropy")) &&
	    config_section(vmm, put_entropy, v, NULL, "entropy", err, err_len) < 0)
		goto out;
	r = 0;
out:
	return r;
}
