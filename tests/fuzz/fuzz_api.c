// SPDX-License-Identifier: Apache-2.0
/*
 * The API as the VMM thread answers it: api_dispatch() (router, pre/post
 * boot rules, JSON parsing, schema checks, every handler) on a struct api_call
 * filled as the HTTP side fills one, against a VMM that has not started,
 * without a socket. The input is up to FUZZ_MAX_CALLS requests separated by
 * NUL bytes, each "METHOD\nPATH\nBODY" (no body: a GET). Requests in one
 * input act on the same VMM, so a drive can be added, then listed by
 * GET /vm/config or refused as a second root device; the VMM is reset
 * between inputs (fuzz_vmm.h). Every answer must be what the server can
 * send: 200 with a JSON body, 204 without, or 400 with a JSON
 * fault_message.
 *
 * The two requests that build a VM stop short of KVM, by construction:
 *  - PUT /actions is answered with the configuration's kernel hidden, so
 *    InstanceStart is checked (schema, state, "no kernel") but never calls
 *    vmm_start(); SendCtrlAltDel and FlushMetrics do not use the kernel.
 *  - PUT /snapshot/load runs whole: the body's checks, the configured-first
 *    rule, then snapshot_load() reads the state file named. The sandbox
 *    lets it open only files in its directory, none of which is a state file
 *    (the drive image, the kernel file, and what inputs write through
 *    /logger and /metrics: log lines and JSON), so it ends with "not an
 *    ember snapshot"; fuzz_snapshot takes loading further.
 * Post-boot endpoints only get their "not started" refusal here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/api.h"
#include "fuzz.h"
#include "fuzz_sandbox.h"
#include "fuzz_vmm.h"

#define FUZZ_MAX_CALLS 16

static char *ember_args[] = { "ember", "--api-sock", "api.sock", NULL };

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char disk[4096], kernel[] = "not a kernel: only stat()ed before boot\n";
	fuzz_sandbox_init(argc, argv, "fuzz-api");
	fuzz_sandbox_keep("disk.img", disk, sizeof(disk));
	fuzz_sandbox_keep("data.img", disk, 512);
	fuzz_sandbox_keep("vmlinux", kernel, sizeof(kernel) - 1);
	fuzz_sandbox_keep("initrd.img", disk, 512);
	fuzz_vmm_init();
	fuzz_sandbox_leave();
	return 0;
}

/* What api_send() would put on the wire: refuse anything else. */
static void check_answer(const struct api_call *c)
{
	json_error_t je;
	json_t *j = c->response ? json_loads(c->response, 0, &je) : NULL;
	bool ok = false;
	if (c->status == 204)
		ok = !c->response;
	else if (c->status == 200)
		ok = j != NULL;
	else if (c->status == 400)
		ok = json_is_string(json_object_get(j, "fault_message"));
	json_decref(j);
	if (!ok) {
		fprintf(stderr, "fuzz_api: %s %s answered %u with %s\n", c->method, c->path,
			c->status, c->response ? c->response : "no body");
		abort();
	}
}

/* One request, "METHOD\nPATH\nBODY", as api_access() would queue it. */
static void call_one(const uint8_t *p, size_t n)
{
	const uint8_t *nl1 = memchr(p, '\n', n);
	const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', n - (size_t)(nl1 + 1 - p)) : NULL;
	const uint8_t *path = nl1 ? nl1 + 1 : p + n, *path_end = nl2 ? nl2 : p + n;
	const uint8_t *body = nl2 ? nl2 + 1 : p + n;
	size_t body_len = (size_t)(p + n - body);
	struct api_call c = { .start_ns = clock_now_ns() };

	/* The HTTP server (api/server.c) hands over a method, a path and the body. */
	snprintf(c.method, sizeof(c.method), "%.*s", (int)((nl1 ? nl1 : p + n) - p),
		 (const char *)p);
	c.path = strndup((const char *)path, (size_t)(path_end - path));
	if (!c.path || !*c.path || body_len > API_MAX_BODY) /* 400 before the VMM sees it */
		goto out;
	if (body_len) {
		c.body = malloc(body_len + 1);
		if (!c.body)
			goto out;
		memcpy(c.body, body, body_len);
		c.body[body_len] = 0;
		c.body_len = body_len;
	}

	/* InstanceStart: checked, never started (see the top of the file). */
	char *kernel = fuzz_vmm.cfg.kernel_path;
	bool actions = strcmp(c.method, "PUT") == 0 && strcmp(c.path, "/actions") == 0;
	if (actions)
		fuzz_vmm.cfg.kernel_path = NULL;
	api_dispatch(&fuzz_vmm, &c);
	if (actions)
		fuzz_vmm.cfg.kernel_path = kernel;
	if (fuzz_vmm.state != VMM_NOT_STARTED) {
		fprintf(stderr, "fuzz_api: %s %s built a VM\n", c.method, c.path);
		abort();
	}
	check_answer(&c);
out:
	free(c.path);
	free(c.body);
	free(c.response);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fuzz_vmm_reset(3, ember_args) != 0)
		abort();
	fuzz_sandbox_enter();
	const uint8_t *p = data, *end = data + size;
	for (unsigned int i = 0; i < FUZZ_MAX_CALLS && p < end; i++) {
		const uint8_t *sep = memchr(p, 0, (size_t)(end - p));
		const uint8_t *stop = sep ? sep : end;
		call_one(p, (size_t)(stop - p));
		p = stop + 1;
	}
	fuzz_sandbox_leave();
	return 0;
}
