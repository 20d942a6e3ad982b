// SPDX-License-Identifier: Apache-2.0
/*
 * Restore-run-teardown cycles driven from C, so the driver's own CPU is a
 * few percent of a cycle's rather than more than the monitor's (the
 * Python harness in cycles.py costs ~5 ms of CPU a cycle).
 *
 * A cycle: posix_spawn the command (stdin /dev/null, stdout a pipe, stderr
 * /dev/null), wait for the first '.' on the pipe (the restored guest
 * running), send the signal (KILL, or TERM for the monitor's own orderly
 * exit), and reap it when its pidfd says it is gone. PARALLEL cycles are in
 * flight at once, all driven from one poll() loop: nothing in the driver
 * blocks on one child while another is ready.
 *
 * The driver runs SCHED_FIFO when it may (root), with SCHED_RESET_ON_FORK
 * so its children run as ordinary tasks: the guest under test spins
 * between ticks, and a driver competing with 16 spinning vCPUs at equal
 * priority sees each '.' late, so the guests spin longer and the rate
 * measures the driver's scheduling rather than the monitor. A platform's
 * control plane reacting promptly is the case worth measuring.
 *
 * usage: cycles-driver CYCLES PARALLEL KILL|TERM COMMAND [ARGS...]
 *
 * Output: one line per cycle, times in microseconds:
 *   cycle SPAWN RUNNING EXIT UTIME STIME RUNCPU
 * SPAWN    posix_spawn() returning in the driver
 * RUNNING  spawn returned -> first '.' read
 * EXIT     signal sent -> child reaped (its threads end, its fds close:
 *          the host frees the VM before the parent can reap it)
 * UTIME, STIME  the child's user and system CPU, whole life (wait4)
 * RUNCPU   the child's CPU up to the guest running as its own log says
 *          ("... us of CPU" on stderr, ember's line when the VM runs;
 *          -1 without one). Reading /proc/PID/task/N/schedstat instead
 *          costs the driver ~4 ms a cycle: the reaping parent pays for
 *          invalidating the /proc dentries the reads created.
 * and a last line:
 *   total CYCLES WALL_US DRIVER_UTIME_US DRIVER_STIME_US
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PARALLEL 64

extern char **environ;

enum slot_state { SLOT_IDLE, SLOT_STARTING, SLOT_EXITING };

struct slot {
	enum slot_state state;
	pid_t pid;
	int out_fd; /* the child's stdout, read end */
	int err_fd; /* the child's stderr, read end; -1 once read */
	char err[512];
	size_t err_len;
	int pid_fd; /* readable once the child has exited */
	uint64_t t0, t_spawned, t_running, t_signalled;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The CPU time in the child's "... after N us, M us of CPU" line, or -1. */
static long long logged_cpu_us(struct slot *s)
{
	s->err[s->err_len] = 0;
	char *p = strstr(s->err, " us of CPU");
	if (!p)
		return -1;
	while (p > s->err && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return atoll(p);
}

static int slot_start(struct slot *s, char **argv)
{
	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(err, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	s->t0 = now_us();
	int r = posix_spawnp(&s->pid, argv[0], &fa, NULL, argv, environ);
	s->t_spawned = now_us();
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	if (r) {
		close(out[0]);
		close(err[0]);
		return -r;
	}
	s->out_fd = out[0];
	s->err_fd = err[0];
	s->err_len = 0;
	s->pid_fd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	if (s->pid_fd < 0)
		return -errno;
	s->state = SLOT_STARTING;
	return 0;
}

/* The child's stdout is readable: on its first '.', signal it. */
static int slot_output(struct slot *s, int sig)
{
	char buf[4096];
	ssize_t n = read(s->out_fd, buf, sizeof(buf));
	if (n <= 0 || !memchr(buf, '.', (size_t)n))
		return n <= 0 ? -EPIPE : 0;
	s->t_running = now_us();
	s->t_signalled = now_us();
	kill(s->pid, sig);
	/* The log line comes before the guest runs: it is in the pipe now. */
	ssize_t e = read(s->err_fd, s->err + s->err_len, sizeof(s->err) - 1 - s->err_len);
	if (e > 0)
		s->err_len += (size_t)e;
	close(s->err_fd);
	close(s->out_fd);
	s->out_fd = -1;
	s->state = SLOT_EXITING;
	return 0;
}

static int slot_reap(struct slot *s)
{
	int status;
	struct rusage ru;
	if (wait4(s->pid, &status, 0, &ru) != s->pid)
		return -errno;
	uint64_t t = now_us();
	close(s->pid_fd);
	s->state = SLOT_IDLE;
	printf("cycle %llu %llu %llu %llu %llu %lld\n", (unsigned long long)(s->t_spawned - s->t0),
	       (unsigned long long)(s->t_running - s->t_spawned),
	       (unsigned long long)(t - s->t_signalled),
	       (unsigned long long)(ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec),
	       (unsigned long long)(ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec),
	       logged_cpu_us(s));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s CYCLES PARALLEL KILL|TERM COMMAND [ARGS...]\n", argv[0]);
		return 2;
	}
	long cycles = atol(argv[1]), parallel = atol(argv[2]);
	int sig = strcmp(argv[3], "TERM") == 0 ? SIGTERM : SIGKILL;
	if (cycles < 1 || parallel < 1 || parallel > MAX_PARALLEL) {
		fprintf(stderr, "CYCLES >= 1, 1 <= PARALLEL <= %d\n", MAX_PARALLEL);
		return 2;
	}
	struct sched_param sp = { .sched_priority = 1 };
	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0)
		fprintf(stderr, "driver stays SCHED_OTHER: %s\n", strerror(errno));
	struct slot slots[MAX_PARALLEL] = { 0 };
	long started = 0, done = 0;
	uint64_t t0 = now_us();
	while (done < cycles) {
		struct pollfd pfd[MAX_PARALLEL];
		for (long i = 0; i < parallel; i++) {
			struct slot *s = &slots[i];
			if (s->state == SLOT_IDLE && started < cycles) {
				int r = slot_start(s, argv + 4);
				if (r < 0) {
					fprintf(stderr, "cannot start %s: %s\n", argv[4],
						strerror(-r));
					return 1;
				}
				started++;
			}
			pfd[i].fd = s->state == SLOT_STARTING ? s->out_fd
			    : s->state == SLOT_EXITING	      ? s->pid_fd
							      : -1;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)parallel, 20000) <= 0) {
			fprintf(stderr, "no progress in 20 s\n");
			return 1;
		}
		for (long i = 0; i < parallel; i++) {
			struct slot *s = &slots[i];
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int r = s->state == SLOT_STARTING ? slot_output(s, sig) : slot_reap(s);
			if (r < 0) {
				fprintf(stderr, "cycle failed: %s (no '.' from %s?)\n",
					strerror(-r), argv[4]);
				return 1;
			}
			if (s->state == SLOT_IDLE)
				done++;
		}
	}
	uint64_t wall = now_us() - t0;
	struct rusage self;
	getrusage(RUSAGE_SELF, &self);
	printf("total %ld %llu %llu %llu\n", cycles, (unsigned long long)wall,
	       (unsigned long long)(self.ru_utime.tv_sec * 1000000 + self.ru_utime.tv_usec),
	       (unsigned long long)(self.ru_stime.tv_sec * 1000000 + self.ru_stime.tv_usec));
	return 0;
}
