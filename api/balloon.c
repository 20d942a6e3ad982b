// SPDX-License-Identifier: Apache-2.0
/*
 * The balloon's endpoints, as Firecracker serves them: PUT /balloon before
 * boot, GET /balloon at any time, PATCH /balloon (target) and GET/PATCH
 * /balloon/statistics after boot. VMM thread only.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "routes.h"
#include "vmm.h"

#define NO_BALLOON "No balloon device found."

static const struct jfield balloon_schema[] = {
	{ "amount_mib", J_UINT, true, NULL, NULL },
	{ "deflate_on_oom", J_BOOL, true, NULL, NULL },
	{ "stats_polling_interval_s", J_UINT, false, NULL, NULL },
	{ "free_page_hinting", J_BOOL, false, NULL, NULL },
	{ "free_page_reporting", J_BOOL, false, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static const struct jfield balloon_update_schema[] = {
	{ "amount_mib", J_UINT, true, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

static const struct jfield balloon_stats_update_schema[] = {
	{ "stats_polling_interval_s", J_UINT, true, NULL, NULL },
	{ NULL, 0, false, NULL, NULL },
};

/* amount_mib: a u32 in Firecracker, and no more than the guest's memory. */
static int amount_valid(struct ctx *c, const char *err_prefix, uint64_t amount, uint64_t mem_mib)
{
	if (amount > UINT32_MAX) {
		api_fail(c, "%samount_mib %llu does not fit in 32 bits", err_prefix,
			 (unsigned long long)amount);
		return -1;
	}
	if (amount > mem_mib) {
		api_fail(c, "%sAmount of pages requested is too large.", err_prefix);
		return -1;
	}
	return 0;
}

static int interval_valid(struct ctx *c, uint64_t s)
{
	if (s > UINT16_MAX) {
		api_fail(c, "stats_polling_interval_s %llu does not fit in 16 bits (at most %u s)",
			 (unsigned long long)s, UINT16_MAX);
		return -1;
	}
	return 0;
}

unsigned int put_balloon(struct ctx *c)
{
	if (api_check(c, balloon_schema, "balloon") < 0)
		return 400;
	struct vmm_config *cfg = &c->vmm->cfg;
	uint64_t amount = juint(c->body, "amount_mib", 0);
	uint64_t interval = juint(c->body, "stats_polling_interval_s", 0);
	if (amount_valid(c, "Balloon config error: ", amount, cfg->mem_mib) < 0 ||
	    interval_valid(c, interval) < 0)
		return 400;
	if (jbool(c->body, "free_page_hinting", false))
		return api_fail(c,
				"free_page_hinting: ember does not implement free page hinting "
				"(a Firecracker developer preview); free_page_reporting releases "
				"free guest memory without the host asking");
	cfg->balloon.set = true;
	cfg->balloon.dev = (struct balloon_config){
		.amount_mib = (uint32_t)amount,
		.deflate_on_oom = jbool(c->body, "deflate_on_oom", false),
		.stats_polling_interval_s = (uint16_t)interval,
		.free_page_reporting = jbool(c->body, "free_page_reporting", false),
	};
	return 204;
}

json_t *balloon_config_json(const struct vmm_config *cfg)
{
	if (!cfg->balloon.set)
		return json_null();
	const struct balloon_config *b = &cfg->balloon.dev;
	return json_pack("{s:I, s:b, s:I, s:b, s:b}", "amount_mib", (json_int_t)b->amount_mib,
			 "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
			 (json_int_t)b->stats_polling_interval_s, "free_page_hinting", 0,
			 "free_page_reporting", b->free_page_reporting);
}

unsigned int get_balloon(struct ctx *c)
{
	if (!c->vmm->cfg.balloon.set)
		return api_fail(c, "Balloon config error: " NO_BALLOON);
	c->resp = balloon_config_json(&c->vmm->cfg);
	return 200;
}

unsigned int patch_balloon(struct ctx *c)
{
	if (api_check(c, balloon_update_schema, "balloon update") < 0)
		return 400;
	struct vmm *vmm = c->vmm;
	if (!vmm->balloon)
		return api_fail(c, "Balloon update error: " NO_BALLOON);
	uint64_t amount = juint(c->body, "amount_mib", 0);
	if (amount_valid(c, "Balloon update error: ", amount, vmm->cfg.mem_mib) < 0)
		return 400;
	/* Unlike Firecracker, a target set before the driver started is kept
	 * for it rather than refused: the driver reads it when it starts. */
	virtio_balloon_set_target(vmm->balloon, (uint32_t)amount);
	vmm->cfg.balloon.dev.amount_mib = (uint32_t)amount;
	return 204;
}

/* Firecracker's BalloonStats: the sizes, then each statistic the driver sent. */
static json_t *stats_json(uint32_t target, uint32_t actual, const struct balloon_stats *s)
{
	static const char *const names[BALLOON_NR_STATS] = {
		"swap_in",	    "swap_out",	   "major_faults",
		"minor_faults",	    "free_memory", "total_memory",
		"available_memory", "disk_caches", "hugetlb_allocations",
		"hugetlb_failures", "oom_kill",	   "alloc_stall",
		"async_scan",	    "direct_scan", "async_reclaim",
		"direct_reclaim",
	};
	const unsigned int per_mib = 1u << (20 - BALLOON_PAGE_SHIFT);
	json_t *o =
	    json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)target, "actual_pages",
		      (json_int_t)actual, "target_mib", (json_int_t)(target / per_mib),
		      "actual_mib", (json_int_t)(actual / per_mib));
	for (unsigned int i = 0; i < BALLOON_NR_STATS; i++)
		if (s->mask & (1u << i))
			/* JSON integers are signed 64-bit here; a guest's u64 above
			 * that is shown as the largest. */
			json_object_set_new(o, names[i],
					    json_integer(s->val[i] > INT64_MAX
							     ? INT64_MAX
							     : (json_int_t)s->val[i]));
	return o;
}

unsigned int get_balloon_stats(struct ctx *c)
{
	struct vmm *vmm = c->vmm;
	if (!vmm->balloon)
		return api_fail(c, NO_BALLOON);
	if (!vmm->cfg.balloon.dev.stats_polling_interval_s)
		return api_fail(c, "Statistics for the balloon device are not enabled");
	uint32_t target, actual;
	struct balloon_stats s;
	virtio_balloon_read(vmm->balloon, &target, &actual, &s);
	c->resp = stats_json(target, actual, &s);
	return 200;
}

unsigned int patch_balloon_stats(struct ctx *c)
{
	if (api_check(c, balloon_stats_update_schema, "balloon statistics update") < 0)
		return 400;
	struct vmm *vmm = c->vmm;
	if (!vmm->balloon)
		return api_fail(c, "Balloon update error: " NO_BALLOON);
	uint64_t s = juint(c->body, "stats_polling_interval_s", 0);
	if (interval_valid(c, s) < 0)
		return 400;
	uint16_t now = vmm->cfg.balloon.dev.stats_polling_interval_s;
	if (s == now)
		return 204;
	/* Firecracker's rule: the statistics queue was negotiated (or not) at
	 * boot, so only the interval may change. */
	if (!now || !s)
		return api_fail(c,
				"Balloon update error: the statistics cannot be %s after boot "
				"(stats_polling_interval_s was %u)",
				s ? "enabled" : "disabled", now);
	int r = virtio_balloon_set_interval(vmm->balloon, (uint16_t)s);
	if (r < 0)
		return api_fail(c, "Balloon update error: cannot arm the statistics timer: %s",
				strerror(-r));
	vmm->cfg.balloon.dev.stats_polling_interval_s = (uint16_t)s;
	return 204;
}
