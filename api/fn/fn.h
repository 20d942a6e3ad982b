/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember-fn: run a function image in a fresh microVM per request.
 *
 * ember-fn is a client of ember's public interfaces only: the REST API on
 * the --api-sock Unix socket and the vsock Unix socket (Firecracker's
 * scheme), so a platform can do the same from its own language. It never
 * links the VMM.
 *
 * The wire protocol with the guest kit's function runtime:
 *  - ready: after its initialisation the guest connects to the host (CID 2)
 *    on port FN_READY_PORT and sends FN_READY_MAGIC; ember-fn then pauses the
 *    VM and takes a Full snapshot (prepare).
 *  - request: the guest listens on FN_PORT. The host sends a frame:
 *    u32 little-endian length, then that many bytes (at most FN_MAX_PAYLOAD).
 *  - response: u32 LE status (enum fn_status, 0-4 from the guest), u32 LE
 *    length, bytes.
 * ember-fn serve speaks the same frames on its own Unix socket, with the
 * host-side statuses (FN_DEADLINE, FN_VM_FAILED) added; their payload is a
 * message.
 */
#ifndef EMBER_FN_H
#define EMBER_FN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FN_PORT 1024
#define FN_READY_PORT 1025
#define FN_READY_MAGIC "EMBERRDY"
#define FN_MAX_PAYLOAD (1u << 20)
#define FN_GUEST_CID 3

/* Response statuses; also ember-fn invoke's exit statuses. */
enum fn_status {
	FN_OK = 0,
	FN_CRASHED = 1, /* the handler crashed */
	FN_RESP_TOO_LARGE = 2, /* the handler returned more than FN_MAX_PAYLOAD */
	FN_REQ_TOO_LARGE = 3, /* the request is over FN_MAX_PAYLOAD */
	FN_BAD_REQUEST = 4, /* the handler refused the request (its bytes say why) */
	FN_DEADLINE = 5, /* host side: the deadline passed, the VM was killed */
	FN_VM_FAILED = 6, /* host side: the VM could not be started, restored or reached */
	FN_USAGE = 64, /* ember-fn: bad command line */
};

/* What every command needs. */
struct fn_opts {
	const char *ember; /* the ember executable (or a wrapper such as a jailer) */
	const char *dir; /* the function directory: state, mem, ws */
	int deadline_ms; /* from resume to the whole response */
	bool uffd; /* restore with userfaultfd and the recorded working set */
	bool verbose; /* ember's output and each request's phases to our stderr */
};

/* One ember process and its private directory (api.sock, v.sock). */
struct fn_vm {
	pid_t pid;
	char tmp[96];
};

/* A response: status, payload (malloc'd, or NULL) and a message for errors. */
struct fn_reply {
	uint32_t status;
	uint32_t len;
	uint8_t *data;
	bool sent; /* the request reached the guest: it may have acted on it */
	char msg[256];
};

/* --- vm.c: one ember process ------------------------------------------- */

/* Make a private directory under $TMPDIR (or /tmp), mode 0777 less the
 * umask, and start `ember --api-sock DIR/api.sock` in it, with SIGKILL as
 * its parent-death signal. Does not wait for the API. 0 or -errno. */
int fn_vm_spawn(struct fn_vm *vm, const struct fn_opts *o) __attribute__((warn_unused_result));
/* SIGKILL the process. */
void fn_vm_kill(const struct fn_vm *vm);
/* After the process is reaped: remove its directory and everything in it. */
void fn_vm_remove_dir(const struct fn_vm *vm);
/* Kill, reap, remove the directory. */
void fn_vm_destroy(struct fn_vm *vm);
/* Whether the process has exited (not reaped). */
bool fn_vm_exited(const struct fn_vm *vm);
/* Path of a file in the VM's directory. */
void fn_vm_path(const struct fn_vm *vm, const char *name, char *out, size_t size);

/*
 * One API call: @method @path with JSON @body (or NULL), a new connection
 * (the socket may not be there yet: retried until @timeout_ms). Returns the
 * HTTP status, or -errno (-ETIMEDOUT). On an error status, @why gets the
 * fault_message.
 */
int fn_api_call(const struct fn_vm *vm, const char *method, const char *path, const char *body,
		int timeout_ms, char *why, size_t why_size);

/* Escape @s for a JSON string into @out. -ENAMETOOLONG if it does not fit. */
int fn_json_str(const char *s, char *out, size_t size);

/* Milliseconds and microseconds on CLOCK_MONOTONIC. */
int64_t fn_now_ms(void);
int64_t fn_now_us(void);

/* --- run.c: prepare and invoke ---------------------------------------- */

/* Boot @image, wait for the guest's ready message, pause and write a Full
 * snapshot into o->dir. 0, or -1 with the reason printed. */
int fn_prepare(const struct fn_opts *o, const char *image, unsigned int mem_mib,
	       unsigned int vcpus);

/*
 * Run one request in @vm (spawned, API maybe not up yet): restore o->dir's
 * snapshot, send @req over vsock and read the response into @r. The caller
 * tears @vm down afterwards whatever the outcome. Returns r->status.
 */
uint32_t fn_invoke_vm(const struct fn_vm *vm, const struct fn_opts *o, const uint8_t *req,
		      uint32_t len, struct fn_reply *r);

/* After @vm is reaped: a working set its restore recorded (--uffd, first
 * run) becomes o->dir/ws, whole; an empty one is removed. */
void fn_keep_ws(const struct fn_vm *vm, const struct fn_opts *o);

/* The text for a status (for messages). */
const char *fn_status_text(uint32_t status);

/* --- vm.c: byte streams ------------------------------------------------ */

/* Read or write exactly @len bytes on a non-blocking or blocking @fd before
 * @deadline (fn_now_ms() value; -1: none). 0, -EPIPE at end of file (or a
 * closed peer: main() ignores SIGPIPE), -ETIMEDOUT or -errno. */
int fn_read_full(int fd, void *buf, size_t len, int64_t deadline);
int fn_write_full(int fd, const void *buf, size_t len, int64_t deadline);

/* --- serve.c ------------------------------------------------------------- */

/* Keep @pool embers started ahead and serve frames on the Unix socket @sock
 * until SIGTERM or SIGINT. Exit status. */
int fn_serve(const struct fn_opts *o, const char *sock, unsigned int pool);

#endif
