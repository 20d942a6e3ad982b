/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KVM system fd: opened once per process, checked for the API version
 * and the capabilities ember cannot run without.
 */
#ifndef EMBER_KVM_H
#define EMBER_KVM_H

#include <linux/kvm.h>

struct kvm_cap_modifier;
/*
 * Open /dev/kvm and check the API version and the capabilities ember needs,
 * less those @caps removes ("!N") and plus those it adds ("N": a CPU
 * template's kvm_capabilities). The fd, or a negative errno with the
 * missing capability logged.
 */
int kvm_open(const struct kvm_cap_modifier *caps, unsigned int nr_caps)
    __attribute__((warn_unused_result));
/* KVM_CHECK_EXTENSION on @fd (system or VM fd); 0 when absent. */
/*
 * The capabilities a CPU template adds, checked on an fd kvm_open() opened
 * without them (the pre-warmed one): 0, or -ENOTSUP with the missing one
 * logged.
 */
int kvm_check_template_caps(int fd, const struct kvm_cap_modifier *caps, unsigned int nr_caps)
    __attribute__((warn_unused_result));
int kvm_check_cap(int fd, int cap);
/* KVM_GET_SUPPORTED_CPUID into a malloc'ed table; NULL and errno on error. */
struct kvm_cpuid2 *kvm_get_supported_cpuid(int kvm_fd);

#endif
