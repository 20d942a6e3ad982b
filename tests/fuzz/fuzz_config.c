// SPDX-License-Identifier: Apache-2.0
/*
 * ember's start-up configuration: the command line and the --config-file
 * JSON, in main()'s order. The input is ember's arguments, NUL-separated,
 * then an empty argument (two NULs), then the config file; an input
 * without the two NULs is all config file. cli_parse() gets "ember", those
 * arguments and "--config-file FILE" (the file written from the input);
 * when it accepts them, --metrics-path is opened as main() does, and
 * vmm_load_config_file() applies the file through the API's handlers. The
 * result must render as GET /vm/config renders it, and (for an input that
 * is all config file) round-trip: that rendering, loaded into a fresh VMM,
 * renders the same, as GET /vm/config's answer loads back as a config file.
 * Logger and metrics are left out of the comparison: they name the
 * process's sinks, not the VM.
 *
 * Left out, because they start something the target must not: main()'s
 * seccomp filters, signals, --log-path (main.c), the API server
 * (--api-sock), and the boot that a kernel from the command line or the
 * file would start: the target stops where main() calls vmm_start() or
 * snapshot_load(), before any KVM call. Paths in the input reach only the
 * sandbox's directory (fuzz_sandbox.h), which holds a drive image
 * "disk.img", a kernel "vmlinux" and an initrd "initrd.img".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_sandbox.h"
#include "fuzz_vmm.h"

#define FUZZ_MAX_ARGS 32

static int config_fd = -1;
static char config_file[64]; /* the memfd's name under /proc/self/fd */
static FILE *quiet; /* cli_parse()'s error lines go here, not to the fuzzer's log */

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char disk[4096], kernel[] = "not a kernel: only stat()ed before boot\n";
	fuzz_sandbox_init(argc, argv, "fuzz-config");
	fuzz_sandbox_keep("disk.img", disk, sizeof(disk));
	fuzz_sandbox_keep("vmlinux", kernel, sizeof(kernel) - 1);
	fuzz_sandbox_keep("initrd.img", disk, 512);
	/* A memfd: json_load_file() reads it by path, with fopen(). */
	config_fd = memfd_create("fuzz-config", MFD_CLOEXEC);
	snprintf(config_file, sizeof(config_file), "/proc/self/fd/%d", config_fd);
	quiet = fopen("/dev/null", "w");
	if (config_fd < 0 || !quiet)
		abort();
	fuzz_vmm_init();
	fuzz_sandbox_leave();
	return 0;
}

static char *config_text(json_t *j)
{
	json_object_del(j, "logger");
	json_object_del(j, "metrics");
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

/* Load @first (a rendering) into a fresh VMM: it must be accepted and render
 * the same. Inside the sandbox; leaves the VMM as the reload left it. */
static void check_round_trip(const char *first)
{
	static char *fresh_args[] = { "ember", "--api-sock", "api.sock", NULL };
	json_t *root = json_loads(first, 0, NULL);
	char err[600] = "";
	fuzz_sandbox_leave();
	if (fuzz_vmm_reset(3, fresh_args) != 0)
		abort();
	fuzz_sandbox_enter();
	if (!root || vmm_load_config_json(&fuzz_vmm, root, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_config: GET /vm/config's answer %s does not load back: %s\n",
			first, err);
		abort();
	}
	json_decref(root);
	json_t *j = vmm_config_json(&fuzz_vmm);
	char *second = j ? config_text(j) : NULL;
	if (!second || strcmp(first, second) != 0) {
		fprintf(stderr, "fuzz_config: round trip changed %s into %s\n", first,
			second ? second : "nothing");
		abort();
	}
	free(second);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *split = memmem(data, size, "\0\0", 2);
	const uint8_t *file = split ? split + 2 : data;
	size_t file_len = size - (size_t)(file - data);
	char *args_buf = malloc(split ? (size_t)(split - data) + 1 : 1);
	char *argv[FUZZ_MAX_ARGS + 4] = { "ember" };
	int argc = 1;
	if (!args_buf)
		return 0;
	if (split) {
		size_t n = (size_t)(split - data);
		memcpy(args_buf, data, n);
		args_buf[n] = 0;
		for (char *p = args_buf; p < args_buf + n && argc <= FUZZ_MAX_ARGS;
		     p += strlen(p) + 1)
			argv[argc++] = p;
	}
	argv[argc++] = "--config-file";
	argv[argc++] = config_file;
	argv[argc] = NULL;
	if (ftruncate(config_fd, 0) < 0 ||
	    pwrite(config_fd, file, file_len, 0) != (ssize_t)file_len)
		abort();

	/* cli_parse()'s error lines and --help go nowhere; libFuzzer and the
	 * sanitizers write to the real stderr, which they hold on to. */
	FILE *out = stdout, *err_out = stderr;
	stdout = stderr = quiet;
	int r = fuzz_vmm_reset(argc, argv);
	stdout = out;
	stderr = err_out;
	char err[600];
	fuzz_sandbox_enter();
	if (r == 0 &&
	    (!fuzz_vmm.cfg.metrics_path ||
	     metrics_start(&fuzz_vmm, fuzz_vmm.cfg.metrics_path) == 0) &&
	    vmm_load_config_file(&fuzz_vmm, fuzz_vmm.cfg.config_file, err, sizeof(err)) == 0) {
		json_t *j = vmm_config_json(&fuzz_vmm);
		char *s = j ? config_text(j) : NULL;
		if (!s) {
			fprintf(stderr, "fuzz_config: an accepted configuration does not render\n");
			abort();
		}
		json_decref(j);
		if (!split)
			check_round_trip(s);
		free(s);
	}
	fuzz_sandbox_leave();
	free(args_buf);
	return 0;
}
