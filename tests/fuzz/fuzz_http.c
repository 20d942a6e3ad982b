// SPDX-License-Identifier: Apache-2.0
/*
 * The API's HTTP side (api/server.c) as a client reaches it: each input is
 * written as is to a fresh connection on a running api_server, the write
 * side is shut, and the answers are read to the end. A stand-in VMM thread
 * answers every queued call (204, or 400 with a JSON body for a path that
 * has "bad" in it), so requests that reach the queue are answered and the
 * connection goes on to the next one.
 *
 * Checks: every answer the server writes starts with "HTTP/1.1 " and the
 * server answers at all (no hang: libFuzzer's -timeout); ASan, UBSan and
 * LSan watch the parser callbacks, the body limit (a small --http-api-max-
 * payload-size, 64 bytes, so inputs cross it) and connection clean-up.
 * No seccomp filter: the fuzzer never calls seccomp_setup().
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../api/api.h"

static struct api_server srv;
static char sock_path[108];

static void *vmm_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p = { .fd = srv.wake_fd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0)
			continue;
		struct api_call *c = api_server_take(&srv);
		while (c) {
			struct api_call *next = c->next;
			if (strstr(c->path, "bad")) {
				c->status = 400;
				c->response = strdup("{\"fault_message\":\"bad\"}");
			} else {
				c->status = 204;
			}
			api_server_reply(&srv, c);
			c = next;
		}
	}
	return NULL;
}

static void start(void)
{
	char dir[] = "/tmp/ember-fuzz-http-XXXXXX";
	if (!mkdtemp(dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/api.sock", dir);
	if (api_server_start(&srv, sock_path, 64) < 0)
		abort();
	pthread_t t;
	if (pthread_create(&t, NULL, vmm_thread, NULL) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool started;
	if (!started) {
		start();
		started = true;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, sock_path, sizeof(a.sun_path));
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	/* The server may close after a malformed request: writes then fail. */
	size_t off = 0;
	while (off < size) {
		ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	char buf[4096];
	size_t got = 0;
	char head[9] = { 0 };
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && got + (size_t)i < sizeof(head) - 1; i++)
			head[got + (size_t)i] = buf[i];
		got += (size_t)n;
	}
	close(fd);
	if (got && strcmp(head, "HTTP/1.1") != 0) {
		fprintf(stderr, "fuzz_http: an answer that is not HTTP/1.1: '%s'\n", head);
		abort();
	}
	return 0;
}
