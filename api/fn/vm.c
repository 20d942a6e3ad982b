/* SPDX-License-Identifier: Apache-2.0 */
/* ember-fn: one ember process, its API and byte streams. See fn.h. */
#include "fn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t fn_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t fn_now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Wait until @fd is ready for @events or @deadline passes. 0 or -ETIMEDOUT. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int ms = -1;
		if (deadline >= 0) {
			int64_t left = deadline - fn_now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			ms = left > 1000 ? 1000 : (int)left;
		}
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int fn_read_full(int fd, void *buf, size_t len, int64_t deadline)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int r = wait_fd(fd, POLLIN, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

int fn_write_full(int fd, const void *buf, size_t len, int64_t deadline)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n >= 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

int fn_json_str(const char *s, char *out, size_t size)
{
	size_t n = 0;
	for (; *s; s++) {
		char esc[8];
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c < 0x20)
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		else
			snprintf(esc, sizeof(esc), "%c", c);
		size_t l = strlen(esc);
		if (n + l >= size)
			return -ENAMETOOLONG;
		memcpy(out + n, esc, l);
		n += l;
	}
	out[n] = '\0';
	return 0;
}

void fn_vm_path(const struct fn_vm *vm, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", vm->tmp, name);
}

int fn_vm_spawn(struct fn_vm *vm, const struct fn_opts *o)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	/* uds paths must leave room for "_<port>" in sun_path; ember allows 96. */
	if ((size_t)snprintf(vm->tmp, sizeof(vm->tmp), "%s/ember-fn.XXXXXX", base) >=
	    sizeof(vm->tmp) - sizeof("/v.sock_4294967295"))
		return -ENAMETOOLONG;
	if (!mkdtemp(vm->tmp))
		return -errno;
	/* An ember run as another user (a jailer's uid) must create its sockets
	 * here: the mode is 0777 less our umask, so the caller chooses. */
	mode_t mask = umask(0);
	umask(mask);
	if (chmod(vm->tmp, 0777 & ~mask) < 0) {
		int err = -errno;
		rmdir(vm->tmp);
		return err;
	}
	char sock[128];
	fn_vm_path(vm, "api.sock", sock, sizeof(sock));
	char ember[4096], opt[] = "--api-sock";
	snprintf(ember, sizeof(ember), "%s", o->ember);
	char *const argv[] = { ember, opt, sock, NULL };
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int err = -errno;
		rmdir(vm->tmp);
		return err;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls here: the parent may have threads. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			if (!o->verbose) {
				dup2(null, 1);
				dup2(null, 2);
			} else {
				dup2(2, 1);
			}
		}
		/* ember starts as from a shell: our ignored SIGPIPE and blocked
		 * SIGTERM/SIGINT (serve) are not its. */
		signal(SIGPIPE, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(ember, argv);
		_exit(127);
	}
	vm->pid = pid;
	return 0;
}

void fn_vm_kill(const struct fn_vm *vm)
{
	kill(vm->pid, SIGKILL);
}

bool fn_vm_exited(const struct fn_vm *vm)
{
	siginfo_t si = { 0 };
	return waitid(P_PID, (id_t)vm->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == vm->pid;
}

void fn_vm_remove_dir(const struct fn_vm *vm)
{
	DIR *d = opendir(vm->tmp);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(vm->tmp);
}

void fn_vm_destroy(struct fn_vm *vm)
{
	fn_vm_kill(vm);
	while (waitpid(vm->pid, NULL, 0) < 0 && errno == EINTR)
		;
	fn_vm_remove_dir(vm);
}

/* Connect to the Unix socket @path, retrying while it is not there yet or
 * not yet listening, until @deadline. Non-blocking fd or -errno. */
static int connect_retry(const char *path, int64_t deadline, const struct fn_vm *vm)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			fcntl(fd, F_SETFL, O_NONBLOCK);
			return fd;
		}
		int err = -errno;
		close(fd);
		if (err != -ENOENT && err != -ECONNREFUSED)
			return err;
		if (vm && fn_vm_exited(vm))
			return -ECHILD;
		if (fn_now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(100);
	}
}

/* Copy the "fault_message" string of a JSON @body into @why. */
static void fault_message(const char *body, char *why, size_t size)
{
	const char *k = strstr(body, "\"fault_message\"");
	const char *q = k ? strchr(k + 15, '"') : NULL;
	size_t n = 0;
	if (!q) {
		snprintf(why, size, "%.*s", (int)(size - 1), body);
		return;
	}
	for (q++; *q && *q != '"' && n + 1 < size; q++) {
		if (*q == '\\' && q[1])
			q++;
		why[n++] = *q;
	}
	why[n] = '\0';
}

int fn_api_call(const struct fn_vm *vm, const char *method, const char *path, const char *body,
		int timeout_ms, char *why, size_t why_size)
{
	char sock[128];
	fn_vm_path(vm, "api.sock", sock, sizeof(sock));
	int64_t deadline = fn_now_ms() + timeout_ms;
	int fd = connect_retry(sock, deadline, vm);
	if (fd < 0) {
		snprintf(why, why_size, "cannot reach ember's API: %s",
			 fd == -ECHILD ? "ember exited" : strerror(-fd));
		return fd;
	}
	char req[8192];
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s",
			 method, path, blen, body ? body : "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		close(fd);
		snprintf(why, why_size, "request too long");
		return -E2BIG;
	}
	int r = fn_write_full(fd, req, (size_t)n, deadline);
	/* Connection: close: the answer ends at end of file. */
	char resp[8192];
	size_t got = 0;
	while (r == 0 && got + 1 < sizeof(resp)) {
		ssize_t k = read(fd, resp + got, sizeof(resp) - 1 - got);
		if (k > 0) {
			got += (size_t)k;
		} else if (k == 0) {
			break;
		} else if (errno == EAGAIN) {
			r = wait_fd(fd, POLLIN, deadline);
		} else if (errno != EINTR) {
			r = -errno;
		}
	}
	close(fd);
	resp[got] = '\0';
	int status;
	if (r == 0 && sscanf(resp, "HTTP/1.1 %d", &status) != 1)
		r = -EPROTO;
	if (r < 0) {
		snprintf(why, why_size, "%s %s: %s", method, path, strerror(-r));
		return r;
	}
	const char *b = strstr(resp, "\r\n\r\n");
	if (status >= 300)
		fault_message(b ? b + 4 : "", why, why_size);
	return status;
}
