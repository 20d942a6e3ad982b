/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internals shared by the API's endpoint files: the per-request context,
 * error and JSON helpers, and the handlers the router and the config-file
 * loader call. VMM thread only.
 */
#ifndef EMBER_API_ROUTES_H
#define EMBER_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "schema.h"

struct vmm;
struct vmm_config;

#define ERR_MAX 512

struct ctx {
	struct vmm *vmm;
	const char *id; /* {id} in the path, if any */
	json_t *body; /* parsed body (object) or NULL */
	json_t *resp; /* 200 body, if any */
	char err[ERR_MAX];
	uint64_t start_ns; /* clock_now_ns() when the request arrived */
};

typedef unsigned int (*handler_fn)(struct ctx *c);

/* Set c->err and return 400. */
unsigned int api_fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *jstr(const json_t *o, const char *k);
uint64_t juint(const json_t *o, const char *k, uint64_t dflt);
bool jbool(const json_t *o, const char *k, bool dflt);
/* Check c->body against @schema; 0 or -1 with c->err set. */
int api_check(struct ctx *c, const struct jfield *schema, const char *what);
/* A file the monitor will open later: check it now, as Firecracker does. */
int api_check_file(struct ctx *c, const char *what, const char *path, bool need_write);
/* The {"vcpu_count", ...} object of GET /machine-config and /vm/config. */
json_t *api_machine_json(const struct vmm *vmm);

/* Configuration endpoints (devices.c). */
unsigned int put_boot_source(struct ctx *c);
unsigned int put_machine(struct ctx *c);
unsigned int patch_machine(struct ctx *c);
unsigned int get_machine(struct ctx *c);
unsigned int put_drive(struct ctx *c);
unsigned int patch_drive(struct ctx *c);
unsigned int put_net(struct ctx *c);
unsigned int patch_net(struct ctx *c);
unsigned int put_vsock(struct ctx *c);
unsigned int put_entropy(struct ctx *c);
unsigned int put_serial(struct ctx *c);

/* Custom CPU templates (cpu_config.c): PUT /cpu-config; the config file's
 * section, which may also be the path of a file holding the template; and
 * the template as GET /vm/config shows it (null when none). */
unsigned int put_cpu_config(struct ctx *c);
unsigned int config_cpu_config(struct ctx *c);
json_t *api_cpu_config_json(const struct vmm *vmm);

/* MMDS (mmds.c). */
unsigned int get_mmds(struct ctx *c);
unsigned int put_mmds(struct ctx *c);
unsigned int patch_mmds(struct ctx *c);
unsigned int put_mmds_config(struct ctx *c);
/* The "mmds-config" section of GET /vm/config, or null. */
json_t *api_mmds_config_json(const struct vmm_config *cfg);

/* The balloon (balloon.c). */
unsigned int put_balloon(struct ctx *c);
unsigned int get_balloon(struct ctx *c);
unsigned int patch_balloon(struct ctx *c);
unsigned int get_balloon_stats(struct ctx *c);
unsigned int patch_balloon_stats(struct ctx *c);
struct vmm_config;
/* The balloon as PUT /balloon takes it, or null (GET /vm/config). */
json_t *balloon_config_json(const struct vmm_config *cfg);

/* Snapshots (snapshot.c). */
unsigned int put_snapshot_create(struct ctx *c);
unsigned int put_snapshot_load(struct ctx *c);

#endif
