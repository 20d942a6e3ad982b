// SPDX-License-Identifier: Apache-2.0
/* Installing the per-thread seccomp filters and reporting denied calls. */
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "exit_codes.h"
#include "log.h"

static bool on;
static struct sock_filter *custom[SECCOMP_CLASSES];
static int custom_len[SECCOMP_CLASSES];

/* Append decimal @v to @p; returns the new end. Async-signal-safe. */
static char *put_dec(char *p, unsigned long v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 24);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

/* SIGSYS from SECCOMP_RET_TRAP: one log line, then exit. Only write and
 * exit_group, which every filter allows (log_signal_safe() says so too). */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	char msg[160], *p = msg;
	const char *thread_name = log_thread_name();
	p = put_str(p, "seccomp: system call ");
	p = put_dec(p, (unsigned long)si->si_syscall);
	p = put_str(p, " denied on the ");
	p = put_str(p, thread_name);
	p = put_str(p, " thread; exiting");
	*p = 0;
	log_signal_safe(__FILE__, __LINE__, msg);
	syscall(SYS_exit_group, EMBER_EXIT_BAD_SYSCALL);
}

static char *read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > (1 << 20)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	return buf;
}

int seccomp_setup(bool enabled, const char *policy_path)
{
	on = enabled;
	if (!on)
		return 0;
	if (policy_path) {
		char *text = read_file(policy_path);
		if (!text) {
			log_err("--seccomp-filter: cannot read '%s'", policy_path);
			return -1;
		}
		for (int c = 0; c < SECCOMP_CLASSES; c++) {
			char err[200];
			custom_len[c] =
			    seccomp_policy_compile(text, c, &custom[c], err, sizeof(err));
			if (custom_len[c] < 0) {
				log_err("--seccomp-filter '%s': [%s]: %s", policy_path,
					seccomp_class_names[c], err);
				free(text);
				return -1;
			}
		}
		free(text);
	}
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -1 : 0;
}

int seccomp_apply(enum seccomp_class cls)
{
	if (!on)
		return 0;
	/* The kernel copies the program; sock_fprog's pointer is just not const. */
	union {
		const struct sock_filter *c;
		struct sock_filter *m;
	} f = { .c = custom[cls] ? custom[cls] : ember_seccomp_builtin[cls].prog };
	struct sock_fprog prog = {
		.len = (unsigned short)(custom[cls] ? custom_len[cls]
						    : (int)ember_seccomp_builtin[cls].len),
		.filter = f.m,
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		int e = errno;
		log_err("cannot install the %s seccomp filter: %s", seccomp_class_names[cls],
			strerror(e));
		return -e;
	}
#ifdef EMBER_TEST_HOOKS
	/* Test builds only (build/ember-test-hooks): make this thread break its
	 * filter when EMBER_TEST_VIOLATE names its class. */
	const char *v = getenv("EMBER_TEST_VIOLATE");
	if (v && strcmp(v, seccomp_class_names[cls]) == 0)
		syscall(SYS_mknodat, AT_FDCWD, "/nonexistent/ember-test", 0, 0);
#endif
	return 0;
}
