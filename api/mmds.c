// SPDX-License-Identifier: Apache-2.0
/*
 * The MMDS endpoints: PUT/PATCH/GET /mmds (the data store) and
 * PUT /mmds/config (which interfaces serve it, the version, the address),
 * with Firecracker's status codes and messages. VMM thread only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "routes.h"
#include "vmm.h"

static const char *not_initialized = "MMDS error: The MMDS data store is not initialized.";

/* Before boot any /mmds request creates the store; after boot there is one
 * only if the configuration made it (Firecracker's locked_mmds_or_default()
 * before, get_mmds() after). */
static bool store_ready(struct ctx *c)
{
	if (c->vmm->state == VMM_NOT_STARTED || c->vmm->state == VMM_START_FAILED)
		c->vmm->mmds.created = true;
	return c->vmm->mmds.created;
}

static unsigned int limit_exceeded(struct ctx *c)
{
	api_fail(c, "MMDS limit exceeded error: The MMDS patch request doesn't fit.");
	return 413;
}

unsigned int get_mmds(struct ctx *c)
{
	if (!store_ready(c))
		return api_fail(c, "%s", not_initialized);
	c->resp = mmds_get_all(&c->vmm->mmds);
	return c->resp ? 200 : api_fail(c, "MMDS error: out of memory");
}

unsigned int put_mmds(struct ctx *c)
{
	if (!store_ready(c))
		return api_fail(c, "%s", not_initialized);
	if (mmds_put(&c->vmm->mmds, c->body) < 0)
		return limit_exceeded(c);
	return 204;
}

unsigned int patch_mmds(struct ctx *c)
{
	if (!store_ready(c))
		return api_fail(c, "%s", not_initialized);
	int r = mmds_patch(&c->vmm->mmds, c->body);
	if (r == -ENODATA)
		return api_fail(c, "%s", not_initialized);
	if (r == -E2BIG)
		return limit_exceeded(c);
	if (r < 0)
		return api_fail(c, "MMDS error: %s", strerror(-r));
	return 204;
}

static const char *const version_values[] = { "V1", "V2", NULL };
static const struct jfield mmds_config_schema[] = {
	{ "version", J_ENUM, false, version_values, NULL },
	{ "network_interfaces", J_STRING_LIST, true, NULL, NULL },
	{ "ipv4_address", J_STRING, false, NULL, NULL },
	{ "imds_compat", J_BOOL, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static bool net_exists(const struct vmm_config *cfg, const char *id)
{
	for (unsigned int i = 0; i < cfg->nr_nets; i++)
		if (strcmp(cfg->nets[i].iface_id, id) == 0)
			return true;
	return false;
}

/* Firecracker's checks, in its order: the address, an empty list, ids that
 * name no interface. A refused request changes nothing. */
unsigned int put_mmds_config(struct ctx *c)
{
	if (api_check(c, mmds_config_schema, "mmds-config") < 0)
		return 400;
	struct vmm_config *cfg = &c->vmm->cfg;
	const char *addr = jstr(c->body, "ipv4_address");
	struct in_addr in = { htonl(MMDS_DEFAULT_IPV4) };
	if (addr && inet_pton(AF_INET, addr, &in) != 1)
		return api_fail(c,
				"An error occurred when deserializing the json body of a request: "
				"invalid IPv4 address syntax: `%s`",
				addr);
	if (!mmds_ipv4_valid(ntohl(in.s_addr)))
		return api_fail(c, "MMDS config error: The MMDS IPv4 address is not link local.");
	const json_t *ids = json_object_get(c->body, "network_interfaces");
	if (!json_array_size(ids))
		return api_fail(c,
				"MMDS config error: The list of network interface IDs that "
				"allow forwarding MMDS requests is empty.");
	size_t i;
	const json_t *id;
	json_array_foreach(ids, i, id)
	{
		if (!net_exists(cfg, json_string_value(id)))
			return api_fail(
			    c,
			    "MMDS config error: The list of network interface IDs "
			    "provided contains at least one ID that does not correspond "
			    "to any existing network interface.");
	}
	for (unsigned int n = 0; n < cfg->nr_nets; n++) {
		cfg->nets[n].mmds = false;
		json_array_foreach(ids, i, id)
		{
			if (strcmp(cfg->nets[n].iface_id, json_string_value(id)) == 0)
				cfg->nets[n].mmds = true;
		}
	}
	const char *version = jstr(c->body, "version");
	cfg->mmds = (struct mmds_config){
		.set = true,
		.version = version && strcmp(version, "V2") == 0 ? MMDS_V2 : MMDS_V1,
		.ipv4 = ntohl(in.s_addr),
		.imds_compat = jbool(c->body, "imds_compat", false),
	};
	c->vmm->mmds.created = true;
	c->vmm->mmds.version = cfg->mmds.version;
	c->vmm->mmds.imds_compat = cfg->mmds.imds_compat;
	return 204;
}

json_t *api_mmds_config_json(const struct vmm_config *cfg)
{
	if (!cfg->mmds.set)
		return json_null();
	json_t *ids = json_array();
	for (unsigned int i = 0; i < cfg->nr_nets; i++)
		if (cfg->nets[i].mmds)
			json_array_append_new(ids, json_string(cfg->nets[i].iface_id));
	char addr[INET_ADDRSTRLEN];
	struct in_addr in = { htonl(cfg->mmds.ipv4) };
	inet_ntop(AF_INET, &in, addr, sizeof(addr));
	return json_pack("{s:s, s:o, s:s, s:b}", "version",
			 cfg->mmds.version == MMDS_V2 ? "V2" : "V1", "network_interfaces", ids,
			 "ipv4_address", addr, "imds_compat", cfg->mmds.imds_compat);
}
