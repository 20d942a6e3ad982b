/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few legacy devices a microVM needs, and nothing more:
 *   serial      8250 UART (COM1, 0x3f8, IRQ 4)
 *   i8042       the keyboard controller as far as Linux's i8042 and atkbd
 *               drivers use it: command byte, self-tests, Ctrl+Alt+Del
 *               scan codes and the reset line (0xfe)
 *   boot timer  MMIO page; the guest writes 123 when it has booted
 *   debug exit  port 0xf4; the value written becomes ember's exit status
 *
 * Register accesses arrive on vCPU threads (through the buses); serial input
 * arrives on the VMM thread. Each device locks what both touch.
 */
#ifndef EMBER_LEGACY_H
#define EMBER_LEGACY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rate_limiter.h"

struct vm;
struct event_loop;

#define SERIAL_RX_FIFO 64

/* Firecracker's uart metrics (its names), cumulative; under the lock. */
struct serial_metrics {
	uint64_t read_count; /* bytes the guest read from the receive buffer */
	uint64_t write_count; /* bytes the guest sent (THR writes outside loopback) */
	uint64_t missed_read_count; /* reads of a width other than one byte */
	uint64_t missed_write_count; /* such writes, and bytes the console refused */
	uint64_t rate_limiter_dropped_bytes; /* output over PUT /serial's rate_limiter */
};

struct serial {
	pthread_mutex_t lock;
	struct vm *vm;
	int out_fd; /* -1: output discarded */
	int irq_fd; /* irqfd for IRQ 4 */
	uint8_t ier, iir_thre_pending, lcr, mcr, lsr_extra, msr, scr, dll, dlm, fcr;
	uint8_t rx[SERIAL_RX_FIFO];
	unsigned int rx_head, rx_len;
	/* stdin flow control: reading stops while the FIFO is full and resumes
	 * when the guest empties it (the vCPU pokes rx_space_fd). */
	struct event_loop *loop;
	struct event_handler *stdin_h;
	int rx_space_fd;
	bool stdin_paused;
	uint64_t tx_bytes, rx_bytes, rx_dropped;
	struct serial_metrics m;
	/* PUT /serial's rate_limiter on output bytes (Firecracker's: bytes
	 * over the budget are dropped, not delayed). Unlimited when size 0. */
	struct rate_limiter out_rl;
};

/* Put COM1 on the PIO bus; output goes to @out_fd (-1 for none). */
int serial_init(struct serial *s, struct vm *vm, int out_fd) __attribute__((warn_unused_result));
/* Limit output to @size bytes per @refill_ms (plus a one-time @burst);
 * size 0 lifts the limit. Before the vCPUs run. 0 or -EINVAL. */
int serial_set_out_limit(struct serial *s, uint64_t size, uint64_t burst, uint64_t refill_ms)
    __attribute__((warn_unused_result));
/* Feed bytes typed by the user; called on the VMM thread. Returns bytes taken. */
unsigned int serial_push_input(struct serial *s, const uint8_t *buf, unsigned int len);
/* Read stdin on @loop and feed it to the guest (raw terminal when a tty). */
int serial_attach_stdin(struct serial *s, struct event_loop *loop)
    __attribute__((warn_unused_result));

/* Firecracker's i8042 metrics (its names), cumulative; under the lock. */
struct i8042_metrics {
	uint64_t read_count, write_count; /* accesses to ports 0x60 and 0x64 */
	uint64_t missed_read_count, missed_write_count; /* other ports or widths */
	uint64_t reset_count; /* the guest pulsed the reset line (0xfe) */
};

struct i8042 {
	pthread_mutex_t lock;
	struct i8042_metrics m;
	struct vm *vm;
	uint8_t out[16]; /* bytes for the guest to read from port 0x60 */
	unsigned int head, len;
	uint8_t ctr; /* the controller's command byte */
	uint8_t outp; /* output port */
	uint8_t pending; /* a command whose parameter byte comes on port 0x60 */
	bool last_was_cmd; /* status bit 3: the last write went to port 0x64 */
};

int i8042_init(struct i8042 *k, struct vm *vm) __attribute__((warn_unused_result));
/* Queue the Ctrl+Alt+Del key presses and raise IRQ 1. Any thread. */
int i8042_send_ctrl_alt_del(struct i8042 *k);
int boot_timer_init(struct vm *vm) __attribute__((warn_unused_result));
int debug_exit_init(struct vm *vm) __attribute__((warn_unused_result));

/* The value a guest writes to the boot timer to say it has booted. */
#define BOOT_TIMER_MAGIC 123

#endif
