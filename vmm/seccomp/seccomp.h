/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-thread seccomp filters. Each thread class (VMM, API, vCPU, uffd)
 * installs its own filter before it runs guest code or serves a request;
 * the filters come from resources/seccomp/x86_64.policy, compiled to BPF
 * at build time and embedded (or from --seccomp-filter FILE, compiled at
 * start-up; or none with --no-seccomp). A call the filter does not allow
 * raises SIGSYS: the handler logs the thread and the syscall number and the
 * process exits with EMBER_EXIT_BAD_SYSCALL.
 */
#ifndef EMBER_SECCOMP_H
#define EMBER_SECCOMP_H

#include <stdbool.h>

#include "policy.h"

/* Once, on the main thread, before any other thread exists. @policy_path:
 * NULL for the embedded filters. 0 or -1 with the error logged. */
int seccomp_setup(bool enabled, const char *policy_path) __attribute__((warn_unused_result));
/* Install @cls's filter on the calling thread; the log line a denied call
 * writes names the thread as the log does (log_set_thread_name()). 0, or
 * -errno (logged). No-op when disabled. */
int seccomp_apply(enum seccomp_class cls) __attribute__((warn_unused_result));

/* The embedded filters (build/gen/seccomp_filters.c). */
struct seccomp_builtin {
	const struct sock_filter *prog;
	unsigned int len;
};
extern const struct seccomp_builtin ember_seccomp_builtin[SECCOMP_CLASSES];

#endif
