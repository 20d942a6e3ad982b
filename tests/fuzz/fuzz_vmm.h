/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A struct vmm as main() has it before its first API request, config file
 * or --restore: the configuration cli_parse() makes of a command line, the
 * log on a descriptor (here /dev/null, so log lines are still formatted),
 * an event loop, no metrics, no VM. fuzz_vmm_reset() puts it back before
 * every input: the configuration's strings freed and parsed again, a log
 * file or metrics file an input opened closed, counters zeroed, so nothing
 * one input did reaches the next. Used with fuzz_sandbox.h (inputs open
 * files only in its directory).
 */
#ifndef EMBER_FUZZ_VMM_H
#define EMBER_FUZZ_VMM_H

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "vmm.h"

static struct vmm fuzz_vmm;
static int fuzz_null_fd = -1; /* /dev/null, never handed to ember */
static int fuzz_log_fd = -1; /* ember's log: a log file's descriptor is dup'ed onto it */

static inline void fuzz_vmm_init(void)
{
	clock_init();
	fuzz_null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	fuzz_log_fd = fuzz_null_fd < 0 ? -1 : fcntl(fuzz_null_fd, F_DUPFD_CLOEXEC, 3);
	if (fuzz_log_fd < 0 || event_loop_init(&fuzz_vmm.loop) < 0) {
		perror("fuzz vmm: set-up");
		abort();
	}
	fuzz_vmm.signal_fd = -1;
	fuzz_vmm.metrics.fd = -1;
	fuzz_vmm.metrics.timer_fd = -1;
}

/* Back to main()'s state after cli_parse(@argc, @argv); returns what that
 * returned (0: ember would go on). */
static inline int fuzz_vmm_reset(int argc, char **argv)
{
	struct vmm_metrics *m = &fuzz_vmm.metrics;
	if (fuzz_vmm.state != VMM_NOT_STARTED) {
		/* Only building a VM changes it: an input got past the KVM boundary. */
		fprintf(stderr, "fuzz vmm: the VMM left 'Not started' (state %d)\n",
			fuzz_vmm.state);
		abort();
	}
	if (m->timer_h)
		event_loop_del(&fuzz_vmm.loop, m->timer_h);
	event_loop_run_once(&fuzz_vmm.loop, 0); /* frees the removed handler */
	if (m->fd >= 0)
		close(m->fd);
	if (m->timer_fd >= 0)
		close(m->timer_fd);
	free(m->slots);
	json_decref(m->properties);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->timer_fd = -1;

	/* A log file an input opened took fuzz_log_fd's number (log_replace_fd). */
	if (dup3(fuzz_null_fd, fuzz_log_fd, O_CLOEXEC) < 0)
		abort();
	mmds_free(&fuzz_vmm.mmds);
	config_free(&fuzz_vmm.cfg);
	optind = 0; /* getopt starts afresh, as in a new process */
	int r = cli_parse(argc, argv, &fuzz_vmm.cfg);
	log_init(r == 0 ? fuzz_vmm.cfg.log_level : LOG_WARN, fuzz_log_fd);
	return r;
}

#endif
