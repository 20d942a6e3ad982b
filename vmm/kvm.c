// SPDX-License-Identifier: Apache-2.0
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86_64/cpu_template.h"
#include "log.h"

static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
};

int kvm_check_cap(int fd, int cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

static bool cap_removed(const struct kvm_cap_modifier *caps, unsigned int n, int cap)
{
	for (unsigned int i = 0; i < n; i++)
		if (caps[i].remove && caps[i].cap == (uint32_t)cap)
			return true;
	return false;
}

int kvm_open(const struct kvm_cap_modifier *caps, unsigned int nr_caps)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		log_err("cannot open /dev/kvm: %s", strerror(err));
		return -err;
	}
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		log_err("/dev/kvm speaks API version %d, ember needs %d", version, KVM_API_VERSION);
		close(fd);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (!cap_removed(caps, nr_caps, required_caps[i].cap) &&
		    !kvm_check_cap(fd, required_caps[i].cap)) {
			log_err("KVM lacks %s", required_caps[i].name);
			close(fd);
			return -ENOTSUP;
		}
	}
	if (kvm_check_template_caps(fd, caps, nr_caps) < 0) {
		close(fd);
		return -ENOTSUP;
	}
	return fd;
}

int kvm_check_template_caps(int fd, const struct kvm_cap_modifier *caps, unsigned int nr_caps)
{
	for (unsigned int i = 0; i < nr_caps; i++) {
		if (!caps[i].remove && !kvm_check_cap(fd, (int)caps[i].cap)) {
			log_err("KVM lacks capability %u, which the CPU template requires",
				caps[i].cap);
			return -ENOTSUP;
		}
	}
	return 0;
}

struct kvm_cpuid2 *kvm_get_supported_cpuid(int kvm_fd)
{
	for (unsigned int n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		int err = errno;
		free(c);
		if (err != E2BIG) {
			errno = err;
			return NULL;
		}
	}
	errno = E2BIG;
	return NULL;
}
