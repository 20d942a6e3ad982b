/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember's seccomp policy language, compiled with libseccomp.
 *
 * A policy file (resources/seccomp/x86_64.policy) has one section per
 * thread class, "[vmm]", "[api]", "[vcpu]", "[uffd]", each a list of rules:
 *
 *   <syscall> [<cond> ...]   # why the thread needs it
 *
 * A syscall may appear on several lines: any line matching allows the call.
 * The conditions on one line must all hold:
 *   argN==V   argN!=V   argN&M==V   (argument N masked with M equals V)
 * and "errno=E" makes the rule fail the call with E instead of allowing it.
 * Values are numbers (decimal or 0x...) or the names in policy.c's table
 * (KVM_RUN, TUNSETIFF, AF_UNIX, PROT_EXEC, ...). Anything else is refused.
 * A call no rule allows raises SIGSYS (SECCOMP_RET_TRAP).
 */
#ifndef EMBER_SECCOMP_POLICY_H
#define EMBER_SECCOMP_POLICY_H

#include <linux/filter.h>
#include <stddef.h>

enum seccomp_class { SECCOMP_VMM, SECCOMP_API, SECCOMP_VCPU, SECCOMP_UFFD, SECCOMP_CLASSES };

extern const char *const seccomp_class_names[SECCOMP_CLASSES];

/*
 * Compile section @cls of the policy @text into classic BPF. On success
 * returns the number of instructions and sets *@prog (malloc'd); on error a
 * negative errno with @err naming the line.
 */
int seccomp_policy_compile(const char *text, enum seccomp_class cls, struct sock_filter **prog,
			   char *err, size_t err_len) __attribute__((warn_unused_result));

#endif
