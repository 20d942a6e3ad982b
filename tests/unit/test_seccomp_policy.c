// SPDX-License-Identifier: Apache-2.0
/*
 * The seccomp policy compiler: malformed policies are refused with the
 * line, and a compiled filter really allows and denies (installed in a
 * forked child: denied means killed by SIGSYS).
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "seccomp/policy.h"

static const struct {
	const char *text, *words;
} bad[] = {
	{ "[vmm]\nfrobnicate\n", "line 2: unknown system call 'frobnicate'" },
	{ "[vmm]\nioctl arg1=5\n", "bad condition 'arg1=5'" },
	{ "[vmm]\nioctl arg6==5\n", "bad condition 'arg6==5'" },
	{ "[vmm]\nioctl arg1==\n", "bad condition 'arg1=='" },
	{ "[vmm]\nioctl arg1&==5\n", "bad condition 'arg1&==5'" },
	{ "[vmm]\nioctl arg1==KVM_FROB\n", "bad condition 'arg1==KVM_FROB'" },
	{ "[vmm]\nread a b c d e f g h\n", "too many conditions" },
	{ "[api]\nread\n", "no [vmm] section" },
	{ "[vmm ]\nread\n", "no [vmm] section" },
	{ "", "no [vmm] section" },
};

static void malformed_policies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sock_filter *prog = NULL;
		char err[200] = "";
		int r = seccomp_policy_compile(bad[i].text, SECCOMP_VMM, &prog, err, sizeof(err));
		print_message("  %-40.40s -> %s\n", bad[i].text, err);
		assert_true(r < 0);
		assert_non_null(strstr(err, bad[i].words));
	}
}

/* Run @fn in a child under the [vmm] section of @policy; its wait status. */
static int run_filtered(const char *policy, void (*fn)(void))
{
	struct sock_filter *prog;
	char err[200];
	int n = seccomp_policy_compile(policy, SECCOMP_VMM, &prog, err, sizeof(err));
	assert_true(n > 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct sock_fprog fp = { .len = (unsigned short)n, .filter = prog };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
			_exit(99);
		fn();
		syscall(SYS_exit_group, 0);
	}
	int status;
	waitpid(pid, &status, 0);
	free(prog);
	return status;
}

static void call_getppid(void)
{
	syscall(SYS_getppid);
}

static void call_ioctl_allowed(void)
{
	/* ioctl(-1, 0x1234): allowed by the argument check, fails with EBADF. */
	if (syscall(SYS_ioctl, -1, 0x1234, 0) != -1 || errno != EBADF)
		syscall(SYS_exit_group, 3);
}

static void call_ioctl_denied(void)
{
	syscall(SYS_ioctl, -1, 0x4321, 0);
}

static void call_mmap_exec(void)
{
	syscall(SYS_mmap, 0, 4096, 7 /* RWX */, 0x22 /* private anonymous */, -1, 0);
}

static void call_clone3(void)
{
	/* Answered ENOSYS, not fatal. */
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		syscall(SYS_exit_group, 4);
}

static const char policy[] = "[vmm]\n"
			     "exit_group\n"
			     "ioctl arg1==0x1234   # only this request\n"
			     "mmap arg2&PROT_EXEC==0\n"
			     "clone3 errno=ENOSYS\n";

static void filters_allow_and_deny(void **state)
{
	(void)state;
	int s = run_filtered(policy, call_ioctl_allowed);
	assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 0);
	s = run_filtered(policy, call_clone3);
	assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 0);
	s = run_filtered(policy, call_ioctl_denied);
	assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS);
	s = run_filtered(policy, call_mmap_exec);
	assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS);
	s = run_filtered(policy, call_getppid);
	assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGSYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(malformed_policies),
		cmocka_unit_test(filters_allow_and_deny),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
