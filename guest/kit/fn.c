// SPDX-License-Identifier: Apache-2.0
/*
 * The function runtime (contract and wire protocol in fn.h). Ring 0 only
 * sets up the GDT with a TSS and the IDT (fn_cpu.c, fn_trap.S); everything else runs
 * at ring 3: the virtio-vsock stream protocol with credit on both sides (one
 * request connection at a time), the seed, the handler.
 */
#include "fn.h"

#include "acpi.h"
#include "fn_cpu.h"
#include "sha256.h"
#include "virtio.h"

/* ---- virtio-vsock ------------------------------------------------------------ */

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
#define HDR_LEN 44
#define TYPE_STREAM 1
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define SHUTDOWN_BOTH 3
#define HOST_CID 2
#define READY_LOCAL_PORT 49152

#define NRX GV_QUEUE_SIZE
#define RX_PAYLOAD (64 * 1024)
#define MAX_PKT (64 * 1024) /* ember's VSOCK_MAX_PKT */
#define BUF_ALLOC (512 * 1024) /* what we let the host send unacknowledged */

enum conn_state { C_FREE, C_CONNECTING, C_OPEN };

struct conn {
	enum conn_state state;
	uint32_t lport, pport;
	uint32_t peer_alloc, peer_fwd, tx_cnt; /* the device's credit for us */
	uint32_t fwd_cnt, fwd_sent; /* what we consumed of its bytes */
};

static struct gv_device devs[GV_MAX_DEVICES];
static struct gv_device *vsock, *rng;
static struct gv_queue_mem vq[3], rngq;
static uint8_t rxbuf[NRX][HDR_LEN + RX_PAYLOAD] __attribute__((aligned(4096)));
static uint8_t evbuf[8];
static uint64_t cid;
static struct conn ready, req;

/* The request being read on req. */
static uint8_t req_buf[FN_MAX_REQUEST] __attribute__((aligned(4096)));
static uint8_t resp_buf[FN_MAX_RESPONSE] __attribute__((aligned(4096)));
static uint8_t len_bytes[4];
static uint32_t req_got, req_len; /* bytes of the frame so far (length included) */
static int req_state; /* 0 reading, 1 whole request, 2 length above the limit */
/* TSC stamps of one request: connection accepted, frame whole, seed made,
 * handler returned, response taken by the host. */
static uint64_t t_conn, t_frame, t_seed, t_handler, t_sent;

/*
 * Waiting. Polling answers fastest, but a spinning vCPU takes a host core
 * from ember's own threads and from other VMs; so after SPIN_CYCLES with
 * nothing to do the runtime halts until a device interrupt (when ACPI gave
 * it the IOAPIC and local APIC: fn_cpu_route_irq()). fn_poll=1 on the command
 * line keeps it spinning.
 */
#define SPIN_CYCLES 200000ull /* ~0.1 ms */
static bool can_halt;
static uint64_t idle_since;

static bool queue_pending(const struct gv_device *d, unsigned int qi)
{
	return __atomic_load_n(&d->q[qi]->used.idx, __ATOMIC_ACQUIRE) != d->used_seen[qi];
}

/* Nothing came: spin a while, then halt until an interrupt. */
static void idle(void)
{
	uint64_t now = rdtsc();
	if (!idle_since)
		idle_since = now;
	if (!can_halt || now - idle_since < SPIN_CYCLES) {
		__asm__ volatile("pause");
		return;
	}
	/* Ask for an interrupt on the next used entry of every queue, then
	 * look once more (full barrier: the device reads used_event after
	 * writing used.idx; we read used.idx after writing used_event). */
	for (unsigned int i = 0; i < 3; i++)
		vsock->q[i]->avail.used_event = vsock->used_seen[i];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!queue_pending(vsock, 0) && !queue_pending(vsock, 1) && !queue_pending(vsock, 2))
		fn_idle_halt();
	/* idle_since stays: woken for nothing, halt again at once. */
}

static void busy(void)
{
	idle_since = 0;
}

/* Wait for @n chains of the TX queue to come back. */
static void tx_wait(int n)
{
	uint16_t head;
	uint32_t len;
	while (n) {
		if (gv_take_used(vsock, 1, &head, &len) == 0)
			n--;
		else
			idle();
	}
	busy();
}

static void tx(const struct gv_buf *b, int n)
{
	gv_post(vsock, 1, 0, b, n);
	tx_wait(1);
}

static struct vsock_hdr hdr_for(const struct conn *c, uint16_t op, uint32_t flags, uint32_t len)
{
	return (struct vsock_hdr){ .src_cid = cid,
				   .dst_cid = HOST_CID,
				   .src_port = c->lport,
				   .dst_port = c->pport,
				   .len = len,
				   .type = TYPE_STREAM,
				   .op = op,
				   .flags = flags,
				   .buf_alloc = BUF_ALLOC,
				   .fwd_cnt = c->fwd_cnt };
}

static void send_ctrl(struct conn *c, uint16_t op, uint32_t flags)
{
	static struct vsock_hdr h;
	h = hdr_for(c, op, flags, 0);
	c->fwd_sent = c->fwd_cnt;
	struct gv_buf b = { &h, HDR_LEN, false };
	tx(&b, 1);
}

static void reset_pair(uint32_t lport, uint32_t pport)
{
	struct conn c = { .lport = lport, .pport = pport };
	send_ctrl(&c, OP_RST, 0);
}

static void rng_ask(void);

static void frame_bytes(const uint8_t *p, uint32_t n)
{
	for (; n && req_state == 0 && req_got < 4; n--, p++) {
		len_bytes[req_got++] = *p;
		if (req_got == 4) {
			req_len = (uint32_t)len_bytes[0] | (uint32_t)len_bytes[1] << 8 |
			    (uint32_t)len_bytes[2] << 16 | (uint32_t)len_bytes[3] << 24;
			if (req_len > FN_MAX_REQUEST)
				req_state = 2;
		}
	}
	if (req_state != 0 || req_got < 4)
		return;
	uint32_t want = req_len - (req_got - 4);
	if (n > want)
		n = want; /* bytes after the frame are ignored */
	memcpy(req_buf + (req_got - 4), p, n);
	req_got += n;
	if (req_got - 4 == req_len)
		req_state = 1;
}

static void on_packet(const struct vsock_hdr *h, const uint8_t *data)
{
	if (h->src_cid != HOST_CID || h->dst_cid != cid || h->type != TYPE_STREAM)
		return;
	struct conn *c = NULL;
	if (ready.state && h->dst_port == ready.lport && h->src_port == ready.pport)
		c = &ready;
	else if (req.state && h->dst_port == req.lport && h->src_port == req.pport)
		c = &req;
	if (h->op == OP_REQUEST) {
		if (c || h->dst_port != FN_PORT || req.state) {
			reset_pair(h->dst_port, h->src_port); /* one request connection at a time */
			return;
		}
		req = (struct conn){ .state = C_OPEN,
				     .lport = FN_PORT,
				     .pport = h->src_port,
				     .peer_alloc = h->buf_alloc,
				     .peer_fwd = h->fwd_cnt };
		req_got = req_len = 0;
		req_state = 0;
		t_conn = rdtsc();
		send_ctrl(&req, OP_RESPONSE, 0);
		rng_ask();
		return;
	}
	if (!c) {
		if (h->op != OP_RST)
			reset_pair(h->dst_port, h->src_port);
		return;
	}
	c->peer_alloc = h->buf_alloc;
	c->peer_fwd = h->fwd_cnt;
	switch (h->op) {
	case OP_RESPONSE:
		if (c->state == C_CONNECTING)
			c->state = C_OPEN;
		break;
	case OP_RST:
		c->state = C_FREE;
		break;
	case OP_SHUTDOWN:
		/* ember sends both directions when the host peer closed. */
		send_ctrl(c, OP_RST, 0);
		c->state = C_FREE;
		break;
	case OP_RW:
		if (c == &req)
			frame_bytes(data, h->len);
		c->fwd_cnt += h->len;
		if (c->fwd_cnt - c->fwd_sent >= BUF_ALLOC / 2)
			send_ctrl(c, OP_CREDIT_UPDATE, 0);
		break;
	case OP_CREDIT_REQUEST:
		send_ctrl(c, OP_CREDIT_UPDATE, 0);
		break;
	default: /* CREDIT_UPDATE: applied above */
		break;
	}
}

/* Handle what the device returned, if anything; 1 if something came. */
static int poll_once(void)
{
	uint16_t head;
	uint32_t len;
	int got = 0;
	if (gv_take_used(vsock, 2, &head, &len) == 0) {
		/* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (a snapshot was taken):
		 * every connection is gone. */
		ready.state = req.state = C_FREE;
		struct gv_buf b = { evbuf, sizeof(evbuf), true };
		gv_post(vsock, 2, 0, &b, 1);
		got = 1;
	}
	if (gv_take_used(vsock, 0, &head, &len) == 0) {
		head %= NRX;
		if (len >= HDR_LEN) {
			struct vsock_hdr h;
			memcpy(&h, rxbuf[head], HDR_LEN);
			if (h.len <= len - HDR_LEN)
				on_packet(&h, rxbuf[head] + HDR_LEN);
		}
		struct gv_buf b = { rxbuf[head], sizeof(rxbuf[head]), true };
		gv_post(vsock, 0, head, &b, 1);
		got = 1;
	}
	if (got)
		busy();
	else
		idle();
	return got;
}

static uint32_t credit(const struct conn *c)
{
	return c->peer_alloc - (c->tx_cnt - c->peer_fwd);
}

/*
 * Send @pre (at most 8 bytes, first) and @data on @c within the device's
 * credit, at most MAX_PKT a packet, and wait until the host side has
 * taken every byte: the last packet goes out with a credit request in the
 * same notification, and the answer says how far the device forwarded.
 * 0, or -1 if the connection went away.
 */
static int send_all(struct conn *c, const uint8_t *pre, uint32_t npre, const uint8_t *data,
		    uint32_t n)
{
	static struct vsock_hdr h, ask;
	while (npre + n) {
		uint32_t room = credit(c);
		if (c->state != C_OPEN)
			return -1;
		if (room < npre + (n ? 1 : 0)) {
			poll_once();
			continue;
		}
		if (room > MAX_PKT)
			room = MAX_PKT;
		uint32_t chunk = n < room - npre ? n : room - npre;
		h = hdr_for(c, OP_RW, 0, npre + chunk);
		c->fwd_sent = c->fwd_cnt;
		struct gv_buf b[3] = { { &h, HDR_LEN, false } };
		int nb = 1;
		if (npre)
			b[nb++] = (struct gv_buf){ pre, npre, false };
		if (chunk)
			b[nb++] = (struct gv_buf){ data, chunk, false };
		c->tx_cnt += npre + chunk;
		data += chunk;
		n -= chunk;
		npre = 0;
		if (n) {
			tx(b, nb);
			continue;
		}
		ask = hdr_for(c, OP_CREDIT_REQUEST, 0, 0);
		struct gv_buf a = { &ask, HDR_LEN, false };
		gv_post(vsock, 1, 0, b, nb);
		/* With EVENT_IDX no second notification while the first is pending. */
		gv_post(vsock, 1, 3, &a, 1);
		tx_wait(2);
	}
	while (c->state == C_OPEN && c->peer_fwd != c->tx_cnt)
		poll_once();
	return c->state == C_OPEN ? 0 : -1;
}

static int vsock_start(void)
{
	int n = gv_discover(kit_dtb(), devs, GV_MAX_DEVICES);
	for (int i = 0; i < n; i++) {
		if (devs[i].device_id == 19 && !vsock)
			vsock = &devs[i];
		if (devs[i].device_id == 4 && !rng)
			rng = &devs[i];
	}
	struct gv_queue_mem *qs[3] = { &vq[0], &vq[1], &vq[2] };
	if (!vsock || gv_start(vsock, 0, qs, 3) < 0)
		return -1;
	cid = gv_config32(vsock, 0) | (uint64_t)gv_config32(vsock, 4) << 32;
	for (uint16_t i = 0; i < NRX; i++) {
		struct gv_buf b = { rxbuf[i], sizeof(rxbuf[i]), true };
		gv_post(vsock, 0, i, &b, 1);
	}
	struct gv_buf ev = { evbuf, sizeof(evbuf), true };
	gv_post(vsock, 2, 0, &ev, 1);
	struct gv_queue_mem *rq = &rngq;
	if (rng && gv_start(rng, 0, &rq, 1) < 0)
		rng = NULL;
	return 0;
}

/*
 * Tell the host we are ready: connect, send the magic and shut down in one
 * notification, so that by the time the host reads the magic (and may pause
 * the VM) the device has taken every packet. 0, or -1 if nobody listens.
 */
static int announce_ready(void)
{
	static struct vsock_hdr h[2];
	ready = (struct conn){ .state = C_CONNECTING,
			       .lport = READY_LOCAL_PORT,
			       .pport = FN_READY_PORT };
	send_ctrl(&ready, OP_REQUEST, 0);
	while (ready.state == C_CONNECTING)
		poll_once();
	if (ready.state != C_OPEN)
		return -1;
	h[0] = hdr_for(&ready, OP_RW, 0, 8);
	h[1] = hdr_for(&ready, OP_SHUTDOWN, SHUTDOWN_BOTH, 0);
	struct gv_buf rw[2] = { { &h[0], HDR_LEN, false }, { FN_READY_MAGIC, 8, false } };
	struct gv_buf sd = { &h[1], HDR_LEN, false };
	gv_post(vsock, 1, 0, rw, 2);
	gv_post(vsock, 1, 2, &sd, 1);
	tx_wait(2);
	/* ember answers the full shutdown with RST; the slot is ours again
	 * whether it comes now or is lost to a snapshot's transport reset. */
	ready.state = C_FREE;
	return 0;
}

/* ---- seed ------------------------------------------------------------------ */

static struct acpi_info acpi;
static uint64_t vmgenid_addr;
/* Entropy for the next seed, asked for when a connection arrives so that
 * the device's round trip overlaps the request's bytes. */
static uint8_t rng_bytes[32];
static bool rng_posted;
#define RNG_WAIT_CYCLES 10000000000ull /* a few seconds: the device is gone */

static void rng_ask(void)
{
	if (!rng || rng_posted)
		return;
	memset(rng_bytes, 0, sizeof(rng_bytes));
	struct gv_buf b = { rng_bytes, sizeof(rng_bytes), true };
	gv_post(rng, 0, 0, &b, 1);
	rng_posted = true;
}

static uint32_t seed_make(uint8_t seed[32])
{
	struct sha256 s;
	uint32_t from = 0;
	sha256_init(&s);
	sha256_update(&s, "ember-fn seed", 13);
	if (vmgenid_addr) {
		uint8_t id[16];
		for (int i = 0; i < 16; i++)
			id[i] = ((const volatile uint8_t *)vmgenid_addr)[i];
		sha256_update(&s, id, sizeof(id));
		from |= FN_SEED_VMGENID;
	}
	uint16_t head;
	uint32_t len;
	if (rng_posted && gv_wait_used(rng, 0, &head, &len, RNG_WAIT_CYCLES) == 0) {
		rng_posted = false;
		if (len == sizeof(rng_bytes)) {
			sha256_update(&s, (const uint8_t *)rng_bytes, sizeof(rng_bytes));
			from |= FN_SEED_RNG;
		}
	}
	if (from)
		sha256_final(&s, seed);
	else
		memset(seed, 0, 32);
	return from;
}

/* ---- serving ---------------------------------------------------------------- */

static uint8_t user_stack[FN_STACK_SIZE] __attribute__((aligned(16)));
static uint8_t heap[FN_HEAP_SIZE] __attribute__((aligned(4096)));
static size_t heap_used;
static fn_handler the_handler;
static fn_init the_init;
static unsigned int the_flags;
static uint64_t log_on;

void *fn_alloc(size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;
	if (need < n || need > FN_HEAP_SIZE - heap_used)
		return NULL;
	void *p = heap + heap_used;
	heap_used += need;
	memset(p, 0, n);
	return p;
}

static void put_fault(const char *what)
{
	kit_puts("fn: ");
	kit_puts(what);
	kit_puts(" fault vector ");
	kit_put_dec(fn_fault.vector);
	kit_puts(" error ");
	kit_put_hex(fn_fault.error);
	kit_puts(" at rip ");
	kit_put_hex(fn_fault.rip);
	kit_puts(" cr2 ");
	kit_put_hex(fn_fault.cr2);
	kit_putc('\n');
}

/* fn_trap.S comes here (ring 3) for a fault nobody catches. */
__attribute__((noreturn)) void fn_fault_uncaught(void);
void fn_fault_uncaught(void)
{
	put_fault("runtime");
	kit_exit(FN_EXIT_RUNTIME_FAULT);
}

/* Run the handler; the response's status. */
static uint32_t run_handler(struct fn_request *r, struct fn_response *resp)
{
	static struct fn_ctx ctx;
	static int ret;
	*resp = (struct fn_response){ .data = resp_buf, .cap = FN_MAX_RESPONSE };
	fn_catch = &ctx;
	if (fn_setjmp(&ctx) != 0) {
		fn_catch = NULL;
		put_fault("handler");
		resp->len = 0;
		return FN_STATUS_CRASHED;
	}
	ret = the_handler(r, resp);
	fn_catch = NULL;
	if (resp->len > resp->cap) {
		resp->len = 0;
		return FN_STATUS_TOO_LARGE;
	}
	return ret ? FN_STATUS_BAD_REQ : FN_STATUS_OK;
}

/* Send the response frame, wait until the host has it, end the connection. */
static void respond(uint32_t status, const uint8_t *data, uint32_t len)
{
	uint8_t head[8] = {
		(uint8_t)status,	 (uint8_t)(status >> 8), (uint8_t)(status >> 16),
		(uint8_t)(status >> 24), (uint8_t)len,		 (uint8_t)(len >> 8),
		(uint8_t)(len >> 16),	 (uint8_t)(len >> 24)
	};
	send_all(&req, head, sizeof(head), data, len);
	if (req.state == C_OPEN)
		send_ctrl(&req, OP_SHUTDOWN, SHUTDOWN_BOTH); /* ember answers RST */
	req.state = C_FREE;
}

static void put_kv(const char *key, uint64_t v)
{
	kit_putc(' ');
	kit_puts(key);
	kit_putc(' ');
	kit_put_dec(v);
}

static void log_request(uint64_t serial, uint32_t len, uint32_t status, uint32_t rlen)
{
	if (!log_on)
		return;
	kit_puts("fn: request ");
	kit_put_dec(serial);
	put_kv("len", len);
	put_kv("status", status);
	put_kv("response", rlen);
	kit_puts(" tsc");
	put_kv("read", t_frame - t_conn);
	put_kv("seed", t_seed - t_frame);
	put_kv("handler", t_handler - t_seed);
	put_kv("reply", t_sent - t_handler);
	kit_putc('\n');
}

static uint64_t warm_mode(void)
{
	uint64_t warm = (the_flags & FN_WARM) != 0;
	kit_cmdline_u64("fn_warm=", &warm);
	return warm;
}

__attribute__((noreturn)) static void serve(void)
{
	static struct fn_request r;
	static struct fn_response resp;
	uint64_t warm = warm_mode();
	for (uint64_t serial = 1;; serial++) {
		while (req_state == 0 || req.state != C_OPEN) {
			if (req.state != C_OPEN)
				req_state = 0; /* a connection that ended mid-frame */
			poll_once();
		}
		uint32_t status, rlen = 0;
		t_frame = t_seed = t_handler = rdtsc();
		if (req_state == 2) {
			status = FN_STATUS_REQ_LARGE;
			respond(status, NULL, 0);
		} else {
			r = (struct fn_request){ .data = req_buf,
						 .len = req_len,
						 .serial = serial };
			r.seed_sources = seed_make(r.seed);
			t_seed = rdtsc();
			status = run_handler(&r, &resp);
			t_handler = rdtsc();
			rlen = resp.len;
			respond(status, resp_buf, rlen);
		}
		t_sent = rdtsc();
		req_state = 0;
		log_request(serial, req_len, status, rlen);
		if (!warm || status == FN_STATUS_CRASHED)
			kit_exit(FN_EXIT_SERVED);
	}
}

__attribute__((noreturn)) static void user_main(void)
{
	kit_cmdline_u64("fn_log=", &log_on);
	if (vsock_start() < 0) {
		kit_puts("fn: no virtio-vsock device\n");
		kit_exit(FN_EXIT_NO_VSOCK);
	}
	uint64_t poll = (the_flags & FN_POLL) != 0;
	kit_cmdline_u64("fn_poll=", &poll);
	if (acpi_read(&acpi) == 0) {
		vmgenid_addr = acpi.vmgenid_addr;
		can_halt = !poll && fn_cpu_route_irq(&acpi, vsock->irq) == 0;
	}
	if (the_init) {
		static struct fn_ctx ctx;
		fn_catch = &ctx;
		if (fn_setjmp(&ctx) != 0) {
			put_fault("init");
			kit_exit(FN_EXIT_INIT_FAILED);
		}
		int r = the_init();
		fn_catch = NULL;
		if (r) {
			kit_puts("fn: init failed\n");
			kit_exit(FN_EXIT_INIT_FAILED);
		}
	}
	kit_puts("fn: listening on port ");
	kit_put_dec(FN_PORT);
	kit_puts(" cid ");
	kit_put_dec(cid);
	kit_puts(vmgenid_addr ? " vmgenid" : " no-vmgenid");
	kit_puts(rng ? " rng" : " no-rng");
	kit_puts(can_halt ? " halt" : " poll");
	kit_puts(warm_mode() ? " warm\n" : " one-shot\n");
	/* Nothing is printed after the ready signal: the host may snapshot
	 * here, and every clone would print the rest again. */
	if (announce_ready() < 0)
		kit_puts("fn: nobody took the ready signal\n");
	serve();
}

void fn_serve(fn_handler handler, fn_init init, unsigned int flags)
{
	the_handler = handler;
	the_init = init;
	the_flags = flags;
	fn_cpu_setup();
	kit_enter_user(user_main, user_stack + sizeof(user_stack));
}
