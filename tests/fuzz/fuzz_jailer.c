// SPDX-License-Identifier: Apache-2.0
/*
 * ember-jailer's command line: the input is its arguments, separated by NUL
 * bytes (argv[0] is supplied). They go through jail_parse_args() and, when
 * they parse, jail_validate(), which only looks at the files named. The
 * jail itself (jail_run(): chroot, device nodes, cgroups, exec) never runs.
 * A jail that passes validation must be one jail_run() may build: what the
 * checks promise is checked again here.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jailer.h"

#define FUZZ_MAX_ARGS 64

static bool id_ok(const char *id)
{
	size_t n = strlen(id);
	return n >= 1 && n <= 64 &&
	    strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* What jail_run() relies on once jail_validate() said yes. */
static bool jail_ok(const struct jail *j)
{
	size_t base_len = strlen(j->base);
	if (!j->id || !id_ok(j->id) || !j->exec_file || j->uid == (uid_t)-1 ||
	    j->gid == (gid_t)-1 || j->base[0] != '/' || !j->exec_name[0] ||
	    strchr(j->exec_name, '/') || strncmp(j->jail_dir, j->base, base_len) != 0 ||
	    strlen(j->root) + 300 >= sizeof(j->root))
		return false;
	for (unsigned int i = 0; i < j->nr_binds; i++)
		if (j->binds[i][0] != '/' || strcmp(j->binds[i], "/") == 0 ||
		    strstr(j->binds[i], ".."))
			return false;
	for (unsigned int i = 0; i < j->nr_cgroups; i++)
		if (!*j->cg_file[i] || strchr(j->cg_file[i], '/') || !*j->cg_value[i])
			return false;
	/* The default parent cgroup is the exec file's name (no '/'). */
	if (j->parent_cgroup == j->exec_name)
		return true;
	return j->parent_cgroup && j->parent_cgroup[0] != '/' && !strstr(j->parent_cgroup, "..");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	char *argv[FUZZ_MAX_ARGS + 2] = { "ember-jailer" };
	int argc = 1;
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	for (char *p = buf; p < buf + size && argc <= FUZZ_MAX_ARGS; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;

	struct jail j;
	optind = 0; /* getopt starts afresh, as in a new process */
	if (jail_parse_args(argc, argv, &j) == 0 && jail_validate(&j) == 0 && !jail_ok(&j)) {
		fprintf(stderr, "fuzz_jailer: validation passed a jail it should refuse\n");
		abort();
	}
	free(buf);
	return 0;
}
