// SPDX-License-Identifier: Apache-2.0
/* The seccomp policy language (see policy.h), compiled with libseccomp. */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

const char *const seccomp_class_names[SECCOMP_CLASSES] = { "vmm", "api", "vcpu", "uffd" };

#define C(x)                                                                                       \
	{                                                                                          \
#x, (uint64_t)(x)                                                                  \
	}

static const struct {
	const char *name;
	uint64_t value;
} names[] = {
	/* KVM: system, VM and vCPU ioctls. */
	C(KVM_GET_API_VERSION),
	C(KVM_CREATE_VM),
	C(KVM_CHECK_EXTENSION),
	C(KVM_GET_VCPU_MMAP_SIZE),
	C(KVM_GET_SUPPORTED_CPUID),
	C(KVM_GET_MSR_INDEX_LIST),
	C(KVM_SET_USER_MEMORY_REGION),
	C(KVM_SET_TSS_ADDR),
	C(KVM_SET_IDENTITY_MAP_ADDR),
	C(KVM_CREATE_IRQCHIP),
	C(KVM_CREATE_PIT2),
	C(KVM_CREATE_VCPU),
	C(KVM_IRQFD),
	C(KVM_IOEVENTFD),
	C(KVM_IRQ_LINE),
	C(KVM_GET_IRQCHIP),
	C(KVM_SET_IRQCHIP),
	C(KVM_GET_PIT2),
	C(KVM_SET_PIT2),
	C(KVM_GET_CLOCK),
	C(KVM_SET_CLOCK),
	C(KVM_GET_DIRTY_LOG),
	C(KVM_RUN),
	C(KVM_GET_REGS),
	C(KVM_SET_REGS),
	C(KVM_GET_SREGS),
	C(KVM_SET_SREGS),
	C(KVM_GET_FPU),
	C(KVM_SET_FPU),
	C(KVM_GET_XSAVE),
	C(KVM_SET_XSAVE),
	C(KVM_GET_XCRS),
	C(KVM_SET_XCRS),
	C(KVM_GET_LAPIC),
	C(KVM_SET_LAPIC),
	C(KVM_GET_MSRS),
	C(KVM_SET_MSRS),
	C(KVM_SET_CPUID2),
	C(KVM_GET_CPUID2),
	C(KVM_GET_VCPU_EVENTS),
	C(KVM_SET_VCPU_EVENTS),
	C(KVM_GET_DEBUGREGS),
	C(KVM_SET_DEBUGREGS),
	C(KVM_GET_MP_STATE),
	C(KVM_SET_MP_STATE),
	/* TAP. */
	C(TUNSETIFF),
	C(TUNSETOFFLOAD),
	C(TUNSETVNETHDRSZ),
	C(TUNGETIFF),
	/* Terminal (serial console on a tty) and fds. */
	C(TCGETS),
	C(TCSETS),
	C(TIOCGWINSZ),
	C(FIONBIO),
	C(FIOCLEX),
	C(FIONREAD),
	/* userfaultfd. */
	C(UFFDIO_API),
	C(USERFAULTFD_IOC_NEW),
	C(UFFDIO_REGISTER),
	C(UFFDIO_COPY),
	C(UFFDIO_ZEROPAGE),
	/* Other arguments. */
	C(AF_UNIX),
	C(PROT_EXEC),
	C(PROT_READ),
	C(PROT_WRITE),
	C(F_GETFL),
	C(F_SETFL),
	C(F_GETFD),
	C(F_SETFD),
	C(F_DUPFD_CLOEXEC),
	C(MAP_SHARED),
	C(MAP_PRIVATE),
	C(CLONE_THREAD),
	C(CLONE_UNTRACED),
	C(ENOSYS),
	C(EACCES),
	C(EPERM),
	C(PR_SET_NAME),
	C(PR_SET_NO_NEW_PRIVS),
	C(SECCOMP_SET_MODE_FILTER),
};

static int value(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (*s && !*end && !errno && (*s >= '0' && *s <= '9')) {
		*out = v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].name, s) == 0) {
			*out = names[i].value;
			return 0;
		}
	return -EINVAL;
}

/* "argN==V", "argN!=V", "argN&M==V". */
static int condition(const char *tok, struct scmp_arg_cmp *c)
{
	if (strncmp(tok, "arg", 3) != 0 || tok[3] < '0' || tok[3] > '5')
		return -EINVAL;
	unsigned int arg = (unsigned int)(tok[3] - '0');
	const char *p = tok + 4;
	char buf[64];
	uint64_t mask = 0, v;
	enum scmp_compare op;
	if (*p == '&') {
		const char *eq = strstr(p, "==");
		if (!eq || (size_t)(eq - p - 1) >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, p + 1, (size_t)(eq - p - 1));
		buf[eq - p - 1] = 0;
		if (value(buf, &mask) < 0)
			return -EINVAL;
		op = SCMP_CMP_MASKED_EQ;
		p = eq + 2;
	} else if (strncmp(p, "==", 2) == 0) {
		op = SCMP_CMP_EQ;
		p += 2;
	} else if (strncmp(p, "!=", 2) == 0) {
		op = SCMP_CMP_NE;
		p += 2;
	} else {
		return -EINVAL;
	}
	if (value(p, &v) < 0)
		return -EINVAL;
	if (op == SCMP_CMP_MASKED_EQ)
		*c = (struct scmp_arg_cmp){ .arg = arg, .op = op, .datum_a = mask, .datum_b = v };
	else
		*c = (struct scmp_arg_cmp){ .arg = arg, .op = op, .datum_a = v };
	return 0;
}

/* The BPF libseccomp produced, read back from the fd it exported to. */
static int export(scmp_filter_ctx ctx, struct sock_filter **prog)
{
	char path[] = "/tmp/ember-bpf-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	unlink(path);
	int r = seccomp_export_bpf(ctx, fd);
	off_t len = r == 0 ? lseek(fd, 0, SEEK_END) : -1;
	if (r == 0 && (len <= 0 || len % (off_t)sizeof(struct sock_filter)))
		r = -EIO;
	if (r == 0) {
		*prog = malloc((size_t)len);
		if (!*prog || pread(fd, *prog, (size_t)len, 0) != len)
			r = -EIO;
	}
	close(fd);
	return r < 0 ? r : (int)(len / (off_t)sizeof(struct sock_filter));
}

int seccomp_policy_compile(const char *text, enum seccomp_class cls, struct sock_filter **prog,
			   char *err, size_t err_len)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		snprintf(err, err_len, "seccomp_init failed");
		return -ENOMEM;
	}
	char *copy = strdup(text);
	int r = copy ? 0 : -ENOMEM, lineno = 0;
	bool in = false, seen = false;
	for (char *save = NULL, *line = copy ? strtok_r(copy, "\n", &save) : NULL; line && r == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *tok[8], *s2 = NULL;
		int n = 0;
		for (char *t = strtok_r(line, " \t\r", &s2); t; t = strtok_r(NULL, " \t\r", &s2)) {
			if (n == 8) {
				snprintf(err, err_len, "line %d: too many conditions", lineno);
				r = -EINVAL;
				break;
			}
			tok[n++] = t;
		}
		if (r || n == 0)
			continue;
		if (tok[0][0] == '[') {
			char want[16];
			snprintf(want, sizeof(want), "[%s]", seccomp_class_names[cls]);
			in = n == 1 && strcmp(tok[0], want) == 0;
			seen |= in;
			continue;
		}
		if (!in)
			continue;
		int nr = seccomp_syscall_resolve_name(tok[0]);
		if (nr == __NR_SCMP_ERROR) {
			snprintf(err, err_len, "line %d: unknown system call '%s'", lineno, tok[0]);
			r = -EINVAL;
			break;
		}
		struct scmp_arg_cmp cmp[7];
		unsigned int ncmp = 0;
		uint32_t action = SCMP_ACT_ALLOW;
		uint64_t e;
		for (int i = 1; i < n && r == 0; i++) {
			if (strncmp(tok[i], "errno=", 6) == 0 && value(tok[i] + 6, &e) == 0)
				action =
				    SCMP_ACT_ERRNO((uint32_t)e); /* fail the call, harmlessly */
			else if (condition(tok[i], &cmp[ncmp++]) < 0) {
				snprintf(err, err_len, "line %d: bad condition '%s'", lineno,
					 tok[i]);
				r = -EINVAL;
			}
		}
		if (r == 0 && (r = seccomp_rule_add_array(ctx, action, nr, ncmp, cmp)) < 0)
			snprintf(err, err_len, "line %d: libseccomp refused the rule for '%s': %s",
				 lineno, tok[0], strerror(-r));
	}
	free(copy);
	if (r == 0 && !seen) {
		snprintf(err, err_len, "no [%s] section", seccomp_class_names[cls]);
		r = -EINVAL;
	}
	if (r == 0)
		r = export(ctx, prog);
	seccomp_release(ctx);
	return r;
}
