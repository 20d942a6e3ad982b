// SPDX-License-Identifier: Apache-2.0
/*
 * snapshot_load() before any KVM object exists: a FIFO named as the state
 * file or the memory file is refused at once (it hung the VMM thread in
 * open()), and a state file whose configuration carries sections that
 * snapshots never hold (logger, metrics, boot-source) is refused before
 * they reconfigure the process. Version 2's sections: the clock, and one
 * rate-limiter section per block, network and entropy device whose buckets
 * are consistent; garbage in them is refused with the field named, and a
 * version 1 file (neither section) still loads.
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
#include <zlib.h>
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

/* Sections a test adds to the state file write_state() makes. */
struct extra {
	uint32_t tag, instance, len;
	const void *data;
};

static void write_state_with(const char *config, const struct extra *extra, unsigned int n);

/* A state file for a 1-vCPU, 2 MiB VM with @config, valid up to KVM. */
static void write_state(const char *config)
{
	const struct snap_clock clk = { .realtime_ns = 1 };
	const struct extra e = { SNAP_CLOCK, 0, sizeof(clk), &clk };
	write_state_with(config, &e, 1);
}

static void write_state_with(const char *config, const struct extra *extra, unsigned int n)
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
	for (unsigned int i = 0; i < n; i++)
		snap_writer_add(&w, extra[i].tag, extra[i].instance, extra[i].data, extra[i].len);
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

#define ENTROPY_VM "{\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":2},\"entropy\":{}}"

/* An entropy device's state file with @rl as its limiter section (NULL:
 * none) and the clock section unless @no_clock; the load's error. */
static int load_limiters(const struct snap_rate_limiters *rl, uint32_t instance, bool no_clock,
			 char *err, size_t len)
{
	static const struct virtio_mmio_state dev;
	const struct snap_clock clk = { .realtime_ns = 1 };
	struct extra e[3] = { { SNAP_VIRTIO, 0, sizeof(dev), &dev } };
	unsigned int n = 1;
	if (!no_clock)
		e[n++] = (struct extra){ SNAP_CLOCK, 0, sizeof(clk), &clk };
	if (rl)
		e[n++] = (struct extra){ SNAP_RATE_LIMITER, instance, sizeof(*rl), rl };
	write_state_with(ENTROPY_VM, e, n);
	return load(path[0], "/nonexistent", err, len);
}

/* A limiter as a snapshot of a throttled device holds it. */
static struct snap_rate_limiters good_limiter(void)
{
	struct snap_rate_limiters rl = { .count = 1 };
	rl.rl[0].bytes = (struct token_bucket_state){ .size = 1000,
						      .one_time_burst = 10,
						      .refill_time_ms = 100,
						      .budget = 3,
						      .elapsed_ns = 5000000 };
	return rl;
}

static void good_limiter_state_gets_to_the_memory_file(void **state)
{
	(void)state;
	char err[400] = "";
	struct snap_rate_limiters rl = good_limiter();
	assert_int_equal(load_limiters(&rl, 0, false, err, sizeof(err)), EMBER_EXIT_SNAPSHOT);
	assert_non_null(strstr(err, "cannot open mem_backend path"));
	/* No limiter section at all: refused too (version 2 has one per device). */
	assert_int_equal(load_limiters(NULL, 0, false, err, sizeof(err)), EMBER_EXIT_SNAPSHOT);
	assert_non_null(strstr(err, "rate limiters do not match"));
}

static void garbage_limiter_state_is_refused(void **state)
{
	(void)state;
	static const char *const want[] = {
		"budget is larger than its size",
		"refill_time is 0 or too large",
		"refill_time is 0 or too large",
		"unlimited bucket (size 0) with other",
		"an unused limiter is set",
		"rate limiters do not match",
		"rate limiters do not match",
		"rate limiters do not match",
		"clock section",
	};
	for (unsigned int i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct snap_rate_limiters rl = good_limiter();
		uint32_t instance = 0;
		switch (i) {
		case 0:
			rl.rl[0].bytes.budget = 1001;
			break;
		case 1:
			rl.rl[0].bytes.refill_time_ms = 0;
			break;
		case 2:
			rl.rl[0].bytes.refill_time_ms = UINT64_MAX;
			break;
		case 3:
			rl.rl[0].ops.elapsed_ns = 1;
			break;
		case 4:
			rl.rl[1].ops.size = 1, rl.rl[1].ops.refill_time_ms = 1;
			break;
		case 5:
			rl.count = 2;
			break;
		case 6:
			rl.reserved = 1;
			break;
		case 7:
			instance = 1;
			break;
		}
		char err[400] = "";
		assert_int_equal(load_limiters(&rl, instance, i == 8, err, sizeof(err)),
				 EMBER_EXIT_SNAPSHOT);
		if (!strstr(err, want[i]))
			fail_msg("case %u: %s", i, err);
	}
}

static void version_1_loads_without_limiters(void **state)
{
	(void)state;
	char err[400] = "";
	static const struct virtio_mmio_state dev;
	const struct extra e = { SNAP_VIRTIO, 0, sizeof(dev), &dev };
	write_state_with(ENTROPY_VM, &e, 1);
	/* Reseal the file as version 1: its header and CRC. */
	FILE *f = fopen(path[0], "r+");
	assert_non_null(f);
	static uint8_t b[1 << 20];
	size_t n = fread(b, 1, sizeof(b), f);
	b[12] = 1;
	uint32_t crc = (uint32_t)crc32(0, b, (uInt)(n - 8));
	memcpy(b + n - 8, &crc, 4);
	rewind(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
	/* No clock and no limiter section: fine for version 1. */
	assert_int_equal(load(path[0], "/nonexistent", err, sizeof(err)), EMBER_EXIT_SNAPSHOT);
	assert_non_null(strstr(err, "cannot open mem_backend path"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fifo_state_file_is_refused),
		cmocka_unit_test(fifo_memory_file_is_refused),
		cmocka_unit_test(sections_snapshots_never_hold_are_refused),
		cmocka_unit_test(good_limiter_state_gets_to_the_memory_file),
		cmocka_unit_test(garbage_limiter_state_is_refused),
		cmocka_unit_test(version_1_loads_without_limiters),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
