/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lazy guest memory from a snapshot through userfaultfd, served by a
 * handler thread inside ember: guest memory is anonymous and registered for
 * missing-page faults; each fault (from a vCPU through KVM, or from the
 * monitor) is filled with UFFDIO_COPY from the memory file.
 *
 * Working sets (REAP): with a record file, every page faulted in is
 * appended to it (8-byte file offsets); a later restore given that file
 * copies all those pages in before the vCPUs start, so the guest runs
 * without taking those faults.
 */
#ifndef EMBER_SNAPSHOT_UFFD_H
#define EMBER_SNAPSHOT_UFFD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest_mem.h"

struct uffd_server {
	int uffd;
	int mem_fd;
	const uint8_t *file; /* the memory file, mapped read-only */
	uint64_t file_size;
	const struct guest_mem *mem;
	int record_fd; /* -1: not recording */
	pthread_t thread;
	bool running;
	uint64_t faults, prefetched; /* pages */
};

/*
 * Register @mem (anonymous, untouched) with a new userfaultfd and start the
 * handler thread serving it from @mem_fd. @record_path: file to record the
 * working set into, or NULL. 0 or -errno with @why.
 */
int uffd_server_start(struct uffd_server *s, const struct guest_mem *mem, int mem_fd,
		      const char *record_path, const char **why)
    __attribute__((warn_unused_result));

/*
 * Hand @mem's faults to an external handler instead, as Firecracker does:
 * register @mem with a new userfaultfd, connect to the Unix socket @path and
 * send the guest memory mappings as JSON ([{"base_host_virt_addr", "size",
 * "offset", "page_size"}]) with the userfaultfd attached (SCM_RIGHTS). The
 * handler serves the faults from the memory file it knows. 0 or -errno.
 */
int uffd_external_start(const struct guest_mem *mem, const char *path, const char **why)
    __attribute__((warn_unused_result));

/* Copy in every page listed in the working-set file @path before the guest
 * runs. 0 or -errno with @why (a missing or malformed file is an error). */
int uffd_prefetch(struct uffd_server *s, const char *path, const char **why)
    __attribute__((warn_unused_result));

#endif
