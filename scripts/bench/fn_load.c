/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load generator for scripts/bench/fn.py: @conc threads each send requests
 * until @count are done in all, and print one latency per line
 * (microseconds), then "rate <requests per second>".
 *
 *   fn-load serve SOCK CONC COUNT REQFILE   frames to `ember-fn serve`
 *                                           (one connection per thread)
 *   fn-load exec BIN CONC COUNT REQFILE     fork+exec BIN per request,
 *                                           request on stdin, response
 *                                           from stdout (the process floor)
 * Every response must be status 0 and as long as the first one; anything
 * else stops the run with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *mode, *target;
static int count;
static uint8_t *req;
static uint32_t req_len;
static long long *lat_us;
static int next;
static long expect_len = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static long long now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static int full(int fd, void *buf, size_t len, int writing)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void die(const char *what)
{
	fprintf(stderr, "fn-load: %s\n", what);
	exit(1);
}

static void check_len(long n)
{
	pthread_mutex_lock(&lock);
	if (expect_len < 0)
		expect_len = n;
	pthread_mutex_unlock(&lock);
	if (n != expect_len)
		die("response length changed");
}

/* One request through ember-fn serve on connection @fd. */
static void one_serve(int fd, uint8_t *buf)
{
	uint8_t hdr[8];
	memcpy(hdr, &req_len, 4);
	if (full(fd, hdr, 4, 1) || full(fd, req, req_len, 1) || full(fd, hdr, 8, 0))
		die("serve connection failed");
	uint32_t status, len;
	memcpy(&status, hdr, 4);
	memcpy(&len, hdr + 4, 4);
	if (len > (1u << 20) || full(fd, buf, len, 0))
		die("bad frame");
	if (status != 0) {
		fprintf(stderr, "fn-load: status %u: %.*s\n", status, (int)len, (char *)buf);
		exit(1);
	}
	check_len(len);
}

/* One request as a fresh host process. */
static void one_exec(uint8_t *buf)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		die("pipe");
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(target, target, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	/* Requests here are far below a pipe's buffer: write, then read. */
	if (full(in[1], req, req_len, 1))
		die("write to the process");
	close(in[1]);
	long got = 0;
	ssize_t n;
	while ((n = read(out[0], buf + got, (1 << 20) - got)) > 0)
		got += n;
	close(out[0]);
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("the host handler failed");
	check_len(got);
}

static void *worker(void *arg)
{
	(void)arg;
	uint8_t *buf = malloc(1 << 20);
	int fd = -1;
	if (!strcmp(mode, "serve")) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", target);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
			die("cannot connect to serve");
	}
	for (;;) {
		pthread_mutex_lock(&lock);
		int i = next < count ? next++ : -1;
		pthread_mutex_unlock(&lock);
		if (i < 0)
			break;
		long long t0 = now_us();
		if (fd >= 0)
			one_serve(fd, buf);
		else
			one_exec(buf);
		lat_us[i] = now_us() - t0;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 6)
		die("usage: fn-load serve|exec SOCK|BIN CONC COUNT REQFILE");
	mode = argv[1];
	target = argv[2];
	int conc = atoi(argv[3]);
	count = atoi(argv[4]);
	FILE *f = fopen(argv[5], "rb");
	req = malloc(1 << 20);
	if (!f || conc < 1 || count < 1 || !req)
		die("bad arguments");
	req_len = (uint32_t)fread(req, 1, 1 << 20, f);
	fclose(f);
	lat_us = calloc((size_t)count, sizeof(*lat_us));
	pthread_t t[64];
	if (conc > 64)
		die("at most 64 at a time");
	long long t0 = now_us();
	for (int i = 0; i < conc; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < conc; i++)
		pthread_join(t[i], NULL);
	double secs = (double)(now_us() - t0) / 1e6;
	for (int i = 0; i < count; i++)
		printf("%lld\n", lat_us[i]);
	printf("rate %.1f\n", count / secs);
	return 0;
}
