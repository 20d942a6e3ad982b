/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember-fn serve: a pool of embers started ahead, requests served on a Unix
 * socket, one fresh VM per request.
 *
 * Threads: the main thread accepts clients and watches for SIGTERM/SIGINT;
 * one thread per client reads its frames and runs each request in a VM
 * taken from the pool; the filler thread starts embers until the pool is
 * full; the reaper thread waits for killed embers and removes their
 * directories, so a request never waits for a VM's teardown. Everything
 * shared is under one lock.
 */
#include "fn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define FN_MAX_CLIENTS 128
/* A request's bytes, once its length arrived; a reply to a slow reader. */
#define FN_IO_TIMEOUT_MS 10000
/* How long a request waits for a VM when the pool is empty. */
#define FN_TAKE_TIMEOUT_MS 10000

struct vm_node {
	struct fn_vm vm;
	struct vm_node *next;
};

static struct {
	const struct fn_opts *o;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct vm_node *ready, *dying; /* FIFO of started embers; killed ones to reap */
	unsigned int n_ready, want;
	unsigned int unreaped; /* killed, not yet reaped and removed */
	unsigned int busy, clients;
	bool spawning, stopping;
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

/* Hand a killed VM to the reaper. Called with the lock held. */
static void dying_push(struct vm_node *n)
{
	n->next = S.dying;
	S.dying = n;
	S.unreaped++;
	pthread_cond_broadcast(&S.changed);
}

static void *filler(void *arg)
{
	(void)arg;
	bool warned = false;
	pthread_mutex_lock(&S.lock);
	while (!S.stopping) {
		if (S.n_ready >= S.want) {
			pthread_cond_wait(&S.changed, &S.lock);
			continue;
		}
		S.spawning = true;
		pthread_mutex_unlock(&S.lock);
		struct vm_node *n = calloc(1, sizeof(*n));
		int e = n ? fn_vm_spawn(&n->vm, S.o) : -ENOMEM;
		pthread_mutex_lock(&S.lock);
		S.spawning = false;
		if (e < 0) {
			free(n);
			if (!warned)
				fprintf(stderr, "ember-fn serve: cannot start %s: %s\n", S.o->ember,
					strerror(-e));
			warned = true;
			pthread_cond_broadcast(&S.changed);
			pthread_mutex_unlock(&S.lock);
			usleep(100000);
			pthread_mutex_lock(&S.lock);
			continue;
		}
		if (S.stopping) {
			fn_vm_kill(&n->vm);
			dying_push(n);
			break;
		}
		struct vm_node **tail = &S.ready;
		while (*tail)
			tail = &(*tail)->next;
		*tail = n;
		S.n_ready++;
		pthread_cond_broadcast(&S.changed);
	}
	pthread_cond_broadcast(&S.changed);
	pthread_mutex_unlock(&S.lock);
	return NULL;
}

static void *reaper(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&S.lock);
	for (;;) {
		while (!S.dying)
			pthread_cond_wait(&S.changed, &S.lock);
		struct vm_node *n = S.dying;
		S.dying = n->next;
		pthread_mutex_unlock(&S.lock);
		while (waitpid(n->vm.pid, NULL, 0) < 0 && errno == EINTR)
			;
		fn_keep_ws(&n->vm, S.o);
		fn_vm_remove_dir(&n->vm);
		free(n);
		pthread_mutex_lock(&S.lock);
		S.unreaped--;
		pthread_cond_broadcast(&S.changed);
	}
	return NULL;
}

/* The oldest started ember (the likeliest to have its API up), or NULL. */
static struct vm_node *take(void)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += FN_TAKE_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&S.lock);
	while (!S.ready && !S.stopping)
		if (pthread_cond_timedwait(&S.changed, &S.lock, &until) == ETIMEDOUT)
			break;
	struct vm_node *n = S.stopping ? NULL : S.ready;
	if (n) {
		S.ready = n->next;
		S.n_ready--;
		S.busy++;
		pthread_cond_broadcast(&S.changed);
	}
	pthread_mutex_unlock(&S.lock);
	return n;
}

static int reply(int fd, uint32_t status, const void *data, uint32_t len)
{
	uint8_t hdr[8];
	for (int i = 0; i < 4; i++) {
		hdr[i] = (uint8_t)(status >> (8 * i));
		hdr[4 + i] = (uint8_t)(len >> (8 * i));
	}
	int64_t deadline = fn_now_ms() + FN_IO_TIMEOUT_MS;
	int e = fn_write_full(fd, hdr, 8, deadline);
	return e ? e : fn_write_full(fd, data, len, deadline);
}

/*
 * One request: a fresh VM, the answer, the VM to the reaper. A pooled VM
 * that fails before the request reaches its guest (its ember died while
 * waiting, its restore failed) cannot have acted on it: the request goes
 * to the next VM, once.
 */
static int serve_one(int fd, const uint8_t *req, uint32_t len)
{
	struct fn_reply r;
	for (int attempt = 0;; attempt++) {
		struct vm_node *n = take();
		if (!n) {
			static const char m[] = "no VM available (see ember-fn serve's log)";
			return reply(fd, FN_VM_FAILED, m, sizeof(m) - 1);
		}
		fn_invoke_vm(&n->vm, S.o, req, len, &r);
		fn_vm_kill(&n->vm);
		pthread_mutex_lock(&S.lock);
		S.busy--;
		dying_push(n);
		pthread_mutex_unlock(&S.lock);
		if (r.status != FN_VM_FAILED || r.sent || attempt == 1)
			break;
		fprintf(stderr, "ember-fn serve: %s; trying another VM\n", r.msg);
		free(r.data);
	}
	int e;
	if (r.status == FN_OK || r.len)
		e = reply(fd, r.status, r.data, r.len);
	else
		e = reply(fd, r.status, r.msg, (uint32_t)strlen(r.msg));
	if (r.status == FN_VM_FAILED)
		fprintf(stderr, "ember-fn serve: %s\n", r.msg);
	free(r.data);
	return e;
}

static void *client(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t *req = malloc(FN_MAX_PAYLOAD);
	uint8_t hdr[4];
	/* The length has no deadline (an idle client); the rest of a frame has. */
	while (req && fn_read_full(fd, hdr, 4, -1) == 0) {
		uint32_t len = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
		    (uint32_t)hdr[3] << 24;
		if (len > FN_MAX_PAYLOAD) {
			/* The stream cannot be resynchronised: answer, then close. */
			const char *m = fn_status_text(FN_REQ_TOO_LARGE);
			reply(fd, FN_REQ_TOO_LARGE, m, (uint32_t)strlen(m));
			break;
		}
		if (fn_read_full(fd, req, len, fn_now_ms() + FN_IO_TIMEOUT_MS) < 0 ||
		    serve_one(fd, req, len) < 0)
			break;
	}
	free(req);
	close(fd);
	pthread_mutex_lock(&S.lock);
	S.clients--;
	pthread_cond_broadcast(&S.changed);
	pthread_mutex_unlock(&S.lock);
	return NULL;
}

/*
 * Listen on @path: bound under a temporary name and renamed into place once
 * listening, so a client that sees the path can connect. A socket file
 * nobody listens on is replaced; one in use is -EADDRINUSE, anything else
 * there -EEXIST. Listening fd or -errno.
 */
static int listen_on(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) + sizeof(".tmp4294967295") > sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return -errno;
		int in_use = connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(probe);
		if (in_use)
			return -EADDRINUSE;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s.tmp%d", path, (int)getpid());
	unlink(a.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 128) < 0 ||
	    rename(a.sun_path, path) < 0) {
		int e = -errno;
		unlink(a.sun_path);
		close(fd);
		return e;
	}
	return fd;
}

/* SIGTERM/SIGINT: stop taking requests, let those running finish, kill the
 * pool, reap everything and remove every directory. */
static void shut_down(void)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&S.lock);
	S.stopping = true;
	pthread_cond_broadcast(&S.changed);
	while (S.ready) {
		struct vm_node *n = S.ready;
		S.ready = n->next;
		fn_vm_kill(&n->vm);
		dying_push(n);
	}
	S.n_ready = 0;
	while ((S.busy || S.spawning || S.unreaped) &&
	       pthread_cond_timedwait(&S.changed, &S.lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&S.lock);
}

int fn_serve(const struct fn_opts *o, const char *sock, unsigned int pool)
{
	S.o = o;
	S.want = pool;
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	/* Blocked in every thread (they inherit the mask); read from a signalfd. */
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
	int lfd = listen_on(sock);
	if (sfd < 0 || lfd < 0) {
		fprintf(stderr, "ember-fn serve: cannot listen on %s: %s\n", sock,
			strerror(lfd < 0 ? -lfd : errno));
		return FN_VM_FAILED;
	}
	pthread_attr_t detached;
	pthread_attr_init(&detached);
	pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	if (pthread_create(&t, &detached, filler, NULL) ||
	    pthread_create(&t, &detached, reaper, NULL)) {
		fprintf(stderr, "ember-fn serve: cannot start its threads\n");
		return FN_VM_FAILED;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&S.lock);
		bool room = S.clients < FN_MAX_CLIENTS;
		if (room)
			S.clients++;
		pthread_mutex_unlock(&S.lock);
		if (!room || pthread_create(&t, &detached, client, (void *)(intptr_t)fd)) {
			if (room) {
				pthread_mutex_lock(&S.lock);
				S.clients--;
				pthread_mutex_unlock(&S.lock);
			}
			close(fd);
		}
	}
	close(lfd);
	unlink(sock);
	shut_down();
	return 0;
}
