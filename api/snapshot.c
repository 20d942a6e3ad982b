// SPDX-License-Identifier: Apache-2.0
/* PUT /snapshot/create and PUT /snapshot/load. VMM thread only. */
#include <string.h>

#include "routes.h"
#include "snapshot/snapshot.h"
#include "vmm.h"

static const char *const snapshot_types[] = { "Full", "Diff", NULL };

static const struct jfield create_schema[] = {
	{ "snapshot_path", J_STRING, true, NULL, NULL },
	{ "mem_file_path", J_STRING, true, NULL, NULL },
	{ "snapshot_type", J_ENUM, false, snapshot_types, NULL },
	{ "version", J_STRING, false, NULL, NULL }, /* accepted, as Firecracker's clients send it */
	{ NULL, 0, false, NULL, NULL },
};

unsigned int put_snapshot_create(struct ctx *c)
{
	if (api_check(c, create_schema, "snapshot") < 0)
		return 400;
	const char *type = jstr(c->body, "snapshot_type");
	enum snapshot_type t = type && strcmp(type, "Diff") == 0 ? SNAPSHOT_DIFF : SNAPSHOT_FULL;
	if (snapshot_create(c->vmm, jstr(c->body, "snapshot_path"), jstr(c->body, "mem_file_path"),
			    t, c->err, sizeof(c->err)) < 0)
		return 400;
	return 204;
}

static const char *const backend_types[] = { "File", "Uffd", NULL };

static const char *const ws_modes[] = { "Record", "Prefetch", NULL };

static const struct jfield backend_schema[] = {
	{ "backend_type", J_ENUM, true, backend_types, NULL },
	{ "backend_path", J_STRING, true, NULL, NULL },
	/* ember's own, Uffd only: record the pages a restore touches, or copy
	 * in those a previous one recorded before the guest runs. */
	{ "working_set_path", J_STRING, false, NULL, NULL },
	{ "working_set_mode", J_ENUM, false, ws_modes, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static const struct jfield vsock_override_schema[] = {
	{ "uds_path", J_STRING, true, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static const struct jfield load_schema[] = {
	{ "snapshot_path", J_STRING, true, NULL, NULL },
	{ "mem_backend", J_OBJECT, false, NULL, backend_schema },
	{ "mem_file_path", J_STRING, false, NULL, NULL }, /* Firecracker's older form */
	{ "track_dirty_pages", J_BOOL, false, NULL, NULL },
	{ "enable_diff_snapshots", J_BOOL, false, NULL, NULL }, /* older name of the above */
	{ "resume_vm", J_BOOL, false, NULL, NULL },
	{ "vsock_override", J_OBJECT, false, NULL, vsock_override_schema },
	{ "clock_realtime", J_BOOL, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

/* Only the logger and metrics may be configured before a load. */
static bool configured(const struct vmm *vmm)
{
	const struct vmm_config *cfg = &vmm->cfg;
	return cfg->kernel_path || cfg->nr_drives || cfg->nr_nets || cfg->vsock.set ||
	    cfg->entropy.set || cfg->balloon.set;
}

unsigned int put_snapshot_load(struct ctx *c)
{
	/* network_overrides is an array of objects: checked here, the rest by the schema. */
	json_t *over = json_object_get(c->body, "network_overrides");
	if (over)
		json_incref(over), json_object_del(c->body, "network_overrides");
	unsigned int r = 400;
	if (api_check(c, load_schema, "snapshot load") < 0)
		goto out;
	if (c->vmm->state == VMM_START_FAILED) {
		api_fail(c, "A previous start or load failed; start a new ember process.");
		goto out;
	}
	if (configured(c->vmm)) {
		api_fail(c,
			 "Loading a snapshot must be the first configuration (only the logger and "
			 "metrics may come before it).");
		goto out;
	}
	struct snapshot_load a = {
		.state_path = jstr(c->body, "snapshot_path"),
		.track_dirty_pages = jbool(c->body, "track_dirty_pages", false) ||
		    jbool(c->body, "enable_diff_snapshots", false),
		.resume = jbool(c->body, "resume_vm", false),
		.clock_realtime = jbool(c->body, "clock_realtime", false),
		.request_ns = c->start_ns,
	};
	json_t *backend = json_object_get(c->body, "mem_backend");
	const char *mem_file = jstr(c->body, "mem_file_path");
	if (!!backend == !!mem_file) {
		api_fail(c, "Exactly one of mem_backend and mem_file_path is needed.");
		goto out;
	}
	a.mem_path = backend ? jstr(backend, "backend_path") : mem_file;
	a.uffd = backend && strcmp(jstr(backend, "backend_type"), "Uffd") == 0;
	const char *ws = backend ? jstr(backend, "working_set_path") : NULL;
	const char *ws_mode = backend ? jstr(backend, "working_set_mode") : NULL;
	if ((ws || ws_mode) && (!a.uffd || !ws || !ws_mode)) {
		api_fail(c,
			 "mem_backend: working_set_path and working_set_mode go together, with "
			 "backend_type Uffd");
		goto out;
	}
	if (ws && strcmp(ws_mode, "Record") == 0)
		a.ws_record = ws;
	else if (ws)
		a.ws_prefetch = ws;
	/* Uffd with a socket (Firecracker's external handler) or a memory file
	 * (ember's own): snapshot_load() tells them apart. */
	json_t *vo = json_object_get(c->body, "vsock_override");
	if (vo)
		a.vsock_uds_path = jstr(vo, "uds_path");
	if (over && !json_is_array(over)) {
		api_fail(c, "network_overrides must be an array");
		goto out;
	}
	size_t i;
	json_t *o;
	json_array_foreach(over, i, o)
	{
		const char *id = json_is_object(o) ? jstr(o, "iface_id") : NULL;
		const char *dev = json_is_object(o) ? jstr(o, "host_dev_name") : NULL;
		if (!id || !dev || json_object_size(o) != 2) {
			api_fail(c,
				 "network_overrides[%zu]: needs exactly iface_id and host_dev_name",
				 i);
			goto out;
		}
		if (a.nr_net_overrides == SNAPSHOT_MAX_OVERRIDES) {
			api_fail(c, "network_overrides: at most %d", SNAPSHOT_MAX_OVERRIDES);
			goto out;
		}
		a.net_iface[a.nr_net_overrides] = id;
		a.net_host_dev[a.nr_net_overrides++] = dev;
	}
	if (snapshot_load(c->vmm, &a, c->err, sizeof(c->err)) == 0)
		r = 204;
out:
	json_decref(over);
	return r;
}
