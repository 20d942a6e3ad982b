// SPDX-License-Identifier: Apache-2.0
#include "event_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct event_handler {
	int fd;
	event_fn fn;
	void *opaque;
	/* On the loop's list of live handlers until removed, then on its list
	 * of dead ones until the batch that may still name it is done. */
	struct event_handler *prev, *next;
	struct event_handler *next_dead;
};

static void event_loop_reap(struct event_loop *loop)
{
	pthread_mutex_lock(&loop->dead_lock);
	struct event_handler *h = loop->dead;
	loop->dead = NULL;
	pthread_mutex_unlock(&loop->dead_lock);
	while (h) {
		struct event_handler *next = h->next_dead;
		free(h);
		h = next;
	}
}

int event_loop_init(struct event_loop *loop)
{
	loop->stop = false;
	loop->dead = NULL;
	loop->live = NULL;
	pthread_mutex_init(&loop->dead_lock, NULL);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epfd < 0 ? -errno : 0;
}

struct event_handler *event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn,
				     void *opaque)
{
	struct event_handler *h = malloc(sizeof(*h));
	if (!h)
		return NULL;
	*h = (struct event_handler){ .fd = fd, .fn = fn, .opaque = opaque };
	struct epoll_event ev = { .events = events, .data.ptr = h };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		free(h);
		errno = e;
		return NULL;
	}
	pthread_mutex_lock(&loop->dead_lock);
	h->next = loop->live;
	if (h->next)
		h->next->prev = h;
	loop->live = h;
	pthread_mutex_unlock(&loop->dead_lock);
	return h;
}

void event_loop_del(struct event_loop *loop, struct event_handler *h)
{
	if (!h)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	/* A handler removed from inside a callback may still be in the current
	 * batch of events; it is freed only once the batch is done. */
	__atomic_store_n(&h->fn, NULL, __ATOMIC_RELEASE);
	pthread_mutex_lock(&loop->dead_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		loop->live = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->next_dead = loop->dead;
	loop->dead = h;
	pthread_mutex_unlock(&loop->dead_lock);
}

int event_loop_run_once(struct event_loop *loop, int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(loop->epfd, evs, 16, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n && !loop->stop; i++) {
		struct event_handler *h = evs[i].data.ptr;
		event_fn fn = __atomic_load_n(&h->fn, __ATOMIC_ACQUIRE);
		if (fn)
			fn(h->opaque, evs[i].events);
	}
	event_loop_reap(loop);
	return n;
}

void event_loop_destroy(struct event_loop *loop)
{
	event_loop_reap(loop);
	for (struct event_handler *h = loop->live, *next; h; h = next) {
		next = h->next;
		free(h);
	}
	loop->live = NULL;
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
	pthread_mutex_destroy(&loop->dead_lock);
}

int event_loop_run(struct event_loop *loop)
{
	while (!loop->stop) {
		int r = event_loop_run_once(loop, -1);
		if (r < 0)
			return r;
	}
	return 0;
}
