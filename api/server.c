// SPDX-License-Identifier: Apache-2.0
/* The HTTP side of the API: libmicrohttpd on a Unix socket. */
#include <errno.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "log.h"
#include "util.h"
#include "seccomp/seccomp.h"

static enum MHD_Result api_send(struct MHD_Connection *conn, unsigned int status, const char *json)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    json ? strlen(json) : 0, (void *)(uintptr_t)(json ? json : ""), MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	if (json)
		MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static void api_enqueue(struct api_server *s, struct api_call *c)
{
	pthread_mutex_lock(&s->lock);
	c->next = NULL;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	pthread_mutex_unlock(&s->lock);
	uint64_t one = 1;
	ssize_t w = write(s->wake_fd, &one, sizeof(one));
	(void)w;
}

/* Firecracker's answer to a body over the limit: 400 and its words. */
static enum MHD_Result api_refuse_large(struct api_server *s, struct MHD_Connection *conn,
					const struct api_call *c)
{
	char msg[160];
	int n = snprintf(msg, sizeof(msg),
			 "Request payload with size %llu is larger than the limit of %zu "
			 "allowed by server.",
			 (unsigned long long)c->too_large, s->max_body);
	/* The audit trail's words for a failed request (api_dispatch() logs the
	 * others); this one never reaches the VMM thread. */
	log_err("The request %s \"%s\" failed. Status code: 400 Bad Request. Message: %s",
		c->method, c->path, msg);
	char body[200];
	snprintf(body, sizeof(body), "{\"fault_message\": \"%.*s\"}", n, msg);
	return api_send(conn, 400, body);
}

/* The declared body size, or 0 with no (or a malformed) Content-Length:
 * libmicrohttpd itself refuses malformed ones. */
static uint64_t content_length(struct MHD_Connection *conn)
{
	const char *v =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!v || *v < '0' || *v > '9')
		return 0;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	return errno ? UINT64_MAX : (uint64_t)n;
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	struct api_server *s = cls;
	struct api_call *c = *con_cls;
	(void)version;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		c->conn = conn;
		c->start_ns = clock_now_ns();
		c->declared = content_length(conn);
		snprintf(c->method, sizeof(c->method), "%s", method);
		c->path = strdup(url);
		*con_cls = c;
		return c->path ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		/* Gather the body. One over the limit (declared so, or found so
		 * as it comes) is read to its end and dropped: the client that
		 * writes its whole body before reading gets the 400, not a broken
		 * pipe, and the connection stays in step for the next request. */
		if (!c->too_large && c->declared <= s->max_body &&
		    c->body_len + *upload_size <= s->max_body) {
			char *b = realloc(c->body, c->body_len + *upload_size + 1);
			if (!b)
				return MHD_NO;
			memcpy(b + c->body_len, upload_data, *upload_size);
			c->body = b;
			c->body_len += *upload_size;
			c->body[c->body_len] = 0;
		} else {
			uint64_t seen = (c->too_large ? c->too_large : c->body_len) + *upload_size;
			c->too_large = c->declared > s->max_body ? c->declared : seen;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (c->too_large)
		return api_refuse_large(s, conn, c);
	if (c->answered)
		return api_send(conn, c->status, c->response);
	if (!c->queued) {
		/* The VMM thread answers; the connection sleeps until then. */
		c->queued = 1;
		MHD_suspend_connection(conn);
		api_enqueue(s, c);
	}
	return MHD_YES;
}

static void api_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct api_call *c = *con_cls;
	struct api_server *s = cls;
	(void)conn;
	(void)toe;
	if (!c)
		return;
	if (c->answered)
		__atomic_sub_fetch(&s->replies_unsent, 1, __ATOMIC_RELEASE);
	free(c->path);
	free(c->body);
	free(c->response);
	free(c);
	*con_cls = NULL;
}

struct api_call *api_server_take(struct api_server *s)
{
	uint64_t v;
	ssize_t r = read(s->wake_fd, &v, sizeof(v));
	(void)r;
	pthread_mutex_lock(&s->lock);
	struct api_call *list = s->head;
	s->head = s->tail = NULL;
	pthread_mutex_unlock(&s->lock);
	return list;
}

void api_server_reply(struct api_server *s, struct api_call *c)
{
	__atomic_add_fetch(&s->replies_unsent, 1, __ATOMIC_RELAXED);
	c->answered = 1;
	MHD_resume_connection(c->conn);
}

/* libmicrohttpd's thread: its seccomp filter goes on before it parses a
 * request (on its first connection; filters are per thread). */
static void api_thread_filter(void *cls, struct MHD_Connection *c, void **ctx,
			      enum MHD_ConnectionNotificationCode code)
{
	static __thread bool filtered;
	(void)cls, (void)c, (void)ctx;
	if (code != MHD_CONNECTION_NOTIFY_STARTED || filtered)
		return;
	filtered = true;
	log_set_thread_name("api");
	if (seccomp_apply(SECCOMP_API) < 0)
		abort(); /* never serve unfiltered */
}

/* libmicrohttpd's own messages (a client gone mid-request, say) go to
 * ember's log, where PUT /logger sends them, at debug level: they are about
 * one client, never about ember's state. */
static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	utf8_sanitize(msg);
	log_debug("API server: %s", msg);
}

int api_server_start(struct api_server *s, const char *path, uint64_t max_body)
{
	memset(s, 0, sizeof(*s));
	s->max_body = max_body ? (size_t)max_body : API_MAX_BODY;
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = -1;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_err("API socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return -errno;
	int r = bind_unix_replacing_stale(s->listen_fd, &addr);
	if (r < 0) {
		log_err("cannot bind the API socket '%s': %s%s", path, strerror(-r),
			bind_unix_why(r));
		close(s->listen_fd);
		s->listen_fd = -1;
		return r;
	}
	s->wake_fd = -1;
	s->sock_path = strdup(path);
	if (!s->sock_path) {
		r = -ENOMEM;
		goto fail;
	}
	if (listen(s->listen_fd, 64) < 0) {
		r = -errno;
		log_err("cannot listen on the API socket '%s': %s", path, strerror(errno));
		goto fail;
	}
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0) {
		r = -errno;
		log_err("cannot start the API server: eventfd: %s", strerror(errno));
		goto fail;
	}
	s->daemon = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ERROR_LOG,
	    0, NULL, NULL, api_access, s, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, s->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, api_completed, s,
	    MHD_OPTION_NOTIFY_CONNECTION, api_thread_filter, s, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)0, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)256, MHD_OPTION_END);
	if (!s->daemon) {
		log_err("cannot start the API server");
		r = -EIO;
		goto fail;
	}
	return 0;

fail:
	/* Nothing of a server that did not start stays behind: not its socket
	 * file, not its descriptors. */
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->wake_fd = -1;
	close(s->listen_fd);
	s->listen_fd = -1;
	unlink(path);
	free(s->sock_path);
	s->sock_path = NULL;
	return r;
}

void api_server_stop(struct api_server *s)
{
	/* Answers already given (the SendCtrlAltDel that made the guest reset,
	 * say) reach their clients before the server goes: up to 200 ms. */
	for (int i = 0;
	     s->daemon && i < 200 && __atomic_load_n(&s->replies_unsent, __ATOMIC_ACQUIRE); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	s->daemon = NULL;
	if (s->sock_path)
		unlink(s->sock_path);
	free(s->sock_path);
	s->sock_path = NULL;
}
