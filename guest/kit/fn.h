/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest kit's function runtime: a handler that turns request bytes into
 * response bytes becomes a bootable image that serves one request per VM
 * (or, opt-in, many). Write a handler, register it with FN_MAIN, link with
 * the kit (see guest/examples/ and the Makefile's examples rule):
 *
 *	#include "fn.h"
 *	static int echo(const struct fn_request *req, struct fn_response *resp)
 *	{
 *		memcpy(resp->data, req->data, req->len);
 *		resp->len = req->len;
 *		return 0;
 *	}
 *	FN_MAIN(echo, NULL, 0)
 *
 * What the runtime does, in order:
 *   1. boot (ring 0, a few hundred instructions): a TSS and an IDT so a
 *      fault at ring 3 comes back to the runtime; then everything else runs
 *      at ring 3 with IOPL 3 (kit_enter_user).
 *   2. find the devices: virtio-vsock (required), virtio-rng (optional), the
 *      VMGenID through ACPI (optional).
 *   3. run the author's init (at ring 3), if any; a nonzero return or a
 *      fault stops the VM with FN_EXIT_INIT_FAILED.
 *   4. ready: connect to the host (CID 2) port FN_READY_PORT and send the
 *      8 bytes FN_READY_MAGIC ("EMBERRDY"); the host answers nothing. From
 *      here on the guest only waits for requests, so the host may pause and
 *      snapshot it at any time. Nobody listening (a reset) is not an error.
 *   5. wait for a connection on FN_PORT, read one request frame, compute
 *      the seed, run the handler at ring 3, send the response frame.
 *   6. one-shot (the default): once the host has taken every response byte
 *      (the device's credit says so), power off through the debug-exit port
 *      with status 0, so ember exits 0. Warm (FN_WARM, or fn_warm=1 on the
 *      command line): close the connection and go back to 5. After a handler
 *      fault the VM powers off even in warm mode: the handler may have broken
 *      the runtime's memory.
 *
 * Wire protocol (host side: ember's Firecracker-style vsock Unix socket;
 * a guest connection to port P arrives at <uds_path>_P, the host reaches the
 * guest by writing "CONNECT 1024\n" on uds_path and reading "OK <port>\n"):
 *   request:  u32 little-endian length, then that many bytes
 *             (at most FN_MAX_REQUEST; bytes after the frame are ignored)
 *   response: u32 LE status, u32 LE length, then that many bytes
 *             (at most FN_MAX_RESPONSE)
 *   status:   FN_STATUS_OK        0  the handler returned 0
 *             FN_STATUS_CRASHED   1  the handler faulted (no bytes)
 *             FN_STATUS_TOO_LARGE 2  the handler set len above cap (no bytes)
 *             FN_STATUS_REQ_LARGE 3  the request's length is above
 *                                    FN_MAX_REQUEST (sent as soon as the
 *                                    length is read; the body is not read)
 *             FN_STATUS_BAD_REQ   4  the handler returned nonzero: it
 *                                    refused the request; its response
 *                                    bytes (if any) say why
 * A handler that never returns is the host's to stop (it tears the VM down
 * at its deadline); the runtime does not time handlers. A connection that
 * closes before a whole request frame arrived is dropped, and the runtime
 * waits for the next one.
 *
 * Per-clone seed: once a request has arrived (so: after any restore), the
 * runtime reads the 16-byte VMGenID (ember gives every restored VM a new
 * one) and 32 bytes from virtio-rng, when the VM has them, and hashes them
 * (SHA-256) into fn_request.seed; fn_request.seed_sources says which went
 * in. With neither, the seed is all zero and seed_sources is 0: do not use
 * it for anything secret then.
 *
 * Privilege and isolation: the handler and the runtime share ring 3 and one
 * identity map of the low 4 GiB (IOPL 3: the handler can print with
 * kit_puts, and could power the VM off). The isolation is the VM: every
 * request gets a VM restored from the same snapshot. The handler's stack is
 * FN_STACK_SIZE bytes with no guard page.
 *
 * Waiting: the runtime polls its queues for ~0.1 ms after the last thing
 * that happened, then halts until the vsock device's interrupt (routed
 * through the IOAPIC and local APIC that ACPI describes; the hlt itself is
 * done at ring 0 by fn_trap.S), so a VM waiting for a request or for the
 * host uses no host CPU. Without ACPI, with FN_POLL, or with fn_poll=1 on
 * the command line, it only polls.
 *
 * Per request the runtime prints nothing on the serial console (each byte is
 * a VM exit) unless fn_log=1 is on the command line; a handler fault is
 * always reported ("fn: handler fault vector V error E at rip R").
 */
#ifndef EMBER_GUEST_FN_H
#define EMBER_GUEST_FN_H

#include <stddef.h>
#include <stdint.h>

#include "kit.h"

#define FN_PORT 1024 /* the guest listens here for requests */
#define FN_READY_PORT 1025 /* the guest connects here once ready */
#define FN_READY_MAGIC "EMBERRDY"
#define FN_MAX_REQUEST (1u << 20)
#define FN_MAX_RESPONSE (1u << 20)
#define FN_STACK_SIZE (256u * 1024)
#define FN_HEAP_SIZE (16u << 20) /* what fn_alloc() hands out in all */

enum fn_status {
	FN_STATUS_OK = 0,
	FN_STATUS_CRASHED = 1,
	FN_STATUS_TOO_LARGE = 2,
	FN_STATUS_REQ_LARGE = 3,
	FN_STATUS_BAD_REQ = 4,
};

/* Where the seed came from (bits of fn_request.seed_sources). */
#define FN_SEED_VMGENID 1u
#define FN_SEED_RNG 2u

/* Flags of fn_serve(). */
#define FN_WARM 1u /* serve requests until the host stops the VM */
#define FN_POLL 2u /* never halt while waiting: poll (as fn_poll=1 does) */

/* ember's exit status when the runtime stops the VM (debug-exit port). */
enum fn_exit {
	FN_EXIT_SERVED = 0, /* one-shot: the request was handled */
	FN_EXIT_NO_VSOCK = 90, /* no virtio-vsock device, or it would not start */
	FN_EXIT_INIT_FAILED = 91, /* init returned nonzero or faulted */
	FN_EXIT_RUNTIME_FAULT = 92, /* a fault outside the handler (a runtime bug) */
};

struct fn_request {
	const uint8_t *data; /* the request bytes, valid until the handler returns */
	uint32_t len;
	uint32_t seed_sources; /* FN_SEED_* that went into seed; 0: seed is zero */
	uint8_t seed[32]; /* differs per restored clone (see above) */
	uint64_t serial; /* 1 for this VM's first request, counting up in warm mode */
};

struct fn_response {
	uint8_t *data; /* cap bytes the handler may write */
	uint32_t cap; /* FN_MAX_RESPONSE */
	uint32_t len; /* set by the handler (0 on entry); above cap: status 2 */
};

/* Runs at ring 3. Return 0 (status 0) or nonzero (status 4). */
typedef int (*fn_handler)(const struct fn_request *req, struct fn_response *resp);
/* Runs once at ring 3 before "ready", so its work is in the snapshot. 0: go on. */
typedef int (*fn_init)(void);

/* Boot the runtime and serve @handler (see above). Never returns. */
__attribute__((noreturn)) void fn_serve(fn_handler handler, fn_init init, unsigned int flags);

/*
 * @n bytes, 16-byte aligned, zeroed, from a bump arena of FN_HEAP_SIZE
 * (never freed: a one-shot VM is thrown away anyway). NULL when it is spent.
 */
void *fn_alloc(size_t n);

/* The image's entry: guest_main() calls fn_serve(). */
#define FN_MAIN(handler, init, flags)                                                              \
	int guest_main(void)                                                                       \
	{                                                                                          \
		fn_serve((handler), (init), (flags));                                              \
	}

#endif
