// SPDX-License-Identifier: Apache-2.0
/* 8250/16550A UART, as much as Linux's 8250 driver and early console use. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "arch/x86_64/layout.h"
#include "clock.h"
#include "event_loop.h"
#include "legacy.h"
#include "log.h"
#include "util.h"
#include "vm.h"

enum {
	UART_RBR_THR = 0,
	UART_IER = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

static void serial_raise_irq(struct serial *s)
{
	uint64_t one = 1;
	ssize_t w = write(s->irq_fd, &one, sizeof(one));
	(void)w;
}

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
	if ((s->ier & IER_RDI) && s->rx_len)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->iir_thre_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

static uint8_t serial_msr(const struct serial *s)
{
	if (!(s->mcr & MCR_LOOP))
		return s->msr;
	/* Loopback: modem inputs mirror the outputs (Linux probes this). */
	uint8_t m = 0;
	if (s->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

static bool serial_rx_put(struct serial *s, uint8_t c)
{
	if (s->rx_len == SERIAL_RX_FIFO) {
		s->rx_dropped++;
		return false;
	}
	s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_FIFO] = c;
	s->rx_len++;
	s->rx_bytes++;
	return true;
}

static void serial_tx(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		serial_rx_put(s, c);
	} else {
		s->m.write_count++;
		if (s->out_fd < 0)
			return;
		if (rate_limiter_enabled(&s->out_rl) &&
		    !rate_limiter_consume(&s->out_rl, 0, 1, clock_now_ns())) {
			s->m.rate_limiter_dropped_bytes++;
			return;
		}
		/* Output is best effort: a closed or full console never stalls the guest. */
		if (write_full(s->out_fd, &c, 1) < 0)
			s->m.missed_write_count++;
		else
			s->tx_bytes++;
	}
}

static void serial_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	memset(data, 0, len);
	pthread_mutex_lock(&s->lock);
	bool dlab = s->lcr & LCR_DLAB;
	if (len != 1)
		s->m.missed_read_count++;
	switch (off) {
	case UART_RBR_THR:
		if (dlab) {
			data[0] = s->dll;
		} else if (s->rx_len) {
			s->m.read_count++;
			data[0] = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
			s->rx_len--;
			if (!s->rx_len && s->stdin_paused) {
				uint64_t one = 1;
				ssize_t w = write(s->rx_space_fd, &one, sizeof(one));
				(void)w;
			}
		}
		break;
	case UART_IER:
		data[0] = dlab ? s->dlm : s->ier;
		break;
	case UART_IIR_FCR:
		data[0] = serial_iir(s);
		/* Reading IIR acknowledges a THR-empty interrupt. */
		if ((data[0] & 0x0f) == IIR_THRI)
			s->iir_thre_pending = 0;
		break;
	case UART_LCR:
		data[0] = s->lcr;
		break;
	case UART_MCR:
		data[0] = s->mcr;
		break;
	case UART_LSR:
		data[0] = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
		break;
	case UART_MSR:
		data[0] = serial_msr(s);
		break;
	case UART_SCR:
		data[0] = s->scr;
		break;
	}
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	uint8_t v = data[0];
	bool irq = false;
	pthread_mutex_lock(&s->lock);
	bool dlab = s->lcr & LCR_DLAB;
	if (len != 1)
		s->m.missed_write_count++;
	switch (off) {
	case UART_RBR_THR:
		if (dlab) {
			s->dll = v;
			break;
		}
		serial_tx(s, v);
		/* The byte left at once: THR is empty again. */
		s->iir_thre_pending = 1;
		irq = (s->ier & IER_THRI) || ((s->mcr & MCR_LOOP) && (s->ier & IER_RDI));
		break;
	case UART_IER:
		if (dlab) {
			s->dlm = v;
			break;
		}
		/* Enabling THRI with an empty THR interrupts at once, as a 16550 does. */
		if ((v & IER_THRI) && !(s->ier & IER_THRI)) {
			s->iir_thre_pending = 1;
			irq = true;
		}
		s->ier = v & 0x0f;
		if ((s->ier & IER_RDI) && s->rx_len)
			irq = true;
		break;
	case UART_IIR_FCR:
		s->fcr = v;
		if (v & FCR_CLEAR_RX)
			s->rx_len = 0;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
	pthread_mutex_unlock(&s->lock);
	if (irq)
		serial_raise_irq(s);
}

unsigned int serial_push_input(struct serial *s, const uint8_t *buf, unsigned int len)
{
	unsigned int n = 0;
	pthread_mutex_lock(&s->lock);
	while (n < len && !(s->mcr & MCR_LOOP) && serial_rx_put(s, buf[n]))
		n++;
	bool irq = n && (s->ier & IER_RDI);
	pthread_mutex_unlock(&s->lock);
	if (irq)
		serial_raise_irq(s);
	return n;
}

int serial_set_out_limit(struct serial *s, uint64_t size, uint64_t burst, uint64_t refill_ms)
{
	memset(&s->out_rl, 0, sizeof(s->out_rl));
	if (!size)
		return 0;
	return token_bucket_init(&s->out_rl.bytes, size, burst, refill_ms, clock_now_ns());
}

int serial_init(struct serial *s, struct vm *vm, int out_fd)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->vm = vm;
	s->out_fd = out_fd;
	s->rx_space_fd = -1;
	s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	s->mcr = MCR_OUT2;
	s->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->irq_fd < 0)
		return -errno;
	struct kvm_irqfd irqfd = { .fd = (uint32_t)s->irq_fd, .gsi = SERIAL_COM1_IRQ };
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		log_err("KVM_IRQFD for the serial port: %s", strerror(errno));
		return -errno;
	}
	struct bus_device dev = {
		.name = "serial",
		.base = SERIAL_COM1_PORT,
		.len = 8,
		.opaque = s,
		.read = serial_read,
		.write = serial_write,
	};
	return bus_register(&vm->pio_bus, &dev);
}

static struct termios saved_termios;
static bool termios_saved;

static void serial_restore_tty(void)
{
	if (termios_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
}

static void serial_stdin_ready(void *opaque, uint32_t events);

static void serial_stdin_watch(struct serial *s)
{
	s->stdin_h = event_loop_add(s->loop, STDIN_FILENO, EPOLLIN, serial_stdin_ready, s);
	/* A regular file or /dev/null cannot be polled (EPERM): no guest input then. */
	if (!s->stdin_h)
		log_debug("serial: no input from stdin: %s", strerror(errno));
}

static void serial_stdin_ready(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	uint8_t buf[SERIAL_RX_FIFO];
	(void)events;
	pthread_mutex_lock(&s->lock);
	unsigned int room = SERIAL_RX_FIFO - s->rx_len;
	if (!room)
		s->stdin_paused = true;
	pthread_mutex_unlock(&s->lock);
	if (!room) {
		/* Leave the rest in the pipe until the guest has read the FIFO. */
		event_loop_del(s->loop, s->stdin_h);
		s->stdin_h = NULL;
		return;
	}
	ssize_t n = read(STDIN_FILENO, buf, room);
	if (n > 0) {
		serial_push_input(s, buf, (unsigned int)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* End of input or a broken stdin: stop reading it; the guest runs on. */
	event_loop_del(s->loop, s->stdin_h);
	s->stdin_h = NULL;
}

static void serial_rx_space(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	uint64_t v;
	(void)events;
	ssize_t r = read(s->rx_space_fd, &v, sizeof(v));
	(void)r;
	pthread_mutex_lock(&s->lock);
	bool resume = s->stdin_paused;
	s->stdin_paused = false;
	pthread_mutex_unlock(&s->lock);
	if (resume && !s->stdin_h)
		serial_stdin_watch(s);
}

int serial_attach_stdin(struct serial *s, struct event_loop *loop)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
		struct termios raw = saved_termios;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG);
		termios_saved = true;
		atexit(serial_restore_tty);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	s->loop = loop;
	s->rx_space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->rx_space_fd < 0 ||
	    !event_loop_add(loop, s->rx_space_fd, EPOLLIN, serial_rx_space, s))
		return -errno;
	serial_stdin_watch(s);
	return 0;
}
