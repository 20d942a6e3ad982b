/* SPDX-License-Identifier: Apache-2.0 */
/* ember-fn: prepare a function's snapshot, run one request in a restored VM. */
#include "fn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* API calls that build or restore a VM: generous, for loaded or ASan runs. */
#define FN_API_TIMEOUT_MS 10000
/* From InstanceStart to the guest's ready message. */
#define FN_BOOT_TIMEOUT_MS 20000

const char *fn_status_text(uint32_t status)
{
	switch (status) {
	case FN_OK:
		return "ok";
	case FN_CRASHED:
		return "the handler crashed";
	case FN_RESP_TOO_LARGE:
		return "the handler's response is over 1 MiB";
	case FN_REQ_TOO_LARGE:
		return "the request is over 1 MiB";
	case FN_BAD_REQUEST:
		return "the handler refused the request";
	case FN_DEADLINE:
		return "deadline exceeded: the VM was killed";
	case FN_VM_FAILED:
		return "the VM failed";
	}
	return "unknown status";
}

static uint32_t fail(struct fn_reply *r, uint32_t status, const char *fmt, const char *arg)
{
	r->status = status;
	snprintf(r->msg, sizeof(r->msg), fmt, arg);
	return status;
}

/* Ask the guest's vsock port FN_PORT for a connection through ember's vsock
 * socket @uds. Retried while the guest is not listening yet (ember then
 * closes the connection without "OK"). Non-blocking fd or -errno. */
static int vsock_connect(const char *uds, int64_t deadline, int *tries)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(uds) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, uds, strlen(uds) + 1);
	for (*tries = 1;; ++*tries) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		/* ember listens before the load answers: this does not block. */
		int r = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? -errno : 0;
		static const char hello[] = "CONNECT 1024\n";
		if (r == 0)
			r = fn_write_full(fd, hello, sizeof(hello) - 1, deadline);
		char line[32];
		size_t n = 0;
		while (r == 0 && n + 1 < sizeof(line)) {
			r = fn_read_full(fd, line + n, 1, deadline);
			if (r == 0 && line[n++] == '\n')
				break;
		}
		if (r == 0 && n >= 3 && memcmp(line, "OK ", 3) == 0)
			return fd;
		close(fd);
		if (r == -ETIMEDOUT)
			return r;
		if (r == 0)
			return -EPROTO;
		if (fn_now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(200);
	}
}

uint32_t fn_invoke_vm(const struct fn_vm *vm, const struct fn_opts *o, const uint8_t *req,
		      uint32_t len, struct fn_reply *r)
{
	char dir[512], uds[128], ws[600], body[2048];
	memset(r, 0, sizeof(*r));
	if (len > FN_MAX_PAYLOAD)
		return fail(r, FN_REQ_TOO_LARGE, "%s", fn_status_text(FN_REQ_TOO_LARGE));
	if (fn_json_str(o->dir, dir, sizeof(dir)) < 0)
		return fail(r, FN_VM_FAILED, "%s", "function directory path too long");
	fn_vm_path(vm, "v.sock", uds, sizeof(uds));

	/* With --uffd the first restore records the pages the guest touches
	 * (into a temporary name, renamed once the VM is gone: a whole file or
	 * none) and later ones prefetch them before the vCPUs start. */
	const char *ws_mode = NULL;
	snprintf(ws, sizeof(ws), "%s/ws", dir);
	if (o->uffd) {
		char real[600];
		snprintf(real, sizeof(real), "%s/ws", o->dir);
		ws_mode = access(real, R_OK) == 0 ? "Prefetch" : "Record";
		if (ws_mode[0] == 'R')
			snprintf(ws, sizeof(ws), "%s/ws.rec.%d", dir, (int)vm->pid);
	}
	if (o->uffd)
		snprintf(
		    body, sizeof(body),
		    "{\"snapshot_path\":\"%s/state\",\"mem_backend\":{\"backend_type\":\"Uffd\","
		    "\"backend_path\":\"%s/mem\",\"working_set_path\":\"%s\","
		    "\"working_set_mode\":\"%s\"},\"resume_vm\":true,"
		    "\"vsock_override\":{\"uds_path\":\"%s\"}}",
		    dir, dir, ws, ws_mode, uds);
	else
		snprintf(
		    body, sizeof(body),
		    "{\"snapshot_path\":\"%s/state\",\"mem_backend\":{\"backend_type\":\"File\","
		    "\"backend_path\":\"%s/mem\"},\"resume_vm\":true,"
		    "\"vsock_override\":{\"uds_path\":\"%s\"}}",
		    dir, dir, uds);
	char why[200];
	int64_t t0 = fn_now_us();
	int st =
	    fn_api_call(vm, "PUT", "/snapshot/load", body, FN_API_TIMEOUT_MS, why, sizeof(why));
	if (st != 204)
		return fail(r, FN_VM_FAILED, "restore failed: %s", why);

	int64_t t1 = fn_now_us(), deadline = fn_now_ms() + o->deadline_ms;
	int tries;
	int fd = vsock_connect(uds, deadline, &tries);
	int64_t t2 = fn_now_us();
	if (fd == -ETIMEDOUT)
		return fail(r, FN_DEADLINE, "%s", fn_status_text(FN_DEADLINE));
	if (fd < 0)
		return fail(r, FN_VM_FAILED, "the guest did not accept the request: %s",
			    strerror(-fd));
	uint8_t hdr[8] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
			   (uint8_t)(len >> 24) };
	r->sent = true;
	int e = fn_write_full(fd, hdr, 4, deadline);
	if (e == 0)
		e = fn_write_full(fd, req, len, deadline);
	/* A guest that stops reading may still answer (request too large). */
	if (e == -EPIPE || e == -ECONNRESET)
		e = 0;
	if (e == 0)
		e = fn_read_full(fd, hdr, 8, deadline);
	if (e == 0) {
		r->status = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		    (uint32_t)hdr[3] << 24;
		r->len = (uint32_t)hdr[4] | (uint32_t)hdr[5] << 8 | (uint32_t)hdr[6] << 16 |
		    (uint32_t)hdr[7] << 24;
		if (r->status > FN_BAD_REQUEST || r->len > FN_MAX_PAYLOAD)
			e = -EPROTO;
	}
	if (e == 0 && r->len) {
		r->data = malloc(r->len);
		e = r->data ? fn_read_full(fd, r->data, r->len, deadline) : -ENOMEM;
	}
	close(fd);
	if (o->verbose)
		fprintf(stderr,
			"ember-fn: restore %.2f ms, vsock connect %.2f ms (%d tries), "
			"request to response %.2f ms\n",
			(double)(t1 - t0) / 1000, (double)(t2 - t1) / 1000, tries,
			(double)(fn_now_us() - t2) / 1000);
	if (e < 0) {
		free(r->data);
		r->data = NULL;
		r->len = 0;
		if (e == -ETIMEDOUT)
			return fail(r, FN_DEADLINE, "%s", fn_status_text(FN_DEADLINE));
		if (e == -EPROTO)
			return fail(r, FN_VM_FAILED, "%s",
				    "the guest's response frame is malformed");
		return fail(r, FN_VM_FAILED,
			    "the guest closed the connection before a whole "
			    "response: %s",
			    strerror(-e));
	}
	if (r->status != FN_OK)
		snprintf(r->msg, sizeof(r->msg), "%s", fn_status_text(r->status));
	return r->status;
}

void fn_keep_ws(const struct fn_vm *vm, const struct fn_opts *o)
{
	char from[600], to[600];
	snprintf(from, sizeof(from), "%s/ws.rec.%d", o->dir, (int)vm->pid);
	snprintf(to, sizeof(to), "%s/ws", o->dir);
	struct stat s;
	if (stat(from, &s) < 0)
		return;
	if (s.st_size == 0 || rename(from, to) < 0)
		unlink(from);
}

/* Listen on ember's vsock socket for port FN_READY_PORT, before boot. */
static int ready_listen(const struct fn_vm *vm)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	fn_vm_path(vm, "v.sock_1025", a.sun_path, sizeof(a.sun_path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Wait for the guest's ready message on @lfd. 0 or a message. */
static const char *ready_wait(const struct fn_vm *vm, int lfd)
{
	int64_t deadline = fn_now_ms() + FN_BOOT_TIMEOUT_MS;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			char m[8];
			int e = fn_read_full(fd, m, sizeof(m), deadline);
			close(fd);
			if (e == 0 && memcmp(m, FN_READY_MAGIC, 8) == 0)
				return NULL;
			return "the guest's ready message is not " FN_READY_MAGIC;
		}
		if (errno != EAGAIN && errno != EINTR)
			return "accept failed on the ready socket";
		if (fn_vm_exited(vm))
			return "ember exited before the guest was ready (run with --verbose "
			       "to see its log)";
		if (fn_now_ms() >= deadline)
			return "the guest did not say it was ready within 20 s";
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		poll(&p, 1, 20);
	}
}

int fn_prepare(const struct fn_opts *o, const char *image, unsigned int mem_mib, unsigned int vcpus)
{
	char img[1024], dir[1024], uds[128], body[3072], why[200];
	char *real_img = realpath(image, NULL);
	if (!real_img) {
		fprintf(stderr, "ember-fn: %s: %s\n", image, strerror(errno));
		return -1;
	}
	int e = fn_json_str(real_img, img, sizeof(img));
	free(real_img);
	if (e == 0)
		e = fn_json_str(o->dir, dir, sizeof(dir));
	if (e < 0) {
		fprintf(stderr, "ember-fn: path too long\n");
		return -1;
	}
	struct fn_vm vm;
	e = fn_vm_spawn(&vm, o);
	if (e < 0) {
		fprintf(stderr, "ember-fn: cannot start %s: %s\n", o->ember, strerror(-e));
		return -1;
	}
	const char *err = NULL;
	int lfd = ready_listen(&vm);
	if (lfd < 0)
		err = "cannot listen for the guest's ready message";
	fn_vm_path(&vm, "v.sock", uds, sizeof(uds));
	struct {
		const char *method, *path;
		char body[1200];
	} calls[4] = {
		{ "PUT", "/boot-source", "" },
		{ "PUT", "/machine-config", "" },
		{ "PUT", "/vsock", "" },
		{ "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}" },
	};
	snprintf(calls[0].body, sizeof(calls[0].body), "{\"kernel_image_path\":\"%s\"}", img);
	snprintf(calls[1].body, sizeof(calls[1].body), "{\"vcpu_count\":%u,\"mem_size_mib\":%u}",
		 vcpus, mem_mib);
	snprintf(calls[2].body, sizeof(calls[2].body), "{\"guest_cid\":%d,\"uds_path\":\"%s\"}",
		 FN_GUEST_CID, uds);
	for (int i = 0; i < 4 && !err; i++)
		if (fn_api_call(&vm, calls[i].method, calls[i].path, calls[i].body,
				FN_API_TIMEOUT_MS, why, sizeof(why)) != 204)
			err = why;
	if (!err)
		err = ready_wait(&vm, lfd);
	if (!err &&
	    fn_api_call(&vm, "PATCH", "/vm", "{\"state\":\"Paused\"}", FN_API_TIMEOUT_MS, why,
			sizeof(why)) != 204)
		err = why;
	/* A working set recorded for an older snapshot would be wrong. */
	snprintf(body, sizeof(body), "%s/ws", o->dir);
	unlink(body);
	snprintf(body, sizeof(body),
		 "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"%s/state\","
		 "\"mem_file_path\":\"%s/mem\"}",
		 dir, dir);
	if (!err &&
	    fn_api_call(&vm, "PUT", "/snapshot/create", body, 60000, why, sizeof(why)) != 204)
		err = why;
	if (lfd >= 0)
		close(lfd);
	fn_vm_destroy(&vm);
	if (err) {
		fprintf(stderr, "ember-fn: prepare failed: %s\n", err);
		return -1;
	}
	return 0;
}
