// SPDX-License-Identifier: Apache-2.0
/*
 * PUT /cpu-config and the config file's "cpu-config" section: a custom CPU
 * template as JSON (Firecracker's schema, docs/cpu_templates/schema.json)
 * into struct cpu_template, and back for GET /vm/config. VMM thread only.
 *
 * The whole body is parsed into a scratch template first and only then
 * replaces the configured one: a malformed piece changes nothing.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"
#include "vmm.h"

static int only_keys(struct ctx *c, const json_t *o, const char *what, const char *const *keys)
{
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)(uintptr_t)o, k, v)
	{
		bool ok = false;
		for (const char *const *p = keys; *p && !ok; p++)
			ok = strcmp(*p, k) == 0;
		if (!ok) {
			api_fail(c, "unknown field `%s` in %s", k, what);
			return -1;
		}
	}
	return 0;
}

/* Member @k of @o as a string; -1 with c->err when missing or not a string. */
static const char *need_str(struct ctx *c, const json_t *o, const char *k, const char *what)
{
	const json_t *v = json_object_get(o, k);
	if (!v) {
		api_fail(c, "missing field `%s` in %s", k, what);
		return NULL;
	}
	if (!json_is_string(v)) {
		api_fail(c, "invalid type for `%s` in %s: expected a string", k, what);
		return NULL;
	}
	return json_string_value(v);
}

static const json_t *need_array(struct ctx *c, const json_t *o, const char *k, const char *what,
				bool required)
{
	const json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v)) {
		if (required)
			api_fail(c, "missing field `%s` in %s", k, what);
		return required ? NULL : json_null();
	}
	if (!json_is_array(v)) {
		api_fail(c, "invalid type for `%s` in %s: expected an array", k, what);
		return NULL;
	}
	return v;
}

static int parse_number(struct ctx *c, const char *s, uint64_t max, uint64_t *out)
{
	if (strncmp(s, "0x", 2) != 0 && strncmp(s, "0b", 2) != 0) {
		api_fail(c,
			 "No supported number system prefix found in value [%s]. Make sure to "
			 "prefix the number with '0x' for hexadecimal numbers or '0b' for binary "
			 "numbers.",
			 s);
		return -1;
	}
	if (cpu_number_parse(s, max, out) < 0) {
		api_fail(c, "Failed to parse string [%s] as a number for CPU template", s);
		return -1;
	}
	return 0;
}

static int parse_caps(struct ctx *c, const json_t *a, struct cpu_template *t)
{
	size_t i;
	const json_t *v;
	json_array_foreach(a, i, v)
	{
		const char *s = json_string_value(v);
		if (!s) {
			api_fail(c, "kvm_capabilities[%zu]: expected a string", i);
			return -1;
		}
		bool remove = s[0] == '!';
		uint64_t cap;
		const char *num = s + (remove ? 1 : 0);
		char *end;
		errno = 0;
		cap = strtoull(num, &end, 10);
		if (!*num || *end || errno || cap > UINT32_MAX || num[0] == '-' || num[0] == '+') {
			api_fail(
			    c,
			    "Failed to parse string [%s] as a kvm capability - can not convert "
			    "to numeric",
			    s);
			return -1;
		}
		if (t->nr_caps == CPU_TEMPLATE_MAX_CAPS) {
			api_fail(c, "kvm_capabilities: more than %d entries",
				 CPU_TEMPLATE_MAX_CAPS);
			return -1;
		}
		t->caps[t->nr_caps++] = (struct kvm_cap_modifier){ (uint32_t)cap, remove };
	}
	return 0;
}

static int parse_register(struct ctx *c, const char *s, uint32_t *reg)
{
	static const char *const names[] = { "eax", "ebx", "ecx", "edx" };
	for (uint32_t r = 0; r < 4; r++)
		if (strcmp(s, names[r]) == 0) {
			*reg = r;
			return 0;
		}
	api_fail(c, "Invalid CPUID register [%s]. Must be one of [eax, ebx, ecx, edx]", s);
	return -1;
}

static int parse_cpuid(struct ctx *c, const json_t *a, struct cpu_template *t)
{
	static const char *const leaf_keys[] = { "leaf", "subleaf", "flags", "modifiers", NULL };
	static const char *const reg_keys[] = { "register", "bitmap", NULL };
	size_t i;
	const json_t *o;
	json_array_foreach(a, i, o)
	{
		char what[48];
		snprintf(what, sizeof(what), "cpuid_modifiers[%zu]", i);
		if (!json_is_object(o)) {
			api_fail(c, "%s: expected an object", what);
			return -1;
		}
		uint64_t leaf, subleaf;
		const char *ls = need_str(c, o, "leaf", what), *ss;
		if (!ls || parse_number(c, ls, UINT32_MAX, &leaf) < 0)
			return -1;
		if (!(ss = need_str(c, o, "subleaf", what)) ||
		    parse_number(c, ss, UINT32_MAX, &subleaf) < 0)
			return -1;
		const json_t *flags = json_object_get(o, "flags");
		if (!flags || !json_is_integer(flags) || json_integer_value(flags) < 0 ||
		    json_integer_value(flags) > UINT32_MAX) {
			api_fail(c, "%s: `flags` must be an unsigned 32-bit number", what);
			return -1;
		}
		const json_t *mods = need_array(c, o, "modifiers", what, true);
		if (!mods || only_keys(c, o, what, leaf_keys) < 0)
			return -1;
		size_t j;
		const json_t *m;
		json_array_foreach(mods, j, m)
		{
			char mwhat[96];
			snprintf(mwhat, sizeof(mwhat), "%s.modifiers[%zu]", what, j);
			if (!json_is_object(m)) {
				api_fail(c, "%s: expected an object", mwhat);
				return -1;
			}
			const char *rs = need_str(c, m, "register", mwhat);
			const char *bs = rs ? need_str(c, m, "bitmap", mwhat) : NULL;
			uint32_t reg;
			uint64_t f, v;
			if (!bs || only_keys(c, m, mwhat, reg_keys) < 0 ||
			    parse_register(c, rs, &reg) < 0)
				return -1;
			if (cpu_bitmap_parse(bs, 32, &f, &v, c->err, sizeof(c->err)) < 0)
				return -1;
			if (t->nr_cpuid == CPU_TEMPLATE_MAX_CPUID) {
				api_fail(c, "cpuid_modifiers: more than %d register modifiers",
					 CPU_TEMPLATE_MAX_CPUID);
				return -1;
			}
			t->cpuid[t->nr_cpuid++] = (struct cpuid_modifier){
				.leaf = (uint32_t)leaf,
				.subleaf = (uint32_t)subleaf,
				.flags = (uint32_t)json_integer_value(flags),
				.reg = reg,
				.filter = (uint32_t)f,
				.value = (uint32_t)v,
			};
		}
	}
	return 0;
}

static int parse_msrs(struct ctx *c, const json_t *a, struct cpu_template *t)
{
	static const char *const keys[] = { "addr", "bitmap", NULL };
	size_t i;
	const json_t *o;
	json_array_foreach(a, i, o)
	{
		char what[48];
		snprintf(what, sizeof(what), "msr_modifiers[%zu]", i);
		if (!json_is_object(o)) {
			api_fail(c, "%s: expected an object", what);
			return -1;
		}
		const char *as = need_str(c, o, "addr", what);
		const char *bs = as ? need_str(c, o, "bitmap", what) : NULL;
		uint64_t addr, f, v;
		if (!bs || only_keys(c, o, what, keys) < 0 ||
		    parse_number(c, as, UINT32_MAX, &addr) < 0 ||
		    cpu_bitmap_parse(bs, 64, &f, &v, c->err, sizeof(c->err)) < 0)
			return -1;
		if (t->nr_msr == CPU_TEMPLATE_MAX_MSR) {
			api_fail(c, "msr_modifiers: more than %d entries", CPU_TEMPLATE_MAX_MSR);
			return -1;
		}
		t->msr[t->nr_msr++] =
		    (struct msr_modifier){ .addr = (uint32_t)addr, .filter = f, .value = v };
	}
	return 0;
}

/* @body as a custom template into a new allocation; NULL with c->err set. */
static struct cpu_template *parse_template(struct ctx *c, const json_t *body)
{
	static const char *const keys[] = { "kvm_capabilities", "cpuid_modifiers", "msr_modifiers",
					    NULL };
	if (!json_is_object(body)) {
		api_fail(c, "cpu-config: expected a JSON object");
		return NULL;
	}
	struct cpu_template *t = calloc(1, sizeof(*t));
	if (!t) {
		api_fail(c, "out of memory");
		return NULL;
	}
	const json_t *caps, *cpuid, *msrs;
	if (only_keys(c, body, "cpu-config", keys) < 0 ||
	    !(caps = need_array(c, body, "kvm_capabilities", "cpu-config", false)) ||
	    !(cpuid = need_array(c, body, "cpuid_modifiers", "cpu-config", false)) ||
	    !(msrs = need_array(c, body, "msr_modifiers", "cpu-config", false)) ||
	    parse_caps(c, caps, t) < 0 || parse_cpuid(c, cpuid, t) < 0 ||
	    parse_msrs(c, msrs, t) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static unsigned int set_template(struct ctx *c, const json_t *body)
{
	struct cpu_template *t = parse_template(c, body);
	if (!t)
		return 400;
	struct vmm_config *cfg = &c->vmm->cfg;
	free(cfg->cpu_custom);
	cfg->cpu_custom = t;
	cfg->cpu_template = TPL_NONE; /* the later of the two wins */
	return 204;
}

unsigned int put_cpu_config(struct ctx *c)
{
	return set_template(c, c->body);
}

unsigned int config_cpu_config(struct ctx *c)
{
	if (!json_is_string(c->body))
		return set_template(c, c->body);
	/* The config file may name a file holding the template. */
	const char *path = json_string_value(c->body);
	json_error_t je;
	json_t *body = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!body)
		return api_fail(c, "cannot read the CPU template '%s': %s", path, je.text);
	unsigned int status = set_template(c, body);
	json_decref(body);
	return status;
}

json_t *api_cpu_config_json(const struct vmm *vmm)
{
	static const char *const regs[] = { "eax", "ebx", "ecx", "edx" };
	const struct cpu_template *t = vmm->cfg.cpu_custom;
	if (!t)
		return json_null();
	json_t *caps = json_array(), *cpuid = json_array(), *msrs = json_array();
	char buf[80];
	for (uint32_t i = 0; i < t->nr_caps; i++) {
		snprintf(buf, sizeof(buf), "%s%u", t->caps[i].remove ? "!" : "", t->caps[i].cap);
		json_array_append_new(caps, json_string(buf));
	}
	json_t *leaf = NULL;
	for (uint32_t i = 0; i < t->nr_cpuid; i++) {
		const struct cpuid_modifier *m = &t->cpuid[i];
		const struct cpuid_modifier *prev = i ? &t->cpuid[i - 1] : NULL;
		/* Register modifiers of one leaf object came out of it in order. */
		if (!prev || prev->leaf != m->leaf || prev->subleaf != m->subleaf ||
		    prev->flags != m->flags) {
			char l[16], s[16];
			snprintf(l, sizeof(l), "%#x", m->leaf);
			snprintf(s, sizeof(s), "%#x", m->subleaf);
			leaf = json_pack("{s:s, s:s, s:I, s:[]}", "leaf", m->leaf ? l : "0x0",
					 "subleaf", m->subleaf ? s : "0x0", "flags",
					 (json_int_t)m->flags, "modifiers");
			json_array_append_new(cpuid, leaf);
		}
		cpu_bitmap_format(m->filter, m->value, 32, buf);
		json_array_append_new(
		    json_object_get(leaf, "modifiers"),
		    json_pack("{s:s, s:s}", "register", regs[m->reg & 3], "bitmap", buf));
	}
	for (uint32_t i = 0; i < t->nr_msr; i++) {
		char a[16];
		snprintf(a, sizeof(a), "%#x", t->msr[i].addr);
		cpu_bitmap_format(t->msr[i].filter, t->msr[i].value, 64, buf);
		json_array_append_new(
		    msrs,
		    json_pack("{s:s, s:s}", "addr", t->msr[i].addr ? a : "0x0", "bitmap", buf));
	}
	return json_pack("{s:o, s:o, s:o}", "kvm_capabilities", caps, "cpuid_modifiers", cpuid,
			 "msr_modifiers", msrs);
}
