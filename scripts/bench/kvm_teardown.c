// SPDX-License-Identifier: Apache-2.0
/*
 * What a KVM VM's interrupt controller costs the host to create and tear
 * down, with nothing of ember in the way. Each round creates a VM with one
 * memory slot and one vCPU in one of three set-ups, then closes it:
 *
 *   inkernel  KVM_CREATE_IRQCHIP + KVM_CREATE_PIT2 (what ember does today)
 *   nopit     KVM_CREATE_IRQCHIP alone, to tell the PIT's share
 *   split     KVM_CAP_SPLIT_IRQCHIP (LAPIC in the kernel; PIC, IOAPIC and
 *             PIT would be the VMM's)
 *   none      no irqchip at all
 *
 * "create" is KVM_CREATE_VM through KVM_CREATE_VCPU; "close" is closing the
 * vCPU and VM fds and unmapping the vCPU's kvm_run, which is where the host
 * frees the VM (the last reference goes with the last fd), wall time and
 * this thread's CPU time. Set-ups are
 * interleaved round by round so drift hits all alike.
 *
 * usage: kvm-teardown [ROUNDS [MEM_MIB]]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum setup { SETUP_INKERNEL, SETUP_NOPIT, SETUP_SPLIT, SETUP_NONE, SETUP_COUNT };

static const char *const setup_names[SETUP_COUNT] = {
	"in-kernel irqchip + PIT",
	"in-kernel irqchip, no PIT",
	"split irqchip",
	"no irqchip",
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* CPU time of this thread, user and kernel: a close that sleeps (waiting
 * out RCU grace periods, stopping a kernel thread) costs wall time but
 * leaves the CPU to other VMs. */
static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "kvm-teardown: %s: %s\n", what, strerror(errno));
	exit(1);
}

struct round {
	int vm_fd, vcpu_fd;
	void *run;
};

/* The addresses ember uses: just below 4 GiB, clear of guest RAM. */
#define TSS_ADDR 0xfffbd000UL
#define IDMAP_ADDR 0xfffbc000ULL

static void create(int kvm_fd, int run_size, void *mem, uint64_t mem_bytes, enum setup s,
		   struct round *r)
{
	r->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (r->vm_fd < 0)
		die("KVM_CREATE_VM");
	struct kvm_userspace_memory_region reg = {
		.slot = 0,
		.memory_size = mem_bytes,
		.userspace_addr = (uint64_t)(uintptr_t)mem,
	};
	if (ioctl(r->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	if (ioctl(r->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR) < 0)
		die("KVM_SET_TSS_ADDR");
	uint64_t idmap = IDMAP_ADDR;
	if (ioctl(r->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		die("KVM_SET_IDENTITY_MAP_ADDR");
	if (s == SETUP_INKERNEL || s == SETUP_NOPIT) {
		if (ioctl(r->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
			die("KVM_CREATE_IRQCHIP");
	}
	if (s == SETUP_INKERNEL) {
		struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
		if (ioctl(r->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
			die("KVM_CREATE_PIT2");
	} else if (s == SETUP_SPLIT) {
		/* 24 routes: the IOAPIC pins a userspace IOAPIC would deliver. */
		struct kvm_enable_cap cap = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { 24 } };
		if (ioctl(r->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
			die("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP)");
	}
	r->vcpu_fd = ioctl(r->vm_fd, KVM_CREATE_VCPU, 0);
	if (r->vcpu_fd < 0)
		die("KVM_CREATE_VCPU");
	r->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->vcpu_fd, 0);
	if (r->run == MAP_FAILED)
		die("mmap kvm_run");
}

static void destroy(int run_size, struct round *r)
{
	munmap(r->run, run_size);
	close(r->vcpu_fd);
	close(r->vm_fd);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The p-th percentile of sorted @v, linearly interpolated (as stats.py). */
static double pct(const double *v, int n, double p)
{
	double k = (n - 1) * p / 100;
	int lo = (int)k;
	int hi = lo + 1 < n ? lo + 1 : n - 1;
	return v[lo] + (v[hi] - v[lo]) * (k - lo);
}

static void row(const char *name, double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	printf("  %-50s %9.2f %9.2f %9.2f\n", name, v[0], pct(v, n, 50), pct(v, n, 95));
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 50;
	long mib = argc > 2 ? atol(argv[2]) : 2;
	if (rounds < 1 || mib < 1) {
		fprintf(stderr, "usage: kvm-teardown [ROUNDS [MEM_MIB]]\n");
		return 2;
	}
	uint64_t mem_bytes = (uint64_t)mib << 20;

	int kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		die("/dev/kvm");
	int run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SPLIT_IRQCHIP) <= 0) {
		fprintf(stderr, "kvm-teardown: this host has no KVM_CAP_SPLIT_IRQCHIP\n");
		return 1;
	}
	void *mem =
	    mmap(NULL, mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap guest memory");

	double *t_create[SETUP_COUNT], *t_close[SETUP_COUNT], *c_close[SETUP_COUNT];
	for (int s = 0; s < SETUP_COUNT; s++) {
		t_create[s] = calloc(rounds, sizeof(double));
		t_close[s] = calloc(rounds, sizeof(double));
		c_close[s] = calloc(rounds, sizeof(double));
		if (!t_create[s] || !t_close[s] || !c_close[s])
			die("calloc");
	}
	for (int i = -2; i < rounds; i++) { /* two rounds of warm-up */
		for (int s = 0; s < SETUP_COUNT; s++) {
			struct round r;
			double t0 = now_ms();
			create(kvm_fd, run_size, mem, mem_bytes, s, &r);
			double t1 = now_ms(), c1 = cpu_ms();
			destroy(run_size, &r);
			double t2 = now_ms(), c2 = cpu_ms();
			if (i >= 0) {
				t_create[s][i] = t1 - t0;
				t_close[s][i] = t2 - t1;
				c_close[s][i] = c2 - c1;
			}
		}
	}

	printf("KVM VM create/close: 1 vCPU, %ld MiB slot, %d rounds interleaved (ms)\n", mib,
	       rounds);
	printf("  %-50s %9s %9s %9s\n", "", "min", "median", "p95");
	double med_close[SETUP_COUNT];
	for (int s = 0; s < SETUP_COUNT; s++) {
		char name[96];
		snprintf(name, sizeof(name), "%s: create", setup_names[s]);
		row(name, t_create[s], rounds);
		snprintf(name, sizeof(name), "%s: close", setup_names[s]);
		row(name, t_close[s], rounds);
		med_close[s] = pct(t_close[s], rounds, 50);
		snprintf(name, sizeof(name), "%s: close, CPU time", setup_names[s]);
		row(name, c_close[s], rounds);
	}
	printf("  close, median, against in-kernel + PIT: no PIT %.2f, split %.2f, none %.2f\n",
	       med_close[SETUP_NOPIT] / med_close[SETUP_INKERNEL],
	       med_close[SETUP_SPLIT] / med_close[SETUP_INKERNEL],
	       med_close[SETUP_NONE] / med_close[SETUP_INKERNEL]);
	return 0;
}
