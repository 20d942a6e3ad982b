/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VMM thread's epoll loop. Devices, signals and (later) the API register
 * an fd with a callback; the loop calls it on the VMM thread when the fd is
 * ready. Only the VMM thread may add handlers or run the loop; any thread
 * may remove one (a device reset arrives on a vCPU thread).
 */
#ifndef EMBER_EVENT_LOOP_H
#define EMBER_EVENT_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*event_fn)(void *opaque, uint32_t events);

struct event_handler;

struct event_loop {
	int epfd;
	bool stop;
	struct event_handler *live; /* every handler added and not yet removed */
	struct event_handler *dead; /* removed handlers, freed after each batch */
	pthread_mutex_t dead_lock; /* both lists: a device reset on a vCPU thread may remove one */
};

int event_loop_init(struct event_loop *loop) __attribute__((warn_unused_result));
/* Watch @fd for @events (EPOLLIN...). Returns a handle for removal, or NULL. */
struct event_handler *event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn,
				     void *opaque) __attribute__((warn_unused_result));
void event_loop_del(struct event_loop *loop, struct event_handler *h);
/* Wait up to @timeout_ms (-1: forever) and dispatch one batch of events.
 * Returns how many fired, or -errno. */
int event_loop_run_once(struct event_loop *loop, int timeout_ms);
/* Dispatch events until a callback sets loop->stop. 0 or -errno. */
int event_loop_run(struct event_loop *loop);
/* Free every handler and close the epoll fd. Only once no thread can call
 * event_loop_del() any more (vCPU threads gone). */
void event_loop_destroy(struct event_loop *loop);

#endif
