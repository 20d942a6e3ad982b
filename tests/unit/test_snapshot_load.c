// SPDX-License-Identifier: Apache-2.0
/*
 * snapshot_load() before any KVM object exists: a FIFO named as the state
 * file or the memory file is refused at once (it hung the VMM thread in
 * open()), and a state file whose configuration carries sections that
 * snapshots never hold (logger, metrics, boot-source) is refused before
 * they reconfigure the process.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "exit_codes.h"
#include "snapshot/format.h"
#include "snapshot/kvm_state.h"
#include "snapshot/snapshot.h"
#include "vmm.h"

#define MEM_SIZE (2ull << 20)

static char dir[] = "/tmp/ember-snapload-XXXXXX";
static char path[3][128]; /* state, fifo, log */

/* snapshot.c's SNAP_MEMORY section: one region of MEM_SIZE at 0. */
struct snap_memory_1 {
	uint64_t size;
	uint32_t nr_regions, pad;
	uint64_t regions[GUEST_MEM_MAX_REGIONS][2];
};

/* A state file for a 1-vCPU, 2 MiB VM with @config, valid up to KVM. */
static void write_state(const char *config)
{
	static struct snap_vcpu vcpu;
	static struct snap_vm vm;
	struct snap_serial serial = { 0 };
	struct snap_memory_1 mem = { .size = MEM_SIZE, .nr_regions = 1 };
	mem.regions[0][1] = MEM_SIZE;
	vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	struct snap_writer w;
	snap_writer_init(&w);
	snap_writer_add(&w, SNAP_CONFIG, 0, config, (uint32_t)strlen(config));
	snap_writer_add(&w, SNAP_MEMORY, 0, &mem, sizeof(mem));
	snap_writer_add(&w, SNAP_VCPU, 0, &vcpu, sizeof(vcpu));
	snap_writer_add(&w, SNAP_VM, 0, &vm, sizeof(vm));
	snap_writer_add(&w, SNAP_SERIAL, 0, &serial, sizeof(serial));
	assert_int_equal(snap_writer_finish(&w), 0);
	FILE *f = fopen(path[0], "w");
	assert_non_null(f);
	assert_int_equal(fwrite(w.buf, 1, w.len, f), w.len);
	fclose(f);
	snap_writer_free(&w);
}

static int load(const char *state, const char *mem, char *err, size_t len)
{
	static struct vmm vmm;
	config_free(&vmm.cfg);
	memset(&vmm, 0, sizeof(vmm));
	vmm.metrics.fd = -1;
	struct snapshot_load a = { .state_path = state, .mem_path = mem };
	alarm(10); /* a hang fails the test instead of stalling it */
	int r = snapshot_load(&vmm, &a, err, len);
	alarm(0);
	assert_int_equal(vmm.state, VMM_NOT_STARTED);
	return r;
}

static int setup(void **state)
{
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path[0], sizeof(path[0]), "%s/state", dir);
	snprintf(path[1], sizeof(path[1]), "%s/fifo", dir);
	snprintf(path[2], sizeof(path[2]), "%s/log", dir);
	assert_int_equal(mkfifo(path[1], 0600), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		unlink(path[i]);
	rmdir(dir);
	return 0;
}

static void fifo_state_file_is_refused(void **state)
{
	(void)state;
	char err[400] = "";
	assert_int_equal(load(path[1], "/nonexistent", err, sizeof(err)), EMBER_EXIT_SNAPSHOT);
	assert_non_null(strstr(err, "not a regular file"));
}

static void fifo_memory_file_is_refused(void **state)
{
	(void)state;
	char err[400] = "";
	write_state("{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":2}}");
	assert_int_equal(load(path[0], path[1], err, sizeof(err)), EMBER_EXIT_SNAPSHOT);
	assert_non_null(strstr(err, "is 0 bytes"));
}

static void sections_snapshots_never_hold_are_refused(void **state)
{
	(void)state;
	const char *sections[] = { "logger", "metrics", "boot-source" };
	const char *fields[] = { "log_path", "metrics_path", "kernel_image_path" };
	for (int i = 0; i < 3; i++) {
		char config[512], err[400] = "";
		snprintf(config, sizeof(config),
			 "{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":2},"
			 "\"%s\":{\"%s\":\"%s\"}}",
			 sections[i], fields[i], i < 2 ? path[2] : path[0]);
		write_state(config);
		assert_int_equal(load(path[0], "/nonexistent", err, sizeof(err)),
				 EMBER_EXIT_SNAPSHOT);
		assert_non_null(strstr(err, sections[i]));
		assert_int_equal(access(path[2], F_OK), -1); /* no log or metrics file made */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fifo_state_file_is_refused),
		cmocka_unit_test(fifo_memory_file_is_refused),
		cmocka_unit_test(sections_snapshots_never_hold_are_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
