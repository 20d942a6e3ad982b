// SPDX-License-Identifier: Apache-2.0
/*
 * ember-jailer: start ember with the least it needs, the way Firecracker's
 * jailer does.
 *
 *   ember-jailer --id ID --exec-file PATH --uid U --gid G
 *       [--chroot-base-dir DIR] [--netns PATH] [--cgroup-version 1|2]
 *       [--cgroup FILE=VALUE]... [--parent-cgroup NAME]
 *       [--resource-limit fsize=N|no-file=N]... [--daemonize] [--new-pid-ns]
 *       [--bind-mount DIR]... -- <ember arguments>
 *   ember-jailer --version | --help
 *
 * --bind-mount (ember's own, not Firecracker's) shows a host directory in
 * the jail at the same path, read-write: for test harnesses and shared
 * resources, at the cost of that much isolation.
 *
 * ember gets what Firecracker's jailer passes Firecracker before the
 * arguments after '--': --id, --start-time-us, --start-time-cpu-us and
 * --parent-cpu-time-us, from which it reports its start-up times.
 *
 * jail_run() is one linear list of steps, each with its own error. The
 * steps that leave something on the host (the chroot directory, the cgroup,
 * the device nodes) run here, in the jailer; a child then enters the
 * network namespace, a new mount namespace with the chroot as its root,
 * drops to uid:gid and execs ember. The child reports a failure before the
 * exec through a pipe, and the jailer then removes the chroot and the
 * cgroup: a failed jail leaves nothing behind.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jailer.h"
#include "version.h"

char err_buf[JAIL_ERR_MAX];

int fail(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	if (e && n > 0 && (size_t)n < sizeof(err_buf))
		snprintf(err_buf + n, sizeof(err_buf) - (size_t)n, ": %s", strerror(e));
	return -1;
}

/* A bad argument: why in err_buf (no errno: the argument is the cause). -1. */
static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	va_end(ap);
	return -1;
}

static bool id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_')
			return false;
	return true;
}

static int parse_num(const char *what, const char *s, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || *s == '-')
		return usage("%s must be a number, not '%s'", what, s);
	*out = v;
	return 0;
}

/* A uid or gid: 32 bits, and not (uid_t)-1, which means "no change" to the kernel. */
static int parse_id(const char *what, const char *s, uint32_t *out)
{
	unsigned long v;
	if (parse_num(what, s, &v) < 0)
		return -1;
	if (v >= UINT32_MAX)
		return usage("%s must be at most %u, not '%s'", what, UINT32_MAX - 1, s);
	*out = (uint32_t)v;
	return 0;
}

int jail_parse_args(int argc, char **argv, struct jail *j)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "exec-file", required_argument, NULL, 'e' },
		{ "uid", required_argument, NULL, 'u' },
		{ "gid", required_argument, NULL, 'g' },
		{ "chroot-base-dir", required_argument, NULL, 'c' },
		{ "netns", required_argument, NULL, 'n' },
		{ "cgroup-version", required_argument, NULL, 'v' },
		{ "cgroup", required_argument, NULL, 'C' },
		{ "parent-cgroup", required_argument, NULL, 'p' },
		{ "resource-limit", required_argument, NULL, 'r' },
		{ "daemonize", no_argument, NULL, 'd' },
		{ "new-pid-ns", no_argument, NULL, 'P' },
		{ "bind-mount", required_argument, NULL, 'b' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*j = (struct jail){
		.base = "/srv/jailer", .cgroup_version = 1, .uid = (uid_t)-1, .gid = (gid_t)-1
	};
	int o;
	uint32_t id = 0;
	unsigned long num = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case 'i':
			j->id = optarg;
			break;
		case 'e':
			j->exec_file = optarg;
			break;
		case 'u':
			if (parse_id("--uid", optarg, &id) < 0)
				return -1;
			j->uid = id;
			break;
		case 'g':
			if (parse_id("--gid", optarg, &id) < 0)
				return -1;
			j->gid = id;
			break;
		case 'c':
			j->base = optarg;
			break;
		case 'n':
			j->netns = optarg;
			break;
		case 'v':
			if (strcmp(optarg, "1") && strcmp(optarg, "2"))
				return usage("--cgroup-version must be 1 or 2, not '%s'", optarg);
			j->cgroup_version = optarg[0] - '0';
			break;
		case 'C': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg || !eq[1] || strchr(optarg, '/') ||
			    j->nr_cgroups == JAIL_MAX_CGROUPS)
				return usage(
				    "--cgroup takes FILE=VALUE (a cgroup file name), not '%s'",
				    optarg);
			*eq = 0;
			j->cg_file[j->nr_cgroups] = optarg;
			j->cg_value[j->nr_cgroups++] = eq + 1;
			break;
		}
		case 'p':
			if (strstr(optarg, "..") || optarg[0] == '/')
				return usage(
				    "--parent-cgroup must be a relative name without '..'");
			j->parent_cgroup = optarg;
			break;
		case 'r': {
			char *eq = strchr(optarg, '=');
			if (!eq || j->nr_limits == JAIL_MAX_LIMITS)
				return usage(
				    "--resource-limit takes fsize=N or no-file=N, not '%s'",
				    optarg);
			*eq = 0;
			int res = !strcmp(optarg, "fsize") ? RLIMIT_FSIZE
			    : !strcmp(optarg, "no-file")   ? RLIMIT_NOFILE
							   : -1;
			if (res < 0)
				return usage(
				    "--resource-limit: unknown resource '%s' (fsize, no-file)",
				    optarg);
			if (parse_num("--resource-limit", eq + 1, &num) < 0)
				return -1;
			j->rl_resource[j->nr_limits] = res;
			j->rl_value[j->nr_limits++] = num;
			break;
		}
		case 'd':
			j->daemonize = true;
			break;
		case 'P':
			j->new_pid_ns = true;
			break;
		case 'b':
			if (j->nr_binds == JAIL_MAX_BINDS)
				return usage("at most %d --bind-mount", JAIL_MAX_BINDS);
			j->binds[j->nr_binds++] = optarg;
			break;
		case 'V':
			j->show_version = true;
			break;
		case 'h':
			j->show_help = true;
			break;
		default:
			return usage("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	j->ember_argv = argv + optind;
	if (optind < argc && strcmp(argv[optind - 1], "--") != 0)
		return usage("ember's arguments go after '--'");
	return 0;
}

/* ---- the steps ---------------------------------------------------------------- */

int jail_validate(struct jail *j)
{
	struct stat st;
	if (!j->id)
		return fail("--id is required");
	if (!id_valid(j->id))
		return fail("--id must be 1 to 64 characters of [A-Za-z0-9_-] (no '/' or '..'): "
			    "'%.80s'",
			    j->id);
	if (!j->exec_file)
		return fail("--exec-file is required");
	if (stat(j->exec_file, &st) < 0)
		return fail("--exec-file '%s'", j->exec_file);
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
		return (errno = 0),
		       fail("--exec-file '%s' is not an executable file", j->exec_file);
	/* The jail holds the exec file and device nodes, nothing else: a
	 * dynamically linked one would find no loader or libraries there. */
	int is_static = elf_is_static(j->exec_file);
	if (is_static < 0)
		return fail("--exec-file '%s' is not a 64-bit ELF executable", j->exec_file);
	if (!is_static)
		return (errno = 0),
		       fail("--exec-file '%s' is dynamically linked: the jail holds "
			    "only the exec file, so it must be a static executable",
			    j->exec_file);
	/* 0 is allowed, as by Firecracker's jailer (Kata Containers runs it
	 * so): ember then keeps root's capabilities inside the jail. */
	if (j->uid == (uid_t)-1 || j->gid == (gid_t)-1)
		return (errno = 0), fail("--uid and --gid are required");
	if (j->netns && stat(j->netns, &st) < 0)
		return fail("--netns '%s'", j->netns);
	if (j->base[0] != '/')
		return (errno = 0), fail("--chroot-base-dir must be an absolute path");
	for (unsigned int i = 0; i < j->nr_binds; i++) {
		if (j->binds[i][0] != '/' || !strcmp(j->binds[i], "/") || strstr(j->binds[i], ".."))
			return (errno = 0),
			       fail("--bind-mount '%s' must be an absolute directory "
				    "other than /, without '..'",
				    j->binds[i]);
		if (stat(j->binds[i], &st) < 0 || !S_ISDIR(st.st_mode))
			return fail("--bind-mount '%s' is not a directory", j->binds[i]);
	}
	const char *slash = strrchr(j->exec_file, '/');
	snprintf(j->exec_name, sizeof(j->exec_name), "%s", slash ? slash + 1 : j->exec_file);
	/* Firecracker's default parent cgroup: the exec file's name. */
	if (!j->parent_cgroup)
		j->parent_cgroup = j->exec_name;
	if (snprintf(j->jail_dir, sizeof(j->jail_dir), "%s/%s/%s", j->base, j->exec_name, j->id) >=
		(int)sizeof(j->jail_dir) ||
	    snprintf(j->root, sizeof(j->root), "%s/root", j->jail_dir) >=
		(int)sizeof(j->root) - 300)
		return (errno = 0),
		       fail("--chroot-base-dir is too long"); /* every path below fits */
	if (stat(j->jail_dir, &st) == 0)
		return (errno = 0),
		       fail("'%s' exists: is a jail with id '%s' running?", j->jail_dir, j->id);
	return 0;
}

static int make_chroot(struct jail *j)
{
	char path[PATH_MAX];
	if (mkdirs(j->root, 0755) < 0)
		return fail("cannot create '%s'", j->root);
	snprintf(path, sizeof(path), "%s/%s", j->root, j->exec_name);
	if (link_or_copy(j->exec_file, path, 0755) < 0)
		return fail("cannot copy '%s' into the jail", j->exec_file);
	/* The jailed process owns its root (it creates its API socket there),
	 * and /run, where its default socket goes (/run/firecracker.socket). */
	if (chown(j->root, j->uid, j->gid) < 0)
		return fail("cannot hand '%s' to %u:%u", j->root, j->uid, j->gid);
	snprintf(path, sizeof(path), "%s/run", j->root);
	if (mkdir(path, 0700) < 0 || chown(path, j->uid, j->gid) < 0)
		return fail("cannot create /run in the jail");
	return 0;
}

static int make_node(struct jail *j, const char *name, unsigned int maj, unsigned int min)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s%s", j->root, name);
	if (mknod(path, S_IFCHR | 0600, makedev(maj, min)) < 0 || chown(path, j->uid, j->gid) < 0)
		return fail("cannot create %s in the jail", name);
	return 0;
}

/* The userfaultfd device's numbers, from sysfs ("10:257"). */
static int misc_minor(const char *dev, unsigned int *min)
{
	char path[128], buf[32];
	snprintf(path, sizeof(path), "/sys/class/misc/%s/dev", dev);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	unsigned int maj;
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return sscanf(buf, "%u:%u", &maj, min) == 2 && maj == 10 ? 0 : -1;
}

static int make_devices(struct jail *j)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/dev/net", j->root);
	if (mkdirs(path, 0755) < 0)
		return fail("cannot create /dev in the jail");
	unsigned int uffd_minor;
	if (make_node(j, "/dev/kvm", 10, 232) < 0 || make_node(j, "/dev/net/tun", 10, 200) < 0 ||
	    make_node(j, "/dev/urandom", 1, 9) < 0 || make_node(j, "/dev/null", 1, 3) < 0)
		return -1;
	if (misc_minor("userfaultfd", &uffd_minor) == 0 &&
	    make_node(j, "/dev/userfaultfd", 10, uffd_minor) < 0)
		return -1;
	return 0;
}

static int remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char sub[PATH_MAX];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			remove_tree(sub);
		}
		if (d)
			closedir(d);
		return rmdir(path);
	}
	return unlink(path);
}

/* Undo what the host-side steps made. */
static void clean_up(struct jail *j)
{
	for (unsigned int k = 0; k < j->nr_cg_dirs; k++)
		rmdir(j->cg_dirs[k]);
	if (j->jail_dir[0])
		remove_tree(j->jail_dir);
}

/* ---- the child: namespaces, root, identity, exec ---------------------------------- */

static uint64_t clock_us(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
}

/* This process's CPU time, in microseconds. */
static uint64_t cpu_time_us(void)
{
	return clock_us(CLOCK_PROCESS_CPUTIME_ID);
}

static void child_fail(int report_fd)
{
	ssize_t w = write(report_fd, err_buf, strlen(err_buf) + 1);
	(void)w;
	_exit(EXIT_JAIL);
}

static int enter_root(struct jail *j)
{
	if (unshare(CLONE_NEWNS) < 0)
		return fail("cannot create a mount namespace");
	/* Nothing we mount propagates back to the host. */
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return fail("cannot make mounts private");
	if (mount(j->root, j->root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return fail("cannot bind the chroot onto itself");
	for (unsigned int i = 0; i < j->nr_binds; i++) {
		char at[PATH_MAX * 2];
		snprintf(at, sizeof(at), "%s%s", j->root, j->binds[i]);
		if (mkdirs(at, 0755) < 0 ||
		    mount(j->binds[i], at, NULL, MS_BIND | MS_REC, NULL) < 0)
			return fail("cannot bind '%s' into the jail", j->binds[i]);
	}
	if (chdir(j->root) < 0)
		return fail("cannot enter '%s'", j->root);
	if (mkdir("old_root", 0700) < 0)
		return fail("cannot create old_root");
	if (syscall(SYS_pivot_root, ".", "old_root") < 0)
		return fail("pivot_root");
	if (chdir("/") < 0 || umount2("/old_root", MNT_DETACH) < 0 || rmdir("/old_root") < 0)
		return fail("cannot detach the old root");
	return 0;
}

static void child(struct jail *j, int go_fd, int report_fd)
{
	char c;
	/* Wait until the jailer has put us in the cgroup. */
	if (read(go_fd, &c, 1) != 1)
		_exit(EXIT_JAIL);
	close(go_fd);
	bool nofile_set = false;
	for (unsigned int i = 0; i < j->nr_limits; i++) {
		struct rlimit rl = { j->rl_value[i], j->rl_value[i] };
		if (setrlimit(j->rl_resource[i], &rl) < 0) {
			fail("cannot set resource limit %u", i);
			child_fail(report_fd);
		}
		nofile_set |= j->rl_resource[i] == RLIMIT_NOFILE;
	}
	struct rlimit nofile = { JAIL_DEFAULT_NOFILE, JAIL_DEFAULT_NOFILE };
	if (!nofile_set && setrlimit(RLIMIT_NOFILE, &nofile) < 0) {
		fail("cannot set the default no-file limit (%d)", JAIL_DEFAULT_NOFILE);
		child_fail(report_fd);
	}
	if (j->netns) {
		int fd = open(j->netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			fail("cannot join network namespace '%s'", j->netns);
			child_fail(report_fd);
		}
		close(fd);
	}
	if (enter_root(j) < 0)
		child_fail(report_fd);
	if (j->daemonize) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (setsid() < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(null, 2) < 0) {
			fail("cannot daemonize");
			child_fail(report_fd);
		}
	}
	if (setgroups(0, NULL) < 0 || setresgid(j->gid, j->gid, j->gid) < 0 ||
	    setresuid(j->uid, j->uid, j->uid) < 0) {
		fail("cannot drop to %u:%u", j->uid, j->gid);
		child_fail(report_fd);
	}
	/* Unless daemonized, ember goes when the jailer does (set after the
	 * uid change, which clears it). */
	if (!j->daemonize && prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		fail("cannot set the parent-death signal");
		child_fail(report_fd);
	}
	char exec_path[NAME_MAX + 2];
	snprintf(exec_path, sizeof(exec_path), "/%s", j->exec_name);
	/* argv: the exec file's name, what Firecracker's jailer passes, then
	 * ember's arguments; no environment. This process's CPU time so far
	 * is what ember subtracts from its own (CPU time survives exec); the
	 * jailer's and ours before the exec count as the parent's. */
	char start[24], start_cpu[24], parent_cpu[24];
	uint64_t cpu = cpu_time_us();
	snprintf(start, sizeof(start), "%llu", (unsigned long long)j->start_us);
	snprintf(start_cpu, sizeof(start_cpu), "%llu", (unsigned long long)cpu);
	snprintf(parent_cpu, sizeof(parent_cpu), "%llu",
		 (unsigned long long)(j->jailer_cpu_us + cpu));
	char *launch[] = { "--id",
			   (char *)(uintptr_t)j->id,
			   "--start-time-us",
			   start,
			   "--start-time-cpu-us",
			   start_cpu,
			   "--parent-cpu-time-us",
			   parent_cpu };
	const int nr_launch = sizeof(launch) / sizeof(launch[0]);
	int n = 0;
	while (j->ember_argv[n])
		n++;
	char **argv = calloc((size_t)n + nr_launch + 2, sizeof(char *));
	if (!argv) {
		fail("out of memory");
		child_fail(report_fd);
	}
	argv[0] = j->exec_name;
	for (int i = 0; i < nr_launch; i++)
		argv[i + 1] = launch[i];
	for (int i = 0; i < n; i++)
		argv[i + 1 + nr_launch] = j->ember_argv[i];
	char *envp[] = { NULL };
	execve(exec_path, argv, envp);
	fail("cannot exec '%s' in the jail", exec_path);
	child_fail(report_fd);
}

/* ---- jail_run: the steps, in order ---------------------------------------------- */

static void close_inherited_fds(void)
{
	/* Everything but stdio: the jailed monitor starts with nothing else. */
	if (syscall(SYS_close_range, 3, ~0u, 0) == 0)
		return;
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
}

static pid_t jailed_pid;

static void forward_signal(int sig)
{
	kill(jailed_pid, sig);
}

static int jail_run(struct jail *j)
{
	if (jail_validate(j) < 0)
		return -1;
	close_inherited_fds();
	if (clearenv() != 0)
		return fail("cannot clear the environment");
	if (make_chroot(j) < 0)
		goto undo;
	if (make_devices(j) < 0)
		goto undo;
	if ((j->cgroup_version == 2 ? cgroup_v2(j) : cgroup_v1(j)) < 0 || cgroup_apply(j) < 0)
		goto undo;
	if (j->new_pid_ns && unshare(CLONE_NEWPID) < 0) {
		fail("cannot create a pid namespace");
		goto undo;
	}
	int go[2], report[2];
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
		fail("pipe");
		goto undo;
	}
	j->jailer_cpu_us = cpu_time_us() - j->start_cpu_us;
	pid_t pid = fork();
	if (pid < 0) {
		fail("fork");
		goto undo;
	}
	if (pid == 0) {
		close(go[1]);
		close(report[0]);
		child(j, go[0], report[1]);
	}
	close(go[0]);
	close(report[1]);
	if (cgroup_join(j, pid) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto undo;
	}
	if (j->new_pid_ns) {
		char path[PATH_MAX], buf[32];
		snprintf(path, sizeof(path), "%s/%s.pid", j->root, j->exec_name);
		snprintf(buf, sizeof(buf), "%d\n", pid);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
			fail("cannot write the pid file");
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			goto undo;
		}
		close(fd);
	}
	ssize_t w = write(go[1], "g", 1);
	(void)w;
	close(go[1]);
	/* The report pipe closes on the exec (CLOEXEC) or carries the error. */
	ssize_t n = read(report[0], err_buf, sizeof(err_buf) - 1);
	close(report[0]);
	if (n > 0) {
		err_buf[n] = 0;
		waitpid(pid, NULL, 0);
		goto undo;
	}
	if (j->daemonize)
		return 0;
	/* Signals meant for the jail go to ember. */
	jailed_pid = pid;
	struct sigaction sa = { .sa_handler = forward_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return fail("waitpid");
	/* Exit as ember did. */
	exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
undo:
	clean_up(j);
	return -1;
}

static const char help[] =
    "usage: ember-jailer --id ID --exec-file PATH --uid U --gid G [--chroot-base-dir DIR]\n"
    "           [--netns PATH] [--cgroup-version 1|2] [--cgroup FILE=VALUE]...\n"
    "           [--parent-cgroup NAME] [--resource-limit fsize=N|no-file=N]...\n"
    "           [--daemonize] [--new-pid-ns] [--bind-mount DIR]... -- <ember arguments>\n"
    "       ember-jailer --version | --help\n";

int main(int argc, char **argv)
{
	struct jail j;
	uint64_t start_us = clock_us(CLOCK_MONOTONIC), start_cpu_us = cpu_time_us();
	if (jail_parse_args(argc, argv, &j) < 0) {
		fprintf(stderr, "ember-jailer: %s\n", err_buf);
		return EXIT_JAIL;
	}
	if (j.show_help || j.show_version) {
		/* Firecracker's jailer's first line, then ember's version. */
		printf("%sJailer v%s\nember-jailer v%s\n", j.show_help ? help : "",
		       EMBER_FIRECRACKER_VERSION, EMBER_VERSION);
		return 0;
	}
	j.start_us = start_us;
	j.start_cpu_us = start_cpu_us;
	if (jail_run(&j) < 0) {
		fprintf(stderr, "ember-jailer: %s\n", err_buf);
		return EXIT_JAIL;
	}
	return 0;
}
