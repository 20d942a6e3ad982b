/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember's control plane: Firecracker's REST API over HTTP/1.1 on a Unix
 * socket.
 *
 * Threads: the HTTP side runs on its own thread (server.c): a poll() loop
 * over the listening socket and its connections, requests parsed by the
 * http-parser library. Each complete request becomes a struct api_call on a
 * queue; the VMM thread is woken through an eventfd, answers the calls with
 * api_dispatch() (routes.c) and hands them back through a second eventfd,
 * and the HTTP thread writes the answers. A connection reads nothing more
 * while its request waits for the VMM thread. vCPU threads never touch the
 * API.
 */
#ifndef EMBER_API_H
#define EMBER_API_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Firecracker's default --http-api-max-payload-size, in bytes. */
#define API_MAX_BODY 51200

struct api_conn;
struct vmm;

struct api_call {
	struct api_conn *conn;
	char method[8];
	char *path;
	char *body;
	size_t body_len;
	uint64_t declared; /* Content-Length, or 0 */
	uint64_t too_large; /* the oversized body's size, or 0 */
	/* the answer, filled by the VMM thread */
	unsigned int status;
	char *response; /* JSON or NULL for an empty body */
	int answered;
	uint64_t start_ns;
	struct api_call *next;
};

struct api_server {
	pthread_t thread;
	bool running;
	int listen_fd;
	int wake_fd; /* eventfd: calls are waiting for the VMM thread */
	int reply_fd; /* eventfd: answers (or a stop) wait for the HTTP thread */
	char *sock_path;
	size_t max_body; /* larger request bodies are refused with 400 */
	pthread_mutex_t lock; /* the two lists and stopping */
	struct api_call *head, *tail; /* to the VMM thread */
	struct api_call *replies; /* back to the HTTP thread */
	bool stopping;
	int replies_unsent; /* answered, not yet written out (atomic) */
};

/*
 * Bind @path (it must not exist yet) and start serving, refusing request
 * bodies over @max_body bytes (0: API_MAX_BODY) with Firecracker's 400 and
 * message, after reading them to their end without keeping them. Returns 0
 * or -errno with the cause logged.
 */
int api_server_start(struct api_server *s, const char *path, uint64_t max_body)
    __attribute__((warn_unused_result));
/* Take every queued call (VMM thread). Returns a list linked by ->next. */
struct api_call *api_server_take(struct api_server *s);
/* Hand an answered call back to its connection (VMM thread). */
void api_server_reply(struct api_server *s, struct api_call *c);
/* Stop serving and remove the socket file. */
void api_server_stop(struct api_server *s);
/* The reason phrase of HTTP status @status ("Bad Request"), for the status
 * line and the audit log. Any thread. */
const char *api_status_text(unsigned int status);

/*
 * Answer one call against @vmm: route, validate, act. Sets c->status and
 * c->response. VMM thread only.
 */
void api_dispatch(struct vmm *vmm, struct api_call *c);

#endif
