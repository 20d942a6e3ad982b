// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP side of the API: a Unix socket served by one thread's poll()
 * loop, requests parsed by the http-parser library (no TLS, links
 * statically). HTTP/1.1 with keep-alive; one request per connection at a
 * time: while the VMM thread works on one, its connection reads nothing
 * more, so pipelined requests are answered in order.
 */
#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* Connections served at once; more wait in the listen backlog. */
#define API_MAX_CONNS 256
/* A request line's path longer than this is refused (414). */
#define API_MAX_URL 4096

struct api_loop;

struct api_conn {
	int fd;
	struct api_loop *loop;
	http_parser parser;
	struct api_call *call; /* the request being read, or waiting for its answer */
	bool in_message; /* between a request's first byte and its end */
	bool waiting; /* call is with the VMM thread */
	bool closing; /* close once the output is written */
	bool expect_field; /* the header being read is Expect */
	bool expect_continue; /* the client waits for 100 Continue */
	bool reply_unsent; /* the VMM thread's answer is not all written yet */
	unsigned int error_status; /* a request refused here (414, 505), or 0 */
	char in[8192]; /* bytes read, not yet parsed: in[in_off, in_len) */
	size_t in_off, in_len;
	char *out; /* bytes to write: out[out_off, out_len) */
	size_t out_off, out_len;
};

struct api_loop {
	struct api_server *s;
	struct api_conn *conns[API_MAX_CONNS];
	unsigned int nconns;
};

const char *api_status_text(unsigned int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 500:
		return "Internal Server Error";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return status < 400 ? "OK" : "Error";
	}
}

static int conn_out_append(struct api_conn *k, const char *data, size_t len)
{
	char *o = realloc(k->out, k->out_len + len);
	if (!o)
		return -ENOMEM;
	memcpy(o + k->out_len, data, len);
	k->out = o;
	k->out_len += len;
	return 0;
}

/* One answer: status line, headers, JSON body (none for NULL). */
static int conn_queue_answer(struct api_conn *k, unsigned int status, const char *json)
{
	char head[256];
	size_t body_len = json ? strlen(json) : 0;
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %u %s\r\n%s", status,
			 api_status_text(status), k->closing ? "Connection: close\r\n" : "");
	if (status != 204)
		n += snprintf(head + n, sizeof(head) - n, "%sContent-Length: %zu\r\n",
			      json ? "Content-Type: application/json\r\n" : "", body_len);
	n += snprintf(head + n, sizeof(head) - n, "\r\n");
	if (conn_out_append(k, head, (size_t)n) < 0)
		return -ENOMEM;
	return body_len ? conn_out_append(k, json, body_len) : 0;
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
static int conn_refuse_large(struct api_server *s, struct api_conn *k, const struct api_call *c)
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
	return conn_queue_answer(k, 400, body);
}

static void call_free(struct api_call *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->body);
	free(c->response);
	free(c);
}

/* ---- http-parser callbacks: the request, piece by piece ------------------- */

static int on_message_begin(http_parser *p)
{
	struct api_conn *k = p->data;
	k->in_message = true;
	k->error_status = 0;
	k->expect_continue = false;
	k->call = calloc(1, sizeof(*k->call));
	if (!k->call)
		return -1;
	k->call->conn = k;
	k->call->start_ns = clock_now_ns();
	k->call->path = strdup("");
	return k->call->path ? 0 : -1;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct api_conn *k = p->data;
	size_t have = strlen(k->call->path);
	if (have + len > API_MAX_URL) {
		k->error_status = 414;
		return 0;
	}
	char *u = realloc(k->call->path, have + len + 1);
	if (!u)
		return -1;
	memcpy(u + have, at, len);
	u[have + len] = 0;
	k->call->path = u;
	return 0;
}

/* Only Expect matters here: http-parser itself reads Content-Length,
 * Transfer-Encoding and Connection (and refuses malformed ones). A header
 * name or value split across reads arrives in pieces; Expect's are short. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct api_conn *k = p->data;
	k->expect_field = len == 6 && strncasecmp(at, "Expect", 6) == 0;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct api_conn *k = p->data;
	if (k->expect_field && len == 12 && strncasecmp(at, "100-continue", 12) == 0)
		k->expect_continue = true;
	return 0;
}

/* The path as routes see it: the query string cut off and %XX decoded
 * (what libmicrohttpd, ember's earlier HTTP server, handed over). A '%'
 * not followed by two hex digits, and %00 (it would cut the path short),
 * stay as they are. */
static void url_to_path(char *u)
{
	char *q = strchr(u, '?');
	if (q)
		*q = 0;
	char *w = u;
	for (char *r = u; *r; r++) {
		unsigned int v;
		if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2]) &&
		    sscanf(r + 1, "%2x", &v) == 1 && v != 0) {
			*w++ = (char)v;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

static int on_headers_complete(http_parser *p)
{
	struct api_conn *k = p->data;
	struct api_call *c = k->call;
	url_to_path(c->path);
	if (p->http_major != 1)
		k->error_status = 505; /* HTTP/1.0 and 1.1 only */
	snprintf(c->method, sizeof(c->method), "%s", http_method_str(p->method));
	/* ULLONG_MAX: no Content-Length (chunked, or no body). */
	c->declared = p->content_length == ULLONG_MAX ? 0 : p->content_length;
	/* A client that waits before sending its body (curl over 1 KiB) is told
	 * to go on, even for a body over the limit: it is read to its end. */
	if (k->expect_continue && p->http_major == 1 && p->http_minor >= 1 &&
	    conn_out_append(k, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
		return -1;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct api_conn *k = p->data;
	struct api_call *c = k->call;
	size_t max = k->loop->s->max_body;
	/* One over the limit (declared so, or found so as it comes) is read
	 * to its end and dropped: the client that writes its whole body before
	 * reading gets the 400, not a broken pipe, and the connection stays in
	 * step for the next request. */
	if (!c->too_large && c->declared <= max && c->body_len + len <= max) {
		char *b = realloc(c->body, c->body_len + len + 1);
		if (!b)
			return -1;
		memcpy(b + c->body_len, at, len);
		c->body = b;
		c->body_len += len;
		c->body[c->body_len] = 0;
	} else {
		uint64_t seen = (c->too_large ? c->too_large : c->body_len) + len;
		c->too_large = c->declared > max ? c->declared : seen;
	}
	return 0;
}

/* A whole request: answer it here or hand it to the VMM thread. Parsing
 * stops (pauses) after it either way; the next request's bytes wait. */
static int on_message_complete(http_parser *p)
{
	struct api_conn *k = p->data;
	struct api_loop *l = k->loop;
	struct api_call *c = k->call;
	int r = 0;
	k->in_message = false;
	if (!http_should_keep_alive(p))
		k->closing = true;
	if (k->error_status) {
		k->closing = true;
		r = conn_queue_answer(k, k->error_status, NULL);
	} else if (c->too_large) {
		r = conn_refuse_large(l->s, k, c);
	} else {
		k->waiting = true;
		api_enqueue(l->s, c);
		http_parser_pause(p, 1);
		return 0;
	}
	call_free(c);
	k->call = NULL;
	http_parser_pause(p, 1);
	return r;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---- connections -------------------------------------------------------- */

static void conn_reply_sent(struct api_conn *k)
{
	if (k->reply_unsent)
		__atomic_sub_fetch(&k->loop->s->replies_unsent, 1, __ATOMIC_RELEASE);
	k->reply_unsent = false;
}

static void conn_close(struct api_loop *l, unsigned int i)
{
	struct api_conn *k = l->conns[i];
	if (k->in_message)
		log_debug("API server: a client closed its connection in the middle of a request");
	conn_reply_sent(k); /* never will be */
	close(k->fd);
	call_free(k->call);
	free(k->out);
	free(k);
	l->conns[i] = l->conns[--l->nconns];
}

/*
 * The client is gone (a write failed) while the VMM thread holds the
 * connection's call: the call and the connection must outlive it, since
 * the reply comes back through them. What was queued is dropped and the
 * connection is not watched; it closes once the reply is taken (its write
 * then fails too, or the reply is dropped with it).
 */
static void conn_orphan(struct api_conn *k)
{
	free(k->out);
	k->out = NULL;
	k->out_off = k->out_len = 0;
	k->closing = true;
}

/* A request HTTP cannot parse: 400 with http-parser's reason, then close. */
static int conn_refuse_malformed(struct api_conn *k)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&k->parser);
	char body[200];
	snprintf(body, sizeof(body), "{\"fault_message\": \"Invalid HTTP request: %s.\"}",
		 http_errno_description(e));
	log_debug("API server: malformed request: %s", http_errno_description(e));
	k->in_message = false;
	k->closing = true;
	k->in_off = k->in_len = 0;
	return conn_queue_answer(k, 400, body);
}

/* Parse what was read, up to the end of one request. */
static int conn_parse(struct api_conn *k)
{
	while (!k->waiting && !k->closing && k->in_off < k->in_len) {
		http_parser_pause(&k->parser, 0);
		size_t n = http_parser_execute(&k->parser, &parser_settings, k->in + k->in_off,
					       k->in_len - k->in_off);
		k->in_off += n;
		enum http_errno e = HTTP_PARSER_ERRNO(&k->parser);
		if (e == HPE_PAUSED)
			continue;
		if (e != HPE_OK)
			return conn_refuse_malformed(k);
	}
	if (k->in_off == k->in_len)
		k->in_off = k->in_len = 0;
	return 0;
}

/* Write what is queued. Returns 0 (done or would block) or -errno. */
static int conn_flush(struct api_conn *k)
{
	while (k->out_off < k->out_len) {
		ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		k->out_off += (size_t)n;
	}
	free(k->out);
	k->out = NULL;
	k->out_off = k->out_len = 0;
	conn_reply_sent(k);
	return 0;
}

/* The connection can be read: parse, answer what is answered here.
 * Returns false when it is to be closed. */
static bool conn_readable(struct api_conn *k)
{
	if (k->in_off) {
		memmove(k->in, k->in + k->in_off, k->in_len - k->in_off);
		k->in_len -= k->in_off;
		k->in_off = 0;
	}
	ssize_t n = recv(k->fd, k->in + k->in_len, sizeof(k->in) - k->in_len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return false;
	if (n > 0)
		k->in_len += (size_t)n;
	return conn_parse(k) == 0 && conn_flush(k) == 0;
}

static void loop_accept(struct api_loop *l)
{
	int fd = accept4(l->s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct api_conn *k = calloc(1, sizeof(*k));
	if (!k) {
		close(fd);
		return;
	}
	k->fd = fd;
	http_parser_init(&k->parser, HTTP_REQUEST);
	k->loop = l;
	k->parser.data = k;
	l->conns[l->nconns++] = k;
}

/* Answers the VMM thread handed back: queue them on their connections. */
static void loop_take_replies(struct api_loop *l, bool *stop)
{
	uint64_t v;
	ssize_t r = read(l->s->reply_fd, &v, sizeof(v));
	(void)r;
	pthread_mutex_lock(&l->s->lock);
	struct api_call *list = l->s->replies;
	l->s->replies = NULL;
	*stop = l->s->stopping;
	pthread_mutex_unlock(&l->s->lock);
	while (list) {
		struct api_call *c = list;
		list = c->next;
		struct api_conn *k = c->conn;
		if (conn_queue_answer(k, c->status, c->response) < 0)
			k->closing = true;
		k->reply_unsent = true;
		call_free(c);
		k->call = NULL;
		k->waiting = false;
	}
}

static void *api_thread(void *arg)
{
	struct api_loop l = { .s = arg };
	struct pollfd pfd[API_MAX_CONNS + 2];
	log_set_thread_name("api");
	if (seccomp_apply(SECCOMP_API) < 0)
		abort(); /* never serve unfiltered */
	for (;;) {
		unsigned int n = 0;
		pfd[n++] = (struct pollfd){ .fd = l.s->reply_fd, .events = POLLIN };
		/* A full house accepts no more: the backlog holds them. */
		pfd[n++] = (struct pollfd){ .fd = l.nconns < API_MAX_CONNS ? l.s->listen_fd : -1,
					    .events = POLLIN };
		for (unsigned int i = 0; i < l.nconns; i++) {
			struct api_conn *k = l.conns[i];
			short ev = k->out_len ? POLLOUT : (k->waiting || k->closing) ? 0 : POLLIN;
			/* A connection waiting for the VMM thread is not watched
			 * at all: it closes, if the client left, once answered. */
			pfd[n++] = (struct pollfd){ .fd = ev ? k->fd : -1, .events = ev };
		}
		if (poll(pfd, n, -1) < 0)
			continue;
		if (pfd[0].revents) {
			bool stop;
			loop_take_replies(&l, &stop);
			if (stop)
				break;
		}
		/* Walk down: conn_close() moves the last connection into i. */
		for (unsigned int i = l.nconns; i-- > 0;) {
			struct api_conn *k = l.conns[i];
			short rev = pfd[2 + i].revents;
			bool ok = true;
			if (k->out_len && (rev || !k->waiting))
				ok = conn_flush(k) == 0;
			else if (rev & (POLLIN | POLLHUP | POLLERR))
				ok = conn_readable(k);
			/* Answered and written: parse the next request already read. */
			if (ok && !k->out_len && !k->waiting && !k->closing && k->in_len)
				ok = conn_parse(k) == 0 && conn_flush(k) == 0;
			if (!ok && k->waiting)
				conn_orphan(k);
			else if (!ok || (k->closing && !k->out_len && !k->waiting))
				conn_close(&l, i);
		}
		if (pfd[1].revents)
			loop_accept(&l);
	}
	while (l.nconns)
		conn_close(&l, l.nconns - 1);
	return NULL;
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
	pthread_mutex_lock(&s->lock);
	c->next = s->replies;
	s->replies = c;
	pthread_mutex_unlock(&s->lock);
	uint64_t one = 1;
	ssize_t w = write(s->reply_fd, &one, sizeof(one));
	(void)w;
}

int api_server_start(struct api_server *s, const char *path, uint64_t max_body)
{
	memset(s, 0, sizeof(*s));
	s->max_body = max_body ? (size_t)max_body : API_MAX_BODY;
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = s->wake_fd = s->reply_fd = -1;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_err("API socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
	s->reply_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0 || s->reply_fd < 0) {
		r = -errno;
		log_err("cannot start the API server: eventfd: %s", strerror(errno));
		goto fail;
	}
	r = -thread_start(&s->thread, api_thread, s);
	if (r < 0) {
		log_err("cannot start the API server thread: %s", strerror(-r));
		goto fail;
	}
	s->running = true;
	return 0;

fail:
	/* Nothing of a server that did not start stays behind: not its socket
	 * file, not its descriptors. */
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->reply_fd >= 0)
		close(s->reply_fd);
	s->wake_fd = s->reply_fd = -1;
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
	     s->running && i < 200 && __atomic_load_n(&s->replies_unsent, __ATOMIC_ACQUIRE); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	if (s->running) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_mutex_unlock(&s->lock);
		uint64_t one = 1;
		ssize_t w = write(s->reply_fd, &one, sizeof(one));
		(void)w;
		pthread_join(s->thread, NULL);
		close(s->listen_fd);
		close(s->wake_fd);
		close(s->reply_fd);
		s->listen_fd = s->wake_fd = s->reply_fd = -1;
	}
	s->running = false;
	if (s->sock_path)
		unlink(s->sock_path);
	free(s->sock_path);
	s->sock_path = NULL;
}
