// SPDX-License-Identifier: Apache-2.0
/* The jail's cgroups, v1 and v2. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer.h"

int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, value, strlen(value));
	int e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(value) ? 0 : -1;
}

/* Where the cgroup v2 hierarchy is mounted (cgroup2 in /proc/mounts). */
static int cgroup2_root(char *out, size_t len)
{
	FILE *f = fopen("/proc/mounts", "re");
	char dev[256], dir[PATH_MAX], type[64];
	int r = -1;
	while (f && fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3)
		if (strcmp(type, "cgroup2") == 0) {
			snprintf(out, len, "%s", dir);
			r = 0;
			break;
		}
	if (f)
		fclose(f);
	return r;
}

/* v2: make parent/id, enabling the controllers the files need all the way down. */
int cgroup_v2(struct jail *j)
{
	char root[PATH_MAX], dir[PATH_MAX], ctl[64];
	if (cgroup2_root(root, sizeof(root)) < 0)
		return (errno = 0), fail("no cgroup2 hierarchy is mounted");
	snprintf(dir, sizeof(dir), "%s/%s/%s", root, j->parent_cgroup, j->id);
	if (mkdirs(dir, 0755) < 0)
		return fail("cannot create cgroup '%s'", dir);
	snprintf(j->cg_dirs[j->nr_cg_dirs++], PATH_MAX, "%s", dir);
	for (unsigned int i = 0; i < j->nr_cgroups; i++) {
		size_t n = strcspn(j->cg_file[i], ".");
		if (n >= sizeof(ctl) - 1 || !strncmp(j->cg_file[i], "cgroup", n))
			continue;
		ctl[0] = '+';
		memcpy(ctl + 1, j->cg_file[i], n);
		ctl[n + 1] = 0;
		/* Every ancestor below the root passes the controller down. */
		char up[PATH_MAX];
		snprintf(up, sizeof(up), "%s", dir);
		char *cut;
		while ((cut = strrchr(up, '/')) && (size_t)(cut - up) >= strlen(root)) {
			*cut = 0;
			char sub[PATH_MAX];
			snprintf(sub, sizeof(sub), "%s/cgroup.subtree_control", up);
			if (write_file(sub, ctl) < 0)
				return fail("cannot enable the %s controller in '%s'", ctl + 1, up);
			if (strlen(up) == strlen(root))
				break;
		}
	}
	return 0;
}

/* v1: one directory per controller the files name. */
int cgroup_v1(struct jail *j)
{
	for (unsigned int i = 0; i < j->nr_cgroups; i++) {
		char ctl[64], dir[PATH_MAX];
		size_t n = strcspn(j->cg_file[i], ".");
		if (n >= sizeof(ctl))
			return (errno = 0),
			       fail("--cgroup '%s' names no controller", j->cg_file[i]);
		memcpy(ctl, j->cg_file[i], n);
		ctl[n] = 0;
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s", ctl);
		struct stat st;
		if (stat(dir, &st) < 0)
			return fail("cgroup v1 controller '%s' is not mounted", ctl);
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s/%s", ctl, j->parent_cgroup, j->id);
		bool seen = false;
		for (unsigned int k = 0; k < j->nr_cg_dirs; k++)
			seen |= strcmp(j->cg_dirs[k], dir) == 0;
		if (seen)
			continue;
		if (mkdirs(dir, 0755) < 0)
			return fail("cannot create cgroup '%s'", dir);
		snprintf(j->cg_dirs[j->nr_cg_dirs++], PATH_MAX, "%s", dir);
	}
	return 0;
}

int cgroup_apply(struct jail *j)
{
	for (unsigned int i = 0; i < j->nr_cgroups; i++) {
		bool done = false;
		for (unsigned int k = 0; k < j->nr_cg_dirs && !done; k++) {
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/%s", j->cg_dirs[k], j->cg_file[i]);
			if (access(path, F_OK) < 0)
				continue;
			if (write_file(path, j->cg_value[i]) < 0)
				return fail("cannot write %s=%s", j->cg_file[i], j->cg_value[i]);
			done = true;
		}
		if (!done)
			return (errno = 0),
			       fail("cgroup file '%s' does not exist (controller not "
				    "available in cgroup v%d here?)",
				    j->cg_file[i], j->cgroup_version);
	}
	return 0;
}

int cgroup_join(struct jail *j, pid_t pid)
{
	char buf[32], path[PATH_MAX];
	snprintf(buf, sizeof(buf), "%d\n", pid);
	for (unsigned int k = 0; k < j->nr_cg_dirs; k++) {
		snprintf(path, sizeof(path), "%s/%s", j->cg_dirs[k],
			 j->cgroup_version == 2 ? "cgroup.procs" : "tasks");
		if (write_file(path, buf) < 0)
			return fail("cannot join cgroup '%s'", j->cg_dirs[k]);
	}
	return 0;
}
