/* SPDX-License-Identifier: Apache-2.0 */
/* ember-fn: prepare a function image, invoke it, or serve it. See fn.h. */
#include "fn.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: ember-fn prepare --image ELF --dir DIR [--mem MIB] [--vcpus N]\n"
    "       ember-fn invoke --dir DIR [--deadline-ms N] [--uffd] < request > response\n"
    "       ember-fn serve --dir DIR --sock PATH [--pool N] [--deadline-ms N] [--uffd]\n"
    "common: [--ember PATH] (default: ember beside ember-fn) [--verbose]\n"
    "invoke exits 0 with the response on stdout, or with the status (1 handler crashed,\n"
    "2 response too large, 3 request too large, 4 handler refused it, 5 deadline exceeded,\n"
    "6 VM failed) and a message on stderr; 64 bad usage.\n";

static int bad_usage(const char *what)
{
	fprintf(stderr, "ember-fn: %s\n%s", what, usage);
	return FN_USAGE;
}

/* A number in [min, max], or -1. */
static long number(const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	return v;
}

/* The ember beside our own executable. */
static const char *default_ember(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - sizeof("/ember"));
	if (n <= 0)
		return "ember";
	path[n] = '\0';
	char *slash = strrchr(path, '/');
	strcpy(slash ? slash : path, "/ember");
	return path;
}

/* Read all of stdin, at most FN_MAX_PAYLOAD + 1 bytes. Length or -1. */
static long read_stdin(uint8_t *buf)
{
	size_t n = 0;
	for (;;) {
		ssize_t k = read(0, buf + n, FN_MAX_PAYLOAD + 1 - n);
		if (k == 0 || (k > 0 && (n += (size_t)k) > FN_MAX_PAYLOAD))
			return (long)n;
		if (k < 0 && errno != EINTR)
			return -1;
	}
}

/* mkdir -p: 0 or -1 with errno. */
static int make_dirs(const char *path)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *s = p + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST)
			return -1;
		if (!c)
			return 0;
		*s = c;
	}
}

static int cmd_invoke(const struct fn_opts *o)
{
	uint8_t *req = malloc(FN_MAX_PAYLOAD + 1);
	long len = req ? read_stdin(req) : -1;
	if (len < 0) {
		fprintf(stderr, "ember-fn: cannot read the request from stdin\n");
		return FN_VM_FAILED;
	}
	if (len > FN_MAX_PAYLOAD) {
		fprintf(stderr, "ember-fn: %s\n", fn_status_text(FN_REQ_TOO_LARGE));
		return FN_REQ_TOO_LARGE;
	}
	struct fn_vm vm;
	int e = fn_vm_spawn(&vm, o);
	if (e < 0) {
		fprintf(stderr, "ember-fn: cannot start %s: %s\n", o->ember, strerror(-e));
		return FN_VM_FAILED;
	}
	struct fn_reply r;
	fn_invoke_vm(&vm, o, req, (uint32_t)len, &r);
	free(req);
	/* Answer first: the VM's teardown (KVM closing) is not the caller's wait. */
	if (r.status == FN_OK && fn_write_full(1, r.data, r.len, -1) < 0) {
		fprintf(stderr, "ember-fn: cannot write the response: %s\n", strerror(errno));
		r.status = FN_VM_FAILED;
	} else if (r.status != FN_OK) {
		fprintf(stderr, "ember-fn: %s\n", r.msg);
		if (r.len)
			fprintf(stderr, "ember-fn: the guest said: %.*s\n", (int)r.len, r.data);
	}
	close(1);
	free(r.data);
	fn_vm_destroy(&vm);
	fn_keep_ws(&vm, o);
	return (int)r.status;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "dir", required_argument, NULL, 'd' },
		{ "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "deadline-ms", required_argument, NULL, 't' },
		{ "uffd", no_argument, NULL, 'u' },
		{ "sock", required_argument, NULL, 's' },
		{ "pool", required_argument, NULL, 'p' },
		{ "ember", required_argument, NULL, 'e' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2)
		return bad_usage("a command is needed");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(usage, stdout);
		return 0;
	}
	struct fn_opts o = { .deadline_ms = 1000 };
	const char *image = NULL, *sock = NULL;
	long mem = 64, vcpus = 1, pool = 2;
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			image = optarg;
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 'm':
			if ((mem = number(optarg, 1, 1 << 20)) < 0)
				return bad_usage("--mem: a size in MiB is needed");
			break;
		case 'c':
			if ((vcpus = number(optarg, 1, 32)) < 0)
				return bad_usage("--vcpus: 1 to 32");
			break;
		case 't':
			if ((o.deadline_ms = (int)number(optarg, 1, 3600000)) < 0)
				return bad_usage("--deadline-ms: 1 to 3600000");
			break;
		case 'u':
			o.uffd = true;
			break;
		case 's':
			sock = optarg;
			break;
		case 'p':
			if ((pool = number(optarg, 1, 256)) < 0)
				return bad_usage("--pool: 1 to 256");
			break;
		case 'e':
			o.ember = optarg;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return bad_usage("unknown option");
		}
	}
	if (optind != argc)
		return bad_usage("unexpected argument");
	if (!o.dir)
		return bad_usage("--dir is needed");
	if (!o.ember)
		o.ember = default_ember();
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(cmd, "prepare")) {
		if (!image)
			return bad_usage("prepare needs --image");
		if (make_dirs(o.dir) < 0) {
			fprintf(stderr, "ember-fn: %s: %s\n", o.dir, strerror(errno));
			return FN_VM_FAILED;
		}
	}
	/* The VMs may run elsewhere (a jail bound at the same paths): absolute. */
	char *dir = realpath(o.dir, NULL);
	if (!dir) {
		fprintf(stderr, "ember-fn: %s: %s\n", o.dir, strerror(errno));
		return FN_VM_FAILED;
	}
	o.dir = dir;
	if (!strcmp(cmd, "prepare"))
		return fn_prepare(&o, image, (unsigned int)mem, (unsigned int)vcpus) < 0
		    ? FN_VM_FAILED
		    : 0;
	if (!strcmp(cmd, "invoke"))
		return cmd_invoke(&o);
	if (!strcmp(cmd, "serve")) {
		if (!sock)
			return bad_usage("serve needs --sock");
		return fn_serve(&o, sock, (unsigned int)pool);
	}
	return bad_usage("unknown command");
}
