// SPDX-License-Identifier: Apache-2.0
/* userfaultfd-backed guest memory: see uffd.h. */
#include "uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "seccomp/seccomp.h"
#include "util.h"

#define PAGE 4096ull

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (fd >= 0 || errno != EPERM)
		return fd < 0 ? -errno : fd;
	/* Without CAP_SYS_PTRACE and vm.unprivileged_userfaultfd: the device node. */
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
	close(dev);
	return fd < 0 ? -errno : fd;
}

/* File offset of the page at host address @addr, or -1. */
static int64_t file_offset(const struct uffd_server *s, uint64_t addr)
{
	uint64_t off = 0;
	for (unsigned int i = 0; i < s->mem->nr_regions; i++) {
		const struct guest_region *r = &s->mem->regions[i];
		uint64_t base = (uint64_t)(uintptr_t)r->host;
		if (addr >= base && addr - base < r->size)
			return (int64_t)(off + (addr - base));
		off += r->size;
	}
	return -1;
}

static uint8_t *host_addr(const struct uffd_server *s, uint64_t file_off)
{
	uint64_t off = 0;
	for (unsigned int i = 0; i < s->mem->nr_regions; i++) {
		const struct guest_region *r = &s->mem->regions[i];
		if (file_off - off < r->size)
			return r->host + (file_off - off);
		off += r->size;
	}
	return NULL;
}

/* Copy @len bytes at file offset @off into guest memory. 0 or -errno. */
static int copy_in(struct uffd_server *s, uint64_t off, uint64_t len)
{
	uint8_t *dst = host_addr(s, off);
	if (!dst || off + len > s->file_size)
		return -EINVAL;
	struct uffdio_copy c = { .dst = (uint64_t)(uintptr_t)dst,
				 .src = (uint64_t)(uintptr_t)(s->file + off),
				 .len = len };
	for (;;) {
		if (ioctl(s->uffd, UFFDIO_COPY, &c) == 0)
			return 0;
		if (errno == EEXIST)
			return 0; /* already there (two faults on one page) */
		if (errno != EAGAIN)
			return -errno;
		/* Partly done: go on from where it stopped. */
		if (c.copy > 0) {
			c.dst += (uint64_t)c.copy, c.src += (uint64_t)c.copy,
			    c.len -= (uint64_t)c.copy;
			c.copy = 0;
		}
	}
}

static void *uffd_thread(void *arg)
{
	struct uffd_server *s = arg;
	struct uffd_msg msgs[16];
	pthread_setname_np(pthread_self(), "uffd");
	log_set_thread_name("uffd");
	if (seccomp_apply(SECCOMP_UFFD) < 0)
		abort(); /* faults would never be served */
	for (;;) {
		struct pollfd p = { .fd = s->uffd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		ssize_t n = read(s->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			uint64_t addr = msgs[i].arg.pagefault.address & ~(PAGE - 1);
			int64_t off = file_offset(s, addr);
			int r = off < 0 ? -EFAULT : copy_in(s, (uint64_t)off, PAGE);
			if (r < 0) {
				/* A fault we cannot serve would hang the vCPU for good. */
				log_err("userfaultfd: cannot serve the page at 0x%llx: %s",
					(unsigned long long)addr, strerror(-r));
				abort();
			}
			s->faults++;
			if (s->record_fd >= 0) {
				uint64_t rec = (uint64_t)off;
				if (write(s->record_fd, &rec, sizeof(rec)) != sizeof(rec))
					log_warn("userfaultfd: working set record write failed");
			}
		}
	}
	log_err("userfaultfd handler stopped: %s", strerror(errno));
	return NULL;
}

/* A userfaultfd with all of @mem registered for missing pages. fd or -errno. */
static int uffd_register(const struct guest_mem *mem, const char **why)
{
	int fd = uffd_open();
	if (fd < 0) {
		*why = "userfaultfd is not available (needs privilege or /dev/userfaultfd)";
		return fd;
	}
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		*why = "UFFDIO_API failed";
		goto fail;
	}
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		struct uffdio_register reg = {
			.range = { .start = (uint64_t)(uintptr_t)mem->regions[i].host,
				   .len = mem->regions[i].size },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
			*why = "UFFDIO_REGISTER failed";
			goto fail;
		}
	}
	return fd;
fail:;
	int e = errno;
	close(fd);
	return -e;
}

int uffd_external_start(const struct guest_mem *mem, const char *path, const char **why)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		*why = "the handler's socket path is too long";
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	json_t *maps = json_array();
	uint64_t off = 0;
	for (unsigned int i = 0; i < mem->nr_regions; i++) {
		json_array_append_new(maps,
				      json_pack("{s:I, s:I, s:I, s:I}", "base_host_virt_addr",
						(json_int_t)(uintptr_t)mem->regions[i].host, "size",
						(json_int_t)mem->regions[i].size, "offset",
						(json_int_t)off, "page_size", (json_int_t)PAGE));
		off += mem->regions[i].size;
	}
	char *msg = json_dumps(maps, JSON_COMPACT);
	json_decref(maps);
	int uffd = uffd_register(mem, why);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = 0;
	if (!msg || uffd < 0 || sock < 0) {
		r = uffd < 0 ? uffd : -ENOMEM;
	} else if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		*why = "cannot connect to the userfaultfd handler's socket";
	} else {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} ctl = { 0 };
		struct iovec iov = { msg, strlen(msg) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &uffd, sizeof(int));
		if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)strlen(msg)) {
			r = -errno;
			*why = "cannot send the memory layout to the userfaultfd handler";
		}
	}
	free(msg);
	if (sock >= 0)
		close(sock);
	/* The handler holds the userfaultfd now; our copy is not needed. */
	if (uffd >= 0)
		close(uffd);
	return r;
}

int uffd_server_start(struct uffd_server *s, const struct guest_mem *mem, int mem_fd,
		      const char *record_path, const char **why)
{
	memset(s, 0, sizeof(*s));
	s->mem = mem;
	s->mem_fd = mem_fd;
	s->record_fd = -1;
	struct stat st;
	if (fstat(mem_fd, &st) < 0) {
		*why = "cannot stat the memory file";
		return -errno;
	}
	s->file_size = (uint64_t)st.st_size;
	s->file = mmap(NULL, s->file_size, PROT_READ, MAP_SHARED, mem_fd, 0);
	if (s->file == MAP_FAILED) {
		*why = "cannot map the memory file";
		return -errno;
	}
	s->uffd = uffd_register(mem, why);
	if (s->uffd < 0)
		return s->uffd;
	if (record_path) {
		s->record_fd =
		    open(record_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
		if (s->record_fd < 0) {
			*why = "cannot create the working set file";
			return -errno;
		}
	}
	int r = thread_start(&s->thread, uffd_thread, s);
	if (r) {
		*why = "cannot start the userfaultfd handler thread";
		return -r;
	}
	s->running = true;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int uffd_prefetch(struct uffd_server *s, const char *path, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		*why = "cannot open the working set file";
		if (fd >= 0)
			close(fd);
		return -ENOENT;
	}
	size_t n = (size_t)st.st_size / sizeof(uint64_t);
	if ((size_t)st.st_size % sizeof(uint64_t) || n > s->file_size / PAGE) {
		close(fd);
		*why = "the working set file is malformed";
		return -EINVAL;
	}
	uint64_t *pages = malloc((n ? n : 1) * sizeof(uint64_t));
	ssize_t got = pages ? read(fd, pages, n * sizeof(uint64_t)) : -1;
	close(fd);
	if (got != (ssize_t)(n * sizeof(uint64_t))) {
		free(pages);
		*why = "cannot read the working set file";
		return -EIO;
	}
	for (size_t i = 0; i < n; i++)
		if (pages[i] % PAGE || pages[i] >= s->file_size) {
			free(pages);
			*why = "the working set names a page outside the memory file";
			return -EINVAL;
		}
	qsort(pages, n, sizeof(uint64_t), cmp_u64);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!m || pages[i] != pages[m - 1])
			pages[m++] = pages[i];
	/* Contiguous runs in one copy each (never across a region's end). */
	int r = 0;
	for (size_t i = 0; i < m && r == 0;) {
		size_t j = i + 1;
		while (j < m && pages[j] == pages[j - 1] + PAGE &&
		       host_addr(s, pages[j]) == host_addr(s, pages[j - 1]) + PAGE)
			j++;
		r = copy_in(s, pages[i], (j - i) * PAGE);
		s->prefetched += j - i;
		i = j;
	}
	free(pages);
	if (r < 0)
		*why = "UFFDIO_COPY failed";
	return r;
}
