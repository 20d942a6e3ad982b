/* SPDX-License-Identifier: Apache-2.0 */
/*
 * For targets whose input names files (API bodies, config files, snapshot
 * state files): ember would open, create or append to whatever the input
 * names, and these targets run as root. Each such target works in a private
 * directory made under $TMPDIR (else /dev/shm, else /tmp), which is the
 * working directory while an input runs; libFuzzer's own path arguments are
 * made absolute first, so a crash's artifact lands where it was asked to.
 *
 * While an input runs (between fuzz_sandbox_enter() and fuzz_sandbox_leave()),
 * open() and openat() from any code in the process reach only relative paths
 * without a ".." component, that is files in the private directory; any
 * other path fails with EACCES, as a file the monitor may not open would.
 * So no input reaches /dev/kvm, a device node or a FIFO, or writes outside
 * the directory. Files the target made with fuzz_sandbox_keep() are read
 * only to inputs; whatever an input created is removed when it ends, so the
 * next input starts from the same directory. stat() and access() are left
 * alone: they change nothing.
 */
#ifndef EMBER_FUZZ_SANDBOX_H
#define EMBER_FUZZ_SANDBOX_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FUZZ_SANDBOX_MAX_KEEP 8

static struct {
	char dir[256];
	int dir_fd, home_fd; /* the private directory, and where the process started */
	bool confined, created;
	const char *keep[FUZZ_SANDBOX_MAX_KEEP];
	unsigned int nr_keep;
} fuzz_sandbox;

static inline bool fuzz_sandbox_kept(const char *name)
{
	for (unsigned int i = 0; i < fuzz_sandbox.nr_keep; i++)
		if (strcmp(fuzz_sandbox.keep[i], name) == 0)
			return true;
	return false;
}

/* Relative, without "." or "..": a name inside the private directory,
 * spelled one way only (so a kept file cannot be named another way). */
static inline bool fuzz_sandbox_path_ok(const char *path, int flags)
{
	if (!path || !*path || path[0] == '/')
		return false;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		p += strspn(p, "/");
	}
	bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
	return !(writes && fuzz_sandbox_kept(path));
}

static inline int fuzz_sandbox_open(int dirfd, const char *path, int flags, mode_t mode)
{
	if (fuzz_sandbox.confined) {
		if (dirfd != AT_FDCWD || !fuzz_sandbox_path_ok(path, flags)) {
			errno = EACCES;
			return -1;
		}
		if (flags & O_CREAT)
			fuzz_sandbox.created = true;
	}
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

/* These replace libc's for every caller in the process (ember's objects
 * call them through the executable's symbols). */
int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return fuzz_sandbox_open(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return fuzz_sandbox_open(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return fuzz_sandbox_open(dirfd, path, flags, mode);
}

/* Remove what inputs left in the directory (never a kept file). */
static inline void fuzz_sandbox_clean(void)
{
	DIR *d = opendir(".");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    fuzz_sandbox_kept(e->d_name))
			continue;
		if (unlink(e->d_name) < 0)
			rmdir(e->d_name);
	}
	if (d)
		closedir(d);
}

static inline void fuzz_sandbox_remove(void)
{
	fuzz_sandbox.confined = false;
	fuzz_sandbox.nr_keep = 0;
	if (fchdir(fuzz_sandbox.dir_fd) == 0)
		fuzz_sandbox_clean();
	if (fchdir(fuzz_sandbox.home_fd) == 0)
		rmdir(fuzz_sandbox.dir);
}

/* libFuzzer's flags that name files or directories (positional arguments
 * are corpus directories or inputs). */
static const char *const fuzz_path_flags[] = {
	"-artifact_prefix=", "-exact_artifact_path=", "-dict=", "-merge_control_file=",
	"-features_dir=",    "-data_flow_trace=",     NULL,
};

/* The absolute paths made for libFuzzer, kept for the life of the process. */
static char *fuzz_sandbox_args[256];

static inline char *fuzz_sandbox_absolute(const char *cwd, const char *prefix, const char *path)
{
	size_t n = strlen(cwd) + strlen(prefix) + strlen(path) + 2;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s/%s", prefix, cwd, path);
	return s;
}

/*
 * Call from LLVMFuzzerInitialize() with its arguments, before anything
 * else: make the private directory, make libFuzzer's relative paths
 * absolute (it reads its flags after this), and move into the directory
 * until fuzz_sandbox_leave(). The strings made here live as long as the
 * process, as argv does.
 */
static inline void fuzz_sandbox_init(int *argc, char ***argv, const char *name)
{
	char cwd[4096];
	const char *tmp = getenv("TMPDIR");
	struct stat st;
	/* Memory-backed when it can be: each input may create and remove files. */
	if (!tmp || !*tmp)
		tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
	snprintf(fuzz_sandbox.dir, sizeof(fuzz_sandbox.dir), "%s/ember-%s-XXXXXX", tmp, name);
	if (!getcwd(cwd, sizeof(cwd)) || !mkdtemp(fuzz_sandbox.dir)) {
		perror("fuzz sandbox");
		abort();
	}
	for (int i = 1; i < *argc && i < 256; i++) {
		char *a = (*argv)[i];
		const char *const *f = fuzz_path_flags;
		while (*f && strncmp(a, *f, strlen(*f)) != 0)
			f++;
		if (*f && a[strlen(*f)] && a[strlen(*f)] != '/')
			(*argv)[i] = fuzz_sandbox_absolute(cwd, *f, a + strlen(*f));
		else if (a[0] != '-' && a[0] != '/')
			(*argv)[i] = fuzz_sandbox_absolute(cwd, "", a);
		if (!(*argv)[i])
			abort();
		if ((*argv)[i] != a)
			fuzz_sandbox_args[i] = (*argv)[i];
	}
	fuzz_sandbox.home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fuzz_sandbox.dir_fd = open(fuzz_sandbox.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fuzz_sandbox.home_fd < 0 || fuzz_sandbox.dir_fd < 0 ||
	    fchdir(fuzz_sandbox.dir_fd) < 0) {
		perror("fuzz sandbox");
		abort();
	}
	atexit(fuzz_sandbox_remove);
}

/* A file the target provides for inputs to name (a drive, a kernel). */
static inline void fuzz_sandbox_keep(const char *name, const void *data, size_t len)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0 ||
	    fuzz_sandbox.nr_keep == FUZZ_SANDBOX_MAX_KEEP) {
		perror("fuzz sandbox: keep");
		abort();
	}
	fuzz_sandbox.keep[fuzz_sandbox.nr_keep++] = name;
}

/* A file the target made another way (a socket it bound), kept the same. */
static inline void fuzz_sandbox_keep_made(const char *name)
{
	if (fuzz_sandbox.nr_keep == FUZZ_SANDBOX_MAX_KEEP)
		abort();
	fuzz_sandbox.keep[fuzz_sandbox.nr_keep++] = name;
}

static inline void fuzz_sandbox_enter(void)
{
	if (fchdir(fuzz_sandbox.dir_fd) < 0)
		abort();
	fuzz_sandbox.confined = true;
}

/* Also ends LLVMFuzzerInitialize(): libFuzzer runs itself again (-merge,
 * -fork) by the path it was started with, from where it was started. */
static inline void fuzz_sandbox_leave(void)
{
	fuzz_sandbox.confined = false;
	if (fuzz_sandbox.created)
		fuzz_sandbox_clean();
	fuzz_sandbox.created = false;
	if (fchdir(fuzz_sandbox.home_fd) < 0)
		abort();
}

#endif
