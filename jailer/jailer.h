/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember-jailer's pieces: the jail being made (jailer.c runs the steps), its
 * files (files.c) and cgroups (cgroup.c). Each step
 * returns 0, or -1 with the reason in err_buf (fail()).
 */
#ifndef EMBER_JAILER_H
#define EMBER_JAILER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define JAIL_MAX_CGROUPS 16
#define JAIL_MAX_LIMITS 4
#define JAIL_MAX_BINDS 8
#define EXIT_JAIL 2 /* the jailer's own failures; ember's status otherwise */
/* The no-file limit when --resource-limit does not set one: Firecracker's. */
#define JAIL_DEFAULT_NOFILE 2048

struct jail {
	const char *id, *exec_file, *base, *netns, *parent_cgroup;
	uid_t uid;
	gid_t gid;
	int cgroup_version;
	const char *cg_file[JAIL_MAX_CGROUPS], *cg_value[JAIL_MAX_CGROUPS];
	unsigned int nr_cgroups;
	int rl_resource[JAIL_MAX_LIMITS];
	rlim_t rl_value[JAIL_MAX_LIMITS];
	unsigned int nr_limits;
	bool daemonize, new_pid_ns;
	bool show_version, show_help; /* --version, --help: print, jail nothing */
	const char *binds[JAIL_MAX_BINDS];
	unsigned int nr_binds;
	char **ember_argv;
	/* For ember's start-up times, as Firecracker's jailer passes them:
	 * CLOCK_MONOTONIC and this process's CPU time when main() began (us),
	 * and the CPU time the jailer had spent when it forked the child. */
	uint64_t start_us, start_cpu_us, jailer_cpu_us;
	/* What the steps made, for clean-up. */
	char jail_dir[PATH_MAX], root[PATH_MAX], exec_name[NAME_MAX + 1];
	char cg_dirs[JAIL_MAX_CGROUPS][PATH_MAX];
	unsigned int nr_cg_dirs;
};

/*
 * Parse the jailer's command line into @j (pointers into @argv, which is
 * modified: --cgroup and --resource-limit values are split at their '=').
 * Checks each argument's form only. 0, or -1 with the reason in err_buf.
 */
int jail_parse_args(int argc, char **argv, struct jail *j) __attribute__((warn_unused_result));
/* Check what the files and paths named stand for (the exec file, the jail's
 * directory not yet there) and fill in the jail's paths; touches nothing.
 * 0, or -1 with the reason in err_buf. */
int jail_validate(struct jail *j) __attribute__((warn_unused_result));

#define JAIL_ERR_MAX 512
extern char err_buf[JAIL_ERR_MAX];
/* Record why a step failed (with strerror(errno) when errno is set); -1. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* mkdir -p. 0 or -1 (errno). */
int mkdirs(const char *path, mode_t mode);
/* A hard link when @from is on the same file system (no copy, no disk), a
 * copy otherwise. Hard links share the inode: only for files the jailed
 * process cannot write (owned by root, it runs as another uid). */
int link_or_copy(const char *from, const char *to, mode_t mode);
/* 1 if @path is an ELF executable without an interpreter (static), 0 if
 * it names one (dynamically linked), -1 (errno) if it is not 64-bit ELF. */
int elf_is_static(const char *path);

/* Write @value to the existing file @path. 0 or -1 (errno). */
int write_file(const char *path, const char *value);
/* Make the jail's cgroup directories (v1: one per controller the --cgroup
 * files name; v2: one, controllers enabled down the tree), recorded in
 * j->cg_dirs for clean-up. */
int cgroup_v1(struct jail *j);
int cgroup_v2(struct jail *j);
/* Write the --cgroup values; then put @pid in every directory. */
int cgroup_apply(struct jail *j);
int cgroup_join(struct jail *j, pid_t pid);

#endif
